"""Publish/subscribe fan-out across 2 workers on Redis: microdot.pubsub against
python-socketio (AsyncRedisManager) and Starlette with ``broadcaster``.

One publisher process, 1,000 subscribers (Server-Sent Events, then WebSocket) spread
over the 2 worker processes of each server, one local ``redis-server`` that this
script starts (free port, ``--save '' --appendonly no``) and stops, everything on
127.0.0.1:

- ``microdot``: ``microdot run --workers 2`` (the built-in server) with
  ``PubSub(app, 'redis://...')``, ``pubsub.sse_response`` and
  ``pubsub.forward_to_websocket``;
- ``socketio``: python-socketio's ``AsyncServer`` with ``AsyncRedisManager`` under
  ``uvicorn --workers 2`` (WebSocket transport; Socket.IO has no SSE transport), the
  publisher an external ``AsyncRedisManager(write_only=True)`` emitting to all;
- ``broadcaster``: Starlette with ``broadcaster``'s Redis backend under
  ``uvicorn --workers 2``: a ``StreamingResponse`` of ``text/event-stream`` and a
  WebSocket endpoint, each a ``broadcast.subscribe(channel)`` loop (its README's
  pattern). broadcaster 0.3.1 (the latest) does not work as released with redis-py 5
  or newer: its backend wakes its listener before subscribing, the listener's
  ``listen()`` then ends at once (nothing subscribed yet) and no message is ever
  delivered; and subscribers that arrive while a channel's first subscription is being
  made are dropped. The app fixes the first with a two-line backend subclass
  (subscribe, then wake the listener) and avoids the second by holding one
  subscription per worker from start-up (one more subscriber per worker, drained).

Each publisher uses its library's own publish call against the same Redis; a message
is ~100 bytes of text that carries a sequence number and the publisher's
``time.monotonic()`` just before the publish call. The subscribers are raw asyncio
protocols (a small chunked/SSE parser, a small RFC 6455 client that also speaks the
Engine.IO/Socket.IO v4 handshake and ping), 500 per client process on uvloop, so that
the load generator costs little; its CPU use is reported. Per target and round:

1. start the server, connect 10 warm-up subscribers, publish probes until each has one;
   the server's process-tree memory (RSS sum and PSS) is the baseline;
2. connect the other 990, probe again until all 1,000 receive; memory again:
   ``(after - baseline) / 990`` is the memory per idle subscriber;
3. throughput: the publisher publishes ``--burst`` messages back to back (awaiting
   each publish; its rate is reported); deliveries/s = messages received by all
   subscribers / (last receipt - first publish); the server tree's CPU time per
   delivery is reported too (less sensitive to a shared machine than wall-clock
   rates). A server that writes the events queued for a subscriber together
   (microdot's SSE) can approach the publisher's rate times 1,000;
4. latency: ``--rate`` messages/s for ``--paced`` seconds (below what every target
   sustains); p50/p99 of receipt time minus the publish timestamp, over every
   delivery.

The client processes' CPU time over each phase is read from /proc: the busiest is
reported as a share of one core, to show the load generator was not the limit.
``--profile DIR`` records one worker of each run with py-spy during the burst.

Every subscriber must get every message exactly once and in order; the table says
how many deliveries were missing or out of order. Targets run in interleaved rounds
(microdot, socketio, broadcaster; microdot, ...) with a fresh server each time, and the
table gives the medians and the ratios to microdot.

    python benchmarks/bench_pubsub.py                       # 3 rounds, ~11 min
    python benchmarks/bench_pubsub.py --rounds 1 --modes ws --targets microdot socketio
    flock /tmp/bench.lock python benchmarks/bench_pubsub.py --rounds 5

Needs Linux (/proc), ``redis-server`` (``apt-get install redis-server``) and network
access to PyPI the first time: microdot-core (with its ``speed`` extra) and
microdot-redis from this tree, ``uvicorn[standard]``, ``uvloop``, ``python-socketio``,
``starlette`` and ``broadcaster[redis]`` go into one virtualenv under ``--venvs``.

The built-in server limits one client address to a share of ``max_connections``
(1,000 per worker by default); the 1,000 subscribers all come from 127.0.0.1, so the
benchmark app lifts both limits (``max_connections_per_client`` 0,
``max_connections`` 10,000), as a deployment behind a proxy would.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ensure_venv, free_port, process_tree, stop, tree_memory_kib  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / 'packages'
VENV = 'pubsub'
PACKAGES = ['-e', str(PKG / 'microdot-core') + '[speed]', '-e', str(PKG / 'microdot-redis'),
            'uvicorn[standard]', 'uvloop', 'python-socketio', 'starlette',
            'broadcaster[redis]']
CHANNEL = 'bench'
WARM = 10  # subscribers connected before the memory baseline

APPS = {
    'bench_ps_microdot': '''
        import os

        import microdot.server
        from microdot import Microdot
        from microdot.pubsub import PubSub
        from microdot.websocket import with_websocket

        # the subscribers all come from 127.0.0.1: lift the per-address and total caps
        microdot.server.DEFAULTS['max_connections_per_client'] = 0
        microdot.server.DEFAULTS['max_connections'] = 10000

        app = Microdot()
        pubsub = PubSub(app, os.environ['BENCH_REDIS_URL'])


        @app.route('/')
        async def index(request):
            return 'ok'


        @app.route('/sse')
        async def sse(request):
            return pubsub.sse_response(request, 'bench')


        @app.route('/ws')
        @with_websocket
        async def ws(request, ws):
            await pubsub.forward_to_websocket(ws, 'bench')
    ''',
    'bench_ps_socketio': '''
        import os

        import socketio

        manager = socketio.AsyncRedisManager(os.environ['BENCH_REDIS_URL'],
                                             channel='bench-socketio')
        sio = socketio.AsyncServer(async_mode='asgi', client_manager=manager,
                                   transports=['websocket'])


        async def index(scope, receive, send):
            await send({'type': 'http.response.start', 'status': 200,
                        'headers': [(b'content-type', b'text/plain')]})
            await send({'type': 'http.response.body', 'body': b'ok'})


        app = socketio.ASGIApp(sio, other_asgi_app=index)
    ''',
    'bench_ps_broadcaster': '''
        import asyncio
        import os
        from contextlib import asynccontextmanager

        import anyio
        import broadcaster._backends.redis
        from broadcaster import Broadcast
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse, StreamingResponse
        from starlette.routing import Route, WebSocketRoute
        from starlette.websockets import WebSocketDisconnect



        class RedisBackend(broadcaster._backends.redis.RedisBackend):
            # broadcaster 0.3.1 wakes its listener before subscribing; with redis-py 5+
            # (listen() ends at once while nothing is subscribed) it then waits forever
            # and no message is ever delivered: subscribe first, then wake it
            async def subscribe(self, channel):
                await self._pubsub.subscribe(channel)
                self._ready.set()


        broadcast = Broadcast(backend=RedisBackend(os.environ['BENCH_REDIS_URL']))


        async def index(request):
            return PlainTextResponse('ok')


        async def sse(request):
            async def events():
                async with broadcast.subscribe('bench') as subscriber:
                    async for event in subscriber:
                        yield 'data: %s\\n\\n' % event.message
            return StreamingResponse(events(), media_type='text/event-stream',
                                     headers={'Cache-Control': 'no-cache'})


        async def ws(websocket):
            await websocket.accept()

            async def receiver(scope):
                try:
                    async for _ in websocket.iter_text():
                        pass
                except WebSocketDisconnect:
                    pass
                scope.cancel()

            async def sender():
                async with broadcast.subscribe('bench') as subscriber:
                    async for event in subscriber:
                        await websocket.send_text(event.message)

            async with anyio.create_task_group() as group:
                group.start_soon(receiver, group.cancel_scope)
                group.start_soon(sender)


        @asynccontextmanager
        async def lifespan(app):
            # broadcaster 0.3.1 loses the subscribers that subscribe while a channel's
            # first subscription is being made at Redis (its subscribe() replaces the
            # channel's set of queues afterwards): hold one from start-up
            await broadcast.connect()
            ready = asyncio.Event()

            async def hold():
                async with broadcast.subscribe('bench') as subscriber:
                    ready.set()
                    async for _ in subscriber:
                        pass

            holder = asyncio.ensure_future(hold())
            await ready.wait()
            yield
            holder.cancel()
            await broadcast.disconnect()


        app = Starlette(routes=[Route('/', index), Route('/sse', sse),
                                WebSocketRoute('/ws', ws)], lifespan=lifespan)
    ''',
}

UVICORN = ('{bin}/python -m uvicorn --app-dir {dir} --host 127.0.0.1 --port {port} '
           '--workers 2 --loop uvloop --log-level warning --no-access-log {module}:app')
# name: (label, app module, command template, modes it serves)
TARGETS = {
    'microdot': ('microdot run --workers 2', 'bench_ps_microdot',
                 '{bin}/python -m microdot run {module}:app --host 127.0.0.1 '
                 '--port {port} --workers 2 --no-access-log', ('sse', 'ws')),
    'socketio': ('python-socketio + uvicorn', 'bench_ps_socketio', UVICORN, ('ws',)),
    'broadcaster': ('Starlette + broadcaster + uvicorn', 'bench_ps_broadcaster', UVICORN,
                    ('sse', 'ws')),
}
MODE_NAMES = {'sse': 'Server-Sent Events', 'ws': 'WebSocket'}


# ======================================================================================
# The subscribers (run by the venv's python: ``bench_pubsub.py _clients ...``)
# ======================================================================================

_MSG = re.compile(rb'([MP])(\d+) (\d+\.\d+)')


class _Stats:
    """What one client process has seen since its last reset."""

    def __init__(self) -> None:
        from array import array
        self.array = array
        self.received = 0
        self.disorder = 0
        self.last_at = 0.0
        self.latencies = array('d')
        self.closed = 0
        self.timing = True  # record latencies (else count and check the order only)

    def reset(self, timing: bool) -> None:
        self.received = self.disorder = 0
        self.last_at = 0.0
        self.latencies = self.array('d')
        self.timing = timing


def _client_protocols(stats: _Stats, port: int, mode: str, socketio: bool) -> Any:
    """The protocol class of one subscriber connection (defined here so that the
    orchestrating process need not import asyncio's protocol machinery)."""
    import asyncio
    import base64
    from time import monotonic

    class Subscriber(asyncio.Protocol):
        def __init__(self) -> None:
            self.transport: Any = None
            self.ready = asyncio.get_running_loop().create_future()
            self.probed = False
            self.last_seq = 0
            self.head = b''
            self.buf = b''
            self.opened = False

        # -- messages -------------------------------------------------------------------

        def events(self, data: bytes) -> None:
            now = monotonic()
            timing = stats.timing
            for kind, seq, stamp in _MSG.findall(data):
                if kind == b'P':
                    self.probed = True
                    continue
                number = int(seq)
                if number <= self.last_seq:
                    stats.disorder += 1
                self.last_seq = number
                stats.received += 1
                if timing:
                    stats.latencies.append(now - float(stamp))
            stats.last_at = now

        def connection_lost(self, exc: Optional[BaseException]) -> None:
            stats.closed += 1
            if not self.ready.done():
                self.ready.set_exception(ConnectionError('closed before ready: %s' % exc))

        def fail(self, why: str) -> None:
            if not self.ready.done():
                self.ready.set_exception(ConnectionError(why))
            self.transport.abort()

    class SSESubscriber(Subscriber):
        """GET /sse; the body (chunked or not) is scanned event by event."""

        def __init__(self) -> None:
            super().__init__()
            self.chunked = False
            self.raw = b''
            self.need = -1  # bytes of chunk data (+ CRLF) still to come; -1: a size line

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            transport.write(b'GET /sse HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n'
                            b'Accept: text/event-stream\r\n\r\n' % port)

        def data_received(self, data: bytes) -> None:
            if not self.opened:
                self.head += data
                end = self.head.find(b'\r\n\r\n')
                if end < 0:
                    return
                head, data = self.head[:end], self.head[end + 4:]
                self.head = b''
                if not head.startswith(b'HTTP/1.1 200'):
                    return self.fail(head.split(b'\r\n')[0].decode('latin-1'))
                self.chunked = b'transfer-encoding: chunked' in head.lower()
                self.opened = True
                self.ready.set_result(None)
            if self.chunked:
                data = self.dechunk(data)
            buf = self.buf + data if self.buf else data
            end = buf.rfind(b'\n\n')
            if end < 0:
                self.buf = buf
                return
            self.buf = buf[end + 2:]
            self.events(buf[:end])

        def dechunk(self, data: bytes) -> bytes:
            raw = self.raw + data if self.raw else data
            out = []
            pos = 0
            while True:
                if self.need < 0:
                    line_end = raw.find(b'\r\n', pos)
                    if line_end < 0:
                        break
                    self.need = int(raw[pos:line_end].split(b';')[0], 16) + 2
                    pos = line_end + 2
                take = min(self.need, len(raw) - pos)
                if take <= 0:
                    break
                out.append(raw[pos:pos + take])
                pos += take
                self.need -= take
                if self.need == 0:
                    out[-1] = out[-1][:-2] if len(out[-1]) >= 2 else b''
                    self.need = -1
                elif self.need == 1:  # the chunk's CR is in, its LF is not
                    out[-1] = out[-1][:-1]
            self.raw = raw[pos:]
            return b''.join(out)

    class WSSubscriber(Subscriber):
        """A WebSocket (``/ws``, or Engine.IO v4 at ``/socket.io/``)."""

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            key = base64.b64encode(os.urandom(16))
            path = b'/socket.io/?EIO=4&transport=websocket' if socketio else b'/ws'
            transport.write(b'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n'
                            b'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n'
                            b'Sec-WebSocket-Version: 13\r\n\r\n' % (path, port, key))

        def send_text(self, payload: bytes, opcode: int = 1) -> None:
            # a masked client frame; an all-zero mask leaves the payload as it is
            self.transport.write(bytes((0x80 | opcode, 0x80 | len(payload)))
                                 + b'\0\0\0\0' + payload)

        def data_received(self, data: bytes) -> None:
            if not self.opened:
                self.head += data
                end = self.head.find(b'\r\n\r\n')
                if end < 0:
                    return
                head, data = self.head[:end], self.head[end + 4:]
                self.head = b''
                if not head.startswith(b'HTTP/1.1 101'):
                    return self.fail(head.split(b'\r\n')[0].decode('latin-1'))
                self.opened = True
                if not socketio:
                    self.ready.set_result(None)
            buf = self.buf + data if self.buf else data
            pos, size = 0, len(buf)
            while size - pos >= 2:
                first, second = buf[pos], buf[pos + 1]
                length, header = second & 0x7f, 2
                if length == 126:
                    if size - pos < 4:
                        break
                    length, header = int.from_bytes(buf[pos + 2:pos + 4], 'big'), 4
                elif length == 127:
                    if size - pos < 10:
                        break
                    length, header = int.from_bytes(buf[pos + 2:pos + 10], 'big'), 10
                end = pos + header + length
                if end > size:
                    break
                payload = buf[pos + header:end]
                pos = end
                opcode = first & 0x0f
                if opcode in (0, 1, 2):
                    if socketio:
                        self.engineio(payload)
                    else:
                        self.events(payload)
                elif opcode == 9:
                    self.send_text(payload, 10)
                elif opcode == 8:
                    self.transport.close()
            self.buf = buf[pos:]

        def engineio(self, payload: bytes) -> None:
            kind = payload[:1]
            if kind == b'4':
                if payload[:2] == b'42':
                    self.events(payload)
                elif payload[:2] == b'40' and not self.ready.done():
                    self.ready.set_result(None)
            elif kind == b'2':
                self.send_text(b'3')
            elif kind == b'0':
                self.send_text(b'40')

    return SSESubscriber if mode == 'sse' else WSSubscriber


def run_clients(port: int, mode: str, target: str) -> None:
    """A client process: subscribers on command, counters on request (stdin/stdout,
    one JSON line per answer)."""
    import asyncio
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stats = _Stats()
        protocol = _client_protocols(stats, port, mode, target == 'socketio')
        subscribers: List[Any] = []
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        def answer(**values: Any) -> None:
            sys.stdout.write(json.dumps(values) + '\n')
            sys.stdout.flush()

        while True:
            line = (await reader.readline()).decode().split()
            if not line or line[0] == 'quit':
                break
            command = line[0]
            if command == 'connect':
                count = int(line[1])
                fresh = []
                for start in range(0, count, 50):  # in small waves: no SYN flood
                    wave = [loop.create_connection(protocol, '127.0.0.1', port)
                            for _ in range(min(50, count - start))]
                    for _, sub in await asyncio.gather(*wave):
                        fresh.append(sub)
                done, _ = await asyncio.wait([s.ready for s in fresh], timeout=30)
                failed = [str(f.exception()) for f in done if f.exception() is not None]
                subscribers.extend(fresh)
                answer(ready=len(done) - len(failed), asked=count, failed=failed[:3])
            elif command == 'probed':
                answer(probed=sum(1 for s in subscribers if s.probed),
                       total=len(subscribers), closed=stats.closed)
            elif command == 'reset':
                stats.reset(line[1:] == ['timing'])
                answer(ok=True)
            elif command == 'progress':
                answer(received=stats.received, last_at=stats.last_at, closed=stats.closed)
            elif command == 'report':
                answer(received=stats.received, disorder=stats.disorder,
                       last_at=stats.last_at, closed=stats.closed,
                       latencies=[round(x * 1000, 3) for x in stats.latencies])
        for sub in subscribers:
            if sub.transport is not None:
                sub.transport.abort()

    asyncio.run(main())


# ======================================================================================
# The publisher (run by the venv's python: ``bench_pubsub.py _publisher ...``)
# ======================================================================================

def run_publisher(target: str, url: str, size: int) -> None:
    """The publisher process: probes, bursts and paced runs on command."""
    import asyncio
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if target == 'microdot':
            from microdot.pubsub import PubSub
            pubsub = PubSub(None, url)

            async def publish(text: str) -> None:
                await pubsub.publish(CHANNEL, text)
        elif target == 'socketio':
            import socketio
            manager = socketio.AsyncRedisManager(url, channel='bench-socketio',
                                                 write_only=True)

            async def publish(text: str) -> None:
                await manager.emit('m', text, namespace='/')
        else:
            from broadcaster import Broadcast
            broadcast = Broadcast(url)
            await broadcast.connect()

            async def publish(text: str) -> None:
                await broadcast.publish(CHANNEL, text)

        def message(kind: str, seq: int) -> str:
            text = '%s%d %.6f ' % (kind, seq, time.monotonic())
            return text + 'x' * max(0, size - len(text))

        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        probing: Optional[asyncio.Task] = None
        probe_on = False
        seq = 0

        async def probe() -> None:
            n = 0
            while probe_on:  # (stopped between two publish calls, never inside one)
                n += 1
                await publish(message('P', n))
                await asyncio.sleep(0.02)

        def answer(**values: Any) -> None:
            sys.stdout.write(json.dumps(values) + '\n')
            sys.stdout.flush()

        while True:
            line = (await reader.readline()).decode().split()
            if not line or line[0] == 'quit':
                break
            if line[0] == 'probe':
                if line[1] == 'on' and probing is None:
                    probe_on = True
                    probing = asyncio.ensure_future(probe())
                elif line[1] == 'off' and probing is not None:
                    probe_on = False
                    await probing
                    probing = None
                answer(ok=True)
            elif line[0] == 'burst':
                count = int(line[1])
                first = time.monotonic()
                for _ in range(count):
                    seq += 1
                    await publish(message('M', seq))
                answer(first=first, last=time.monotonic(), count=count)
            elif line[0] == 'paced':
                rate, seconds = float(line[1]), float(line[2])
                count = int(rate * seconds)
                first = time.monotonic()
                for i in range(count):
                    delay = first + i / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    seq += 1
                    await publish(message('M', seq))
                answer(first=first, last=time.monotonic(), count=count)

    asyncio.run(main())


# ======================================================================================
# The orchestration (any python 3.8+)
# ======================================================================================

class Child:
    """A helper process spoken to with one command line, answered by one JSON line."""

    def __init__(self, cmd: List[str], cwd: Path, env: Dict[str, str], log: Path) -> None:
        self.log = open(log, 'a')
        self.last = ''
        self.proc = subprocess.Popen(cmd, cwd=str(cwd), env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log,
                                     start_new_session=True)

    def send(self, command: str) -> None:
        self.last = command
        assert self.proc.stdin is not None
        self.proc.stdin.write((command + '\n').encode())
        self.proc.stdin.flush()

    def receive(self, timeout: float = 60) -> Dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError('no answer to %r within %gs from %s'
                               % (self.last, timeout, ' '.join(self.proc.args[2:4])))
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError('%s exited (status %s)' % (self.proc.args[:4], self.proc.poll()))
        return json.loads(line)

    def ask(self, command: str, timeout: float = 60) -> Dict[str, Any]:
        self.send(command)
        return self.receive(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send('quit')
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        stop(self.proc)
        self.log.close()


def start_redis(workdir: Path) -> Tuple[subprocess.Popen, int]:
    """A local redis-server on a free port, persistence off; waits until it answers."""
    binary = shutil.which('redis-server') or '/usr/bin/redis-server'
    if not os.path.exists(binary):
        sys.exit('redis-server is needed: apt-get install redis-server')
    port = free_port()
    proc = subprocess.Popen([binary, '--port', str(port), '--bind', '127.0.0.1',
                             '--save', '', '--appendonly', 'no', '--dir', str(workdir),
                             '--logfile', str(workdir / 'redis.log'), '--daemonize', 'no',
                             '--protected-mode', 'no'],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)
    import socket
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=1) as s:
                s.sendall(b'PING\r\n')
                if s.recv(16).startswith(b'+PONG'):
                    return proc, port
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise RuntimeError('redis-server did not answer on port %d' % port)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the live processes of ``pid``'s tree."""
    ticks = os.sysconf('SC_CLK_TCK')
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path('/proc/%d/stat' % member).read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def connection_split(port: int) -> List[int]:
    """Established connections per server process on ``port`` (``ss``), largest first."""
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


def worker_pids(pid: int) -> List[int]:
    """The worker processes under the server process ``pid`` (not multiprocessing's
    resource tracker, which uvicorn's process tree also holds)."""
    found = []
    for member in process_tree(pid)[1:]:
        try:
            cmdline = Path('/proc/%d/cmdline' % member).read_bytes()
        except OSError:
            continue
        if b'resource_tracker' not in cmdline:
            found.append(member)
    return found


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until ``GET /`` answers 200 and the server has its 2 worker processes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError('server exited early (status %s)' % proc.returncode)
        try:
            with urllib.request.urlopen('http://127.0.0.1:%d/' % port, timeout=2) as resp:
                ok = resp.status == 200
        except OSError:
            ok = False
        if ok and len(worker_pids(proc.pid)) >= 2:
            return
        time.sleep(0.1)
    raise RuntimeError('server on port %d not ready within %d s' % (port, timeout))


def percentile(values: List[float], pct: float) -> float:
    if not values:
        return float('nan')
    return values[min(len(values) - 1, int(round(pct / 100 * (len(values) - 1))))]


class Run:
    """One target, one mode, one round: a server, a publisher and the clients."""

    def __init__(self, args: argparse.Namespace, target: str, mode: str, bindir: Path,
                 workdir: Path, redis_url: str) -> None:
        self.args, self.target, self.mode = args, target, mode
        self.bindir, self.workdir, self.redis_url = bindir, workdir, redis_url
        self.clients: List[Child] = []
        self.publisher: Optional[Child] = None
        self.server: Optional[subprocess.Popen] = None

    def env(self) -> Dict[str, str]:
        env = dict(os.environ, BENCH_REDIS_URL=self.redis_url, MICRODOT_LOOP='auto')
        env.pop('PYTHONPATH', None)
        return env

    def start(self) -> None:
        label, module, template, _ = TARGETS[self.target]
        self.port = free_port()
        cmd = template.format(bin=self.bindir, dir=self.workdir, port=self.port,
                              module=module).split()
        self.server_log = open(self.workdir / ('%s.log' % self.target), 'a')
        self.server = subprocess.Popen(cmd, cwd=str(self.workdir), env=self.env(),
                                       stdout=self.server_log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        wait_ready(self.port, self.server)
        python = str(self.bindir / 'python')
        script = str(Path(__file__).resolve())
        self.publisher = Child([python, script, '_publisher', self.target, self.redis_url,
                                str(self.args.size)], self.workdir, self.env(),
                               self.workdir / 'publisher.log')
        for _ in range(self.args.client_procs):
            self.clients.append(Child([python, script, '_clients', str(self.port),
                                       self.mode, self.target], self.workdir, self.env(),
                                      self.workdir / 'clients.log'))

    def connect(self, count: int) -> None:
        """``count`` more subscribers, spread over the client processes, then probes
        until every subscriber has received one."""
        share = [count // len(self.clients)] * len(self.clients)
        share[0] += count - sum(share)
        for client, n in zip(self.clients, share):
            client.send('connect %d' % n)
        for client, n in zip(self.clients, share):
            got = client.receive(60)
            if got['ready'] != n:
                raise RuntimeError('%d of %d subscribers ready: %s'
                                   % (got['ready'], n, got['failed']))
        assert self.publisher is not None
        self.publisher.ask('probe on')
        deadline = time.monotonic() + 30
        try:
            while True:
                counts = [c.ask('probed') for c in self.clients]
                if all(c['probed'] == c['total'] for c in counts):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError('subscribers never received a probe: %s' % counts)
                time.sleep(0.1)
        finally:
            self.publisher.ask('probe off')
        time.sleep(0.5)  # let the last probes drain

    def phase(self, command: str, expected_per_sub: int, subscribers: int) -> Dict[str, Any]:
        """Reset the counters, run a publisher command, wait until every delivery
        arrived (or nothing more comes for ``--stall`` seconds), collect."""
        assert self.publisher is not None and self.server is not None
        timing = command.startswith('paced')
        for client in self.clients:
            client.ask('reset timing' if timing else 'reset')
        profiler = self.profile(command.split()[0])
        cpu0 = cpu_seconds(self.server.pid)
        client_cpu0 = [cpu_seconds(c.proc.pid) for c in self.clients]
        started = time.monotonic()
        self.publisher.send(command)
        published = self.publisher.receive(600)
        expected = expected_per_sub * subscribers
        seen, seen_at = -1, time.monotonic()
        while True:
            progress = [c.ask('progress') for c in self.clients]
            received = sum(p['received'] for p in progress)
            if received >= expected:
                break
            if received != seen:
                seen, seen_at = received, time.monotonic()
            elif time.monotonic() - seen_at > self.args.stall:
                break
            time.sleep(0.1)
        cpu = cpu_seconds(self.server.pid) - cpu0
        window = time.monotonic() - started
        client_cpu = [cpu_seconds(c.proc.pid) - c0 for c, c0 in zip(self.clients, client_cpu0)]
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
        reports = [c.ask('report', 120) for c in self.clients]
        latencies = sorted(x for r in reports for x in r['latencies'])
        received = sum(r['received'] for r in reports)
        last_at = max(r['last_at'] for r in reports)
        span = max(1e-9, last_at - published['first'])
        return {
            'received': received, 'expected': expected,
            'disorder': sum(r['disorder'] for r in reports),
            'closed': sum(r['closed'] for r in reports),
            'rate': received / span, 'span': span,
            'publish_rate': published['count'] / max(1e-9, published['last']
                                                      - published['first']),
            'p50': percentile(latencies, 50), 'p99': percentile(latencies, 99),
            'max': latencies[-1] if latencies else float('nan'),
            'server_cpu_us': 1e6 * cpu / max(1, received),
            # each client process's CPU time over the phase, as a share of one core
            'client_cpu': max(client_cpu) / window,
        }

    def profile(self, phase: str) -> Optional[subprocess.Popen]:
        """With ``--profile DIR``: py-spy (collapsed stacks) on one worker for the
        burst."""
        if not self.args.profile or phase != 'burst':
            return None
        assert self.server is not None
        workers = worker_pids(self.server.pid)
        out = Path(self.args.profile) / ('%s-%s-%d.txt' % (self.target, self.mode,
                                                          int(time.time())))
        out.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen([str(self.bindir / 'py-spy'), 'record', '--pid',
                                 str(workers[-1]), '--rate', '500', '--format', 'raw',
                                 '--output', str(out), '--nonblocking'],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # let it attach
        return proc

    def measure(self) -> Dict[str, Any]:
        args = self.args
        self.start()
        assert self.server is not None
        self.connect(WARM)
        time.sleep(0.5)
        rss0, pss0 = tree_memory_kib(self.server.pid)
        self.connect(args.subscribers - WARM)
        time.sleep(1.0)
        rss1, pss1 = tree_memory_kib(self.server.pid)
        idle = args.subscribers - WARM
        result: Dict[str, Any] = {
            'rss_per_sub': (rss1 - rss0) / idle, 'pss_per_sub': (pss1 - pss0) / idle,
            'pss_total': pss1, 'split': connection_split(self.port)}
        result['burst'] = self.phase('burst %d' % args.burst, args.burst, args.subscribers)
        result['paced'] = self.phase('paced %g %g' % (args.rate, args.paced),
                                     int(args.rate * args.paced), args.subscribers)
        if self.server.poll() is not None:
            raise RuntimeError('the server exited during the run (status %s)'
                               % self.server.returncode)
        return result

    def close(self) -> None:
        for child in self.clients + ([self.publisher] if self.publisher else []):
            child.close()
        if self.server is not None:
            stop(self.server)
            self.server_log.close()


def versions(bindir: Path) -> str:
    code = textwrap.dedent('''
        import sys
        from importlib.metadata import version
        names = ['microdot-core', 'microdot-redis', 'python-socketio', 'python-engineio',
                 'broadcaster', 'starlette', 'uvicorn', 'websockets', 'httptools',
                 'uvloop', 'redis', 'hiredis', 'orjson']
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
    redis = subprocess.run([shutil.which('redis-server') or 'redis-server', '--version'],
                           capture_output=True, text=True).stdout.split()
    redis_version = next((w.split('=')[1] for w in redis if w.startswith('v=')), '?')
    return '%s; redis-server %s; %s, %d CPUs' % (line, redis_version, platform.platform(),
                                                 os.cpu_count() or 0)


def report(results: Dict[str, Dict[str, List[Dict]]], args: argparse.Namespace) -> None:
    """One table per mode: medians over the rounds, and ratios to microdot."""
    for mode in args.modes:
        per_target = results.get(mode) or {}
        if not per_target:
            continue
        med: Dict[str, Dict[str, float]] = {}
        for target, runs in per_target.items():
            if not runs:
                continue
            med[target] = {
                'rate': statistics.median(r['burst']['rate'] for r in runs),
                'publisher': statistics.median(r['burst']['publish_rate'] for r in runs),
                'cpu': statistics.median(r['burst']['server_cpu_us'] for r in runs),
                'p50': statistics.median(r['paced']['p50'] for r in runs),
                'p99': statistics.median(r['paced']['p99'] for r in runs),
                'rss': statistics.median(r['rss_per_sub'] for r in runs),
                'pss': statistics.median(r['pss_per_sub'] for r in runs),
                'client': max(max(r['burst']['client_cpu'], r['paced']['client_cpu'])
                              for r in runs),
                'lost': sum(r[p]['expected'] - r[p]['received'] for r in runs
                            for p in ('burst', 'paced')),
                'disorder': sum(r[p]['disorder'] for r in runs for p in ('burst', 'paced')),
            }
        base = med.get('microdot')
        print('\n%s, %d subscribers over 2 workers\n' % (MODE_NAMES[mode], args.subscribers))
        print('| target | deliveries/s | (publisher msg/s) | server CPU µs/delivery '
              '| p50 ms | p99 ms | KiB/idle subscriber PSS (RSS) | lost, out of order '
              '| deliveries/s vs microdot | p99 vs microdot |')
        print('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
        for target, m in med.items():
            vs_rate = '%.2fx' % (m['rate'] / base['rate']) if base else '-'
            vs_p99 = '%.2fx' % (m['p99'] / base['p99']) if base else '-'
            print('| %s | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f (%.1f) | %d, %d | %s | %s |'
                  % (TARGETS[target][0], m['rate'], m['publisher'], m['cpu'], m['p50'],
                     m['p99'], m['pss'], m['rss'], m['lost'], m['disorder'], vs_rate,
                     vs_p99))
        print('\nbusiest client process (its CPU time over the phase): %s of one core'
              % ', '.join('%s %.0f %%' % (t, 100 * m['client']) for t, m in med.items()))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == '_clients':
        run_clients(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        return
    if len(sys.argv) > 1 and sys.argv[1] == '_publisher':
        run_publisher(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=3, help='interleaved rounds (3)')
    parser.add_argument('--subscribers', type=int, default=1000, help='subscribers (1000)')
    parser.add_argument('--client-procs', type=int, default=2,
                        help='client processes sharing the subscribers (2)')
    parser.add_argument('--burst', type=int, default=500,
                        help='messages published back to back for the throughput (500)')
    parser.add_argument('--rate', type=float, default=5,
                        help='messages/s of the latency run (5)')
    parser.add_argument('--paced', type=float, default=20,
                        help='seconds of the latency run (20)')
    parser.add_argument('--size', type=int, default=100, help='message size (100 bytes)')
    parser.add_argument('--stall', type=float, default=5,
                        help='seconds without a delivery that end a phase early (5)')
    parser.add_argument('--modes', nargs='+', choices=['sse', 'ws'], default=['sse', 'ws'])
    parser.add_argument('--targets', nargs='+', choices=list(TARGETS), default=list(TARGETS))
    parser.add_argument('--venvs', default='/tmp/microdot-bench-venvs')
    parser.add_argument('--profile', metavar='DIR',
                        help='record one worker of each run during the burst with '
                             'py-spy (installed into the venv) into DIR')
    args = parser.parse_args()
    if args.subscribers <= WARM:
        parser.error('--subscribers must be above %d' % WARM)
    if not Path('/proc/self/smaps_rollup').exists():
        sys.exit('this benchmark reads /proc (Linux 4.14 or later)')
    venvs = Path(args.venvs)
    venvs.mkdir(parents=True, exist_ok=True)
    bindir = ensure_venv(venvs, VENV, PACKAGES + (['py-spy'] if args.profile else [])
                         ).parent
    workdir = venvs / 'apps-pubsub'
    workdir.mkdir(exist_ok=True)
    for name, code in APPS.items():
        (workdir / (name + '.py')).write_text(textwrap.dedent(code))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.subscribers + 100:
        sys.exit('ulimit -n is %d: raise it above %d' % (hard, args.subscribers + 100))
    print(versions(bindir))
    print('%d interleaved rounds on 127.0.0.1, nothing pinned; %d subscribers in %d client '
          'processes (uvloop); %d-byte messages; throughput: %d messages back to back; '
          'latency: %g messages/s for %g s; a fresh server for each run'
          % (args.rounds, args.subscribers, args.client_procs, args.size, args.burst,
             args.rate, args.paced), flush=True)
    print('load average before: %s' % ' '.join('%.2f' % x for x in os.getloadavg()),
          flush=True)
    redis_proc, redis_port = start_redis(workdir)
    redis_url = 'redis://127.0.0.1:%d/0' % redis_port
    results: Dict[str, Dict[str, List[Dict]]] = {m: {} for m in args.modes}
    failed: Dict[Tuple[str, str], List[str]] = {}  # a target is dropped after 2 failures
    try:
        for rnd in range(args.rounds):
            for mode in args.modes:
                for target in args.targets:
                    if mode not in TARGETS[target][3] or \
                            len(failed.get((target, mode), [])) >= 2:
                        continue
                    run = Run(args, target, mode, bindir, workdir, redis_url)
                    try:
                        r = run.measure()
                    except Exception as exc:  # report the others; say why this is missing
                        why = str(exc).strip().splitlines()[-1] if str(exc) else \
                            type(exc).__name__
                        failed.setdefault((target, mode), []).append(why)
                        print('round %d %-3s %s: not measured: %s (logs in %s)'
                              % (rnd + 1, mode, TARGETS[target][0], why, workdir),
                              flush=True)
                        continue
                    finally:
                        run.close()
                    results[mode].setdefault(target, []).append(r)
                    b, p = r['burst'], r['paced']
                    print('round %d %-3s %-34s %7.0f deliveries/s (%5.1f µs CPU each, '
                          'publisher %5.0f/s)  p50 %6.2f ms  p99 %7.2f ms  %5.1f KiB PSS '
                          '(%5.1f RSS)/subscriber  lost %d+%d, disorder %d+%d, closed %d  '
                          'client CPU %.0f%%/%.0f%%  split %s'
                          % (rnd + 1, mode, TARGETS[target][0], b['rate'],
                             b['server_cpu_us'], b['publish_rate'], p['p50'], p['p99'],
                             r['pss_per_sub'], r['rss_per_sub'],
                             b['expected'] - b['received'], p['expected'] - p['received'],
                             b['disorder'], p['disorder'], p['closed'],
                             100 * b['client_cpu'], 100 * p['client_cpu'],
                             '+'.join(map(str, r['split'])) or '?'), flush=True)
    finally:
        stop(redis_proc)
    print('\nmedian of %d rounds; deliveries/s and server CPU: the burst of %d messages; '
          'p50/p99: publish-to-receive at %g messages/s; memory: (server tree after - '
          'before) / %d idle subscribers; load average now %s'
          % (args.rounds, args.burst, args.rate, args.subscribers - WARM,
             ' '.join('%.2f' % x for x in os.getloadavg())))
    report(results, args)


if __name__ == '__main__':
    main()
