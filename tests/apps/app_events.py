"""What several test applications share (granian_app, wsgi_app, uwsgi_plain_app):
startup and shutdown hooks that append ``startup PID`` and ``shutdown PID`` to the file
named by ``MICRODOT_TEST_EVENTS``, and the ``/`` page.

The applications import this module as a sibling (the servers run with ``tests/apps``
as their working directory).
"""
import os

EVENTS_FILE = os.environ.get('MICRODOT_TEST_EVENTS')


def record(event):
    """Append ``event`` as a line to ``MICRODOT_TEST_EVENTS`` (nothing when unset)."""
    if EVENTS_FILE:
        with open(EVENTS_FILE, 'a') as f:
            f.write(event + '\n')


def add_event_hooks(app):
    """Record the process that runs ``app``'s startup and shutdown hooks."""
    @app.on_startup
    def started():
        record('startup %d' % os.getpid())

    @app.on_shutdown
    def stopped():
        record('shutdown %d' % os.getpid())


def add_hello(app):
    """``/`` answers ``Hello, World!``."""
    @app.route('/')
    def index(req):
        return 'Hello, World!'
