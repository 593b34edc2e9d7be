"""Endless streamed responses whose cleanup (``finally``) records a line, served by real
ASGI (``asgi_app``) and WSGI (``wsgi_app``) servers in
tests/servers/test_stream_cleanup_servers.py.

Shaped like Microdot's video-streaming example: a ``multipart/x-mixed-replace`` body
that never ends. ``frames`` variants yield a frame every 50 ms; ``slow`` variants wait
an hour between frames, so only a server that notices the client leaving while the
body is idle can stop them.
"""
import asyncio
import os
import time

from microdot import Microdot
from microdot.asgi import asgi_adapter
from microdot.wsgi import wsgi_adapter

EVENTS_FILE = os.environ.get('MICRODOT_TEST_EVENTS')
BOUNDARY = b'--frame\r\n'
FRAME = BOUNDARY + b'Content-Type: image/jpeg\r\n\r\n' + b'\xff' * 512 + b'\r\n'


def record(event):
    if EVENTS_FILE:
        with open(EVENTS_FILE, 'a') as f:
            f.write(event + '\n')


app = Microdot()


def mixed(body):
    return body, 200, {'Content-Type': 'multipart/x-mixed-replace; boundary=frame'}


@app.route('/sync-frames')
def sync_frames(req):
    def stream():
        record('sync-frames started')
        try:
            while True:
                yield FRAME
                time.sleep(0.05)
        finally:
            record('sync-frames stopped')
    return mixed(stream())


@app.route('/async-frames')
async def async_frames(req):
    async def stream():
        record('async-frames started')
        try:
            while True:
                yield FRAME
                await asyncio.sleep(0.05)
        finally:
            record('async-frames stopped')
    return mixed(stream())


@app.route('/async-slow')
async def async_slow(req):
    async def stream():
        record('async-slow started')
        try:
            while True:
                yield FRAME
                await asyncio.sleep(3600)
        finally:
            record('async-slow stopped')
    return mixed(stream())


asgi_app = asgi_adapter(app)
wsgi_app = wsgi_adapter(app)
