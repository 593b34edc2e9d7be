"""In-process cost per request of ASGI and WSGI applications (no server, no sockets).

Each framework's app is called with a synthetic ASGI scope/receive/send or WSGI
environ/start_response in a tight loop, for each workload:

- ``hello``: ``GET /`` answered ``Hello, World!`` (text/plain);
- ``json``: ``GET /json`` answered ``{"message": "Hello, World!"}`` (the framework's
  JSON response);
- ``user``: ``GET /user/alice`` answered ``Hello, alice!`` (a path parameter);
- ``headers``: ``GET /headers``, the hello answer with two custom headers and a cookie;
- ``1,000 routes``: the last of 1,000 routes ``/r<i>/<x>`` (route lookup cost).

CPU time per request is reported (best of several repeats). Frameworks run in their own
virtualenvs (created on first use under ``--venvs``; upstream ``microdot`` from PyPI
lives only there), one subprocess each, so that upstream Microdot and this project,
which share the ``microdot`` import name, never meet. Peers: Starlette, Falcon and
BlackSheep (ASGI); Falcon, Bottle and Flask (WSGI); a bare callable for the floor.

    python benchmarks/bench_inprocess.py            # ASGI and WSGI tables
    python benchmarks/bench_inprocess.py --only wsgi
    python benchmarks/bench_inprocess.py --instructions   # needs valgrind
    python benchmarks/bench_inprocess.py --instructions --apps microdot-asgi falcon \\
        --workloads hello json

Timings swing on shared machines; ``--instructions`` counts CPU instructions per
request instead (valgrind's callgrind, the difference between a run of 2,500 and one
of 500 requests, so start-up cancels out, with a fixed hash seed), which is
deterministic. Each table ends
with this project's ratio to Falcon's figure per workload, and the cost of the
``headers`` response relative to ``hello``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Optional

from _common import ensure_venv  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / 'packages'

VENVS = {
    'ours': ['-e', str(PKG / 'microdot-core'), '-e', str(PKG / 'microdot-asgi'),
             '-e', str(PKG / 'microdot-wsgi')],
    'peers': ['starlette', 'falcon', 'bottle', 'flask', 'blacksheep'],
    'upstream': ['microdot'],
}

#: workload -> (path, routes, bytes the answer's body must contain)
WORKLOADS = {
    'hello': ('/', 0, b'Hello, World!'),
    'json': ('/json', 0, b'"message"'),
    'user': ('/user/alice', 0, b'Hello, alice!'),
    'headers': ('/headers', 0, b'Hello, World!'),
    '1,000 routes': ('/r999/x', 1000, b'Hello, World!'),
}

HARNESS = textwrap.dedent('''
    import asyncio, json, sys, time
    KIND, NAME = sys.argv[1].split(':')
    N = int(sys.argv[2])
    ROUTES = int(sys.argv[3])  # dummy routes '/r<i>/<x>', the last one answering hello
    PATH = sys.argv[4]
    EXPECT = sys.argv[5].encode()
    COUNT_ONLY = sys.argv[6:] == ['count']  # one run of N requests, no timing
    LAST = '/r%d/<x>' % (ROUTES - 1) if ROUTES else None
    STARTUP = None  # an async callable some frameworks need before the first request

    def build():
        global STARTUP
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
        path, _, query = PATH.partition('?')
        scope = {{'type': 'http', 'asgi': {{'version': '3.0'}}, 'http_version': '1.1',
                 'method': 'GET', 'scheme': 'http', 'path': path, 'raw_path': path.encode(),
                 'query_string': query.encode(), 'root_path': '',
                 'client': ('127.0.0.1', 5000), 'server': ('127.0.0.1', 8000),
                 'headers': [(b'host', b'127.0.0.1:8000'), (b'user-agent', b'bench'),
                             (b'accept', b'*/*')]}}
        request = {{'type': 'http.request', 'body': b'', 'more_body': False}}
        disconnect = {{'type': 'http.disconnect'}}
        out = []

        async def send(m):
            if m['type'] == 'http.response.body':
                out.append(m.get('body', b''))

        async def loop():
            if STARTUP is not None:
                await STARTUP()
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
        assert EXPECT in b''.join(out[-3:]), out[-3:]
        if COUNT_ONLY:
            sys.exit(0)
    else:
        path, _, query = PATH.partition('?')
        environ = {{'REQUEST_METHOD': 'GET', 'PATH_INFO': path, 'QUERY_STRING': query,
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
            assert EXPECT in body and last[-1].startswith('200'), (last[-1], body)
        run()
        if COUNT_ONLY:
            sys.exit(0)
    print(json.dumps({{'us': best(run)}}))
''')

# Every builder serves the same routes: '/', '/json', '/user/<name>', '/headers' (two
# custom headers and a cookie) and ROUTES dummy routes whose last one answers hello.
_MICRODOT = '''
    from microdot import Response
    from microdot.{kind} import Microdot
    app = Microdot()
    {mark}def index(req, **kw):
        return 'Hello, World!'
    {mark}def as_json(req):
        return {{'message': 'Hello, World!'}}
    {mark}def user(req, name):
        return 'Hello, %s!' % name
    {mark}def with_headers(req):
        res = Response('Hello, World!', headers={{'X-One': '1', 'X-Two': '2'}})
        res.set_cookie('session', 'abc123')
        return res
    app.route('/')(index)
    app.route('/json')(as_json)
    app.route('/user/<name>')(user)
    app.route('/headers')(with_headers)
    for i in range(ROUTES - 1):
        app.route('/r%d/<x>' % i)(lambda req, x: 'no')
    if LAST:
        app.route(LAST)(index)
    return app'''

_FALCON = '''
    import falcon{asgi}
    class Hello:
        {mark}def on_get(self, req, resp, **kw):
            resp.content_type = 'text/plain'
            resp.text = 'Hello, World!'
    class Json:
        {mark}def on_get(self, req, resp):
            resp.media = {{'message': 'Hello, World!'}}
    class User:
        {mark}def on_get(self, req, resp, name):
            resp.content_type = 'text/plain'
            resp.text = 'Hello, %s!' % name
    class Headers:
        {mark}def on_get(self, req, resp):
            resp.content_type = 'text/plain'
            resp.text = 'Hello, World!'
            resp.set_header('X-One', '1')
            resp.set_header('X-Two', '2')
            resp.set_cookie('session', 'abc123')
    class No:
        {mark}def on_get(self, req, resp, x):
            resp.text = 'no'
    app = falcon{asgi}.App()
    app.add_route('/', Hello())
    app.add_route('/json', Json())
    app.add_route('/user/{{name}}', User())
    app.add_route('/headers', Headers())
    for i in range(ROUTES - 1):
        app.add_route('/r%d/{{x}}' % i, No())
    if LAST:
        app.add_route('/r%d/{{x}}' % (ROUTES - 1), Hello())
    return app'''

BUILDERS = {
    'asgi:bare': '''
        import json
        async def app(scope, receive, send):
            path = scope['path']
            headers = [(b'content-type', b'text/plain')]
            if path == '/json':
                body = json.dumps({'message': 'Hello, World!'}).encode()
                headers = [(b'content-type', b'application/json')]
            elif path.startswith('/user/'):
                body = ('Hello, %s!' % path[6:]).encode()
            else:
                body = b'Hello, World!'
                if path == '/headers':
                    headers += [(b'x-one', b'1'), (b'x-two', b'2'),
                                (b'set-cookie', b'session=abc123')]
            headers.append((b'content-length', b'%d' % len(body)))
            await send({'type': 'http.response.start', 'status': 200, 'headers': headers})
            await send({'type': 'http.response.body', 'body': body})
        return app''',
    'asgi:microdot-asgi': _MICRODOT.format(kind='asgi', mark='async '),
    'asgi:upstream-microdot': _MICRODOT.format(kind='asgi', mark='async '),
    'asgi:starlette': '''
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse, PlainTextResponse
        from starlette.routing import Route
        async def no(request):
            return PlainTextResponse('no')
        async def index(request):
            return PlainTextResponse('Hello, World!')
        async def as_json(request):
            return JSONResponse({'message': 'Hello, World!'})
        async def user(request):
            return PlainTextResponse('Hello, %s!' % request.path_params['name'])
        async def with_headers(request):
            res = PlainTextResponse('Hello, World!', headers={'X-One': '1', 'X-Two': '2'})
            res.set_cookie('session', 'abc123')
            return res
        routes = [Route('/', index), Route('/json', as_json), Route('/user/{name}', user),
                  Route('/headers', with_headers)]
        routes += [Route('/r%d/{x}' % i, no) for i in range(ROUTES - 1)]
        if LAST:
            routes.append(Route('/r%d/{x}' % (ROUTES - 1), index))
        return Starlette(routes=routes)''',
    'asgi:falcon': _FALCON.format(asgi='.asgi', mark='async '),
    'asgi:blacksheep': '''
        from blacksheep import Application, Response, Content, text
        from blacksheep import json as json_response
        from blacksheep.cookies import Cookie
        app = Application()
        get = app.router.get
        async def index(x=None):
            return text('Hello, World!')
        async def as_json():
            return json_response({'message': 'Hello, World!'})
        async def user(name: str):
            return text('Hello, %s!' % name)
        async def with_headers():
            res = text('Hello, World!')
            res.add_header(b'X-One', b'1')
            res.add_header(b'X-Two', b'2')
            res.set_cookie(Cookie('session', 'abc123'))
            return res
        get('/')(index)
        get('/json')(as_json)
        get('/user/{name}')(user)
        get('/headers')(with_headers)
        for i in range(ROUTES - 1):
            get('/r%d/{x}' % i)(lambda x: text('no'))
        if LAST:
            get('/r%d/{x}' % (ROUTES - 1))(index)
        STARTUP = app.start
        return app''',
    'wsgi:bare': '''
        import json
        def app(environ, start_response):
            path = environ['PATH_INFO']
            headers = [('Content-Type', 'text/plain')]
            if path == '/json':
                body = json.dumps({'message': 'Hello, World!'}).encode()
                headers = [('Content-Type', 'application/json')]
            elif path.startswith('/user/'):
                body = ('Hello, %s!' % path[6:]).encode()
            else:
                body = b'Hello, World!'
                if path == '/headers':
                    headers += [('X-One', '1'), ('X-Two', '2'),
                                ('Set-Cookie', 'session=abc123')]
            headers.append(('Content-Length', str(len(body))))
            start_response('200 OK', headers)
            return [body]
        return app''',
    'wsgi:microdot-wsgi': _MICRODOT.format(kind='wsgi', mark=''),
    'wsgi:upstream-microdot': _MICRODOT.format(kind='wsgi', mark=''),
    'wsgi:falcon': _FALCON.format(asgi='', mark=''),
    'wsgi:bottle': '''
        import bottle
        app = bottle.Bottle()
        def with_headers():
            bottle.response.set_header('X-One', '1')
            bottle.response.set_header('X-Two', '2')
            bottle.response.set_cookie('session', 'abc123')
            return 'Hello, World!'
        app.route('/')(lambda: 'Hello, World!')
        app.route('/json')(lambda: {'message': 'Hello, World!'})
        app.route('/user/<name>')(lambda name: 'Hello, %s!' % name)
        app.route('/headers')(with_headers)
        for i in range(ROUTES - 1):
            app.route('/r%d/<x>' % i)(lambda x: 'no')
        if LAST:
            app.route(LAST)(lambda x: 'Hello, World!')
        return app''',
    'wsgi:flask': '''
        import flask
        app = flask.Flask('bench')
        def with_headers():
            res = flask.make_response('Hello, World!')
            res.headers['X-One'] = '1'
            res.headers['X-Two'] = '2'
            res.set_cookie('session', 'abc123')
            return res
        app.add_url_rule('/', 'index', lambda: 'Hello, World!')
        app.add_url_rule('/json', 'json', lambda: {'message': 'Hello, World!'})
        app.add_url_rule('/user/<name>', 'user', lambda name: 'Hello, %s!' % name)
        app.add_url_rule('/headers', 'headers', with_headers)
        for i in range(ROUTES - 1):
            app.add_url_rule('/r%d/<x>' % i, 'r%d' % i, lambda x: 'no')
        if LAST:
            app.add_url_rule(LAST, 'last', lambda x: 'Hello, World!')
        return app''',
}

WHERE = {'microdot-asgi': 'ours', 'microdot-wsgi': 'ours', 'bare': 'ours',
         'upstream-microdot': 'upstream'}
#: the frameworks this project's figures are compared with, per kind
REFERENCE = {'asgi': 'falcon', 'wsgi': 'falcon'}
OURS = {'asgi': 'microdot-asgi', 'wsgi': 'microdot-wsgi'}


def venv_python(venvs: Path, name: str) -> Path:
    return ensure_venv(venvs, name, VENVS[name])


def _command(venvs: Path, key: str, workload: str, n: int) -> List[str]:
    name = key.split(':')[1]
    py = venv_python(venvs, WHERE.get(name, 'peers'))
    body = textwrap.indent(textwrap.dedent(BUILDERS[key]).strip(), ' ' * 4).lstrip()
    code = HARNESS.format(builder=body)
    path, routes, expect = WORKLOADS[workload]
    return [str(py), '-c', code, key, str(n), str(routes), path, expect.decode()]


def measure(venvs: Path, key: str, workload: str, n: int) -> float:
    """CPU µs per request (best of 5 runs of ``n``)."""
    proc = subprocess.run(_command(venvs, key, workload, n), capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError('%s %s failed:\n%s' % (key, workload, proc.stderr[-2000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])['us']


def count(venvs: Path, key: str, workload: str) -> float:
    """CPU instructions per request, from two callgrind runs of different lengths."""
    totals = []
    # one hash seed: dict and set layouts, so the counts, are the same from run to run
    env = dict(os.environ, PYTHONHASHSEED='0')
    for n in (500, 2500):
        cmd = ['valgrind', '--tool=callgrind', '--callgrind-out-file=/dev/null'] + \
            _command(venvs, key, workload, n) + ['count']
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        found = re.search(r'Collected : (\d+)', proc.stderr)
        if proc.returncode != 0 or not found:
            raise RuntimeError('%s %s failed:\n%s' % (key, workload, proc.stderr[-2000:]))
        totals.append(int(found.group(1)))
    return (totals[1] - totals[0]) / 2000


def table(kind: str, apps: List[str], workloads: List[str], figure, unit: str,
          fmt: str) -> None:
    """Measure and print one table (``figure(key, workload)``), then the ratios."""
    print('\n%s: %s' % (kind.upper(), unit))
    print('%-20s' % 'app' + ''.join('%14s' % w for w in workloads))
    results: Dict[str, Dict[str, float]] = {}
    for name in apps:
        key = kind + ':' + name
        if key not in BUILDERS:
            continue
        row = results[name] = {}
        for workload in workloads:
            row[workload] = figure(key, workload)
        print('%-20s' % name + ''.join(fmt % row[w] for w in workloads), flush=True)
    ours = results.get(OURS[kind])
    ref = results.get(REFERENCE[kind])
    if ours and ref:
        print('%-20s' % (OURS[kind] + ' / ' + REFERENCE[kind]) +
              ''.join('%13.2fx' % (ours[w] / ref[w]) for w in workloads))
    if ours and 'hello' in ours and 'headers' in ours:
        print('%s: headers response / hello = %.2fx; user / hello = %s'
              % (OURS[kind], ours['headers'] / ours['hello'],
                 '%.2fx' % (ours['user'] / ours['hello']) if 'user' in ours else '-'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--only', choices=['asgi', 'wsgi'])
    parser.add_argument('--apps', nargs='*', help='frameworks (e.g. microdot-asgi falcon)')
    parser.add_argument('--workloads', nargs='*', choices=list(WORKLOADS))
    parser.add_argument('-n', type=int, default=20000, help='requests per repeat')
    parser.add_argument('--venvs', default='/tmp/microdot-bench-venvs')
    parser.add_argument('--instructions', action='store_true',
                        help='count CPU instructions per request with valgrind')
    args = parser.parse_args()
    venvs = Path(args.venvs)
    venvs.mkdir(parents=True, exist_ok=True)
    workloads = args.workloads or list(WORKLOADS)
    if args.instructions and not shutil.which('valgrind'):
        sys.exit('--instructions needs valgrind: apt-get install valgrind')
    for kind in ('asgi', 'wsgi'):
        if args.only and kind != args.only:
            continue
        apps = args.apps or [k.split(':')[1] for k in BUILDERS if k.startswith(kind + ':')]
        if args.instructions:
            table(kind, apps, workloads, lambda key, w: count(venvs, key, w),
                  'CPU instructions per request (callgrind)', '%14.0f')
        else:
            table(kind, apps, workloads, lambda key, w: measure(venvs, key, w, args.n),
                  'CPU µs per request (best of 5 x %d)' % args.n, '%14.2f')


if __name__ == '__main__':
    main()
