"""Load test of the built-in server against other Python servers and frameworks.

Workloads: ``hello`` (``GET /`` answered ``Hello, World!``), ``json`` (``GET /json``
answered ``{"message": "Hello, World!"}``) and ``user`` (``GET /user/alice``, a path
parameter, answered ``Hello, alice!``). Targets:

- the built-in server on uvloop and on the standard asyncio loop;
- Granian and uvicorn[standard] each serving a bare ASGI callable (the floor: no
  framework) and this project's application through ``microdot.asgi``;
- Sanic on its own server, BlackSheep under uvicorn[standard];
- upstream Microdot's own server (``--targets 'upstream microdot'``: it closes every
  connection after one request, so it is not in the default set).

Each server runs pinned to CPU 0 (``taskset``), wrk runs on CPU 1 with 50 keep-alive
connections, all on 127.0.0.1; access logs are off. Targets are measured in
interleaved rounds (every target once per round, each workload in turn on a fresh
server) and reported as the median requests/s and p99 latency, with the ratios
between targets computed within the run. Every target lives in one virtualenv
(``server``, created on first use under ``--venvs``): microdot-core[speed] (uvloop,
orjson) and microdot-asgi from this tree, granian, uvicorn[standard], sanic and
blacksheep; upstream ``microdot`` gets its own.

    python benchmarks/bench_server.py                 # 3 rounds of 5 s, ~10 min
    python benchmarks/bench_server.py --rounds 5 --duration 10
    python benchmarks/bench_server.py --targets 'builtin (uvloop)' 'granian + bare ASGI'
    python benchmarks/bench_server.py --instructions  # needs valgrind

``--instructions`` counts the CPU instructions per request of the server's processes
instead (valgrind's callgrind): one keep-alive client sends the requests one after the
other; after 200 warm-up requests the counters are zeroed, 1,000 requests are sent and
the counters dumped (``callgrind_control``), so start-up and shutdown are not counted;
a fixed hash seed makes the counts the same from run to run.

Also measures the memory of idle keep-alive connections on the built-in server.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Dict, List, Tuple

from _common import (ensure_venv, free_port, parse_wrk, process_tree, stop,  # noqa: E402
                     wait_port, wrk_command)

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / 'packages'

VENVS = {
    'server': ['-e', str(PKG / 'microdot-core') + '[speed]', '-e', str(PKG / 'microdot-asgi'),
               'granian', 'uvicorn[standard]', 'sanic', 'blacksheep'],
    'upstream': ['microdot'],
}

#: workload -> (path, the body the answer must end with)
WORKLOADS = {
    'hello': ('/', b'Hello, World!'),
    'json': ('/json', b'"Hello, World!"}'),
    'user': ('/user/alice', b'Hello, alice!'),
}

_MICRODOT_ROUTES = '''
    @app.route('/')
    async def index(request):
        return 'Hello, World!'

    @app.route('/json')
    async def as_json(request):
        return {'message': 'Hello, World!'}

    @app.route('/user/<name>')
    async def user(request, name):
        return 'Hello, %s!' % name
'''

APPS = {
    'bench_builtin': '''
    import sys
    from microdot import Microdot
    app = Microdot()
    ''' + _MICRODOT_ROUTES + '''
    app.run(host='127.0.0.1', port=int(sys.argv[1]))
    ''',
    'bench_upstream': '''
    import sys
    from microdot import Microdot
    app = Microdot()
    ''' + _MICRODOT_ROUTES + '''
    app.run(host='127.0.0.1', port=int(sys.argv[1]))
    ''',
    'bench_ours_asgi': '''
    from microdot.asgi import Microdot
    app = Microdot()
    ''' + _MICRODOT_ROUTES,
    'bench_bare_asgi': '''
        import json

        async def app(scope, receive, send):
            if scope['type'] != 'http':
                return
            path = scope['path']
            ctype = b'text/plain; charset=utf-8'
            if path == '/json':
                body = json.dumps({'message': 'Hello, World!'}).encode()
                ctype = b'application/json'
            elif path.startswith('/user/'):
                body = ('Hello, %s!' % path[6:]).encode()
            else:
                body = b'Hello, World!'
            await send({'type': 'http.response.start', 'status': 200,
                        'headers': [(b'content-type', ctype),
                                    (b'content-length', b'%d' % len(body))]})
            await send({'type': 'http.response.body', 'body': body})
    ''',
    'bench_sanic': '''
        import sys
        from sanic import Sanic
        from sanic.response import json, text
        app = Sanic('bench')

        @app.get('/')
        async def index(request):
            return text('Hello, World!')

        @app.get('/json')
        async def as_json(request):
            return json({'message': 'Hello, World!'})

        @app.get('/user/<name>')
        async def user(request, name):
            return text('Hello, %s!' % name)

        if __name__ == '__main__':
            app.run(host='127.0.0.1', port=int(sys.argv[1]), single_process=True,
                    access_log=False, debug=False, motd=False)
    ''',
    'bench_blacksheep': '''
        from blacksheep import Application, json, text
        app = Application()

        @app.router.get('/')
        async def index():
            return text('Hello, World!')

        @app.router.get('/json')
        async def as_json():
            return json({'message': 'Hello, World!'})

        @app.router.get('/user/{name}')
        async def user(name: str):
            return text('Hello, %s!' % name)
    ''',
}

_GRANIAN = ('{py} -m granian --interface asgi --host 127.0.0.1 --port {port} --workers 1 '
            '--runtime-threads 1 --loop uvloop --no-ws --log-level warning '
            '--no-access-log --working-dir {dir} {module}:app')
_UVICORN = ('{py} -m uvicorn --app-dir {dir} --host 127.0.0.1 --port {port} --lifespan off '
            '--log-level warning --no-access-log {module}:app')

# name: (venv, app module, command template, environment)
TARGETS = {
    'builtin (uvloop)': ('server', 'bench_builtin', '{py} {app} {port}',
                         {'MICRODOT_LOOP': 'auto'}),
    'builtin (asyncio)': ('server', 'bench_builtin', '{py} {app} {port}',
                          {'MICRODOT_LOOP': 'asyncio'}),
    'granian + bare ASGI': ('server', 'bench_bare_asgi', _GRANIAN, {}),
    'granian + microdot.asgi': ('server', 'bench_ours_asgi', _GRANIAN, {}),
    'uvicorn[standard] + bare ASGI': ('server', 'bench_bare_asgi', _UVICORN, {}),
    'uvicorn[standard] + microdot.asgi': ('server', 'bench_ours_asgi', _UVICORN, {}),
    'sanic': ('server', 'bench_sanic', '{py} {app} {port}', {}),
    'uvicorn[standard] + blacksheep': ('server', 'bench_blacksheep', _UVICORN, {}),
    'upstream microdot': ('upstream', 'bench_upstream', '{py} {app} {port}', {}),
}
DEFAULT_TARGETS = [t for t in TARGETS if t != 'upstream microdot']
#: the references every target is compared with
BASES = ['granian + bare ASGI', 'uvicorn[standard] + bare ASGI',
         'granian + microdot.asgi', 'uvicorn[standard] + microdot.asgi']


def command(target: str, venvs: Path, workdir: Path, port: int) -> List[str]:
    venv, module, template, _ = TARGETS[target]
    py = ensure_venv(venvs, venv, VENVS[venv])
    app_file = workdir / (module + '.py')
    app_file.write_text(textwrap.dedent(APPS[module]))
    return template.format(py=py, app=app_file, port=port, dir=workdir,
                           module=module).split()


def start(target: str, venvs: Path, workdir: Path, pin: bool = True):
    port = free_port()
    cmd = command(target, venvs, workdir, port)
    if pin and shutil.which('taskset'):
        cmd = ['taskset', '-c', '0'] + cmd
    proc = subprocess.Popen(cmd, env=dict(os.environ, **TARGETS[target][3]),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    wait_port(port, proc)
    return proc, port


def wrk(port: int, duration: float, connections: int, path: str) -> Dict[str, object]:
    cmd = wrk_command(port, duration, connections, cpus='1', path=path)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    return parse_wrk(out)


def check_answer(port: int, workload: str) -> None:
    """Fail loudly if a target does not answer a workload as expected."""
    path, expect = WORKLOADS[workload]
    with socket.create_connection(('127.0.0.1', port), timeout=10) as s:
        s.sendall(b'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' % path.encode())
        status, body = read_response(s)
    if status != 200 or not body.endswith(expect):
        raise RuntimeError('unexpected answer to %s: %d %r' % (path, status, body[:200]))


def read_response(s: socket.socket) -> Tuple[int, bytes]:
    """One response with a Content-Length from a keep-alive connection."""
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError('connection closed before the response head')
        data += chunk
    head, _, body = data.partition(b'\r\n\r\n')
    found = re.search(rb'(?im)^content-length:\s*(\d+)', head)
    if not found:
        raise RuntimeError('no Content-Length in %r' % head)
    length = int(found.group(1))
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError('connection closed in the response body')
        body += chunk
    return int(head.split(b' ', 2)[1]), body


def idle_connection_memory(venvs: Path, workdir: Path, count: int = 1000) -> float:
    """KiB of server RSS per idle keep-alive connection (after one request each)."""
    proc, port = start('builtin (asyncio)', venvs, workdir)
    socks = []
    try:
        def rss() -> int:
            for line in Path('/proc/%d/status' % proc.pid).read_text().splitlines():
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
            return 0
        before = rss()
        for _ in range(count):
            s = socket.create_connection(('127.0.0.1', port))
            s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
            socks.append(s)
        for s in socks:
            s.recv(4096)
        after = rss()
        return (after - before) / count
    finally:
        for s in socks:
            s.close()
        stop(proc)


def _callgrind(pids: List[int], what: str) -> None:
    for pid in pids:
        subprocess.run(['callgrind_control', what, str(pid)], capture_output=True,
                       timeout=120)


def served_instructions(target: str, venvs: Path, workdir: Path,
                        workloads: List[str], requests: int = 1000) -> Dict[str, float]:
    """CPU instructions per request the processes of ``target`` run for each workload,
    one keep-alive client sending ``requests`` requests one after the other."""
    port = free_port()
    out_dir = workdir / ('callgrind-%d' % port)
    out_dir.mkdir()
    cmd = ['valgrind', '--tool=callgrind', '--trace-children=yes',
           '--callgrind-out-file=%s/cg.%%p' % out_dir] + command(target, venvs, workdir, port)
    # one hash seed: dict and set layouts, so the counts, are the same from run to run
    env = dict(os.environ, PYTHONHASHSEED='0', **TARGETS[target][3])
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    results: Dict[str, float] = {}
    try:
        wait_port(port, proc, timeout=600)
        with socket.create_connection(('127.0.0.1', port), timeout=120) as s:
            for workload in workloads:
                path, expect = WORKLOADS[workload]
                request = b'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' % path.encode()
                for _ in range(200):
                    s.sendall(request)
                    read_response(s)
                pids = process_tree(proc.pid)
                before = set(out_dir.iterdir())
                _callgrind(pids, '-z')
                for _ in range(requests):
                    s.sendall(request)
                    status, body = read_response(s)
                    if status != 200 or not body.endswith(expect):
                        raise RuntimeError('%s: unexpected answer %d %r'
                                           % (target, status, body[:200]))
                _callgrind(pids, '-d')
                total = 0
                deadline = time.monotonic() + 60
                dumps: List[Path] = []
                while time.monotonic() < deadline:
                    dumps = [p for p in set(out_dir.iterdir()) - before
                             if re.search(r'\.\d+$', p.name)]
                    if dumps:
                        break
                    time.sleep(0.2)
                time.sleep(0.5)  # let every process finish writing its dump
                for dump in set(out_dir.iterdir()) - before:
                    found = re.search(r'^totals: (\d+)', dump.read_text(errors='replace'),
                                      re.M)
                    if found:
                        total += int(found.group(1))
                if not total:
                    raise RuntimeError('no callgrind dump for %s' % target)
                results[workload] = total / requests
    finally:
        stop(proc)
        shutil.rmtree(out_dir, ignore_errors=True)
    return results


def print_table(title: str, figures: Dict[str, Dict[str, float]], workloads: List[str],
                fmt: str) -> None:
    print('\n' + title)
    print('%-36s' % 'target' + ''.join('%12s' % w for w in workloads) + '  user/hello')
    for target, row in figures.items():
        line = '%-36s' % target + ''.join(fmt % row[w] if w in row else '%12s' % '-'
                                          for w in workloads)
        if 'user' in row and 'hello' in row:
            line += '  %9.2fx' % (row['user'] / row['hello'])
        print(line)


def print_ratios(figures: Dict[str, Dict[str, float]], workloads: List[str],
                 inverse: bool = False) -> None:
    """Each built-in server target against each base, per workload."""
    for base in [b for b in BASES if b in figures]:
        for target in [t for t in figures if t.startswith('builtin')]:
            ratios = []
            for w in workloads:
                if w in figures[target] and w in figures[base]:
                    r = figures[target][w] / figures[base][w]
                    ratios.append('%s %.2fx' % (w, 1 / r if inverse else r))
            print('%-20s vs %-34s %s' % (target, base, '  '.join(ratios)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--duration', type=int, default=5)
    parser.add_argument('--connections', type=int, default=50)
    parser.add_argument('--venvs', default='/tmp/microdot-bench-venvs')
    parser.add_argument('--targets', nargs='*', choices=list(TARGETS))
    parser.add_argument('--workloads', nargs='*', choices=list(WORKLOADS))
    parser.add_argument('--instructions', action='store_true',
                        help='count CPU instructions per request with valgrind')
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the idle keep-alive connection memory measurement')
    args = parser.parse_args()
    venvs = Path(args.venvs)
    workdir = venvs / 'apps-server'
    workdir.mkdir(parents=True, exist_ok=True)
    targets = args.targets or DEFAULT_TARGETS
    workloads = args.workloads or list(WORKLOADS)
    if args.instructions:
        if not shutil.which('valgrind') or not shutil.which('callgrind_control'):
            sys.exit('--instructions needs valgrind: apt-get install valgrind')
        counts: Dict[str, Dict[str, float]] = {}
        for target in targets:
            counts[target] = served_instructions(target, venvs, workdir, workloads)
            print('%-36s %s' % (target, '  '.join('%s %.0f' % item
                                                  for item in counts[target].items())),
                  flush=True)
        print_table('CPU instructions per request in the server processes (callgrind, one '
                    'keep-alive client, 1,000 requests after 200 of warm-up)',
                    counts, workloads, '%12.0f')
        print('\nratios of instructions per request (below 1: fewer than the base)')
        print_ratios(counts, workloads)
        return
    if not shutil.which('wrk'):
        sys.exit('wrk is needed: apt-get install wrk')
    results: Dict[str, Dict[str, List[Tuple[float, float]]]] = {
        t: {w: [] for w in workloads} for t in targets}
    for rnd in range(args.rounds):
        for target in targets:
            for workload in workloads:
                proc, port = start(target, venvs, workdir)
                try:
                    check_answer(port, workload)
                    path = WORKLOADS[workload][0]
                    wrk(port, 1, args.connections, path)  # warm-up
                    got = wrk(port, args.duration, args.connections, path)
                finally:
                    stop(proc)
                results[target][workload].append((got['rps'], got['p99']))
                print('round %d  %-36s %-6s %9.0f req/s  p99 %7.2f ms  non-2xx %s %s'
                      % (rnd + 1, target, workload, got['rps'], got['p99'], got['non2xx'],
                         got['socket_errors']), flush=True)
    rps = {t: {w: statistics.median(r[0] for r in v) for w, v in per.items()}
           for t, per in results.items()}
    p99 = {t: {w: statistics.median(r[1] for r in v) for w, v in per.items()}
           for t, per in results.items()}
    print_table('requests/s: wrk -t1 -c%d -d%ds, server pinned to CPU 0, wrk to CPU 1, '
                'median of %d interleaved rounds' % (args.connections, args.duration,
                                                     args.rounds), rps, workloads, '%12.0f')
    print_table('p99 latency (ms)', p99, workloads, '%12.2f')
    print('\nrequests/s ratios')
    print_ratios(rps, workloads)
    if not args.no_memory:
        kib = idle_connection_memory(venvs, workdir)
        print('\nidle keep-alive connection on the built-in server (asyncio): %.1f KiB RSS '
              'each (1000 connections)' % kib)


if __name__ == '__main__':
    main()
