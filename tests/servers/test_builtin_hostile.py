"""The built-in server against clients that try to hold its connections (issue #13):
readers that never read, bodies that trickle, idle keep-alive crowds, refusal floods,
streams whose viewer leaves, and requests a proxy would read differently. Also
``start_server(start_serving=False)`` (issue #12).

Real loopback sockets against the server running in a thread (tests/support.py).
"""
import asyncio
import logging
import re
import socket
import struct
import threading
import time

import httpx
import pytest

from microdot import Microdot
from support import free_port, recv_all
from support import live_server as _live_server

FRAME = b'--frame\r\nContent-Type: image/jpeg\r\n\r\n' + b'\xff' * 512 + b'\r\n'
MIXED = {'Content-Type': 'multipart/x-mixed-replace; boundary=frame'}


def make_app(events):
    """Routes with endless bodies whose ``finally`` sets ``events[name]``."""
    app = Microdot()

    @app.route('/')
    async def index(req):
        return 'Hello, World!'

    @app.route('/echo', methods=['POST'])
    async def echo(req):
        return await req.stream.read(), {'Content-Type': 'application/octet-stream'}

    @app.route('/sync-frames')
    def sync_frames(req):
        def stream():
            try:
                while True:
                    yield FRAME
                    time.sleep(0.02)  # a sync generator blocking between frames
            finally:
                events['sync-frames'].set()
        return stream(), 200, MIXED

    @app.route('/sync-fast')
    def sync_fast(req):
        def stream():
            try:
                while True:
                    yield b'z' * 65536
            finally:
                events['sync-fast'].set()
        return stream()

    @app.route('/async-frames')
    async def async_frames(req):
        async def stream():
            try:
                while True:
                    yield FRAME  # never suspends: only the server's writes yield
            finally:
                events['async-frames'].set()
        return stream(), 200, MIXED

    @app.route('/async-slow')
    async def async_slow(req):
        async def stream():
            try:
                while True:
                    yield FRAME
                    await asyncio.sleep(3600)
            finally:
                events['async-slow'].set()
        return stream(), 200, MIXED

    @app.route('/big')
    async def big(req):
        return b'x' * (8 * 1024 * 1024)

    @app.route('/wait')
    async def wait(req):
        await asyncio.sleep(float(req.args.get('s', '5')))
        return 'waited'

    return app


@pytest.fixture
def events():
    return {name: threading.Event() for name in ('sync-frames', 'sync-fast',
                                                 'async-frames', 'async-slow')}


def connect(server, source='127.0.0.1', rcvbuf=None, timeout=5):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((source, 0))
    s.settimeout(timeout)
    s.connect((server.host, server.port))
    return s


def read_head(s):
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    return data


def get(s, path='/'):
    """One keep-alive GET on ``s``; returns (status, body) of the short answer."""
    s.sendall(b'GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % path.encode())
    data = read_head(s)
    head, _, body = data.partition(b'\r\n\r\n')
    length = int(re.search(rb'Content-Length: (\d+)', head).group(1))
    while len(body) < length:
        body += s.recv(65536)
    return int(head.split(b' ')[1]), body


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# -- a client that never reads --------------------------------------------------------

@pytest.mark.parametrize('path', ['/async-frames', '/sync-fast', '/big'])
def test_a_client_that_never_reads_is_cut_at_the_write_deadline(events, path):
    with _live_server(make_app(events), write_timeout=0.5) as server:
        s = connect(server, rcvbuf=4096)
        s.sendall(b'GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % path.encode())
        assert wait_until(lambda: len(server.connections) == 1)
        start = time.monotonic()
        # never reads: the server must give up on it, not wait for it forever
        assert wait_until(lambda: not server.connections, timeout=10), \
            'the connection of a client reading nothing was kept'
        assert time.monotonic() - start < 5
        if path != '/big':
            assert events[path.strip('/')].is_set(), 'the body was not closed'
        s.close()
        assert httpx.get(server.url + '/').status_code == 200


def test_a_slow_but_steady_reader_is_not_cut(events):
    # the deadline is on progress: a client that keeps reading gets the whole answer
    with _live_server(make_app(events), write_timeout=0.5) as server:
        s = connect(server, rcvbuf=65536)
        s.sendall(b'GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        data = read_head(s)
        got = len(data.partition(b'\r\n\r\n')[2])
        while got < 8 * 1024 * 1024:
            chunk = s.recv(1024 * 1024)
            assert chunk, 'cut after %d bytes' % got
            got += len(chunk)
            time.sleep(0.02)  # the client's own pace, well within the deadline
        assert got == 8 * 1024 * 1024


# -- a body that trickles ---------------------------------------------------------------

def test_a_trickling_body_ends_with_408_in_bounded_time(events):
    # each byte comes well within body_timeout: only a deadline on the whole body
    # (body_timeout + size / body_min_rate) ends it
    with _live_server(make_app(events), body_timeout=0.8, body_min_rate=100) as server:
        s = connect(server)
        s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n')
        start = time.monotonic()
        answer = b''
        while time.monotonic() - start < 8:
            try:
                s.sendall(b'x')
            except OSError:
                break
            s.settimeout(0.2)  # a byte every 0.2 s: the client's pace
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
        elapsed = time.monotonic() - start
        assert answer.startswith(b'HTTP/1.1 408 '), answer[:100]
        assert elapsed < 4, elapsed


def test_a_body_at_the_minimum_rate_is_read(events):
    with _live_server(make_app(events), body_timeout=0.5, body_min_rate=1000) as server:
        s = connect(server)
        s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n'
                  b'Connection: close\r\n\r\n')
        for _ in range(10):  # 300 bytes every 0.1 s: 3,000 bytes/s
            s.sendall(b'y' * 300)
            time.sleep(0.1)
        answer = recv_all(s)
        assert answer.startswith(b'HTTP/1.1 200 ') and answer.endswith(b'y' * 3000)


# -- capacity ---------------------------------------------------------------------------

def test_idle_keep_alive_connections_make_room_oldest_first(events):
    with _live_server(make_app(events), max_connections=3,
                      max_connections_per_client=0) as server:
        a, b, c = connect(server), connect(server), connect(server)
        for s in (a, b, c):
            assert get(s) == (200, b'Hello, World!')
        # idle connections are only taken after a second (a new one's request may
        # be on its way)
        time.sleep(1.1)
        d = connect(server)
        assert get(d) == (200, b'Hello, World!')
        assert recv_all(a) == b''  # the oldest idle one was closed, silently
        assert get(b) == (200, b'Hello, World!')
        assert get(c) == (200, b'Hello, World!')
        for s in (b, c, d):
            s.close()


def test_busy_connections_are_not_taken(events):
    with _live_server(make_app(events), max_connections=1,
                      max_connections_per_client=0) as server:
        a = connect(server)
        a.sendall(b'GET /wait?s=2 HTTP/1.1\r\nHost: x\r\n\r\n')
        assert wait_until(lambda: len(server.connections) == 1)
        time.sleep(1.1)  # older than the idle minimum, but busy
        b = connect(server)
        assert recv_all(b).startswith(b'HTTP/1.1 503 ')
        assert read_head(a).startswith(b'HTTP/1.1 200 ')


def test_one_client_address_cannot_take_every_slot(events):
    with _live_server(make_app(events), max_connections=10,
                      max_connections_per_client=3) as server:
        held = [connect(server) for _ in range(3)]
        for s in held:
            s.sendall(b'GET /wait?s=3 HTTP/1.1\r\nHost: x\r\n\r\n')
        assert wait_until(lambda: len(server.connections) == 3)
        extra = connect(server)
        refused = recv_all(extra)
        assert refused.startswith(b'HTTP/1.1 503 ') and b'Retry-After: 2\r\n' in refused
        other = connect(server, source='127.0.0.2')
        assert get(other) == (200, b'Hello, World!')
        for s in held + [other]:
            s.close()


def test_a_client_at_its_limit_gets_room_from_its_own_idle_connections(events):
    with _live_server(make_app(events), max_connections=10,
                      max_connections_per_client=2) as server:
        a, b = connect(server), connect(server)
        assert get(a)[0] == 200 and get(b)[0] == 200
        time.sleep(1.1)
        c = connect(server)
        assert get(c) == (200, b'Hello, World!')
        assert recv_all(a) == b''
        b.close()
        c.close()


def test_max_connections_per_client_as_a_fraction():
    from microdot.server import Server
    app = Microdot()
    assert Server(app).per_client == 250
    assert Server(app, max_connections=100).per_client == 25
    assert Server(app, max_connections_per_client=7).per_client == 7
    assert Server(app, max_connections_per_client=None).per_client == 0
    assert Server(app, max_connections_per_client=0).per_client == 0


def test_refusals_are_complete_503s_never_resets_and_logged_in_summary(events, caplog):
    caplog.set_level(logging.WARNING, logger='microdot.server')
    clients = 200
    with _live_server(make_app(events), max_connections=1,
                      max_connections_per_client=0) as server:
        holder = connect(server)
        holder.sendall(b'GET /wait?s=10 HTTP/1.1\r\nHost: x\r\n\r\n')
        assert wait_until(lambda: len(server.connections) == 1)

        async def client():
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
            try:
                return await asyncio.wait_for(reader.read(), 10)
            except ConnectionResetError:
                return b'RESET'
            finally:
                writer.close()

        async def main():
            return await asyncio.gather(*(client() for _ in range(clients)))

        answers = asyncio.run(main())
        holder.close()
    for answer in answers:
        assert answer != b'RESET', 'a refusal was a reset'
        head, _, body = answer.partition(b'\r\n\r\n')
        assert head.startswith(b'HTTP/1.1 503 '), answer[:100]
        assert b'\r\nConnection: close' in head and b'\r\nRetry-After: 2' in head
        assert body == b'Too many connections\n'
    lines = [r.getMessage() for r in caplog.records if 'Refused' in r.getMessage()]
    # one line at the first refusal, the rest summed up (here: at shutdown)
    assert 1 <= len(lines) <= 3, lines
    assert sum(int(re.match(r'Refused (\d+)', line).group(1)) for line in lines) \
        == clients


# -- a stream outlives its client --------------------------------------------------------

@pytest.mark.parametrize('how', ['close', 'reset'])
@pytest.mark.parametrize('path', ['sync-frames', 'async-frames', 'async-slow'])
def test_a_client_leaving_closes_an_endless_stream_within_a_second(events, path, how):
    with _live_server(make_app(events)) as server:
        s = connect(server)
        s.sendall(b'GET /%s HTTP/1.1\r\nHost: x\r\n\r\n' % path.encode())
        data = b''
        while b'--frame' not in data:
            data += s.recv(65536)
        if how == 'reset':
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        s.close()
        assert events[path].wait(1.0), 'the body ran on after its client left'
        assert wait_until(lambda: not server.connections)


# -- requests a proxy would read differently ---------------------------------------------

SMUGGLING = [
    # a header line ended by a bare LF among CRLF lines
    b'POST /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\nContent-Length: 5\r\n\r\nhello',
    b'GET / HTTP/1.1\r\nHost: x\r\n\n',
    # Content-Length as a list, or repeated
    b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello',
    b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello',
    # two different Content-Types
    b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n'
    b'Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}',
    # '_' names that read as framing fields once '-' and '_' are the same
    b'POST /echo HTTP/1.1\r\nHost: x\r\nContent_Length: 5\r\n\r\nhello',
    b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n',
    # a bare LF in the chunked framing of a CRLF request
    b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
    b'5\nhello\r\n0\r\n\r\n',
]


@pytest.mark.parametrize('raw', SMUGGLING, ids=[str(i) for i in range(len(SMUGGLING))])
def test_ambiguous_requests_are_400_and_closed(events, raw):
    with _live_server(make_app(events)) as server:
        s = connect(server)
        s.sendall(raw)
        answer = recv_all(s)
        assert answer.startswith(b'HTTP/1.1 400 '), answer[:100]
        assert b'Connection: close' in answer


def test_a_request_in_bare_lf_throughout_still_works(events):
    with _live_server(make_app(events)) as server:
        s = connect(server)
        s.sendall(b'POST /echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n'
                  b'Connection: close\n\n5\nhello\n0\n\n')
        answer = recv_all(s)
        assert answer.startswith(b'HTTP/1.1 200 ') and answer.endswith(b'hello')


# -- start_server(start_serving=False) -----------------------------------------------------

def test_start_server_without_serving_returns_the_server():
    app = Microdot()
    seen = []

    @app.route('/')
    async def index(req):
        return 'Hello, World!'

    @app.on_startup  # noqa: E301
    def started():
        seen.append('startup')

    @app.on_shutdown
    def stopped():
        seen.append('shutdown')

    port = free_port()

    async def main():
        server = await app.start_server('127.0.0.1', port, start_serving=False)
        assert app.server is server and seen == ['startup']
        assert not server.is_serving()
        assert server.sockets[0].getsockname()[1] == port
        with pytest.raises(OSError):  # bound, but not accepting yet
            await asyncio.open_connection('127.0.0.1', port)
        task = asyncio.create_task(server.serve_forever())
        while not server.is_serving():
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient() as client:
            res = await client.get('http://127.0.0.1:%d/' % port)
        assert res.text == 'Hello, World!'
        app.shutdown()
        assert await asyncio.wait_for(task, 10) is None  # returns, no CancelledError
        assert seen == ['startup', 'shutdown'] and app.server is None

    asyncio.run(main())


def test_a_server_not_started_can_be_closed():
    app = Microdot()
    seen = []
    app.on_shutdown(lambda: seen.append('shutdown'))

    async def main():
        async with await app.start_server('127.0.0.1', 0, start_serving=False) as server:
            assert not server.is_serving()
        assert seen == ['shutdown']

    asyncio.run(main())


def test_clients_are_counted_by_ipv4_address_or_ipv6_slash_64():
    from microdot.server import _client_key
    assert _client_key(('127.0.0.1', 5000), socket.AF_INET) == '127.0.0.1'
    a = _client_key(('2001:db8:1:2::1', 5000, 0, 0), socket.AF_INET6)
    b = _client_key(('2001:db8:1:2:ffff::9', 6000, 0, 0), socket.AF_INET6)
    c = _client_key(('2001:db8:1:3::1', 5000, 0, 0), socket.AF_INET6)
    assert a == b != c  # one /64, one client
    assert _client_key(('::ffff:10.0.0.1', 1, 0, 0), socket.AF_INET6) == '10.0.0.1'
    assert _client_key('', socket.AF_UNIX) is None
