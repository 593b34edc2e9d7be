"""Application served by real Granian processes (and other servers) in the tests.

``MICRODOT_TEST_FLAVOR`` picks the class: ``asgi`` (``microdot.asgi.Microdot``),
``wsgi`` (``microdot.wsgi.Microdot``) or ``plain`` (``microdot.Microdot``, served
through the adapter plugins). What the hooks see is appended to the file named by
``MICRODOT_TEST_EVENTS``.
"""
import asyncio
import os

FLAVOR = os.environ.get('MICRODOT_TEST_FLAVOR', 'plain')
if FLAVOR == 'asgi':
    from microdot.asgi import Microdot
elif FLAVOR == 'wsgi':
    from microdot.wsgi import Microdot
else:
    from microdot import Microdot
from microdot.sse import with_sse  # noqa: E402
from microdot.websocket import with_websocket  # noqa: E402

from app_events import add_event_hooks, add_hello  # noqa: E402

app = Microdot()
add_event_hooks(app)
add_hello(app)


@app.route('/pid')
async def pid(req):
    return {'pid': os.getpid(), 'flavor': FLAVOR, 'class': type(app).__module__}


@app.route('/stream')
async def stream(req):
    count = int(req.args.get('n', 3))
    delay = float(req.args.get('delay', 0.05))

    async def gen():
        for i in range(count):
            yield 'chunk %d\n' % i
            await asyncio.sleep(delay)
    return gen()


@app.route('/sse')
@with_sse
async def sse(req, sse):
    for i in range(int(req.args.get('n', 3)), 0, -1):
        await sse.send({'left': i}, event='count')


@app.route('/echo')
@with_websocket
async def echo(req, ws):
    while True:
        await ws.send(await ws.receive())
