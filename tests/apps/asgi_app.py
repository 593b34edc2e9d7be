"""Application served by real ASGI servers in the integration tests."""
import asyncio
import hashlib
import os

from microdot.asgi import Microdot

EVENTS_FILE = os.environ.get('MICRODOT_TEST_EVENTS')


def record(event):
    if EVENTS_FILE:
        with open(EVENTS_FILE, 'a') as f:
            f.write(event + '\n')


async def startup(scope):
    record('startup')


def shutdown():
    record('shutdown')


app = Microdot(lifespan_startup=startup, lifespan_shutdown=shutdown)
app.max_content_length = 64 * 1024 * 1024


@app.route('/')
async def index(req):
    return 'Hello, World!'


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
    count = int(req.args.get('n', 3))

    async def gen():
        try:
            for i in range(count):
                yield 'chunk %d\n' % i
                await asyncio.sleep(0.05)
        finally:
            record('stream closed')
    return gen()


@app.route('/forever')
async def forever(req):
    async def gen():
        try:
            yield 'start\n'
            record('forever started')
            while True:
                await asyncio.sleep(0.05)
                yield '.'
        finally:
            record('forever closed')
    return gen()
