"""``app.shutdown()`` from a route, served by real ASGI (``asgi_app``) and WSGI
(``wsgi_app``) servers in the shutdown tests (tests/asgi/test_asgi_shutdown_servers.py,
tests/wsgi/test_wsgi_shutdown_servers.py).

The answer is large (1 MiB), so a server stopped before it is sent shows a short body.
The shutdown hooks record the process that ran them; with MICRODOT_TEST_FAIL_SHUTDOWN
set, a shutdown hook of ``asgi_app`` fails.
"""
import os

from microdot.asgi import Microdot as ASGIMicrodot
from microdot.wsgi import Microdot as WSGIMicrodot

EVENTS_FILE = os.environ.get('MICRODOT_TEST_EVENTS')
BODY = b'The server is shutting down...\n' * 33825  # a little over 1 MiB


def record(event):
    if EVENTS_FILE:
        with open(EVENTS_FILE, 'a') as f:
            f.write(event + '\n')


def build(app):
    @app.route('/')
    def index(req):
        return 'pid %d' % os.getpid()

    @app.route('/shutdown')
    def shutdown(req):  # as in Microdot's documentation: a def handler
        req.app.shutdown()
        return BODY

    @app.route('/shutdown-async')
    async def shutdown_async(req):
        req.app.shutdown()
        return BODY

    @app.on_shutdown
    def stopped():
        record('shutdown hook %d' % os.getpid())

    return app


asgi_app = build(ASGIMicrodot())

if os.environ.get('MICRODOT_TEST_FAIL_SHUTDOWN'):
    @asgi_app.on_shutdown
    def failing():
        raise RuntimeError('database still busy')
wsgi_app = build(WSGIMicrodot())
