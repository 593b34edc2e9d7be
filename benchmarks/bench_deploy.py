"""Hello world (and a 1,000-route app) under real uvicorn and gunicorn processes.

For each framework the same app is served by one server worker pinned to CPU 0 and
loaded by wrk (CPU 1, 50 keep-alive connections, 127.0.0.1); targets are measured in
interleaved rounds and reported as median requests/s, p99 latency and the ratio to a
bare ASGI / WSGI callable under the same server. Frameworks live in their own
virtualenvs under ``--venvs`` (upstream ``microdot`` from PyPI only there).

    python benchmarks/bench_deploy.py --only asgi     # uvicorn (h11+asyncio and httptools+uvloop)
    python benchmarks/bench_deploy.py --only wsgi     # gunicorn sync and gthread
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

from _common import ensure_venv, free_port, stop, wait_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / 'packages'
SERVERS = ['uvicorn[standard]', 'gunicorn']
VENVS = {
    'deploy-ours': ['-e', str(PKG / 'microdot-core'), '-e', str(PKG / 'microdot-asgi'),
                    '-e', str(PKG / 'microdot-wsgi')] + SERVERS,
    'deploy-peers': ['starlette', 'falcon', 'bottle', 'flask'] + SERVERS,
    'deploy-upstream': ['microdot'] + SERVERS,
}
WHERE = {'microdot-asgi': 'deploy-ours', 'microdot-wsgi': 'deploy-ours',
         'bare': 'deploy-ours', 'upstream-microdot': 'deploy-upstream'}

APPS = {
    'asgi': {
        'bare': '''
            async def app(scope, receive, send):
                if scope['type'] != 'http':
                    return
                await send({'type': 'http.response.start', 'status': 200, 'headers': [
                    (b'content-type', b'text/plain; charset=UTF-8'), (b'content-length', b'13')]})
                await send({'type': 'http.response.body', 'body': b'Hello, World!'})
        ''',
        'microdot-asgi': '''
            from microdot.asgi import Microdot
            app = Microdot()
            for i in range(ROUTES - 1):
                app.route('/r%d/<x>' % i)(lambda req, x: 'no')
            async def index(req, **kw):
                return 'Hello, World!'
            app.route(LAST)(index)
        ''',
        'upstream-microdot': '''
            from microdot.asgi import Microdot
            app = Microdot()
            for i in range(ROUTES - 1):
                app.route('/r%d/<x>' % i)(lambda req, x: 'no')
            async def index(req, **kw):
                return 'Hello, World!'
            app.route(LAST)(index)
        ''',
        'starlette': '''
            from starlette.applications import Starlette
            from starlette.responses import PlainTextResponse
            from starlette.routing import Route
            async def no(request):
                return PlainTextResponse('no')
            async def index(request):
                return PlainTextResponse('Hello, World!')
            routes = [Route('/r%d/{x}' % i, no) for i in range(ROUTES - 1)]
            routes.append(Route(LAST.replace('<x>', '{x}'), index))
            app = Starlette(routes=routes)
        ''',
        'falcon': '''
            import falcon.asgi
            class R:
                async def on_get(self, req, resp, **kw):
                    resp.content_type = 'text/plain'
                    resp.text = 'Hello, World!'
            app = falcon.asgi.App()
            for i in range(ROUTES - 1):
                app.add_route('/r%d/{x}' % i, R())
            app.add_route(LAST.replace('<x>', '{x}'), R())
        ''',
    },
    'wsgi': {
        'bare': '''
            def app(environ, start_response):
                start_response('200 OK', [('Content-Type', 'text/plain; charset=UTF-8'),
                                          ('Content-Length', '13')])
                return [b'Hello, World!']
        ''',
        'microdot-wsgi': '''
            from microdot.wsgi import Microdot
            app = Microdot()
            @app.route('/')
            def index(req):
                return 'Hello, World!'
        ''',
        'upstream-microdot': '''
            from microdot.wsgi import Microdot
            app = Microdot()
            @app.route('/')
            def index(req):
                return 'Hello, World!'
        ''',
        'falcon': '''
            import falcon
            class R:
                def on_get(self, req, resp):
                    resp.content_type = 'text/plain'
                    resp.text = 'Hello, World!'
            app = falcon.App()
            app.add_route('/', R())
        ''',
        'bottle': '''
            import bottle
            app = bottle.Bottle()
            app.route('/')(lambda: 'Hello, World!')
        ''',
        'flask': '''
            import flask
            app = flask.Flask('bench')
            app.add_url_rule('/', 'index', lambda: 'Hello, World!')
        ''',
    },
}


def venv_python(venvs: Path, name: str) -> Path:
    return ensure_venv(venvs, name, VENVS[name])


def write_app(workdir: Path, kind: str, name: str, routes: int) -> str:
    module = 'app_%s_%s_%d' % (kind, name.replace('-', '_'), routes)
    last = '/' if routes == 1 else '/r%d/<x>' % (routes - 1)
    code = 'ROUTES = %d\nLAST = %r\n' % (routes, last) + textwrap.dedent(APPS[kind][name])
    (workdir / (module + '.py')).write_text(code)
    return module


def start(cmd: list, port: int, cwd: Path) -> subprocess.Popen:
    if shutil.which('taskset'):
        cmd = ['taskset', '-c', '0'] + cmd
    proc = subprocess.Popen(cmd, cwd=str(cwd), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    wait_port(port, proc)
    return proc


def wrk(url: str, duration: int) -> tuple:
    cmd = ['wrk', '-t1', '-c50', '-d%ds' % duration, '--latency', url]
    if shutil.which('taskset'):
        cmd = ['taskset', '-c', '1'] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    rps = float(re.search(r'Requests/sec:\s+([\d.]+)', out).group(1))
    m = re.search(r'99%\s+([\d.]+)(us|ms|s)', out)
    p99 = float(m.group(1)) * {'us': 0.001, 'ms': 1.0, 's': 1000.0}[m.group(2)]
    bad = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    return rps, p99, int(bad.group(1)) if bad else 0


def server_cmd(py: Path, kind: str, variant: str, module: str, port: int) -> list:
    if kind == 'asgi':
        extra = ['--loop', 'asyncio', '--http', 'h11'] if variant == 'uvicorn' else \
            ['--loop', 'uvloop', '--http', 'httptools']
        return [str(py), '-m', 'uvicorn', '--port', str(port), '--log-level', 'warning',
                '--no-access-log', '--lifespan', 'off', *extra, module + ':app']
    extra = ['--worker-class', 'sync'] if variant == 'gunicorn sync' else \
        ['--worker-class', 'gthread', '--threads', '4']
    return [str(py), '-m', 'gunicorn', '--bind', '127.0.0.1:%d' % port, '--workers', '1',
            '--log-level', 'warning', *extra, module + ':app']


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--only', choices=['asgi', 'wsgi'])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--duration', type=int, default=5)
    parser.add_argument('--venvs', default='/tmp/microdot-bench-venvs')
    args = parser.parse_args()
    if not shutil.which('wrk'):
        sys.exit('wrk is needed: apt-get install wrk')
    venvs = Path(args.venvs)
    workdir = venvs / 'deploy-apps'
    workdir.mkdir(parents=True, exist_ok=True)
    plans = []
    if args.only in (None, 'asgi'):
        for variant in ('uvicorn', 'uvicorn[standard]'):
            for routes in (1, 1000):
                plans.append(('asgi', variant, routes))
    if args.only in (None, 'wsgi'):
        for variant in ('gunicorn sync', 'gunicorn gthread'):
            plans.append(('wsgi', variant, 1))
    for kind, variant, routes in plans:
        names = list(APPS[kind])
        results = {n: [] for n in names}
        for _ in range(args.rounds):
            for name in names:
                if name == 'bare' and routes > 1:
                    continue
                py = venv_python(venvs, WHERE.get(name, 'deploy-peers'))
                module = write_app(workdir, kind, name, routes)
                port = free_port()
                proc = start(server_cmd(py, kind, variant, module, port), port, workdir)
                try:
                    url = 'http://127.0.0.1:%d%s' % (port, '/' if routes == 1 else
                                                     '/r%d/x' % (routes - 1))
                    wrk(url, 1)
                    results[name].append(wrk(url, args.duration))
                finally:
                    stop(proc)
        if routes > 1:
            results['bare'] = base_results  # noqa: F821 - from the 1-route run above
        else:
            base_results = results['bare']  # noqa: F841
        base = statistics.median(r[0] for r in results['bare'])
        print('\n%s under %s, %d route(s): wrk -t1 -c50 -d%ds, median of %d rounds'
              % (kind.upper(), variant, routes, args.duration, args.rounds))
        print('%-20s %10s %9s %9s %8s' % ('app', 'req/s', 'p99 ms', 'vs bare', 'errors'))
        for name in names:
            rps = statistics.median(r[0] for r in results[name])
            p99 = statistics.median(r[1] for r in results[name])
            errors = sum(r[2] for r in results[name])
            print('%-20s %10.0f %9.2f %8.2fx %8d' % (name, rps, p99, rps / base, errors),
                  flush=True)


if __name__ == '__main__':
    main()
