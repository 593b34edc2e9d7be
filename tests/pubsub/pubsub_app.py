"""The application the deployment tests serve (built-in server, uvicorn, hypercorn,
gunicorn): publish over HTTP, subscribe over SSE and WebSocket.

Configured by environment variables: ``PUBSUB_URL`` (default ``memory://``),
``PUBSUB_TIMEOUT``, ``PUBSUB_MAX_QUEUE``, ``PUBSUB_RECONNECT_MAX`` (Redis). Channels
named ``durable-...`` keep 100 messages. Every answer says which process made it
(``X-Worker-Pid``). ``asgi_app`` and ``wsgi_app`` are the adapters' wrappings.
"""
import os

from microdot import Microdot
from microdot.pubsub import PubSub, PubSubError
from microdot.websocket import with_websocket

app = Microdot()
options = {}
if os.environ.get('PUBSUB_RECONNECT_MAX'):
    options['reconnect_max'] = float(os.environ['PUBSUB_RECONNECT_MAX'])
pubsub = PubSub(app, os.environ.get('PUBSUB_URL', 'memory://'),
                timeout=float(os.environ.get('PUBSUB_TIMEOUT', '5')),
                max_queue=int(os.environ.get('PUBSUB_MAX_QUEUE', '1000')),
                durable={'durable-*': 100}, **options)


@app.after_request
def worker_pid(request, response):
    response.headers['X-Worker-Pid'] = str(os.getpid())
    return response


@app.get('/pid')
async def pid(request):
    return str(os.getpid())


@app.post('/publish/<channel>')
async def publish(request, channel):
    try:
        event_id = await pubsub.publish(channel, request.body.decode())
    except PubSubError as exc:
        return str(exc), 503
    return event_id or ''


@app.get('/events/<channel>')
async def events(request, channel):
    return pubsub.sse_response(request, channel)


@app.route('/ws/<channel>')
@with_websocket
async def ws(request, ws, channel):
    async def on_receive(data):
        if data == 'whoami':
            await ws.send('pid %d' % os.getpid())
        else:
            await pubsub.publish(channel, data)

    await pubsub.forward_to_websocket(ws, channel, on_receive=on_receive,
                                      last_event_id=request.args.get('last'))


from microdot.asgi import asgi_adapter  # noqa: E402
from microdot.wsgi import wsgi_adapter  # noqa: E402

asgi_app = asgi_adapter(app)
wsgi_app = wsgi_adapter(app)
