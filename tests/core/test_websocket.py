"""microdot.websocket through the in-process test client (real handshake and framing)."""
import asyncio
import logging

import pytest

from microdot import Microdot, Request, abort
from microdot.streams import AsyncBytesIO
from microdot.test_client import TestClient
from microdot.websocket import (FramedTransport, WebSocket, WebSocketError,
                                message_size_limit, websocket_upgrade, with_websocket)
from microdot import ws_protocol as wsp


def run(coro):
    return asyncio.run(coro)


def echo_app(**options):
    app = Microdot()

    @app.route('/echo')
    @with_websocket(**options)
    async def echo(request, ws):
        while True:
            await ws.send(await ws.receive())

    return app


class Recorder:
    """A writer that keeps what the server wrote."""

    def __init__(self):
        self.data = b''
        self.closed = False

    async def awrite(self, data):
        self.data += data

    async def aclose(self):
        self.closed = True


def client_frames(*items):
    """Masked frames, as a client sends them: str/bytes messages or (data, opcode, fin)."""
    conn = wsp.WebSocketConnection(is_client=True)
    out = b''
    for item in items:
        if isinstance(item, tuple):
            data, opcode, fin = item
            if opcode in (wsp.OP_PING, wsp.OP_PONG):
                out += conn.ping(data) if opcode == wsp.OP_PING else conn.pong(data)
            else:
                out += conn.send(data, opcode, fin=fin)
        elif item is None:
            out += conn.close(1000)
        else:
            out += conn.send(item)
    return out


def unmasked_text(text):
    payload = text.encode()
    return bytes((0x81, len(payload))) + payload


def raw_session(app, path, wire, headers=None):
    """Run a WebSocket request whose client bytes are ``wire``; return the decoded
    response head and the events the server sent."""
    pairs, key = wsp.client_handshake_headers()
    hdrs = dict(pairs)
    hdrs.update(headers or {})
    reader, writer = AsyncBytesIO(wire), Recorder()
    run(TestClient(app).request('GET', path, headers=hdrs, sock=(reader, writer)))
    head, _, rest = writer.data.partition(b'\r\n\r\n')
    conn = wsp.WebSocketConnection(is_client=True, max_message_size=None)
    conn.receive_data(rest)
    conn.receive_data(b'')
    events = [e for e in conn.events() if not (isinstance(e, wsp.Close)
                                                and e.code == wsp.CLOSE_ABNORMAL)]
    return head, events, writer


def close_of(events):
    closes = [e for e in events if isinstance(e, wsp.Close)]
    assert len(closes) == 1, events
    return closes[0]


# -- echo and messages ------------------------------------------------------------

def test_echo_text_and_binary():
    results = []

    def client():
        results.append((yield 'hello'))
        results.append((yield b'\x00\x01\xff'))
        results.append((yield 'h\u00e9llo \U0001f600'))
        results.append((yield b'x' * 70000))

    res = run(TestClient(echo_app(max_message_length=0)).websocket('/echo', client))
    assert res.status_code == 101
    assert res.headers['Upgrade'] == 'websocket'
    assert results == ['hello', b'\x00\x01\xff', 'h\u00e9llo \U0001f600', b'x' * 70000]
    assert res.close_code == 1000  # the client ended: the server echoed its Close


def test_async_generator_client_and_server_first_message():
    app = Microdot()

    @app.route('/greet')
    @with_websocket
    async def greet(request, ws):
        await ws.send('welcome')
        name = await ws.receive()
        await ws.send('hi ' + name)

    seen = []

    async def client():
        seen.append((yield None))   # nothing to send yet: wait for the greeting
        seen.append((yield 'bob'))

    res = run(TestClient(app).websocket('/greet', client))
    assert seen == ['welcome', 'hi bob']
    assert res.close_code == 1000


def test_reads_without_reply_give_none_like_microdot():
    app = Microdot()

    @app.route('/two')
    @with_websocket
    async def two(request, ws):
        a = await ws.receive()
        b = await ws.receive()
        await ws.send(a + b)

    seen = []

    def client():
        seen.append((yield 'a'))
        seen.append((yield 'b'))

    run(TestClient(app).websocket('/two', client))
    assert seen == [None, 'ab']


def test_send_opcodes_and_constants():
    assert (WebSocket.CONT, WebSocket.TEXT, WebSocket.BINARY, WebSocket.CLOSE,
            WebSocket.PING, WebSocket.PONG) == (0, 1, 2, 8, 9, 10)
    app = Microdot()

    @app.route('/ops')
    @with_websocket
    async def ops(request, ws):
        await ws.receive()
        await ws.send('as bytes', WebSocket.BINARY)
        await ws.send(b'as text', WebSocket.TEXT)
        await ws.send(bytearray(b'ba'))
        await ws.send(b'', WebSocket.PING)
        await ws.send('', WebSocket.CLOSE)
        with pytest.raises(WebSocketError):
            await ws.send('after close')

    seen = []

    def client():
        seen.append((yield 'go'))
        seen.append((yield None))
        seen.append((yield None))

    res = run(TestClient(app).websocket('/ops', client))
    assert seen == [b'as bytes', 'as text', b'ba']
    assert res.close_code == 1000


def test_fragmented_message_ping_and_close_from_raw_client():
    wire = client_frames(('frag', wsp.OP_TEXT, False), (b'\x01', wsp.OP_PING, True),
                         ('mented', wsp.OP_CONT, True), None)
    head, events, writer = raw_session(echo_app(), '/echo', wire)
    assert head.startswith(b'HTTP/1.1 101 ')
    assert events[0] == wsp.Pong(b'\x01')
    assert events[1] == wsp.Message('fragmented')
    assert close_of(events).code == 1000
    assert writer.closed


def test_client_close_is_not_an_error(caplog):
    app = Microdot()
    got = []

    @app.route('/ws')
    @with_websocket
    async def ws_route(request, ws):
        try:
            await ws.receive()
        except WebSocketError as exc:
            got.append((exc.code, exc.reason))
            raise

    conn = wsp.WebSocketConnection(is_client=True)
    head, events, _ = raw_session(app, '/ws', conn.close(4001, 'gone'))
    assert got == [(4001, 'gone')]
    assert close_of(events).code == 4001   # the server echoes the client's code
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_client_dropping_connection_gives_1006():
    app = Microdot()
    got = []

    @app.route('/ws')
    @with_websocket
    async def ws_route(request, ws):
        try:
            await ws.receive()
        except WebSocketError as exc:
            got.append(exc.code)

    raw_session(app, '/ws', b'')
    assert got == [1006]


def test_close_with_code_and_reason():
    app = Microdot()

    @app.route('/bye')
    @with_websocket
    async def bye(request, ws):
        await ws.receive()
        await ws.close(4000, 'see you')
        assert ws.closed
        with pytest.raises(WebSocketError):
            await ws.receive()

    def client():
        yield 'x'

    res = run(TestClient(app).websocket('/bye', client))
    assert (res.close_code, res.close_reason) == (4000, 'see you')


def test_handler_return_closes_with_1000():
    app = Microdot()

    @app.route('/once')
    @with_websocket
    async def once(request, ws):
        await ws.send('only')

    seen = []

    def client():
        seen.append((yield None))
        seen.append((yield 'ignored'))

    res = run(TestClient(app).websocket('/once', client))
    assert seen[0] == 'only'
    assert res.close_code == 1000


def test_handler_exception_closes_with_1011_and_is_logged(caplog):
    app = Microdot()

    @app.route('/boom')
    @with_websocket
    async def boom(request, ws):
        await ws.receive()
        raise RuntimeError('kaboom')

    def client():
        yield 'x'

    with caplog.at_level(logging.ERROR, logger='microdot.websocket'):
        res = run(TestClient(app).websocket('/boom', client))
    assert res.close_code == 1011
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and errors[0].exc_info[0] is RuntimeError


def test_client_generator_errors_fail_the_test():
    def client():
        yield 'x'
        raise AssertionError('client check failed')

    with pytest.raises(AssertionError, match='client check failed'):
        run(TestClient(echo_app()).websocket('/echo', client))


# -- protocol errors ------------------------------------------------------------

def test_unmasked_client_frame_closes_with_1002():
    head, events, writer = raw_session(echo_app(), '/echo', unmasked_text('hi'))
    assert head.startswith(b'HTTP/1.1 101 ')
    assert not [e for e in events if isinstance(e, wsp.Message)]
    assert close_of(events).code == 1002
    assert writer.closed


def test_invalid_utf8_closes_with_1007():
    wire = client_frames((b'ok \xff\xfe', wsp.OP_TEXT, True))
    _, events, _ = raw_session(echo_app(), '/echo', wire)
    assert close_of(events).code == 1007


def test_reserved_opcode_closes_with_1002():
    wire = client_frames('fine') + bytes((0x83, 0x80)) + b'\x00\x00\x00\x00'
    _, events, _ = raw_session(echo_app(), '/echo', wire)
    assert events[0] == wsp.Message('fine')
    assert close_of(events).code == 1002


# -- message size ------------------------------------------------------------------

def big_client(size, results):
    def client():
        results.append((yield b'a' * size))
    return client


def test_max_message_length_default_is_the_body_limit():
    # as in Microdot: -1, i.e. Request.max_body_length (16 KiB unless changed)
    assert WebSocket.max_message_length == -1
    limit = Request.max_body_length
    results = []
    res = run(TestClient(echo_app()).websocket('/echo', big_client(limit, results)))
    assert results == [b'a' * limit]
    res = run(TestClient(echo_app()).websocket('/echo', big_client(limit + 1, [])))
    assert res.close_code == 1009


def test_max_message_length_class_attribute(monkeypatch):
    monkeypatch.setattr(WebSocket, 'max_message_length', 100)
    results = []
    res = run(TestClient(echo_app()).websocket('/echo', big_client(100, results)))
    assert results == [b'a' * 100] and res.close_code == 1000
    res = run(TestClient(echo_app()).websocket('/echo', big_client(101, [])))
    assert res.close_code == 1009


def test_max_message_length_per_app_and_per_route():
    app = echo_app()
    app.websocket_max_message_length = 10
    assert run(TestClient(app).websocket('/echo', big_client(11, []))).close_code == 1009
    assert run(TestClient(app).websocket('/echo', big_client(10, []))).close_code == 1000
    app = echo_app(max_message_length=5)
    app.websocket_max_message_length = 10
    assert run(TestClient(app).websocket('/echo', big_client(6, []))).close_code == 1009


def test_max_message_length_special_values(monkeypatch):
    req = Request(Microdot(), ('127.0.0.1', 1), 'GET', '/', '1.1', {})
    monkeypatch.setattr(WebSocket, 'max_message_length', -1)
    assert message_size_limit(req) == Request.max_body_length
    monkeypatch.setattr(WebSocket, 'max_message_length', 0)
    assert message_size_limit(req) is None
    assert message_size_limit(req, 7) == 7


def test_text_message_too_big_closes_before_buffering():
    app = echo_app(max_message_length=1000)
    wire = client_frames(('x' * 600, wsp.OP_TEXT, False), ('y' * 600, wsp.OP_CONT, True))
    _, events, _ = raw_session(app, '/echo', wire)
    assert not [e for e in events if isinstance(e, wsp.Message)]
    assert close_of(events).code == 1009


# -- handshake --------------------------------------------------------------------

def test_missing_key_answers_400(caplog):
    caplog.set_level('INFO', logger='microdot')
    res = run(TestClient(echo_app()).websocket('/echo', big_client(1, []),
                                               headers={'Sec-WebSocket-Key': None}))
    assert res.status_code == 400
    assert res.text == '400 error'  # Microdot's abort(400) body; the detail is logged
    assert 'missing Sec-WebSocket-Key header' in caplog.text


def test_refused_handshake_goes_through_the_error_handlers():
    # Microdot answers a bad handshake with abort(400): the application's 400 handler
    # and after_error_request hooks see it, the after_request hooks do not
    app = echo_app()
    seen = []

    @app.errorhandler(400)
    async def bad_request(request):
        return 'no upgrade here', 400

    @app.after_request
    async def after(request, response):
        seen.append('after_request')

    @app.after_error_request
    async def after_error(request, response):
        seen.append('after_error_request')

    res = run(TestClient(app).get('/echo'))
    assert (res.status_code, res.text) == (400, 'no upgrade here')
    assert seen == ['after_error_request']


def test_bad_key_and_missing_upgrade_answer_400():
    client = TestClient(echo_app())
    res = run(client.websocket('/echo', big_client(1, []),
                               headers={'Sec-WebSocket-Key': 'short'}))
    assert res.status_code == 400
    res = run(client.get('/echo'))  # a plain GET on a WebSocket route
    assert res.status_code == 400
    res = run(client.websocket('/echo', big_client(1, []), headers={'Upgrade': 'h2c'}))
    assert res.status_code == 400


def test_wrong_version_answers_426_with_version_header():
    res = run(TestClient(echo_app()).websocket('/echo', big_client(1, []),
                                               headers={'Sec-WebSocket-Version': '8'}))
    assert res.status_code == 426
    assert res.headers['Sec-WebSocket-Version'] == '13'


def test_subprotocol_negotiation():
    app = Microdot()

    @app.route('/chat')
    @with_websocket(subprotocols=['chat.v1', 'chat.v2'])
    async def chat(request, ws):
        await ws.send(ws.subprotocol or 'none')

    def client():
        seen.append((yield None))

    seen = []
    res = run(TestClient(app).websocket(
        '/chat', client, headers={'Sec-WebSocket-Protocol': 'other, chat.v2, chat.v1'}))
    assert res.headers['Sec-WebSocket-Protocol'] == 'chat.v2'  # client preference
    assert seen == ['chat.v2']
    seen = []
    res = run(TestClient(app).websocket('/chat', client,
                                        headers={'Sec-WebSocket-Protocol': 'other'}))
    assert 'Sec-WebSocket-Protocol' not in res.headers
    assert seen == ['none']


def test_websocket_upgrade_after_checks():
    app = Microdot()

    @app.route('/private')
    async def private(request):
        if request.args.get('token') != 'ok':
            abort(401)
        ws = await websocket_upgrade(request, subprotocols=['x'])
        await ws.send('secret ' + (ws.subprotocol or ''))

    seen = []

    def client():
        seen.append((yield None))

    client_ = TestClient(app)
    assert run(client_.websocket('/private', client)).status_code == 401
    res = run(client_.websocket('/private?token=ok', client,
                                headers={'Sec-WebSocket-Protocol': 'x'}))
    assert res.status_code == 101
    assert seen == ['secret x']
    assert res.close_code == 1000  # closed by the after-request hook
    res = run(client_.websocket('/private?token=ok', client,
                                headers={'Sec-WebSocket-Version': '7'}))
    assert res.status_code == 426


def test_pipelined_frames_after_handshake_are_read():
    """The test client hands the first frames over together with the handshake."""
    wire = client_frames('one', 'two', None)
    _, events, _ = raw_session(echo_app(), '/echo', wire)
    assert [e.data for e in events if isinstance(e, wsp.Message)] == ['one', 'two']


# -- the transport contract -------------------------------------------------------

class MemoryTransport:
    """A minimal adapter transport (as ASGI would provide) following the contract."""

    def __init__(self, incoming):
        self.incoming = list(incoming)
        self.sent = []
        self.accepted = None
        self.closed = None

    async def accept(self, subprotocol, headers):
        self.accepted = (subprotocol, headers)

    async def receive(self):
        if not self.incoming:
            raise WebSocketError('closed', 1000, '')
        return self.incoming.pop(0)

    async def send(self, data):
        self.sent.append(data)

    async def close(self, code=1000, reason=''):
        if self.closed is None:
            self.closed = (code, reason)


def test_adapter_supplied_transport():
    transports = []
    app = echo_app(subprotocols=['p'])

    @app.before_request
    async def install(request):
        def factory(req, subprotocols):
            assert req is request and subprotocols == ['p']
            transports.append(MemoryTransport(['a', b'b', 'c' * 50]))
            return transports[-1]
        request.websocket_transport = factory

    app.websocket_max_message_length = 40
    # an adapter request carries no Sec-WebSocket-Key: the adapter validated it
    res = run(TestClient(app).get('/echo', headers={'Sec-WebSocket-Protocol': 'p'}))
    assert res.status_code is None  # already handled
    t = transports[0]
    assert t.accepted == ('p', [])
    assert t.sent == ['a', b'b']
    assert t.closed == (1009, 'message too big')  # checked after the fact


def test_framed_transport_over_stream_pair():
    async def main():
        key = 'dGhlIHNhbXBsZSBub25jZQ=='
        writer = Recorder()
        t = FramedTransport(AsyncBytesIO(client_frames('hi', None)), writer,
                            accept_key=wsp.accept_key(key))
        await t.accept('proto', [('X-Extra', '1')])
        assert await t.receive() == 'hi'
        with pytest.raises(WebSocketError) as exc:
            await t.receive()
        assert exc.value.code == 1000
        await t.close()  # already closed: nothing more
        return writer

    writer = run(main())
    head = writer.data.split(b'\r\n\r\n')[0]
    assert b'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=' in head
    assert b'Sec-WebSocket-Protocol: proto' in head
    assert b'X-Extra: 1' in head
