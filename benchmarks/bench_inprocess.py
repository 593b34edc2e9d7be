"""In-process cost per request of ASGI and WSGI applications (no server, no sockets).

Each framework's hello-world app is called with a synthetic ASGI scope/receive/send or
WSGI environ/start_response in a tight loop; CPU time per request is reported (best of
several repeats). Frameworks run in their own virtualenvs (created on first use under
``--venvs``; upstream ``microdot`` from PyPI lives only there), one subprocess each, so
that upstream Microdot and this project, which share the ``microdot`` import name, never
meet.

    python benchmarks/bench_inprocess.py            # ASGI and WSGI tables
    python benchmarks/bench_inprocess.py --only wsgi
    python benchmarks/bench_inprocess.py --instructions   # needs valgrind

Timings swing on shared machines; ``--instructions`` counts CPU instructions per
request instead (valgrind's callgrind, the difference between a run of 2,500 and one
of 500 requests, so start-up cancels out), which is deterministic.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from _common import ensure_venv  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / 'packages'

VENVS = {
    'ours': ['-e', str(PKG / 'microdot-core'), '-e', str(PKG / 'microdot-asgi'),
             '-e', str(PKG / 'microdot-wsgi')],
    'peers': ['starlette', 'falcon', 'bottle', 'flask'],
    'upstream': ['microdot'],
}

HARNESS = textwrap.dedent('''
    import asyncio, json, sys, time
    N = int(sys.argv[2])
    ROUTES = int(sys.argv[3])  # 0: hello world at '/'; N: N routes '/r<i>/<x>'
    COUNT_ONLY = sys.argv[4:] == ['count']  # one run of N requests, no timing
    KIND, NAME = sys.argv[1].split(':')
    PATH = '/' if ROUTES == 0 else '/r%d/x' % (ROUTES - 1)
    BODY = b'Hello, World!'

    def build():
        {builder}

    app = build()

    def best(fn):
        results = []
        for _ in range(5):
            t = time.process_time()
            fn()
            results.append((time.process_time() - t) / N * 1e6)
        return min(results)

    if KIND == 'asgi':
        scope = {{'type': 'http', 'asgi': {{'version': '3.0'}}, 'http_version': '1.1',
                 'method': 'GET', 'scheme': 'http', 'path': PATH, 'raw_path': PATH.encode(),
                 'query_string': b'', 'root_path': '', 'client': ('127.0.0.1', 5000),
                 'server': ('127.0.0.1', 8000),
                 'headers': [(b'host', b'127.0.0.1:8000'), (b'user-agent', b'bench'),
                             (b'accept', b'*/*')]}}
        request = {{'type': 'http.request', 'body': b'', 'more_body': False}}
        disconnect = {{'type': 'http.disconnect'}}
        out = []

        async def send(m):
            if m['type'] == 'http.response.body':
                out.append(m.get('body', b''))

        async def loop():
            for _ in range(N):
                messages = [disconnect, request]

                async def receive():
                    # the request, then (as a server would once the response is
                    # complete and the client goes) a disconnect
                    return messages.pop() if len(messages) > 1 else disconnect

                await app(dict(scope), receive, send)

        def run():
            asyncio.run(loop())
        run()
        assert BODY in out[-3:], out[-3:]
        if COUNT_ONLY:
            sys.exit(0)
    else:
        environ = {{'REQUEST_METHOD': 'GET', 'PATH_INFO': PATH, 'QUERY_STRING': '',
                   'SERVER_NAME': '127.0.0.1', 'SERVER_PORT': '8000', 'SCRIPT_NAME': '',
                   'SERVER_PROTOCOL': 'HTTP/1.1', 'REMOTE_ADDR': '127.0.0.1',
                   'HTTP_HOST': '127.0.0.1:8000', 'HTTP_USER_AGENT': 'bench',
                   'HTTP_ACCEPT': '*/*', 'wsgi.url_scheme': 'http', 'wsgi.input': None,
                   'wsgi.errors': sys.stderr, 'wsgi.version': (1, 0),
                   'wsgi.multithread': False, 'wsgi.multiprocess': False,
                   'wsgi.run_once': False}}
        import io
        last = []

        def start_response(status, headers, exc_info=None):
            last.append(status)

        def run():
            for _ in range(N):
                env = dict(environ)
                env['wsgi.input'] = io.BytesIO(b'')
                result = app(env, start_response)
                body = b''.join(result)
                close = getattr(result, 'close', None)
                if close:
                    close()
            assert body == BODY, body
        run()
        if COUNT_ONLY:
            sys.exit(0)
    print(json.dumps({{'us': best(run)}}))
''')

BUILDERS = {
    'asgi:bare': '''
        async def app(scope, receive, send):
            await send({'type': 'http.response.start', 'status': 200,
                        'headers': [(b'content-type', b'text/plain'), (b'content-length', b'13')]})
            await send({'type': 'http.response.body', 'body': b'Hello, World!'})
        return app''',
    'asgi:microdot-asgi': '''
        from microdot.asgi import Microdot
        app = Microdot()
        for i in range(ROUTES - 1):
            app.route('/r%d/<x>' % i)(lambda req, x: 'no')
        async def index(req, **kw):
            return 'Hello, World!'
        app.route('/' if ROUTES == 0 else '/r%d/<x>' % (ROUTES - 1))(index)
        return app''',
    'asgi:upstream-microdot': '''
        from microdot.asgi import Microdot
        app = Microdot()
        for i in range(ROUTES - 1):
            app.route('/r%d/<x>' % i)(lambda req, x: 'no')
        async def index(req, **kw):
            return 'Hello, World!'
        app.route('/' if ROUTES == 0 else '/r%d/<x>' % (ROUTES - 1))(index)
        return app''',
    'asgi:starlette': '''
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route
        async def no(request):
            return PlainTextResponse('no')
        async def index(request):
            return PlainTextResponse('Hello, World!')
        routes = [Route('/r%d/{x}' % i, no) for i in range(ROUTES - 1)]
        routes.append(Route('/' if ROUTES == 0 else '/r%d/{x}' % (ROUTES - 1), index))
        return Starlette(routes=routes)''',
    'asgi:falcon': '''
        import falcon.asgi
        class R:
            async def on_get(self, req, resp, **kw):
                resp.content_type = 'text/plain'
                resp.text = 'Hello, World!'
        app = falcon.asgi.App()
        for i in range(ROUTES - 1):
            app.add_route('/r%d/{x}' % i, R())
        app.add_route('/' if ROUTES == 0 else '/r%d/{x}' % (ROUTES - 1), R())
        return app''',
    'wsgi:bare': '''
        def app(environ, start_response):
            start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '13')])
            return [b'Hello, World!']
        return app''',
    'wsgi:microdot-wsgi': '''
        from microdot.wsgi import Microdot
        app = Microdot()
        for i in range(ROUTES - 1):
            app.route('/r%d/<x>' % i)(lambda req, x: 'no')
        def index(req, **kw):
            return 'Hello, World!'
        app.route('/' if ROUTES == 0 else '/r%d/<x>' % (ROUTES - 1))(index)
        return app''',
    'wsgi:upstream-microdot': '''
        from microdot.wsgi import Microdot
        app = Microdot()
        for i in range(ROUTES - 1):
            app.route('/r%d/<x>' % i)(lambda req, x: 'no')
        def index(req, **kw):
            return 'Hello, World!'
        app.route('/' if ROUTES == 0 else '/r%d/<x>' % (ROUTES - 1))(index)
        return app''',
    'wsgi:falcon': '''
        import falcon
        class R:
            def on_get(self, req, resp, **kw):
                resp.content_type = 'text/plain'
                resp.text = 'Hello, World!'
        app = falcon.App()
        for i in range(ROUTES - 1):
            app.add_route('/r%d/{x}' % i, R())
        app.add_route('/' if ROUTES == 0 else '/r%d/{x}' % (ROUTES - 1), R())
        return app''',
    'wsgi:bottle': '''
        import bottle
        app = bottle.Bottle()
        for i in range(ROUTES - 1):
            app.route('/r%d/<x>' % i)(lambda x: 'no')
        app.route('/' if ROUTES == 0 else '/r%d/<x>' % (ROUTES - 1))(lambda **kw: 'Hello, World!')
        return app''',
    'wsgi:flask': '''
        import flask
        app = flask.Flask('bench')
        for i in range(ROUTES - 1):
            app.add_url_rule('/r%d/<x>' % i, 'r%d' % i, lambda x: 'no')
        app.add_url_rule('/' if ROUTES == 0 else '/r%d/<x>' % (ROUTES - 1), 'index',
                         lambda **kw: 'Hello, World!')
        return app''',
}

WHERE = {'microdot-asgi': 'ours', 'microdot-wsgi': 'ours', 'upstream-microdot': 'upstream'}


def venv_python(venvs: Path, name: str) -> Path:
    return ensure_venv(venvs, name, VENVS[name])


def measure(venvs: Path, key: str, n: int, routes: int) -> float:
    name = key.split(':')[1]
    py = venv_python(venvs, WHERE.get(name, 'ours' if name == 'bare' else 'peers'))
    body = textwrap.indent(textwrap.dedent(BUILDERS[key]).strip(), ' ' * 4).lstrip()
    code = HARNESS.format(builder=body)
    proc = subprocess.run([str(py), '-c', code, key, str(n), str(routes)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError('%s failed:\n%s' % (key, proc.stderr[-2000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])['us']


def count(venvs: Path, key: str, routes: int) -> float:
    """CPU instructions per request, from two callgrind runs of different lengths."""
    name = key.split(':')[1]
    py = venv_python(venvs, WHERE.get(name, 'ours' if name == 'bare' else 'peers'))
    body = textwrap.indent(textwrap.dedent(BUILDERS[key]).strip(), ' ' * 4).lstrip()
    code = HARNESS.format(builder=body)
    totals = []
    for n in (500, 2500):
        proc = subprocess.run(['valgrind', '--tool=callgrind', '--callgrind-out-file=/dev/null',
                               str(py), '-c', code, key, str(n), str(routes), 'count'],
                              capture_output=True, text=True, timeout=900)
        found = re.search(r'Collected : (\d+)', proc.stderr)
        if proc.returncode != 0 or not found:
            raise RuntimeError('%s failed:\n%s' % (key, proc.stderr[-2000:]))
        totals.append(int(found.group(1)))
    return (totals[1] - totals[0]) / 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--only', choices=['asgi', 'wsgi'])
    parser.add_argument('-n', type=int, default=20000, help='requests per repeat')
    parser.add_argument('--venvs', default='/tmp/microdot-bench-venvs')
    parser.add_argument('--instructions', action='store_true',
                        help='count CPU instructions per request with valgrind')
    args = parser.parse_args()
    venvs = Path(args.venvs)
    venvs.mkdir(parents=True, exist_ok=True)
    if args.instructions:
        if not shutil.which('valgrind'):
            sys.exit('--instructions needs valgrind: apt-get install valgrind')
        for kind in ('asgi', 'wsgi'):
            if args.only and kind != args.only:
                continue
            print('\n%s: CPU instructions per request (callgrind): hello world at /, '
                  'and the last of 1,000 routes /r<i>/<x>' % kind.upper())
            print('%-20s %10s %13s' % ('app', 'hello', '1,000 routes'))
            for key in [k for k in BUILDERS if k.startswith(kind + ':')]:
                hello = count(venvs, key, 0)
                many = hello if key.endswith(':bare') else count(venvs, key, 1000)
                print('%-20s %10.0f %13.0f' % (key.split(':')[1], hello, many), flush=True)
        return
    for kind in ('asgi', 'wsgi'):
        if args.only and kind != args.only:
            continue
        keys = [k for k in BUILDERS if k.startswith(kind + ':')]
        print('\n%s: CPU µs per request (best of 5 x %d): hello world at /, and the last '
              'of 1 or 1,000 routes /r<i>/<x>' % (kind.upper(), args.n))
        print('%-20s %9s %9s %13s %8s' % ('app', 'hello', '1 route', '1,000 routes',
                                          '1000/1'))
        for key in keys:
            hello = measure(venvs, key, args.n, 0)
            if key.split(':')[1] == 'bare':
                one = many = hello
            else:
                one = measure(venvs, key, args.n, 1)
                many = measure(venvs, key, args.n, 1000)
            print('%-20s %9.2f %9.2f %13.2f %7.2fx' % (key.split(':')[1], hello, one, many,
                                                      many / one), flush=True)


if __name__ == '__main__':
    main()
