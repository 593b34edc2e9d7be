"""Hostile clients against the built-in server (issue #13): can one client lock others out?

The server runs as a subprocess on 127.0.0.1 (max_connections=1000). One attacking
client, bound to 127.0.0.1, goes through three phases; in each, while it holds its
sockets, a fresh client bound to 127.0.0.2 sends ``GET /`` about once a second, and the
server's RSS is sampled:

1. 1,000 sockets ask for an endless stream and never read;
2. 1,000 sockets send a body a byte every 12 s (Content-Length 10,000);
3. 2,000 keep-alive connections, each after one request, sit idle.

Printed per phase: what the attacker's sockets got when the phase ended (an answer, a
503, a 408, a close or reset, nothing yet), the fresh client's statuses, worst latency
and first 200, the most connections the server held for the attacker and how many it
still held at the end (from the fresh client's ``GET /stats``), and the server's peak
RSS against its idle RSS.

    python benchmarks/bench_hostile.py                   # defaults, then per-client cap off
    python benchmarks/bench_hostile.py --config defaults
    python benchmarks/bench_hostile.py --hold 10         # shorter phases (deadlines 5 s)

Needs nothing beyond the project; raises its own open-file limit (the server inherits it).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import select
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import free_port, stop, wait_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

APP = textwrap.dedent('''
    import json, sys
    from microdot import Microdot
    app = Microdot()

    @app.route('/')
    async def index(request):
        return 'Hello, World!'

    @app.route('/stats')
    async def stats(request):
        return str(len(app.server.connections))  # connections the server counts

    @app.route('/stream')
    async def stream(request):
        async def frames():
            while True:
                yield b'x' * 16384
        return frames()

    @app.route('/upload', methods=['POST'])
    async def upload(request):
        return str(len(await request.stream.read()))

    app.run(host='127.0.0.1', port=int(sys.argv[1]), **json.loads(sys.argv[2]))
''')

ATTACKER = '127.0.0.1'
FRESH = '127.0.0.2'


def rss_mb(pid: int) -> float:
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return 0.0


def probe(port: int, path: str = '/') -> tuple:
    """A fresh client's GET from 127.0.0.2: (status or error, seconds, body)."""
    start = time.monotonic()
    try:
        s = socket.socket()
        s.settimeout(5)
        s.bind((FRESH, 0))
        s.connect(('127.0.0.1', port))
        s.sendall(b'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
                  % path.encode())
        data = b''
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        status = int(data.split(b' ', 2)[1]) if data.startswith(b'HTTP/1.1 ') else 'empty'
    except OSError as exc:
        status, data = type(exc).__name__, b''
    return status, time.monotonic() - start, data.partition(b'\r\n\r\n')[2]


def open_sockets(port: int, count: int, request: bytes, rcvbuf: int = 0) -> list:
    socks = []
    for _ in range(count):
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind((ATTACKER, 0))
        try:
            s.connect(('127.0.0.1', port))
            s.sendall(request)
        except OSError:
            pass
        socks.append(s)
    return socks


def classify(socks: list) -> dict:
    """How the server treated each attacking socket so far (peeking, never reading
    the stream itself): answered, refused with 503, 408, cut (closed/reset), waiting."""
    counts = {'answered': 0, '503': 0, '408': 0, 'cut': 0, 'waiting': 0}
    poller = select.poll()
    for s in socks:
        poller.register(s, select.POLLIN | select.POLLRDHUP)
    hung = {fd for fd, ev in poller.poll(0) if ev & (select.POLLRDHUP | select.POLLHUP
                                                     | select.POLLERR)}
    for s in socks:
        try:
            head = s.recv(12, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            head = None
        except OSError:
            counts['cut'] += 1
            continue
        if head and head.startswith(b'HTTP/1.1 503'):
            counts['503'] += 1
        elif head and head.startswith(b'HTTP/1.1 408'):
            counts['408'] += 1
        elif s.fileno() in hung:
            counts['cut'] += 1
        elif head:
            counts['answered'] += 1
        else:
            counts['waiting'] += 1
    return counts


def hold(port: int, pid: int, seconds: float, trickle: list = None) -> dict:
    """Probe once a second for ``seconds`` (sending a byte to each ``trickle`` socket
    every 12 s); worst latency, statuses seen, peak RSS."""
    end = time.monotonic() + seconds
    next_probe = time.monotonic() + 0.5
    next_trickle = time.monotonic() + 12
    worst, statuses, peak, first_ok, most, last = 0.0, {}, 0.0, None, 0, None
    start = time.monotonic()
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_probe:
            status, took, body = probe(port, '/stats')
            statuses[status] = statuses.get(status, 0) + 1
            worst = max(worst, took)
            if status == 200:
                last = int(body) - 1  # less the probe's own connection
                most = max(most, last)
                if first_ok is None:
                    first_ok = now - start
            next_probe = now + 1.0
        if trickle and now >= next_trickle:
            for s in trickle:
                try:
                    s.send(b'x', socket.MSG_DONTWAIT)
                except OSError:
                    pass
            next_trickle = now + 12
        peak = max(peak, rss_mb(pid))
        time.sleep(0.1)
    return {'worst': worst, 'statuses': statuses, 'peak': peak, 'first_ok': first_ok,
            'most': most, 'last': last}


def run_config(name: str, options: dict, hold_s: float, workdir: Path) -> list:
    port = free_port()
    app = workdir / 'hostile_app.py'
    app.write_text(APP)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.Popen([sys.executable, str(app), str(port), json.dumps(options)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    rows = []
    try:
        wait_port(port, proc)
        for _ in range(20):
            probe(port)
        time.sleep(1)
        idle = rss_mb(proc.pid)
        phases = [
            ('1,000 never-reading', 1000,
             b'GET /stream HTTP/1.1\r\nHost: x\r\n\r\n', 4096, False),
            ('1,000 slow bodies', 1000,
             b'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\nx', 0, True),
            ('2,000 idle keep-alive', 2000, b'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 0, False),
        ]
        for label, count, request, rcvbuf, trickles in phases:
            t0 = time.monotonic()
            socks = open_sockets(port, count, request, rcvbuf)
            opened = time.monotonic() - t0
            keep_alive = label.endswith('keep-alive')
            seconds = min(hold_s, 4.0) if keep_alive else hold_s
            result = hold(port, proc.pid, seconds, socks if trickles else None)
            counts = classify(socks)
            for s in socks:
                s.close()
            rows.append((name, label, opened, counts, result, idle))
            time.sleep(3)  # let the server let go of the closed sockets
    finally:
        stop(proc)
        out = proc.stdout.read() if proc.stdout else ''
    warnings = [line for line in out.splitlines() if 'WARNING' in line or 'Refused' in line]
    return rows, len(warnings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', choices=['defaults', 'no-per-client', 'both'],
                        default='both')
    parser.add_argument('--hold', type=float, default=None,
                        help='seconds each phase lasts (default: write/body deadline + 8)')
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    configs = []
    if args.config in ('defaults', 'both'):
        configs.append(('defaults', {}, args.hold or 38.0))
    if args.config in ('no-per-client', 'both'):
        configs.append(('no per-client cap, deadlines 5 s',
                        {'max_connections_per_client': 0, 'write_timeout': 5.0,
                         'body_timeout': 5.0}, args.hold or 13.0))
    print('bench_hostile: server = microdot-core built-in (%s, Python %s), '
          'max_connections=1000, open-file limit %d; attacker %s, fresh client %s'
          % ('uvloop' if _has_uvloop() else 'asyncio', sys.version.split()[0], hard,
             ATTACKER, FRESH))
    with tempfile.TemporaryDirectory() as tmp:
        for name, options, hold_s in configs:
            rows, warnings = run_config(name, options, hold_s, Path(tmp))
            print()
            print('config: %s %s, each phase held %.0f s (keep-alive phase 4 s); '
                  'WARNING lines in the server log: %d' % (name, options or '', hold_s,
                                                           warnings))
            print('%-22s %7s %9s %5s %5s %5s %8s | %-22s %8s %9s | %9s | %s'
                  % ('phase', 'open s', 'answered', '503', '408', 'cut', 'waiting',
                     'fresh client statuses', 'worst s', 'first 200', 'held max/end',
                     'RSS MB peak/idle'))
            for _, label, opened, counts, result, idle in rows:
                statuses = ' '.join('%s x%d' % kv for kv in sorted(
                    result['statuses'].items(), key=str))
                print('%-22s %7.1f %9d %5d %5d %5d %8d | %-22s %8.3f %9s | %4d/%4s | '
                      '%.0f / %.0f (%.2fx)'
                      % (label, opened, counts['answered'], counts['503'],
                         counts['408'], counts['cut'], counts['waiting'],
                         statuses, result['worst'],
                         '%.1f s' % result['first_ok'] if result['first_ok']
                         is not None else 'never', result['most'],
                         '-' if result['last'] is None else result['last'],
                         result['peak'], idle, result['peak'] / idle))


def _has_uvloop() -> bool:
    if os.environ.get('MICRODOT_LOOP', 'auto') == 'asyncio':
        return False
    try:
        import uvloop  # noqa: F401
        return True
    except ImportError:
        return False


if __name__ == '__main__':
    main()
