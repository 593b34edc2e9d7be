"""Worker processes: the built-in server with ``--workers 2`` against one worker,
``uvicorn --workers 2`` and ``granian --workers 2``, at 50 and 500 connections.

Every target serves the same hello-world Microdot app (the built-in server directly,
uvicorn and Granian through ``microdot.asgi``) on 127.0.0.1. Nothing is pinned: wrk
(one thread, keep-alive connections) shares the machine's cores with the server, as a
load balancer or the other processes of a small host would. Each measurement starts a
fresh server, waits until it answers, warms it up, then runs wrk; targets are measured
in interleaved rounds (A B C D, A B C D, ...) and reported as the median requests/s, p50
and p99 latency, the peak memory of the whole server process tree during the run (RSS
summed over the processes, and PSS, which counts the pages forked workers share once),
the share of the connections the busiest worker holds half-way through a run (from
``ss``: how evenly the kernel spread them), and the requests/s ratio to one worker, to
uvicorn and to Granian. Access logging is off everywhere (``--no-access-log``).

``--targets reuseport-2`` adds the experiment issue #14 started from: two forked
processes, each with its own ``SO_REUSEPORT`` socket on the port and ``app.run(sock=)``,
without a supervisor. ``uvicorn-1`` and ``granian-1`` are one-worker references.

All targets live in one virtualenv under ``--venvs`` (created on first use):
microdot-core and microdot-asgi from this tree (editable), ``uvicorn[standard]`` and
``granian``. With uvloop installed there, every target uses it; ``--loop asyncio``
makes all of them use the standard loop instead.

    python benchmarks/bench_workers.py                        # 3 rounds of 5 s, ~5 min
    python benchmarks/bench_workers.py --rounds 5 --duration 10
    python benchmarks/bench_workers.py --targets builtin-1 builtin-2 --connections 50

Needs wrk (``apt-get install wrk``) and Linux (/proc for the process tree's memory).

The built-in server limits one client address to ``max_connections_per_client``
(250 of the default 1,000 connections), and wrk's 500 connections all come from
127.0.0.1: the benchmark app sets that limit's default to 0 (no limit), as a deployment
behind a proxy would.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

from _common import (ensure_venv, free_port, parse_wrk, process_tree, stop,  # noqa: E402
                     tree_memory_kib, wait_port, wrk_command)

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / 'packages'
VENV = 'workers'
PACKAGES = ['-e', str(PKG / 'microdot-core'), '-e', str(PKG / 'microdot-asgi'),
            'uvicorn[standard]', 'granian']

APPS = {
    # the built-in server, started by `microdot run bench_builtin:app`
    'bench_builtin': '''
        import microdot.server
        from microdot import Microdot

        # wrk's connections all come from 127.0.0.1: lift the per-address cap (as
        # behind a reverse proxy) so that 500 connections are not answered 503
        microdot.server.DEFAULTS['max_connections_per_client'] = 0

        app = Microdot()

        @app.route('/')
        async def index(request):
            return 'Hello, World!'
    ''',
    # the first experiment: N forked processes, each with its own listening
    # socket on the same port (SO_REUSEPORT) and app.run(sock=...); no supervision
    'bench_reuseport': '''
        import os
        import signal
        import socket
        import sys

        from bench_builtin import app

        port, count = int(sys.argv[1]), int(sys.argv[2])
        children = []
        for _ in range(count):
            pid = os.fork()
            if pid == 0:
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind(('127.0.0.1', port))
                sock.listen(1024)
                app.run(sock=sock)
                os._exit(0)
            children.append(pid)

        def forward(signum, frame):
            for child in children:
                os.kill(child, signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for child in children:
            os.waitpid(child, 0)
    ''',
    # the same app as an ASGI callable, for uvicorn and Granian
    'bench_asgi': '''
        from microdot.asgi import Microdot

        app = Microdot()

        @app.route('/')
        async def index(request):
            return 'Hello, World!'
    ''',
}

# name: (label, app module, worker processes, command template); {bin} is the venv's
# bin directory, {extra} the options found at run time (see builtin_extra_options)
TARGETS = {
    'builtin-1': ('built-in, 1 worker', 'bench_builtin', 1,
                  '{bin}/python -m microdot run bench_builtin:app --host 127.0.0.1 '
                  '--port {port}{extra}'),
    'builtin-2': ('built-in --workers 2', 'bench_builtin', 2,
                  '{bin}/python -m microdot run bench_builtin:app --host 127.0.0.1 '
                  '--port {port} --workers 2{extra}'),
    'uvicorn-2': ('uvicorn --workers 2', 'bench_asgi', 2,
                  '{bin}/python -m uvicorn --app-dir {dir} --host 127.0.0.1 --port {port} '
                  '--workers 2 --loop {loop} --log-level warning --no-access-log '
                  'bench_asgi:app'),
    'granian-2': ('granian --workers 2', 'bench_asgi', 2,
                  '{bin}/granian --interface asgi --working-dir {dir} --host 127.0.0.1 '
                  '--port {port} --workers 2 --loop {loop} --log-level warning '
                  '--no-access-log bench_asgi:app'),
    # references, not run unless asked for with --targets
    'reuseport-2': ('2 x app.run(), SO_REUSEPORT', 'bench_reuseport', 2,
                    '{bin}/python bench_reuseport.py {port} 2'),
    'uvicorn-1': ('uvicorn, 1 worker', 'bench_asgi', 1,
                  '{bin}/python -m uvicorn --app-dir {dir} --host 127.0.0.1 --port {port} '
                  '--loop {loop} --log-level warning --no-access-log bench_asgi:app'),
    'granian-1': ('granian, 1 worker', 'bench_asgi', 1,
                  '{bin}/granian --interface asgi --working-dir {dir} --host 127.0.0.1 '
                  '--port {port} --workers 1 --loop {loop} --log-level warning '
                  '--no-access-log bench_asgi:app'),
}
DEFAULT_TARGETS = ['builtin-1', 'builtin-2', 'uvicorn-2', 'granian-2']
BASELINES = [('builtin-1', 'vs 1 worker'), ('uvicorn-2', 'vs uvicorn'),
             ('granian-2', 'vs granian')]


def builtin_extra_options(bindir: Path) -> str:
    """``--no-access-log`` when ``microdot run`` has it (the access log is off by
    default anyway), so that every target runs without one."""
    out = subprocess.run([str(bindir / 'python'), '-m', 'microdot', 'run', '--help'],
                         capture_output=True, text=True, timeout=60).stdout
    return ' --no-access-log' if '--no-access-log' in out else ''


def wait_ready(port: int, proc: subprocess.Popen, workers: int, timeout: float = 60) -> None:
    """Block until ``proc`` answers ``GET /`` with 200 and its process tree holds at
    least ``workers`` processes besides a supervising parent (when ``workers`` > 1)."""
    wait_port(port, proc, timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError('server exited early (status %s)' % proc.returncode)
        try:
            with urllib.request.urlopen('http://127.0.0.1:%d/' % port, timeout=2) as resp:
                ok = resp.status == 200
        except OSError:
            ok = False
        if ok and (workers == 1 or len(process_tree(proc.pid)) > workers):
            return
        time.sleep(0.1)
    stop(proc)
    raise RuntimeError('server on port %d not ready within %d s' % (port, timeout))


def connection_split(port: int) -> List[int]:
    """How many established connections each server process holds on ``port``
    (from ``ss``), largest first; empty when ``ss`` is missing."""
    try:
        out = subprocess.run(['ss', '-Htnp', 'state', 'established',
                              '( sport = :%d )' % port], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    per_pid: Dict[str, int] = {}
    for line in out.splitlines():
        for pid in set(re.findall(r'pid=(\d+)', line)):
            per_pid[pid] = per_pid.get(pid, 0) + 1
    return sorted(per_pid.values(), reverse=True)


def measure(target: str, bindir: Path, workdir: Path, loop: str, extra: str,
            duration: int, warmup: int, connections: int, wrk_threads: int) -> Dict:
    """Start ``target``, warm it up, load it with wrk; the wrk figures plus the peak
    RSS and PSS (KiB) of its process tree, sampled every 0.5 s during the run."""
    label, module, workers, template = TARGETS[target]
    port = free_port()
    cmd = template.format(bin=bindir, dir=workdir, port=port, loop=loop,
                          extra=extra if module == 'bench_builtin' else '').split()
    if module == 'bench_reuseport':
        cmd = [cmd[0], str(workdir / cmd[1])] + cmd[2:]
    env = dict(os.environ, MICRODOT_LOOP='asyncio' if loop == 'asyncio' else 'auto')
    env.pop('PYTHONPATH', None)
    log = open(workdir / ('%s.log' % target), 'a')
    proc = subprocess.Popen(cmd, cwd=str(workdir), env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(port, proc, workers)
        if warmup:
            subprocess.run(wrk_command(port, warmup, connections, wrk_threads),
                           capture_output=True, timeout=warmup + 30)
        run = subprocess.Popen(wrk_command(port, duration, connections, wrk_threads),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        peak_rss = peak_pss = 0
        split: List[int] = []
        started = time.monotonic()
        deadline = started + duration + 30
        while run.poll() is None and time.monotonic() < deadline:
            rss, pss = tree_memory_kib(proc.pid)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            if not split and time.monotonic() - started >= duration / 2:
                split = connection_split(port)
            time.sleep(0.5)
        out = run.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
        result = parse_wrk(out)
        result.update(rss=peak_rss, pss=peak_pss, processes=len(process_tree(proc.pid)),
                      split=split,
                      busiest=100.0 * split[0] / sum(split) if split else float('nan'))
        if proc.poll() is not None:
            raise RuntimeError('%s exited during the run (status %s)'
                               % (label, proc.returncode))
        return result
    finally:
        stop(proc)
        log.close()


def versions(bindir: Path) -> str:
    """One line with the versions of what the targets run on."""
    code = textwrap.dedent('''
        import sys
        from importlib.metadata import version
        names = ['microdot-core', 'microdot-asgi', 'uvicorn', 'granian', 'uvloop',
                 'httptools']
        found = []
        for name in names:
            try:
                found.append('%s %s' % (name, version(name)))
            except Exception:
                pass
        print('Python %s; %s' % (sys.version.split()[0], ', '.join(found)))
    ''')
    line = subprocess.run([str(bindir / 'python'), '-c', code], capture_output=True,
                          text=True, timeout=60).stdout.strip()
    wrk = subprocess.run(['wrk', '-v'], capture_output=True, text=True).stdout.split('\n')[0]
    return '%s; %s; %s, %d CPUs' % (line, wrk.split(' [')[0].strip(), platform.platform(),
                                    os.cpu_count() or 0)


def report(results: Dict[int, Dict[str, List[Dict]]], targets: List[str]) -> None:
    """Print one table per connection count: medians over the rounds and ratios."""
    for connections, per_target in results.items():
        med = {}
        for target in targets:
            runs = per_target.get(target) or []
            if not runs:
                continue
            med[target] = {key: statistics.median(r[key] for r in runs)
                           for key in ('rps', 'p50', 'p99', 'rss', 'pss', 'busiest')}
            med[target]['errors'] = sum(r['non2xx'] for r in runs)
            med[target]['socket_errors'] = '; '.join(sorted({r['socket_errors'] for r in runs
                                                              if r['socket_errors']}))
        bases = [(b, name) for b, name in BASELINES if b in med]
        print('\n%d connections\n' % connections)
        print('| target | req/s | p50 ms | p99 ms | RSS MB (sum) | PSS MB | busiest worker '
              '| %s |' % ' | '.join(name for _, name in bases))
        print('|---|---:|---:|---:|---:|---:|---:|%s' % ''.join('---:|' for _ in bases))
        for target, m in med.items():
            ratios = ' | '.join('%.2fx' % (m['rps'] / med[b]['rps']) for b, _ in bases)
            busiest = '%.0f %%' % m['busiest'] if TARGETS[target][2] > 1 else '-'
            print('| %s | %.0f | %.2f | %.2f | %.1f | %.1f | %s | %s |'
                  % (TARGETS[target][0], m['rps'], m['p50'], m['p99'], m['rss'] / 1024,
                     m['pss'] / 1024, busiest, ratios))
        for target, m in med.items():
            if m['errors'] or m['socket_errors']:
                print('  %s: %d non-2xx answers; socket errors: %s'
                      % (TARGETS[target][0], m['errors'], m['socket_errors'] or 'none'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=3, help='interleaved rounds (3)')
    parser.add_argument('--duration', type=int, default=5, help='seconds per wrk run (5)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='seconds of load before each measured run (2)')
    parser.add_argument('--connections', type=int, nargs='+', default=[50, 500],
                        help='keep-alive connections (50 500)')
    parser.add_argument('--wrk-threads', type=int, default=1, help='wrk threads (1)')
    parser.add_argument('--loop', choices=['uvloop', 'asyncio'], default='uvloop',
                        help='event loop of every target (uvloop)')
    parser.add_argument('--targets', nargs='+', choices=list(TARGETS),
                        default=DEFAULT_TARGETS)
    parser.add_argument('--venvs', default='/tmp/microdot-bench-venvs')
    args = parser.parse_args()
    if subprocess.run(['sh', '-c', 'command -v wrk'], capture_output=True).returncode:
        sys.exit('wrk is needed: apt-get install wrk')
    if not Path('/proc/self/smaps_rollup').exists():
        sys.exit('this benchmark reads /proc (Linux 4.14 or later)')
    venvs = Path(args.venvs)
    venvs.mkdir(parents=True, exist_ok=True)
    bindir = ensure_venv(venvs, VENV, PACKAGES).parent
    workdir = venvs / 'apps-workers'
    workdir.mkdir(exist_ok=True)
    for name, code in APPS.items():
        (workdir / (name + '.py')).write_text(textwrap.dedent(code))
    extra = builtin_extra_options(bindir)
    print(versions(bindir))
    print('%d interleaved rounds; wrk -t%d -d%ds after a %d s warm-up, %s keep-alive '
          'connections, on 127.0.0.1; nothing pinned (wrk shares the cores with the '
          'server); event loop: %s; a fresh server for each run'
          % (args.rounds, args.wrk_threads, args.duration, args.warmup,
             ' and '.join(map(str, args.connections)), args.loop), flush=True)
    print('load average before: %s' % ' '.join('%.2f' % x for x in os.getloadavg()),
          flush=True)
    targets = list(args.targets)
    failed: Dict[str, str] = {}
    results: Dict[int, Dict[str, List[Dict]]] = {c: {} for c in args.connections}
    for rnd in range(args.rounds):
        for connections in args.connections:
            for target in targets:
                if target in failed:
                    continue
                try:
                    r = measure(target, bindir, workdir, args.loop, extra, args.duration,
                                args.warmup, connections, args.wrk_threads)
                except Exception as exc:  # report the others; say why this one is missing
                    failed[target] = str(exc).strip().splitlines()[-1] if str(exc) else \
                        type(exc).__name__
                    print('%s: not measured: %s (log: %s)'
                          % (TARGETS[target][0], failed[target],
                             workdir / ('%s.log' % target)), flush=True)
                    continue
                results[connections].setdefault(target, []).append(r)
                print('round %d  c=%-4d %-29s %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  '
                      'RSS %6.1f MB  PSS %6.1f MB  %d processes, connections %s%s'
                      % (rnd + 1, connections, TARGETS[target][0], r['rps'], r['p50'],
                         r['p99'], r['rss'] / 1024, r['pss'] / 1024, r['processes'],
                         '+'.join(map(str, r['split'])) or '?',
                         ('  non-2xx %d' % r['non2xx'] if r['non2xx'] else '')
                         + ('  socket errors: ' + r['socket_errors']
                            if r['socket_errors'] else '')),
                      flush=True)
    print('\nmedian of %d rounds (req/s, latency, memory: each the median of its own); '
          'busiest worker: its share of the connections half-way through a run; load '
          'average now %s' % (args.rounds, ' '.join('%.2f' % x for x in os.getloadavg())))
    report(results, targets)


if __name__ == '__main__':
    main()
