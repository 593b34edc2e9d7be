"""Hello-world load test: the built-in server against upstream Microdot and uvicorn.

Each server runs pinned to CPU 0 (``taskset``), wrk runs on CPU 1 with 50 keep-alive
connections, all on 127.0.0.1. Targets are measured in interleaved rounds (every
target once per round) and reported as the median requests/s, p99 latency and the
ratio to each baseline. Competitors live in their own virtualenvs, created on first
use under ``--venvs`` (upstream ``microdot`` from PyPI is installed there only, never
into the project).

    python benchmarks/bench_server.py                 # 3 rounds of 5 s
    python benchmarks/bench_server.py --rounds 5 --duration 10
    python benchmarks/bench_server.py --instructions  # needs valgrind

Also measures the memory of idle keep-alive connections on the built-in server.
``--instructions`` counts the server process's CPU instructions per request instead
(valgrind's callgrind; one keep-alive client sending requests one after the other; the
difference between 1,300 and 300 requests, so start-up and shutdown cancel out).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

from _common import ensure_venv, free_port, stop, wait_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

APPS = {
    'microdot-core': textwrap.dedent('''
        import sys
        from microdot import Microdot
        app = Microdot()

        @app.route('/')
        async def index(request):
            return 'Hello, World!'

        app.run(host='127.0.0.1', port=int(sys.argv[1]))
    '''),
    'upstream-microdot': textwrap.dedent('''
        import sys
        from microdot import Microdot
        app = Microdot()

        @app.route('/')
        async def index(request):
            return 'Hello, World!'

        app.run(host='127.0.0.1', port=int(sys.argv[1]))
    '''),
    'bare-asgi': textwrap.dedent('''
        async def app(scope, receive, send):
            if scope['type'] != 'http':
                return
            await send({'type': 'http.response.start', 'status': 200,
                        'headers': [(b'content-type', b'text/plain; charset=UTF-8'),
                                    (b'content-length', b'13')]})
            await send({'type': 'http.response.body', 'body': b'Hello, World!'})
    '''),
}

# name: (venv, packages, app, command template, environment)
TARGETS = {
    'microdot-core (asyncio)': ('ours', ['-e', str(ROOT / 'packages' / 'microdot-core')],
                                'microdot-core', '{py} {app} {port}',
                                {'MICRODOT_LOOP': 'asyncio'}),
    'microdot-core (uvloop)': ('ours', ['uvloop'], 'microdot-core', '{py} {app} {port}',
                               {'MICRODOT_LOOP': 'auto'}),
    'upstream microdot': ('upstream', ['microdot'], 'upstream-microdot', '{py} {app} {port}',
                          {}),
    'uvicorn + bare ASGI': ('uvicorn', ['uvicorn'], 'bare-asgi',
                            '{py} -m uvicorn --app-dir {dir} --port {port} --lifespan off '
                            '--log-level warning --no-access-log bare_asgi:app', {}),
    'uvicorn[standard] + bare ASGI': ('uvicorn-standard', ['uvicorn[standard]'], 'bare-asgi',
                                      '{py} -m uvicorn --app-dir {dir} --port {port} '
                                      '--lifespan off --log-level warning --no-access-log '
                                      'bare_asgi:app', {}),
}


def start(target: str, venvs: Path, workdir: Path):
    venv, packages, app, template, env = TARGETS[target]
    py = ensure_venv(venvs, venv, packages)
    app_file = workdir / (app.replace('-', '_') + '.py')
    app_file.write_text(APPS[app])
    port = free_port()
    cmd = template.format(py=py, app=app_file, port=port, dir=workdir).split()
    if shutil.which('taskset'):
        cmd = ['taskset', '-c', '0'] + cmd
    proc = subprocess.Popen(cmd, env=dict(os.environ, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    wait_port(port, proc)
    return proc, port


def wrk(port: int, duration: float, connections: int) -> tuple:
    cmd = ['wrk', '-t1', '-c%d' % connections, '-d%ds' % duration, '--latency',
           'http://127.0.0.1:%d/' % port]
    if shutil.which('taskset'):
        cmd = ['taskset', '-c', '1'] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    rps = float(re.search(r'Requests/sec:\s+([\d.]+)', out).group(1))
    p99 = re.search(r'99%\s+([\d.]+)(us|ms|s)', out)
    scale = {'us': 0.001, 'ms': 1.0, 's': 1000.0}[p99.group(2)]
    errors = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    sock_err = re.search(r'Socket errors: (.*)', out)
    return rps, float(p99.group(1)) * scale, (errors.group(1) if errors else '0'), \
        (sock_err.group(1) if sock_err else '')


def idle_connection_memory(venvs: Path, workdir: Path, count: int = 1000) -> float:
    """KiB of server RSS per idle keep-alive connection (after one request each)."""
    proc, port = start('microdot-core (asyncio)', venvs, workdir)
    socks = []
    try:
        def rss() -> int:
            for line in Path('/proc/%d/status' % child_pid(proc)).read_text().splitlines():
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


def served_instructions(target: str, venvs: Path, workdir: Path, requests: int) -> int:
    """CPU instructions the server of ``target`` runs, from start to exit, when one
    keep-alive client sends ``requests`` requests one after the other."""
    venv, packages, app, template, env = TARGETS[target]
    py = ensure_venv(venvs, venv, packages)
    app_file = workdir / (app.replace('-', '_') + '.py')
    app_file.write_text(APPS[app])
    port = free_port()
    cmd = ['valgrind', '--tool=callgrind', '--callgrind-out-file=/dev/null'] + \
        template.format(py=py, app=app_file, port=port, dir=workdir).split()
    proc = subprocess.Popen(cmd, env=dict(os.environ, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_port(port, proc, timeout=300)
        with socket.create_connection(('127.0.0.1', port), timeout=60) as s:
            for _ in range(requests):
                s.sendall(b'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
                data = b''
                while b'Hello, World!' not in data:
                    try:
                        chunk = s.recv(65536)
                    except ConnectionResetError:
                        chunk = b''
                    if not chunk:
                        raise RuntimeError('%s did not keep the connection alive' % target)
                    data += chunk
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=300)[0]
    finally:
        stop(proc)
    found = re.search(r'Collected : (\d+)', out)
    if not found:
        raise RuntimeError('no callgrind total for %s:\n%s' % (target, out[-2000:]))
    return int(found.group(1))


def child_pid(proc: subprocess.Popen) -> int:
    """The python process under ``taskset`` (taskset execs, so it is the same pid)."""
    return proc.pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--duration', type=int, default=5)
    parser.add_argument('--connections', type=int, default=50)
    parser.add_argument('--venvs', default='/tmp/microdot-bench-venvs')
    parser.add_argument('--targets', nargs='*')
    parser.add_argument('--instructions', action='store_true',
                        help='count CPU instructions per request with valgrind')
    args = parser.parse_args()
    if args.instructions:
        if not shutil.which('valgrind'):
            sys.exit('--instructions needs valgrind: apt-get install valgrind')
        venvs = Path(args.venvs)
        workdir = venvs / 'apps'
        workdir.mkdir(parents=True, exist_ok=True)
        print('CPU instructions per request in the server process (callgrind, one '
              'keep-alive client, requests one after the other)')
        # upstream Microdot's server does not keep this client's connection alive, and
        # the uvloop variant runs the same Python code
        for target in args.targets or ['microdot-core (asyncio)', 'uvicorn + bare ASGI',
                                       'uvicorn[standard] + bare ASGI']:
            few = served_instructions(target, venvs, workdir, 300)
            many = served_instructions(target, venvs, workdir, 1300)
            print('%-32s %10.0f' % (target, (many - few) / 1000), flush=True)
        return
    if not shutil.which('wrk'):
        sys.exit('wrk is needed: apt-get install wrk')
    venvs = Path(args.venvs)
    venvs.mkdir(parents=True, exist_ok=True)
    workdir = venvs / 'apps'
    workdir.mkdir(exist_ok=True)
    args.targets = args.targets or list(TARGETS)
    results = {t: [] for t in args.targets}
    for rnd in range(args.rounds):
        for target in args.targets:
            proc, port = start(target, venvs, workdir)
            try:
                wrk(port, 1, args.connections)  # warm-up
                rps, p99, non2xx, sockerr = wrk(port, args.duration, args.connections)
            finally:
                stop(proc)
            results[target].append((rps, p99))
            print('round %d  %-32s %9.0f req/s  p99 %7.2f ms  non-2xx %s %s'
                  % (rnd + 1, target, rps, p99, non2xx, sockerr), flush=True)
    med = {t: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v))
           for t, v in results.items()}
    print('\nwrk -t1 -c%d -d%ds, server pinned to CPU 0, wrk to CPU 1, median of %d '
          'interleaved rounds\n' % (args.connections, args.duration, args.rounds))
    bases = [b for b in ('upstream microdot', 'uvicorn + bare ASGI',
                         'uvicorn[standard] + bare ASGI') if b in med]
    print('%-32s %10s %9s  %s' % ('target', 'req/s', 'p99 ms',
                                  '  '.join('vs ' + b for b in bases)))
    for target, (rps, p99) in med.items():
        ratios = '  '.join('%*.2fx' % (len(b) + 2, rps / med[b][0]) for b in bases)
        print('%-32s %10.0f %9.2f  %s' % (target, rps, p99, ratios))
    kib = idle_connection_memory(venvs, workdir)
    print('\nidle keep-alive connection on the built-in server (asyncio): %.1f KiB RSS each '
          '(1000 connections)' % kib)


if __name__ == '__main__':
    main()
