"""Template pages stream under real servers: built-in, uvicorn, hypercorn, gunicorn.

Each page is rendered from a template that stops in the middle: it iterates a
*gate*, an iterable that blocks until the test releases it. The test reads the
response as it arrives and checks that the top of the page (the first chunk) is
received while the gate is still closed, i.e. before the end of the page has been
rendered; then it releases the gate and reads the rest. The response must use
chunked transfer encoding.

The built-in server runs in a thread of the test process, so its gate waits on a
``threading.Event``. The uvicorn, hypercorn and gunicorn servers are separate
processes, so their gate waits (bounded) for a file that the test creates.
"""
import asyncio
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from microdot import Microdot
from microdot.templates import Template
from support import free_port, serve, wait_for_port

pytest.importorskip('jinja2')

#: Upper bound for any single wait in these tests (a broken server fails, not hangs).
TIMEOUT = 20.0

#: The gate template in each engine's syntax; both render to PAGE.
GATE_TEMPLATES = {
    'utemplate': '{% args gate %}\n'
                 '<p>first</p>\n'
                 '{% for step in gate %}\n'
                 '<p>{{ step }}</p>\n'
                 '{% endfor %}\n'
                 '<p>last</p>',
    'jinja': '<p>first</p>\n'
             '{% for step in gate %}<p>{{ step }}</p>\n{% endfor %}'
             '<p>last</p>',
}
PAGE = '<p>first</p>\n<p>released</p>\n<p>last</p>'
ROUTES = ['/generate', '/generate-async']


@pytest.fixture(autouse=True)
def restore_configuration():
    """Leave the helper's class-level configuration as each test found it."""
    saved = (Template._engine_name, Template._engine_options, Template._engine_class)
    yield
    Template._engine_name, Template._engine_options, Template._engine_class = saved


def write_templates(folder: Path) -> Path:
    """Write the gate template for each engine under ``folder/<engine>/``."""
    for engine, text in GATE_TEMPLATES.items():
        (folder / engine).mkdir(parents=True, exist_ok=True)
        (folder / engine / 'gate.html').write_text(text)
    return folder


def fetch_streamed(url: str, release: Callable[[], None]) -> None:
    """GET ``url``; assert the first chunk arrives before ``release()`` is called.

    ``release`` opens the page's gate; it is called again (it must be idempotent)
    if the checks fail, so that the server is not left blocked.
    """
    try:
        with httpx.Client(timeout=TIMEOUT) as client:
            with client.stream('GET', url) as response:
                assert response.status_code == 200
                assert response.headers.get('transfer-encoding') == 'chunked'
                assert response.headers['content-type'].startswith('text/html')
                chunks = response.iter_raw()
                head = b''
                while b'<p>first</p>' not in head:
                    chunk = next(chunks, None)
                    assert chunk is not None, 'response ended early: %r' % head
                    head += chunk
                # the gate is still closed: nothing after it can have been rendered
                assert b'released' not in head and b'last' not in head
                release()
                rest = b''.join(chunks)
        assert (head + rest).decode() == PAGE
    finally:
        release()


# -- the built-in server, in this process ---------------------------------------------

class EventGate:
    """An iterable that blocks the template until :meth:`release` (bounded)."""

    def __init__(self) -> None:
        self.opened = threading.Event()

    def release(self) -> None:
        self.opened.set()

    def __iter__(self) -> Iterator[str]:
        yield 'released' if self.opened.wait(TIMEOUT) else 'timed out'


def make_builtin_app(gates: dict) -> Microdot:
    """Routes returning ``generate()`` and ``generate_async()`` of the gate page."""
    app = Microdot()
    html = {'Content-Type': 'text/html; charset=UTF-8'}

    @app.route('/generate')
    async def generate(req):
        return Template('gate.html').generate(gate=gates[req.args['gate']]), html

    @app.route('/generate-async')
    async def generate_async(req):
        return Template('gate.html').generate_async(gate=gates[req.args['gate']]), html

    return app


@contextmanager
def builtin_server(app: Microdot) -> Iterator[str]:
    """Serve ``app`` with the built-in server in a thread; yield its base URL."""
    port = free_port()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=loop.run_until_complete,
        args=(app.start_server('127.0.0.1', port),), daemon=True)
    thread.start()
    try:
        wait_for_port('127.0.0.1', port, timeout=TIMEOUT)
        yield 'http://127.0.0.1:%d' % port
    finally:
        loop.call_soon_threadsafe(app.shutdown)
        thread.join(TIMEOUT)
        assert not thread.is_alive(), 'the built-in server did not stop'
        loop.close()


@pytest.mark.parametrize('engine, options', [
    ('utemplate', {}),
    ('jinja', {}),
    ('jinja', {'enable_async': True}),
], ids=['utemplate', 'jinja', 'jinja-async'])
def test_builtin_server_streams(engine, options, tmp_path):
    folder = write_templates(tmp_path)
    Template.initialize(engine=engine, template_dir=str(folder / engine), **options)
    gates: dict = {}
    with builtin_server(make_builtin_app(gates)) as url:
        for route in ROUTES:
            gate = gates[route] = EventGate()
            fetch_streamed('%s%s?gate=%s' % (url, route, route), gate.release)


# -- uvicorn, hypercorn (ASGI) and gunicorn (WSGI), in their own processes -------------

APP_SOURCE = '''\
"""The gate pages, for a server started by test_streaming_servers.py."""
import os
import time

from microdot.templates import Template

if os.environ['STREAM_PROTOCOL'] == 'asgi':
    from microdot.asgi import Microdot
else:
    from microdot.wsgi import Microdot

Template.initialize(engine=os.environ['STREAM_ENGINE'],
                    template_dir=os.environ['STREAM_TEMPLATES'])
GATES = os.environ['STREAM_GATES']
TIMEOUT = float(os.environ['STREAM_TIMEOUT'])
HTML = {'Content-Type': 'text/html; charset=UTF-8'}
app = Microdot()


def gate(name):
    """Block the template until the test creates the file GATES/name (bounded)."""
    path = os.path.join(GATES, os.path.basename(name))
    deadline = time.monotonic() + TIMEOUT
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            yield 'timed out'
            return
        time.sleep(0.01)
    yield 'released'


@app.route('/generate')
def generate(req):
    return Template('gate.html').generate(gate=gate(req.args['gate'])), HTML


@app.route('/generate-async')
async def generate_async(req):
    return Template('gate.html').generate_async(gate=gate(req.args['gate'])), HTML
'''

SERVERS = {
    'uvicorn': ('asgi', lambda port: [sys.executable, '-m', 'uvicorn', 'stream_app:app',
                                      '--host', '127.0.0.1', '--port', str(port)]),
    'hypercorn': ('asgi', lambda port: [sys.executable, '-m', 'hypercorn',
                                        '--bind', '127.0.0.1:%d' % port,
                                        'stream_app:app']),
    'gunicorn': ('wsgi', lambda port: [sys.executable, '-m', 'gunicorn', '--workers',
                                       '1', '--bind', '127.0.0.1:%d' % port,
                                       'stream_app:app']),
}


@pytest.mark.parametrize('engine', sorted(GATE_TEMPLATES))
@pytest.mark.parametrize('server', sorted(SERVERS))
def test_server_process_streams(server, engine, tmp_path):
    pytest.importorskip(server)
    protocol, command = SERVERS[server]
    (tmp_path / 'stream_app.py').write_text(textwrap.dedent(APP_SOURCE))
    folder = write_templates(tmp_path / 'templates')
    gates = tmp_path / 'gates'
    gates.mkdir()
    port = free_port()
    env = {'STREAM_PROTOCOL': protocol, 'STREAM_ENGINE': engine,
           'STREAM_TEMPLATES': str(folder / engine), 'STREAM_GATES': str(gates),
           'STREAM_TIMEOUT': str(TIMEOUT * 2)}
    with serve(command(port), port, cwd=str(tmp_path), env=env) as proc:
        for index, route in enumerate(ROUTES):
            gate_file = gates / ('gate%d' % index)
            fetch_streamed('%s%s?gate=%s' % (proc.url, route, gate_file.name),
                           lambda path=gate_file: path.touch())
    assert proc.proc.returncode is not None
