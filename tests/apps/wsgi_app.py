"""Application served by real WSGI servers in the integration tests."""
import asyncio
import hashlib
import os
import threading

from microdot.wsgi import Microdot

from app_events import add_event_hooks, add_hello

app = Microdot()
app.max_content_length = 64 * 1024 * 1024
add_event_hooks(app)
add_hello(app)


@app.route('/async/<int:n>')
async def slow_async(req, n):
    await asyncio.sleep(0.01)
    return {'n': n, 'thread': threading.get_ident(), 'pid': os.getpid()}


@app.route('/sync/<int:n>')
def slow_sync(req, n):
    return {'n': n}


@app.route('/upload', methods=['POST'])
async def upload(req):
    digest = hashlib.sha256()
    size = 0
    while True:
        chunk = await req.stream.read(65536)
        if not chunk:
            break
        size += len(chunk)
        digest.update(chunk)
    return {'size': size, 'sha256': digest.hexdigest()}


@app.route('/stream')
async def stream(req):
    async def gen():
        for i in range(3):
            yield 'chunk %d\n' % i
            await asyncio.sleep(0.02)
    return gen()
