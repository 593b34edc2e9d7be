"""WebSocket and SSE on the built-in server, with real clients on a loopback socket."""
import asyncio
import base64
import os
import socket
import threading

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from microdot import Microdot
from microdot import ws_protocol as wsp
from microdot.sse import with_sse
from microdot.websocket import WebSocketError, with_websocket
from support import live_server


def make_app():
    app = Microdot()
    app.state = {'gate': asyncio.Event(), 'finally': threading.Event()}

    @app.route('/echo')
    @with_websocket(max_message_length=2 << 20)
    async def echo(request, ws):
        while True:
            await ws.send(await ws.receive())

    @app.route('/small')
    @with_websocket(max_message_length=1000)
    async def small(request, ws):
        while True:
            await ws.send(await ws.receive())

    @app.route('/chat')
    @with_websocket(subprotocols=['chat.v1', 'chat.v2'])
    async def chat(request, ws):
        await ws.send('protocol=%s' % ws.subprotocol)
        await ws.receive()

    @app.route('/bye')
    @with_websocket
    async def bye(request, ws):
        await ws.receive()
        await ws.close(4000, 'see you')

    @app.route('/boom')
    @with_websocket
    async def boom(request, ws):
        await ws.receive()
        raise RuntimeError('handler failure (expected by the test)')

    @app.route('/ticker')
    @with_websocket
    async def ticker(request, ws):
        async def tick():
            for i in range(10000):
                await ws.send('tick %d' % i)
                await asyncio.sleep(0.005)
        task = asyncio.ensure_future(tick())
        try:
            while await ws.receive() != 'stop':
                pass
            task.cancel()
            await ws.send('stopped')
        finally:
            task.cancel()

    @app.route('/closer')
    @with_websocket
    async def closer(request, ws):
        await ws.receive()

        async def close_soon():
            await asyncio.sleep(0.05)
            await ws.close(4002, 'from another task')
        task = asyncio.ensure_future(close_soon())
        try:
            await ws.receive()  # blocked here while the other task closes
        except WebSocketError as exc:
            app.state['closer'] = exc.code
        await task

    @app.route('/sender')
    @with_websocket
    async def sender(request, ws):
        try:
            while True:  # never receives: only a failing send() ends it
                await ws.send('news')
                await asyncio.sleep(0.01)
        except WebSocketError as exc:
            app.state['sender'] = exc.code
            raise

    @app.route('/open')
    async def open_gate(request):
        app.state['gate'].set()
        return 'opened'

    @app.route('/sse')
    @with_sse(keepalive=None)
    async def sse(request, sse):
        await sse.send('first')
        await app.state['gate'].wait()
        await sse.send({'second': True}, event='update', event_id='2')

    @app.route('/sse-idle')
    @with_sse(keepalive=0.1)
    async def sse_idle(request, sse):
        await sse.send('hello')
        await app.state['gate'].wait()
        await sse.send('after gate')

    @app.route('/sse-forever')
    @with_sse(keepalive=0.1)
    async def sse_forever(request, sse):
        try:
            await sse.send('start')
            await asyncio.Event().wait()  # nothing more, ever: only keep-alives
        finally:
            app.state['finally'].set()
            await sse.send('goodbye')

    return app


@pytest.fixture(scope='module')
def server():
    with live_server(make_app()) as srv:
        yield srv


@pytest.fixture
def fresh_server():
    with live_server(make_app()) as srv:
        yield srv


# -- WebSocket with the websockets client library ---------------------------------

def test_echo_text_and_binary(server):
    with ws_connect(server.ws_url + '/echo', max_size=None) as ws:
        ws.send('hello')
        assert ws.recv(timeout=5) == 'hello'
        ws.send(b'\x00\xff' * 10)
        assert ws.recv(timeout=5) == b'\x00\xff' * 10
        ws.send('h\u00e9llo \U0001f600')
        assert ws.recv(timeout=5) == 'h\u00e9llo \U0001f600'


def test_echo_one_mib_messages(server):
    big = os.urandom(1 << 20)
    text = 'x\u00e9' * (1 << 19)
    with ws_connect(server.ws_url + '/echo', max_size=None) as ws:
        ws.send(big)
        assert ws.recv(timeout=10) == big
        ws.send(text)
        assert ws.recv(timeout=10) == text


def test_fragmented_messages(server):
    with ws_connect(server.ws_url + '/echo') as ws:
        ws.send(['frag', 'men', 'ted'])
        assert ws.recv(timeout=5) == 'fragmented'
        ws.send([b'\x01' * 70000, b'\x02' * 5])
        assert ws.recv(timeout=5) == b'\x01' * 70000 + b'\x02' * 5


def test_ping_pong(server):
    with ws_connect(server.ws_url + '/echo') as ws:
        ws.send('keep the receive loop busy')
        assert ws.recv(timeout=5) == 'keep the receive loop busy'
        pong = ws.ping(b'are you there')
        ws.send('after ping')  # the server handles frames in order
        assert ws.recv(timeout=5) == 'after ping'
        assert pong.wait(5)


def test_close_code_and_reason_seen_by_client(server):
    with ws_connect(server.ws_url + '/bye') as ws:
        ws.send('go')
        with pytest.raises(ConnectionClosed) as exc:
            ws.recv(timeout=5)
    assert exc.value.rcvd.code == 4000
    assert exc.value.rcvd.reason == 'see you'


def test_client_close_is_echoed(server):
    with ws_connect(server.ws_url + '/echo') as ws:
        ws.close(4321, 'client done')
    assert ws.close_code == 4321  # the server echoes the code (RFC 6455 section 5.5.1)


def test_handler_error_closes_with_1011(server):
    with ws_connect(server.ws_url + '/boom') as ws:
        ws.send('go')
        with pytest.raises(ConnectionClosed) as exc:
            ws.recv(timeout=5)
    assert exc.value.rcvd.code == 1011


def test_message_too_big_closes_with_1009(server):
    with ws_connect(server.ws_url + '/small') as ws:
        ws.send('x' * 1000)
        assert ws.recv(timeout=5) == 'x' * 1000
        ws.send('x' * 1001)
        with pytest.raises(ConnectionClosed) as exc:
            ws.recv(timeout=5)
    assert exc.value.rcvd.code == 1009


def test_subprotocol(server):
    with ws_connect(server.ws_url + '/chat', subprotocols=['chat.v2', 'chat.v1']) as ws:
        assert ws.subprotocol == 'chat.v2'
        assert ws.recv(timeout=5) == 'protocol=chat.v2'
    with ws_connect(server.ws_url + '/chat') as ws:
        assert ws.subprotocol is None
        assert ws.recv(timeout=5) == 'protocol=None'


def test_refused_handshake_gets_http_answer_and_keeps_connection(server):
    with httpx.Client(base_url=server.url, timeout=5) as client:
        res = client.get('/echo')
        assert res.status_code == 400
        res = client.get('/echo', headers={
            'Upgrade': 'websocket', 'Connection': 'Upgrade',
            'Sec-WebSocket-Key': base64.b64encode(os.urandom(16)).decode(),
            'Sec-WebSocket-Version': '8'})
        assert res.status_code == 426
        assert res.headers['Sec-WebSocket-Version'] == '13'
        assert client.get('/open').status_code == 200  # same keep-alive connection


def test_sending_from_another_task_while_receiving(server):
    with ws_connect(server.ws_url + '/ticker') as ws:
        assert [ws.recv(timeout=5) for _ in range(3)] == ['tick 0', 'tick 1', 'tick 2']
        ws.send('stop')
        while True:
            msg = ws.recv(timeout=5)
            if msg == 'stopped':
                break
            assert msg.startswith('tick ')
        with pytest.raises(ConnectionClosed) as exc:
            ws.recv(timeout=5)
    assert exc.value.rcvd.code == 1000


def test_close_from_another_task_while_receiving(server):
    with ws_connect(server.ws_url + '/closer') as ws:
        ws.send('go')
        with pytest.raises(ConnectionClosed) as exc:
            ws.recv(timeout=5)
    assert (exc.value.rcvd.code, exc.value.rcvd.reason) == (4002, 'from another task')
    assert server.app.state.get('closer') == 4002


# -- WebSocket with a raw socket ---------------------------------------------------

@pytest.mark.parametrize('path', ['/echo', '/sender'])
def test_server_shutdown_closes_websockets_with_1001(path):
    app = make_app()
    # the grace period is longer than live_server waits for the server to stop: the
    # server only stops in time if the sessions end by themselves, after the 1001
    with live_server(app, shutdown_timeout=60) as srv, \
            ws_connect(srv.ws_url + path) as ws:
        if path == '/echo':
            ws.send('before')
            assert ws.recv(timeout=5) == 'before'
        else:
            assert ws.recv(timeout=5) == 'news'
        srv.loop.call_soon_threadsafe(srv.shutdown)
        with pytest.raises(ConnectionClosed) as info:
            while True:
                ws.recv(timeout=5)
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == \
            (1001, 'server shutting down')
    if path == '/sender':
        assert app.state['sender'] == 1001


def test_websocket_opened_during_shutdown_is_closed_with_1001():
    app = make_app()
    entered = threading.Event()

    @app.route('/late')
    @with_websocket
    async def late(request, ws):
        await ws.receive()

    @app.before_request
    async def stop_first(request):
        if request.path == '/late':  # the server starts stopping before the upgrade
            request.app.server_for_test.shutdown()
            entered.set()

    with live_server(app, shutdown_timeout=60) as srv:
        app.server_for_test = srv
        with ws_connect(srv.ws_url + '/late') as ws:
            assert entered.is_set()
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
            assert info.value.rcvd.code == 1001


def handshake_bytes(path='/echo'):
    key = base64.b64encode(os.urandom(16)).decode()
    return ('GET %s HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n'
            'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n'
            'Sec-WebSocket-Version: 13\r\n\r\n' % (path, key)).encode(), key


def read_events(sock, until, timeout=5):
    """Read the 101 head, then decode server frames until ``until(events)`` or EOF."""
    sock.settimeout(timeout)
    buf = b''
    while b'\r\n\r\n' not in buf:
        chunk = sock.recv(65536)
        assert chunk, 'closed before the handshake answer: %r' % buf
        buf += chunk
    head, _, rest = buf.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 101 ')
    conn = wsp.WebSocketConnection(is_client=True, max_message_size=None)
    if rest:
        conn.receive_data(rest)  # (b'' would mean EOF)
    events = []
    eof = False
    while True:
        events.extend(conn.events())
        if until(events) or eof:
            return events
        chunk = sock.recv(65536)
        conn.receive_data(chunk)
        eof = not chunk


def test_unmasked_frame_closes_with_1002(server):
    request, _ = handshake_bytes()
    with socket.create_connection(('127.0.0.1', server.port), timeout=5) as s:
        s.sendall(request)
        s.sendall(bytes((0x81, 2)) + b'hi')  # a client frame without a mask
        events = read_events(s, lambda ev: any(isinstance(e, wsp.Close) for e in ev))
        closes = [e for e in events if isinstance(e, wsp.Close)]
        assert closes[0].code == 1002
        assert not [e for e in events if isinstance(e, wsp.Message)]
        s.settimeout(5)
        assert s.recv(100) == b''  # the server dropped the connection


def test_handshake_and_first_frames_in_one_send(server):
    request, _ = handshake_bytes()
    client = wsp.WebSocketConnection(is_client=True)
    frames = client.send('pipelined one') + client.send(b'two') + client.close(1000)
    with socket.create_connection(('127.0.0.1', server.port), timeout=5) as s:
        s.sendall(request + frames)
        events = read_events(s, lambda ev: any(isinstance(e, wsp.Close) for e in ev))
        assert events[:2] == [wsp.Message('pipelined one'), wsp.Message(b'two')]
        assert events[2].code == 1000
        s.settimeout(5)
        assert s.recv(100) == b''  # the server closes TCP after the close handshake


# -- SSE with httpx ----------------------------------------------------------------

def test_sse_events_arrive_as_produced(fresh_server):
    url = fresh_server.url
    with httpx.stream('GET', url + '/sse', timeout=5) as res:
        assert res.status_code == 200
        assert res.headers['content-type'] == 'text/event-stream'
        assert res.headers['cache-control'] == 'no-cache'
        assert res.headers['x-accel-buffering'] == 'no'
        lines = res.iter_lines()
        assert next(lines) == 'data: first'  # before the event function finished
        assert next(lines) == ''
        assert httpx.get(url + '/open', timeout=5).text == 'opened'
        rest = list(lines)
    assert rest == ['event: update', 'id: 2', 'data: {"second": true}', '']


def test_sse_keepalive_comment_while_idle(fresh_server):
    url = fresh_server.url
    with httpx.stream('GET', url + '/sse-idle', timeout=5) as res:
        lines = res.iter_lines()
        assert next(lines) == 'data: hello'
        assert next(lines) == ''
        assert next(lines) == ': keep-alive'  # sent after 0.1 s of silence
        httpx.get(url + '/open', timeout=5)
        rest = [line for line in lines if line and line != ': keep-alive']
    assert rest == ['data: after gate']


def test_sse_event_function_cancelled_when_client_goes_away(fresh_server):
    flag = fresh_server.app.state['finally']
    with httpx.stream('GET', fresh_server.url + '/sse-forever', timeout=5) as res:
        lines = res.iter_lines()
        assert next(lines) == 'data: start'
        assert not flag.is_set()
    # leaving the block closes the connection; a keep-alive write notices it
    assert flag.wait(5), "the event function's finally did not run"


# -- SSE and the server's shutdown -------------------------------------------------

def test_server_shutdown_ends_sse_streams_cleanly():
    """The stream ends with its last chunk (httpx would raise on a cut chunked body)
    right away, not after ``shutdown_timeout``: live_server waits 15 s at most."""
    app = make_app()
    with live_server(app, shutdown_timeout=60) as srv:
        with httpx.stream('GET', srv.url + '/sse-forever', timeout=5) as res:
            lines = res.iter_lines()
            assert next(lines) == 'data: start'
            srv.loop.call_soon_threadsafe(srv.shutdown)
            rest = [line for line in lines if line and line != ': keep-alive']
        assert rest == ['data: goodbye']
        assert app.state['finally'].is_set()


def test_sse_stream_starting_during_shutdown_ends_at_once():
    app = make_app()

    @app.before_request
    async def stop_first(request):
        if request.path == '/sse-forever':  # shutdown begins while the handler runs
            request.app.server_for_test.shutdown()

    with live_server(app, shutdown_timeout=60) as srv:
        app.server_for_test = srv
        res = httpx.get(srv.url + '/sse-forever', timeout=5)
        assert res.status_code == 200
        assert res.headers['content-type'] == 'text/event-stream'
        assert res.text == ''
        assert res.headers['connection'] == 'close'


def test_connection_closes_after_a_stream_ended_by_the_shutdown():
    """A keep-alive client that stays connected after the stream ended is not kept
    waiting for its next request (keep_alive_timeout): the server is stopping."""
    app = make_app()
    with live_server(app, shutdown_timeout=60, keep_alive_timeout=60) as srv:
        with socket.create_connection(('127.0.0.1', srv.port), timeout=10) as s:
            s.sendall(b'GET /sse-forever HTTP/1.1\r\nHost: test\r\n\r\n')
            buf = b''
            while b'data: start' not in buf:
                chunk = s.recv(65536)
                assert chunk, buf
                buf += chunk
            srv.loop.call_soon_threadsafe(srv.shutdown)
            while True:
                chunk = s.recv(65536)  # times out (10 s) if the server keeps it open
                if not chunk:
                    break
                buf += chunk
        assert buf.endswith(b'0\r\n\r\n'), buf[-200:]  # the stream's last chunk
        assert b'data: goodbye' in buf
