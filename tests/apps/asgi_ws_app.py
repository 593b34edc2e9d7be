"""WebSocket and SSE application served by real ASGI servers in the integration tests.

Events the tests wait for are appended to the file named by ``MICRODOT_TEST_EVENTS``.
"""
import asyncio
import os

from microdot.asgi import Microdot, abort
from microdot.sse import with_sse
from microdot.websocket import WebSocketError, with_websocket

app = Microdot()


def record(event: str) -> None:
    """Append ``event`` to the events file, if the test asked for one."""
    path = os.environ.get('MICRODOT_TEST_EVENTS')
    if path:
        with open(path, 'a') as f:
            f.write(event + '\n')


@app.before_request
async def guard(request):
    """Refuse ``/secret`` without the right token, before any WebSocket handshake."""
    if request.path == '/secret' and request.args.get('token') != 'letmein':
        abort(401)


@app.route('/echo')
@with_websocket(max_message_length=1 << 20)  # the tests send 200 kB messages
async def echo(request, ws):
    """Echo messages; ``close:CODE:REASON`` makes the server close with that code."""
    while True:
        data = await ws.receive()
        if isinstance(data, str) and data.startswith('close:'):
            _, code, reason = data.split(':', 2)
            await ws.close(int(code), reason)
            return
        await ws.send(data)


@app.route('/secret')
@with_websocket
async def secret(request, ws):
    await ws.send('the secret')


@app.route('/chat')
@with_websocket(subprotocols=['chat', 'superchat'])
async def chat(request, ws):
    await ws.send(ws.subprotocol or '')
    await ws.send(await ws.receive())


@app.route('/limited')
@with_websocket(max_message_length=1024)
async def limited(request, ws):
    while True:
        await ws.send(await ws.receive())


@app.route('/watch')
@with_websocket
async def watch(request, ws):
    """Record how the client closed the connection."""
    record('watch open')
    await ws.send('watching')
    try:
        while True:
            await ws.receive()
    except WebSocketError as exc:
        record('watch closed %s %s' % (exc.code, exc.reason))
        raise


@app.route('/plain')
async def plain(request):
    return 'plain http'


@app.on_shutdown
def shutdown_hook():
    record('shutdown hook ran')


@app.route('/events')
@with_sse
async def events(request, sse):
    """One event, then idle until the client leaves (no keep-alive needed)."""
    try:
        await sse.send({'hello': 'world'}, event='greeting', event_id='1')
        record('sse sent first')
        await asyncio.Event().wait()
    finally:
        await asyncio.sleep(0.1)  # cleanup that takes a moment, as closing a cursor would
        record('sse stopped')


@app.route('/countdown')
@with_sse
async def countdown(request, sse):
    """``n`` events, the data spanning two lines, then the stream ends."""
    n = int(request.args.get('n', 3))
    for i in range(n, 0, -1):
        await sse.send('%d\nleft' % i, event='count')
    record('countdown done')
