"""WebSocket and SSE application served by real WSGI servers in the integration tests."""
import asyncio
import os
import threading

from microdot.sse import with_sse
from microdot.websocket import WebSocketError, with_websocket
from microdot.wsgi import Microdot

app = Microdot()

#: Released by ``POST /sse/release`` (gthread: another thread of the same worker).
GATE = threading.Event()


@app.route('/')
def index(req):
    return 'Hello, World!'


@app.route('/info')
async def info(req):
    return {'pid': os.getpid(), 'thread': threading.get_ident()}


@app.route('/echo')
@with_websocket(max_message_length=2 << 20)
async def echo(req, ws):
    while True:
        await ws.send(await ws.receive())


@app.route('/chat')
@with_websocket(subprotocols=['chat.v1', 'chat.v2'])
async def chat(req, ws):
    await ws.send('protocol=%s' % ws.subprotocol)
    await ws.receive()


@app.route('/bye')
@with_websocket
async def bye(req, ws):
    await ws.receive()
    await ws.close(4000, 'see you')


@app.route('/boom')
@with_websocket
async def boom(req, ws):
    await ws.receive()
    raise RuntimeError('handler failure (expected by the test)')


@app.route('/small')
@with_websocket(max_message_length=1000)
async def small(req, ws):
    while True:
        await ws.send(await ws.receive())


@app.route('/whoami')
@with_websocket
async def whoami(req, ws):
    """Reports the serving process and thread, then echoes until closed."""
    await ws.send('%d %d' % (os.getpid(), threading.get_ident()))
    try:
        while True:
            await ws.send(await ws.receive())
    except WebSocketError:
        pass


@app.route('/private')
@with_websocket
async def private(req, ws):  # pragma: no cover - refused by the hook below
    await ws.send('secret')


@app.before_request
def check_token(req):
    if req.path == '/private' and req.args.get('token') != 'ok':
        return 'Unauthorized', 401


@app.route('/sse/file')
@with_sse(keepalive=None)
async def sse_file(req, sse):
    """First event at once, the second only once the file named by ``?path`` exists."""
    await sse.send('first', event='step')
    path = req.args['path']
    while not os.path.exists(path):
        await asyncio.sleep(0.02)
    await sse.send({'second': True}, event='step')


@app.route('/sse/gate')
@with_sse(keepalive=None)
async def sse_gate(req, sse):
    """First event at once, the second once another request releases :data:`GATE`."""
    await sse.send('first', event='step')
    released = await asyncio.to_thread(GATE.wait, 30)
    await sse.send('second released=%s' % released, event='step')


@app.route('/sse/release', methods=['POST'])
def sse_release(req):
    GATE.set()
    return 'released'
