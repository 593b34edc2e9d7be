"""WebSocket through the WSGI adapter, in process: a socket pair stands in for the
connection gunicorn exposes, and a stand-in for gunicorn's response object records
what the adapter tells the server."""
import asyncio
import gc
import io
import logging
import os
import socket
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from wsgiref.util import setup_testing_defaults

import pytest

from microdot import ws_protocol as wsp
from microdot.websocket import websocket_upgrade, with_websocket
from microdot.wsgi import Microdot, SocketTakeover


class FakeGunicornResponse:
    """The parts of ``gunicorn.http.wsgi.Response`` the adapter relies on."""

    def __init__(self):
        self.status = None
        self.headers = None
        self.headers_sent = False
        self.chunked = True  # what gunicorn < 25 computes for a 101
        self.must_close = False
        self.written = []

    def start_response(self, status, headers, exc_info=None):
        self.status = status
        self.headers = headers
        return self.written.append

    def force_close(self):
        self.must_close = True


class Client:
    """A minimal WebSocket client over one end of a socket pair."""

    def __init__(self, sock):
        self.sock = sock
        self.conn = wsp.WebSocketConnection(is_client=True)
        self.events = deque()
        self.head = b''

    def read_head(self):
        data = b''
        while b'\r\n\r\n' not in data:
            chunk = self.sock.recv(4096)
            assert chunk, 'EOF before the 101 head'
            data += chunk
        self.head, _, rest = data.partition(b'\r\n\r\n')
        if rest:  # (b'' would mean EOF)
            self.conn.receive_data(rest)
        return self.head

    def send(self, data):
        self.sock.sendall(self.conn.send(data))

    def close(self, code=1000, reason=''):
        self.sock.sendall(self.conn.close(code, reason))

    def event(self):
        while not self.events:
            self.events.extend(self.conn.events())
            if self.events:
                break
            self.conn.receive_data(self.sock.recv(65536))
        return self.events.popleft()

    def eof(self):
        """True once the server half-closed the connection and sent nothing more."""
        return self.sock.recv(65536) == b'' and not list(self.conn.events())


def make_app():
    app = Microdot()
    app.log = []

    @app.route('/echo')
    @with_websocket(max_message_length=2 << 20)
    async def echo(request, ws):
        while True:
            await ws.send(await ws.receive())

    @app.route('/chat')
    @with_websocket(subprotocols=['chat.v1'])
    async def chat(request, ws):
        await ws.send('protocol=%s' % ws.subprotocol)

    @app.route('/ticker')
    @with_websocket
    async def ticker(request, ws):
        async def tick():
            for i in range(1000):
                await ws.send('tick %d' % i)
                await asyncio.sleep(0.001)
        task = asyncio.ensure_future(tick())
        try:
            assert await ws.receive() == 'stop'
            task.cancel()
            await ws.send('stopped')
        finally:
            task.cancel()

    @app.route('/manual')
    async def manual(request):
        if request.args.get('token') != 'ok':
            return 'Unauthorized', 401
        ws = await websocket_upgrade(request)
        await ws.send('manual')
        app.log.append(await ws.receive())

    @app.route('/manual-fail')
    async def manual_fail(request):
        ws = await websocket_upgrade(request)
        await ws.send('about to fail')
        raise RuntimeError('failure after the upgrade (expected by the test)')

    @app.route('/abort')
    @with_websocket
    async def abort(request, ws):
        def signal_handler():  # gunicorn's worker-timeout abort: SystemExit raised
            raise SystemExit(1)  # while the loop waits, outside the handler

        await ws.receive()
        asyncio.get_running_loop().call_soon(signal_handler)
        await ws.receive()

    @app.route('/plain')
    def plain(request):
        return 'plain'

    @app.before_request
    def guard(request):
        if request.path == '/echo' and request.args.get('deny'):
            return 'Forbidden', 403

    return app


def environ_for(path, headers, sock=None, method='GET'):
    env = {}
    setup_testing_defaults(env)
    env['REQUEST_METHOD'] = method
    env['SERVER_PROTOCOL'] = 'HTTP/1.1'
    env['SERVER_SOFTWARE'] = 'gunicorn/test'
    path, _, env['QUERY_STRING'] = path.partition('?')
    env['PATH_INFO'] = path
    env['wsgi.input'] = io.BytesIO(b'')
    for name, value in headers:
        env['HTTP_' + name.upper().replace('-', '_')] = value
    if sock is not None:
        env['gunicorn.socket'] = sock
    return env


@pytest.fixture
def server_thread():
    """One thread serving every call of a test, as a gunicorn worker thread does."""
    pool = ThreadPoolExecutor(1)
    pool.sockets = []
    try:
        yield pool
    finally:
        for sock in pool.sockets:  # a failed test must not leave the thread blocked
            sock.close()
        pool.shutdown(wait=True)


def open_session(app, server_thread, path='/echo', subprotocols=()):
    """Start ``app`` on a socket pair; returns (client, gunicorn response, future,
    server socket)."""
    server_sock, client_sock = socket.socketpair()
    server_thread.sockets.append(client_sock)
    client_sock.settimeout(10)
    headers, key = wsp.client_handshake_headers(subprotocols=subprotocols)
    env = environ_for(path, headers, server_sock)
    response = FakeGunicornResponse()
    future = server_thread.submit(lambda: list(app(env, response.start_response)))
    client = Client(client_sock)
    client.key = key
    client.server_sock = server_sock
    return client, response, future


def test_echo_session_takes_the_socket_over_and_hands_it_back(server_thread):
    app = make_app()
    client, response, future = open_session(app, server_thread)
    head = client.read_head()
    assert head.startswith(b'HTTP/1.1 101 Switching Protocols\r\n')
    assert b'Sec-WebSocket-Accept: ' + wsp.accept_key(client.key).encode() in head
    client.send('hello é')
    assert client.event().data == 'hello é'
    client.send(b'\x00\xff')
    assert client.event().data == b'\x00\xff'
    big = os.urandom(1 << 20)  # far beyond the socket buffer: partial, waiting writes
    client.send(big)
    assert client.event().data == big
    client.close(1000, 'bye')
    event = client.event()
    assert isinstance(event, wsp.Close) and event.code == 1000
    assert future.result(10) == []  # gunicorn gets no body to write
    assert client.eof()  # the server half-closed: FIN first, as RFC 6455 wants
    # what gunicorn was told: status for its access log, head already sent, no body
    # framing, and the connection is not kept alive
    assert response.status == '101 Switching Protocols'
    assert ('Sec-WebSocket-Accept', wsp.accept_key(client.key)) in response.headers
    assert response.headers_sent and not response.chunked and response.must_close
    assert response.written == []
    assert client.server_sock.gettimeout() is None  # blocking again, for gunicorn
    client.server_sock.close()
    client.sock.close()


def test_subprotocol_is_sent_and_reported(server_thread):
    client, response, future = open_session(make_app(), server_thread, '/chat',
                                            subprotocols=['x', 'chat.v1'])
    assert b'\r\nSec-WebSocket-Protocol: chat.v1' in client.read_head()
    assert client.event().data == 'protocol=chat.v1'
    assert isinstance(client.event(), wsp.Close)
    client.close()
    assert future.result(10) == []
    assert ('Sec-WebSocket-Protocol', 'chat.v1') in response.headers


def test_send_from_another_task_while_receiving(server_thread):
    client, _, future = open_session(make_app(), server_thread, '/ticker')
    client.read_head()
    assert [client.event().data for _ in range(20)] == ['tick %d' % i for i in range(20)]
    client.send('stop')
    while True:
        data = client.event().data
        if data == 'stopped':
            break
        assert data.startswith('tick ')
    assert client.event().code == 1000
    client.close()
    assert future.result(10) == []


def test_sessions_reuse_the_thread_loop_cleanly(server_thread):
    """Sessions and plain requests one after another on one thread and its loop:
    nothing stays registered with the loop after a session."""
    app = make_app()
    for i in range(5):
        client, _, future = open_session(app, server_thread)
        client.read_head()
        client.send('n%d' % i)
        assert client.event().data == 'n%d' % i
        client.close()
        assert future.result(10) == []
        client.sock.close()
        client.server_sock.close()
        status, body = server_thread.submit(plain_call, app, '/plain').result(10)
        assert (status, body) == ('200 OK', b'plain')
    loop = server_thread.submit(app._wsgi.loop).result()
    registered = server_thread.submit(lambda: len(loop._selector.get_map())).result()
    assert registered == 1  # only the loop's own self-pipe


def test_client_dropping_the_connection(server_thread):
    client, response, future = open_session(make_app(), server_thread)
    client.read_head()
    client.send('x')
    assert client.event().data == 'x'
    client.sock.close()  # no Close frame
    assert future.result(10) == []
    assert response.must_close


def test_manual_upgrade_refused_then_accepted(server_thread):
    app = make_app()
    client, response, future = open_session(app, server_thread, '/manual')
    assert future.result(10) == [b'Unauthorized']
    assert response.status == '401 Unauthorized' and not response.headers_sent
    assert client.server_sock.gettimeout() is None  # never touched
    client, response, future = open_session(app, server_thread, '/manual?token=ok')
    client.read_head()
    assert client.event().data == 'manual'
    client.send('thanks')
    assert client.event().code == 1000
    client.close()
    assert future.result(10) == []
    assert app.log == ['thanks']


def test_failure_after_a_manual_upgrade_closes_with_1011(server_thread):
    """The error response cannot be sent any more: the session ends with 1011."""
    client, response, future = open_session(make_app(), server_thread, '/manual-fail')
    client.read_head()
    assert client.event().data == 'about to fail'
    event = client.event()
    assert isinstance(event, wsp.Close) and event.code == 1011
    assert future.result(10) == []
    assert client.eof() and response.must_close


def test_before_request_refusal_is_an_http_answer(server_thread):
    client, response, future = open_session(make_app(), server_thread, '/echo?deny=1')
    assert future.result(10) == [b'Forbidden']
    assert response.status == '403 Forbidden' and not response.must_close


def test_interrupted_session_says_going_away(server_thread):
    """A BaseException out of the loop (gunicorn's worker-timeout abort raises
    SystemExit) still sends Close 1001 and restores the socket before propagating."""
    app = make_app()
    client, response, future = open_session(app, server_thread, '/abort')
    client.read_head()
    client.send('go')
    with pytest.raises(SystemExit):
        future.result(10)
    event = client.event()
    assert isinstance(event, wsp.Close) and event.code == 1001
    assert client.eof()
    assert client.server_sock.gettimeout() is None
    loop = server_thread.submit(app._wsgi.loop).result()
    fd = client.server_sock.fileno()
    assert fd not in server_thread.submit(loop._selector.get_map).result()
    with warnings.catch_warnings():  # the abandoned session, as in a dying worker
        warnings.simplefilter('ignore')
        server_thread.submit(loop.close).result()
        del loop, future  # the exception's traceback holds the session's task
        gc.collect()


# -- servers that expose no socket ---------------------------------------------------------

def plain_call(app, path, headers=(), **extra):
    env = environ_for(path, headers)
    env.update(extra)
    captured = {}

    def start_response(status, response_headers, exc_info=None):
        captured['status'] = status
        captured['headers'] = response_headers

    body = b''.join(app(env, start_response))
    return captured['status'], body


def upgrade_headers(version='13'):
    headers, _ = wsp.client_handshake_headers()
    return [(k, version if k == 'Sec-WebSocket-Version' else v) for k, v in headers]


def test_no_socket_answers_501_naming_a_server_that_works(caplog):
    app = make_app()
    with caplog.at_level(logging.WARNING, logger='microdot.wsgi'):
        status, body = plain_call(app, '/echo', upgrade_headers(),
                                  SERVER_SOFTWARE='waitress')
    assert status == '501 Not Implemented'
    assert b'gunicorn' in body and b'waitress' in body
    assert any('refused with 501' in r.getMessage() for r in caplog.records)


def test_socket_without_a_gunicorn_response_answers_501():
    """A ``gunicorn.socket`` alone is not enough: the adapter must be able to tell the
    server the connection is taken (gunicorn's response object)."""
    app = make_app()
    a, b = socket.socketpair()
    try:
        status, body = plain_call(app, '/echo', upgrade_headers(), **{'gunicorn.socket': a})
        assert status == '501 Not Implemented'
        assert a.gettimeout() is None
    finally:
        a.close()
        b.close()


def test_bad_handshakes_are_checked_before_the_socket():
    app = make_app()
    status, _ = plain_call(app, '/echo', upgrade_headers(version='8'))
    assert status == '426 Upgrade Required'
    status, _ = plain_call(app, '/echo', [('Upgrade', 'websocket')])
    assert status == '400 Bad Request'
    status, _ = plain_call(app, '/echo')  # no Upgrade at all
    assert status == '400 Bad Request'


def test_other_upgrades_on_normal_routes_are_plain_requests():
    app = make_app()
    status, body = plain_call(app, '/plain', [('Upgrade', 'h2c'),
                                              ('Connection', 'Upgrade, HTTP2-Settings')])
    assert (status, body) == ('200 OK', b'plain')
    status, _ = plain_call(app, '/nowhere', upgrade_headers())
    assert status == '404 Not Found'


def test_takeover_factory_is_set_only_for_upgrade_requests():
    app = make_app()
    seen = []

    @app.route('/peek')
    def peek(request):
        seen.append(getattr(request, 'websocket_transport', None))
        return ''

    plain_call(app, '/peek')
    plain_call(app, '/peek', [('Upgrade', 'websocket')])
    assert seen[0] is None and isinstance(seen[1], SocketTakeover)


def test_client_vanishing_before_the_head(server_thread):
    """The client is gone before the 101 goes out: the session ends, gunicorn still
    gets an empty body and a connection to close, and nothing is raised to it."""
    app = make_app()
    client, response, future = open_session(app, server_thread)
    client.sock.close()
    assert future.result(10) == []
    assert response.must_close


def test_websocket_names_importable_from_microdot_wsgi():
    """Microdot 2.x apps write ``from microdot.wsgi import Microdot, with_websocket``."""
    import microdot.websocket
    import microdot.wsgi
    for name in ('WebSocket', 'websocket_upgrade', 'with_websocket'):
        assert getattr(microdot.wsgi, name) is getattr(microdot.websocket, name)
        assert name in microdot.wsgi.__all__
