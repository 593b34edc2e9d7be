"""A plain ``microdot.Microdot`` application served by ``microdot run --server uwsgi``
in the stop, reload and shutdown tests (tests/wsgi/test_uwsgi_server.py).

* ``/version``: what the file named by ``MICRODOT_TEST_VERSION`` held when this module
  was imported, and the serving pid (a reload that imports the code anew shows it).
* ``/hold?name=N``: a request kept in progress: it creates ``N.held`` in
  ``MICRODOT_TEST_DIR``, then answers once the test creates ``N.release`` there.
* ``/forever``: a streamed answer that never ends.
* ``/info``: the serving pid and thread.
* ``/shutdown``: ``app.shutdown()``, answered in full before the server stops.

The startup and shutdown hooks record the process that ran them in
``MICRODOT_TEST_EVENTS``.
"""
import asyncio
import os
import threading

from microdot import Microdot

from app_events import add_event_hooks

DIR = os.environ.get('MICRODOT_TEST_DIR', '.')
_version_file = os.environ.get('MICRODOT_TEST_VERSION')
VERSION = open(_version_file).read().strip() if _version_file else 'none'

app = Microdot()
add_event_hooks(app)


@app.route('/version')
def version(req):
    return '%s %d' % (VERSION, os.getpid())


@app.route('/info')
def info(req):
    return {'pid': os.getpid(), 'thread': threading.get_ident()}


@app.route('/hold')
async def hold(req):
    name = os.path.join(DIR, req.args['name'])
    open(name + '.held', 'w').close()
    while not os.path.exists(name + '.release'):
        await asyncio.sleep(0.02)
    return 'released %s' % VERSION


@app.route('/forever')
async def forever(req):
    async def ticks():
        while True:
            yield 'tick\n'
            await asyncio.sleep(0.1)
    return ticks()


@app.route('/shutdown')
def shutdown(req):
    req.app.shutdown()
    return 'bye ' * 100000
