"""WebSocket (and SSE) over ASGI, with the adapter driven directly by scope/receive/send."""
import asyncio
import json

import pytest

from microdot.asgi import ASGIWebSocketTransport, Microdot, Response, abort
from microdot.sse import with_sse
from microdot.websocket import WebSocketError, websocket_upgrade, with_websocket

DENIAL = {'websocket.http.response': {}}


def run(coro):
    return asyncio.run(coro)


def ws_scope(path='/ws', headers=(), subprotocols=(), extensions=None, scheme='ws',
             root_path='', query=b''):
    scope = {'type': 'websocket', 'asgi': {'version': '3.0', 'spec_version': '2.4'},
             'http_version': '1.1', 'scheme': scheme, 'path': path,
             'raw_path': path.encode(), 'query_string': query, 'root_path': root_path,
             'headers': [(k.lower().encode('latin-1'), v.encode('latin-1'))
                         for k, v in headers],
             'client': ('127.0.0.1', 4321), 'server': ('127.0.0.1', 8000),
             'subprotocols': list(subprotocols)}
    if extensions is not None:
        scope['extensions'] = extensions
    return scope


class Peer:
    """The server side of one ASGI WebSocket connection, scripted by a test."""

    def __init__(self, app, scope, fail_send_after=None):
        self.app = app
        self.scope = scope
        self.inbox = asyncio.Queue()
        self.sent = []
        self.new_message = asyncio.Event()
        self.fail_send_after = fail_send_after
        self.waiting = asyncio.Event()
        self.inbox.put_nowait({'type': 'websocket.connect'})
        self.task = None

    def push(self, message):
        self.inbox.put_nowait(message)

    def text(self, data):
        self.push({'type': 'websocket.receive', 'bytes': None, 'text': data})

    def binary(self, data):
        self.push({'type': 'websocket.receive', 'bytes': data, 'text': None})

    def disconnect(self, code=1000, reason=''):
        self.push({'type': 'websocket.disconnect', 'code': code, 'reason': reason})

    async def receive(self):
        if self.inbox.empty():
            self.waiting.set()  # the app is blocked, waiting for the client
        message = await self.inbox.get()
        self.waiting.clear()
        return message

    async def send(self, message):
        if self.fail_send_after is not None and len(self.sent) >= self.fail_send_after:
            raise OSError('client disconnected')
        self.sent.append(message)
        self.new_message.set()

    def start(self):
        self.task = asyncio.ensure_future(self.app(self.scope, self.receive, self.send))
        return self

    async def next_sent(self, type_=None, timeout=5):
        """Wait (bounded) for the next message the app sends and return it."""
        index = getattr(self, '_read', 0)

        async def wait():
            while len(self.sent) <= index:
                self.new_message.clear()
                await self.new_message.wait()
        await asyncio.wait_for(wait(), timeout)
        self._read = index + 1
        message = self.sent[index]
        if type_ is not None:
            assert message['type'] == type_, message
        return message

    async def finish(self, timeout=5):
        await asyncio.wait_for(self.task, timeout)
        return self.sent

    async def run_to_end(self, timeout=5):
        self.start()
        return await self.finish(timeout)


def echo_app(**options):
    app = Microdot()
    seen = {}

    @app.route('/ws')
    @with_websocket(**options)
    async def ws(request, ws):
        seen['scheme'] = request.scheme
        seen['scope_type'] = request.asgi_scope['type']
        seen['subprotocol'] = ws.subprotocol
        try:
            while True:
                data = await ws.receive()
                if data == 'close-me':
                    await ws.close(4001, 'bye now')
                    return
                if data == 'crash':
                    raise RuntimeError('boom')
                await ws.send(data)
        except WebSocketError as exc:
            seen['error'] = (exc.code, exc.reason)
            raise

    @app.route('/plain')
    async def plain(request):
        return 'plain http'

    @app.route('/secret')
    @with_websocket
    async def secret(request, ws):
        abort(401)  # never reached: abort happens in the before_request below

    @app.before_request
    async def guard(request):
        if request.path == '/secret':
            abort(401)
        if request.path == '/teapot':
            return 'no tea for websockets', 418

    @app.route('/teapot')
    @with_websocket
    async def teapot(request, ws):
        pass

    return app, seen


def test_echo_text_and_binary_then_client_close():
    app, seen = echo_app()

    async def main():
        peer = Peer(app, ws_scope()).start()
        accept = await peer.next_sent('websocket.accept')
        assert accept['subprotocol'] is None and accept['headers'] == []
        peer.text('hello')
        assert await peer.next_sent() == {'type': 'websocket.send', 'text': 'hello'}
        peer.binary(b'\x00\xff')
        assert await peer.next_sent() == {'type': 'websocket.send', 'bytes': b'\x00\xff'}
        peer.disconnect(1000)
        return await peer.finish()

    sent = run(main())
    assert [m['type'] for m in sent] == ['websocket.accept', 'websocket.send',
                                         'websocket.send']  # nothing after disconnect
    assert seen['error'] == (1000, '')
    assert seen['scheme'] == 'http' and seen['scope_type'] == 'websocket'


def test_receive_reads_text_when_bytes_is_none_and_bytes_when_text_is_none():
    app, _ = echo_app()

    async def main():
        peer = Peer(app, ws_scope()).start()
        await peer.next_sent('websocket.accept')
        peer.push({'type': 'websocket.receive', 'bytes': None, 'text': 'only text'})
        peer.push({'type': 'websocket.receive', 'text': 'no bytes key'})
        peer.push({'type': 'websocket.receive', 'text': None, 'bytes': b'only bytes'})
        peer.push({'type': 'websocket.receive', 'bytes': b''})
        peer.push({'type': 'websocket.receive', 'bytes': None, 'text': ''})
        replies = [await peer.next_sent('websocket.send') for _ in range(5)]
        peer.disconnect()
        await peer.finish()
        return replies

    replies = run(main())
    assert replies[0] == {'type': 'websocket.send', 'text': 'only text'}
    assert replies[1] == {'type': 'websocket.send', 'text': 'no bytes key'}
    assert replies[2] == {'type': 'websocket.send', 'bytes': b'only bytes'}
    assert replies[3] == {'type': 'websocket.send', 'bytes': b''}
    assert replies[4] == {'type': 'websocket.send', 'text': ''}


def test_server_close_with_code_and_reason():
    app, _ = echo_app()

    async def main():
        peer = Peer(app, ws_scope())
        peer.text('close-me')
        return await peer.run_to_end()

    sent = run(main())
    assert sent[-1] == {'type': 'websocket.close', 'code': 4001, 'reason': 'bye now'}
    assert len([m for m in sent if m['type'] == 'websocket.close']) == 1


def test_handler_returning_closes_1000_and_raising_closes_1011(caplog):
    app = Microdot()

    @app.route('/once')
    @with_websocket
    async def once(request, ws):
        await ws.send('hi')

    app2, _ = echo_app()

    async def main():
        normal = await Peer(app, ws_scope('/once')).run_to_end()
        peer = Peer(app2, ws_scope())
        peer.text('crash')
        crashed = await peer.run_to_end()
        return normal, crashed

    normal, crashed = run(main())
    assert normal[-1] == {'type': 'websocket.close', 'code': 1000, 'reason': ''}
    assert crashed[-1] == {'type': 'websocket.close', 'code': 1011,
                           'reason': 'internal error'}
    assert 'Unhandled exception in WebSocket handler' in caplog.text


def test_disconnect_mid_receive_raises_websocket_error_with_the_code():
    app, seen = echo_app()

    async def main():
        peer = Peer(app, ws_scope()).start()
        await peer.next_sent('websocket.accept')
        await asyncio.wait_for(peer.waiting.wait(), 5)  # the handler is in receive()
        peer.disconnect(1001, 'going away')
        return await peer.finish()

    sent = run(main())
    assert seen['error'] == (1001, 'going away')
    assert [m['type'] for m in sent] == ['websocket.accept']


def test_disconnect_without_code_is_1005():
    app, seen = echo_app()

    async def main():
        peer = Peer(app, ws_scope())
        peer.push({'type': 'websocket.disconnect'})
        return await peer.run_to_end()

    run(main())
    assert seen['error'] == (1005, '')


def test_send_after_the_client_left_raises_websocket_error():
    app = Microdot()
    errors = []

    @app.route('/ws')
    @with_websocket
    async def ws(request, ws):
        await ws.send('one')
        try:
            await ws.send('two')
        except WebSocketError as exc:
            errors.append(exc.code)
            raise

    async def main():
        # accept and the first message go through; then the server reports the loss
        return await Peer(app, ws_scope(), fail_send_after=2).run_to_end()

    sent = run(main())
    assert errors == [1006]
    assert [m['type'] for m in sent] == ['websocket.accept', 'websocket.send']


def test_client_gone_before_connect():
    app, seen = echo_app()

    async def main():
        peer = Peer(app, ws_scope())
        peer.inbox.get_nowait()  # no websocket.connect ...
        peer.disconnect(1006)    # ... just a disconnect
        return await peer.run_to_end()

    assert run(main()) == [] and seen == {}


@pytest.mark.parametrize('offered,header,expected', [
    (['superchat', 'chat'], None, 'superchat'),
    (['v2', 'chat'], None, 'chat'),
    ([], 'nope, chat', 'chat'),
    (['unknown'], None, None),
    ([], None, None),
])
def test_subprotocol_negotiation(offered, header, expected):
    app, seen = echo_app(subprotocols=['chat', 'superchat'])
    headers = [('Sec-WebSocket-Protocol', header)] if header else []
    if offered and not header:
        headers = [('Sec-WebSocket-Protocol', ', '.join(offered))]

    async def main():
        peer = Peer(app, ws_scope(headers=headers, subprotocols=offered))
        peer.disconnect()
        return await peer.run_to_end()

    sent = run(main())
    assert sent[0]['type'] == 'websocket.accept'
    assert sent[0]['subprotocol'] == expected
    assert seen['subprotocol'] == expected


def test_subprotocol_from_scope_when_the_header_is_missing():
    app, seen = echo_app(subprotocols=['chat'])

    async def main():
        peer = Peer(app, ws_scope(subprotocols=['chat']))  # no raw header in scope
        peer.disconnect()
        return await peer.run_to_end()

    assert run(main())[0]['subprotocol'] == 'chat'


def test_max_message_size_closes_1009():
    app, seen = echo_app(max_message_length=10)

    async def main():
        peer = Peer(app, ws_scope()).start()
        await peer.next_sent('websocket.accept')
        peer.text('0123456789')            # exactly 10 bytes: fine
        await peer.next_sent('websocket.send')
        peer.text('\xe9' * 6)              # 6 characters but 12 UTF-8 bytes
        return await peer.finish()

    sent = run(main())
    assert sent[-1] == {'type': 'websocket.close', 'code': 1009,
                        'reason': 'message too big'}
    assert seen['error'] == (1009, 'message too big')


def test_max_message_size_binary_and_app_wide_limit():
    app, seen = echo_app()
    app.websocket_max_message_length = 4

    async def main():
        peer = Peer(app, ws_scope())
        peer.binary(b'12345')
        return await peer.run_to_end()

    sent = run(main())
    assert sent[-1]['code'] == 1009 and seen['error'][0] == 1009


def test_refusals_get_an_http_answer_with_the_denial_extension():
    app, _ = echo_app()

    async def refuse(path):
        sent = await Peer(app, ws_scope(path, extensions=DENIAL)).run_to_end()
        start, body = sent[0], b''.join(m.get('body', b'') for m in sent[1:])
        assert start['type'] == 'websocket.http.response.start'
        assert all(m['type'] == 'websocket.http.response.body' for m in sent[1:])
        assert not sent[-1].get('more_body', False)
        return start['status'], dict(start['headers']), body

    async def main():
        return {path: await refuse(path)
                for path in ('/missing', '/secret', '/teapot', '/plain')}

    results = run(main())
    assert results['/missing'][0] == 404 and results['/missing'][2] == b'Not found'
    assert results['/secret'][0] == 401
    assert results['/teapot'][0] == 418
    assert results['/teapot'][2] == b'no tea for websockets'
    status, headers, body = results['/plain']
    assert (status, body) == (200, b'plain http')  # not 101: the client sees a refusal
    assert headers[b'content-type'] == b'text/plain; charset=UTF-8'


def test_refusals_close_1008_before_accept_without_the_extension():
    app, _ = echo_app()

    async def main():
        out = {}
        for path in ('/missing', '/secret', '/teapot', '/plain'):
            out[path] = await Peer(app, ws_scope(path)).run_to_end()
        return out

    for path, sent in run(main()).items():
        assert len(sent) == 1, path
        assert sent[0]['type'] == 'websocket.close' and sent[0]['code'] == 1008, path
    assert run(main())['/secret'][0]['reason'] == 'HTTP 401'


def test_refusal_by_error_handler_and_streamed_denial_body():
    app = Microdot()

    @app.errorhandler(404)
    async def not_found(request):
        async def gen():
            yield 'no such '
            yield 'socket'
        return gen(), 404, {'X-Why': 'gone'}

    async def main():
        return await Peer(app, ws_scope('/nowhere', extensions=DENIAL)).run_to_end()

    sent = run(main())
    assert sent[0]['status'] == 404 and (b'x-why', b'gone') in sent[0]['headers']
    assert b''.join(m.get('body', b'') for m in sent[1:]) == b'no such socket'
    assert sent[-1]['type'] == 'websocket.http.response.body'
    assert not sent[-1].get('more_body')


def test_websocket_upgrade_function_and_root_path():
    app = Microdot()
    info = {}

    @app.route('/chat/<room>')
    async def chat(request, room):
        if request.args.get('token') != 'ok':
            return 'bad token', 403
        ws = await websocket_upgrade(request, subprotocols=['chat'])
        info.update(room=room, prefix=request.url_prefix, scheme=request.scheme)
        await ws.send('welcome to ' + room)
        await ws.close(4000, 'done')

    async def main():
        ok = await Peer(app, ws_scope('/api/chat/lobby', root_path='/api', scheme='wss',
                                      query=b'token=ok')).run_to_end()
        bad = await Peer(app, ws_scope('/api/chat/lobby', root_path='/api',
                                       extensions=DENIAL)).run_to_end()
        return ok, bad

    ok, bad = run(main())
    assert [m['type'] for m in ok] == ['websocket.accept', 'websocket.send',
                                       'websocket.close']
    assert ok[1]['text'] == 'welcome to lobby'
    assert ok[2]['code'] == 4000
    assert info == {'room': 'lobby', 'prefix': '/api', 'scheme': 'https'}
    assert bad[0]['status'] == 403


def test_handler_failing_after_upgrade_closes_1011(caplog):
    app = Microdot()

    @app.route('/ws')
    async def ws_route(request):
        ws = await websocket_upgrade(request)
        await ws.send('hi')
        raise RuntimeError('after the upgrade')

    sent = run(Peer(app, ws_scope()).run_to_end())
    assert [m['type'] for m in sent] == ['websocket.accept', 'websocket.send',
                                         'websocket.close']
    assert sent[-1]['code'] == 1011


def test_concurrent_send_while_receiving():
    app = Microdot()

    @app.route('/ticker')
    @with_websocket
    async def ticker(request, ws):
        async def tick():
            for i in range(3):
                await ws.send('tick %d' % i)
        task = asyncio.ensure_future(tick())
        try:
            await ws.receive()  # until the client leaves
        finally:
            await task

    async def main():
        peer = Peer(app, ws_scope('/ticker')).start()
        await peer.next_sent('websocket.accept')
        ticks = [(await peer.next_sent('websocket.send'))['text'] for _ in range(3)]
        peer.disconnect(1000)
        await peer.finish()
        return ticks

    assert run(main()) == ['tick 0', 'tick 1', 'tick 2']


def test_transport_contract_directly():
    async def main():
        inbox = asyncio.Queue()
        sent = []

        async def send(message):
            sent.append(message)

        t = ASGIWebSocketTransport(inbox.get, send)
        t.max_message_size = None
        await t.accept('chat', [('X-Extra', 'yes'), ('Sec-WebSocket-Protocol', 'x')])
        assert sent[0] == {'type': 'websocket.accept', 'subprotocol': 'chat',
                           'headers': [(b'x-extra', b'yes')]}
        with pytest.raises(RuntimeError):
            await t.accept(None, [])
        await t.send('x')
        await t.send(bytearray(b'y'))
        assert sent[-1] == {'type': 'websocket.send', 'bytes': b'y'}
        with pytest.raises(ValueError):
            await t.close(1005)
        await t.close(1000, 'r' * 200)
        assert len(sent[-1]['reason'].encode()) == 123
        await t.close(1000)  # idempotent
        assert len([m for m in sent if m['type'] == 'websocket.close']) == 1
        with pytest.raises(WebSocketError) as exc:
            await t.receive()
        assert exc.value.code == 1000
        with pytest.raises(WebSocketError):
            await t.send('late')
        # a reason with multi-byte characters is cut on a character boundary
        t2 = ASGIWebSocketTransport(inbox.get, send)
        await t2.close(4000, '\u20ac' * 50)
        assert sent[-1]['reason'] == '\u20ac' * 41

    run(main())


def test_sse_events_stream_as_produced_and_stop_on_disconnect():
    app = Microdot()
    state = {'stopped': False}
    release = {}

    @app.route('/events')
    @with_sse
    async def events(request, sse):
        try:
            await sse.send({'n': 1}, event='update')
            await sse.send('two\nlines', event_id='2')
            await release['event'].wait()  # never set: only a disconnect ends this
        finally:
            state['stopped'] = True

    async def main():
        release['event'] = asyncio.Event()
        inbox = asyncio.Queue()
        inbox.put_nowait({'type': 'http.request', 'body': b'', 'more_body': False})
        sent = []
        got_two = asyncio.Event()

        async def send(message):
            sent.append(message)
            if b'two' in message.get('body', b''):
                got_two.set()

        scope = {'type': 'http', 'asgi': {'version': '3.0'}, 'http_version': '1.1',
                 'method': 'GET', 'scheme': 'http', 'path': '/events',
                 'raw_path': b'/events', 'query_string': b'', 'root_path': '',
                 'headers': [], 'client': ('127.0.0.1', 1)}
        task = asyncio.ensure_future(app(scope, inbox.get, send))
        await asyncio.wait_for(got_two.wait(), 5)
        assert not task.done()
        inbox.put_nowait({'type': 'http.disconnect'})
        await asyncio.wait_for(task, 5)
        return sent

    sent = run(main())
    headers = dict(sent[0]['headers'])
    assert headers[b'content-type'] == b'text/event-stream'
    assert b'content-length' not in headers
    bodies = [m['body'] for m in sent[1:] if m['body']]
    assert bodies[0] == b'event: update\ndata: ' + json.dumps({'n': 1}).encode() + b'\n\n'
    assert bodies[1] == b'id: 2\ndata: two\ndata: lines\n\n'
    assert state['stopped']


def test_refused_already_handled_without_accept_is_closed():
    app = Microdot()

    @app.route('/odd')
    async def odd(request):
        return Response.already_handled

    sent = run(Peer(app, ws_scope('/odd', extensions=DENIAL)).run_to_end())
    assert sent == [{'type': 'websocket.close', 'code': 1008, 'reason': 'HTTP 500'}]


def test_microdot_2x_names_importable_from_microdot_asgi():
    """Microdot 2.x apps import the WebSocket helpers from ``microdot.asgi``."""
    import microdot.asgi as asgi
    import microdot.websocket as core_ws
    assert asgi.with_websocket is core_ws.with_websocket
    assert asgi.websocket_upgrade is core_ws.websocket_upgrade
    assert asgi.WebSocket is core_ws.WebSocket
    for name in ('with_websocket', 'websocket_upgrade', 'WebSocket'):
        assert name in asgi.__all__

    app = asgi.Microdot()

    @app.route('/echo')
    @asgi.with_websocket
    async def echo(request, ws):
        await ws.send(await ws.receive())

    async def main():
        peer = Peer(app, ws_scope('/echo'))
        peer.text('2.x')
        return await peer.run_to_end()

    sent = run(main())
    assert sent[1] == {'type': 'websocket.send', 'text': '2.x'}
    assert sent[2]['code'] == 1000


def test_lifespan_shutdown_waits_for_a_cancelled_session_to_clean_up():
    """A server that gives up on an open session cancels it, then sends
    lifespan.shutdown at once: the handler's cleanup comes before the hooks."""
    app = Microdot()
    log = []

    @app.route('/ws')
    @with_websocket
    async def ws(request, ws):
        try:
            await ws.receive()
        finally:
            for _ in range(5):  # cleanup that takes a few loop turns
                await asyncio.sleep(0)
            log.append('session cleaned up')

    @app.on_shutdown
    def bye():
        log.append('shutdown hooks')

    async def main():
        peer = Peer(app, ws_scope()).start()
        await peer.next_sent('websocket.accept')
        await asyncio.wait_for(peer.waiting.wait(), 5)
        lifespan_inbox = asyncio.Queue()
        sent = []

        async def lifespan_send(message):
            sent.append(message['type'])

        lifespan = asyncio.ensure_future(app({'type': 'lifespan', 'asgi': {'version': '3.0'}},
                                             lifespan_inbox.get, lifespan_send))
        peer.task.cancel()
        lifespan_inbox.put_nowait({'type': 'lifespan.shutdown'})
        await asyncio.wait_for(lifespan, 5)
        assert sent == ['lifespan.shutdown.complete']
        assert peer.task.cancelled()

    run(main())
    assert log == ['session cleaned up', 'shutdown hooks']
