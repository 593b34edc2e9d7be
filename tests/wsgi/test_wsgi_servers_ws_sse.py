"""WebSocket and SSE under real gunicorn (sync and gthread), waitress and wsgiref."""
import asyncio
import base64
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from websockets.asyncio.client import connect as aws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from support import ROOT, ServerProcess, free_port, serve
import ws_sse_checks as checks
from ws_sse_checks import ws_url

APPS = str(ROOT / 'tests' / 'apps')
EXAMPLES = str(ROOT / 'examples')

WORKERS = {
    'sync': ['--worker-class', 'sync', '--workers', '2'],
    'gthread': ['--worker-class', 'gthread', '--threads', '8'],
}


def gunicorn(port, target='wsgi_ws_app:app', *extra):
    return [sys.executable, '-m', 'gunicorn', '--bind', '127.0.0.1:%d' % port,
            '--log-level', 'warning', '--graceful-timeout', '3', *extra, target]


@pytest.fixture(scope='module', params=['sync', 'gthread'])
def server(request):
    port = free_port()
    with serve(gunicorn(port, 'wsgi_ws_app:app', *WORKERS[request.param]), port,
               cwd=APPS) as proc:
        proc.worker = request.param
        yield proc


@pytest.fixture(scope='module')
def gthread_server():
    port = free_port()
    with serve(gunicorn(port, 'wsgi_ws_app:app', *WORKERS['gthread']), port,
               cwd=APPS) as proc:
        yield proc


# -- echo, sizes, subprotocols, close codes (sync and gthread) --------------------------

def test_echo_text_binary_and_large_message(server):
    checks.check_echo_text_binary_and_large_message(server)


def test_subprotocol_negotiation(server):
    checks.check_subprotocol_negotiation(server)


def test_server_close_code_and_reason(server):
    checks.check_server_close_code_and_reason(server)


def test_handler_error_closes_with_1011(server):
    checks.check_handler_error_closes_with_1011(server)


def test_too_big_message_closes_with_1009(server):
    checks.check_too_big_message_closes_with_1009(server)


def test_refused_handshakes_get_http_answers(server):
    checks.check_refused_handshakes_get_http_answers(server)


def test_nothing_follows_the_session_and_the_server_closes(server):
    """After the closing handshake gunicorn writes no HTTP bytes and closes the TCP
    connection itself: exactly one 101 head, the echo, the Close frame, then EOF."""
    checks.check_one_head_then_frames_then_eof(server)


def test_client_dropping_the_connection_frees_the_worker(server):
    checks.check_client_dropping_the_connection(server, 3)


# -- concurrency -----------------------------------------------------------------------

def test_gthread_concurrent_websockets_each_on_its_own_thread(gthread_server):
    checks.check_concurrent_websockets_each_on_its_own_thread(gthread_server, 20)


def test_gthread_websockets_and_http_requests_at_the_same_time(gthread_server):
    stop = threading.Event()
    errors = []

    def chatter(i):
        try:
            with ws_connect(ws_url(gthread_server, '/echo')) as ws:
                n = 0
                while not stop.is_set():
                    ws.send('%d:%d' % (i, n))
                    assert ws.recv() == '%d:%d' % (i, n)
                    n += 1
                return n
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
            return -1

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(chatter, i) for i in range(3)]
        with httpx.Client(base_url=gthread_server.url, timeout=10) as client:
            for i in range(60):
                assert client.get('/').text == 'Hello, World!'
                assert client.get('/info').status_code == 200
        stop.set()
        counts = [f.result(timeout=30) for f in futures]
    assert not errors and all(n > 0 for n in counts)


def test_sync_worker_serves_http_while_another_worker_holds_a_websocket():
    port = free_port()
    with serve(gunicorn(port, 'wsgi_ws_app:app', *WORKERS['sync']), port,
               cwd=APPS) as srv:
        with ws_connect(ws_url(srv, '/whoami')) as ws:
            ws_pid = ws.recv().split()[0]
            for _ in range(5):  # the busy worker accepts nothing: the other one answers
                res = httpx.get(srv.url + '/info', timeout=10)
                assert str(res.json()['pid']) != ws_pid
            ws.send('still open')
            assert ws.recv() == 'still open'


# -- timeouts ----------------------------------------------------------------------------

def test_gthread_websocket_outlives_the_worker_timeout():
    """gthread's main thread keeps heartbeating: ``--timeout`` does not cut sessions."""
    port = free_port()
    with serve(gunicorn(port, 'wsgi_ws_app:app', '--threads', '4', '--timeout', '1'),
               port, cwd=APPS) as srv:
        with ws_connect(ws_url(srv, '/echo')) as ws:
            deadline = time.monotonic() + 3.5
            n = 0
            while time.monotonic() < deadline:
                ws.send('tick %d' % n)
                assert ws.recv(timeout=5) == 'tick %d' % n
                n += 1
                time.sleep(0.1)


def test_sync_worker_timeout_ends_a_long_websocket_with_1001():
    """A sync worker stops heartbeating while it serves one request: gunicorn aborts it
    after ``--timeout``; the session ends with Close 1001, then a new worker serves."""
    port = free_port()
    with serve(gunicorn(port, 'wsgi_ws_app:app', '--workers', '1', '--timeout', '1'),
               port, cwd=APPS) as srv:
        with ws_connect(ws_url(srv, '/echo')) as ws:
            ws.send('hi')
            assert ws.recv() == 'hi'
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=15)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
        deadline = time.monotonic() + 15
        while True:  # the arbiter starts a replacement worker
            try:
                assert httpx.get(srv.url + '/', timeout=5).text == 'Hello, World!'
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.2)


# -- TLS ------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which('openssl') is None, reason='needs the openssl command')
def test_websocket_over_tls(tmp_path):
    cert, key = tmp_path / 'cert.pem', tmp_path / 'key.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days',
                    '1', '-subj', '/CN=127.0.0.1', '-keyout', str(key), '-out', str(cert)],
                   check=True, capture_output=True)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    port = free_port()
    with serve(gunicorn(port, 'wsgi_ws_app:app', '--threads', '4', '--certfile',
                        str(cert), '--keyfile', str(key)), port, cwd=APPS) as srv:
        # The asyncio client, not the sync one: the sync client reads the TLS socket in
        # one thread while writing it from another, and now and then a TLS 1.3 session
        # ticket read concurrently with a write loses the write (its Close frame or
        # handshake request never reaches the wire: 1006 or a hung connect in about one
        # session in a thousand, against gunicorn and the built-in server alike).
        big = os.urandom(1 << 20)

        async def session():
            async with aws_connect('wss://127.0.0.1:%d/echo' % port, ssl=context,
                                   max_size=4 << 20) as ws:
                await ws.send(big)
                assert await ws.recv() == big
                await ws.send('secure')
                assert await ws.recv() == 'secure'
            return ws.close_code

        assert asyncio.run(asyncio.wait_for(session(), 30)) == 1000
        assert srv.proc.poll() is None


# -- servers without a socket ------------------------------------------------------------

@pytest.mark.parametrize('name', ['waitress', 'wsgiref'])
def test_servers_without_a_socket_refuse_websocket_cleanly(name):
    port = free_port()
    cmd = [sys.executable, '-m', 'microdot', 'run', 'wsgi_ws_app:app', '--server', name,
           '--port', str(port)]
    proc = ServerProcess(cmd, port, cwd=APPS)
    try:
        proc.wait_ready()
        if name == 'waitress':
            with pytest.raises(InvalidStatus) as info:
                ws_connect('ws://127.0.0.1:%d/echo' % port)
            assert info.value.response.status_code == 501
            assert b'gunicorn' in info.value.response.body
        # wsgiref answers HTTP/1.0, which WebSocket clients refuse to parse at all
        headers = {'Upgrade': 'websocket', 'Connection': 'Upgrade',
                   'Sec-WebSocket-Key': base64.b64encode(os.urandom(16)).decode(),
                   'Sec-WebSocket-Version': '13'}
        res = httpx.get(proc.url + '/echo', headers=headers, timeout=10)
        assert res.status_code == 501 and 'gunicorn' in res.text
        assert httpx.get(proc.url + '/', timeout=10).text == 'Hello, World!'  # still up
    finally:
        proc.stop()
    assert 'WebSocket request for /echo refused with 501' in proc.output
    assert 'Traceback' not in proc.output


# -- SSE --------------------------------------------------------------------------------

@pytest.mark.parametrize('worker', ['sync', 'gthread', 'waitress'])
def test_sse_events_are_flushed_as_produced(worker, tmp_path):
    """The first event arrives while the handler still waits for a file the test only
    creates after reading it: nothing is buffered until the response ends."""
    port = free_port()
    flag = tmp_path / 'go'
    if worker == 'waitress':
        cmd = [sys.executable, '-m', 'waitress', '--listen', '127.0.0.1:%d' % port,
               '--threads', '4', 'wsgi_ws_app:app']
    else:
        cmd = gunicorn(port, 'wsgi_ws_app:app', *WORKERS[worker])
    with serve(cmd, port, cwd=APPS) as srv, httpx.Client(timeout=10) as client:
        checks.check_sse_flushed_as_produced(client, srv.url, flag)


def test_sse_gthread_event_released_by_another_request(gthread_server):
    with httpx.Client(timeout=10) as client:
        checks.check_sse_released_by_another_request(client, gthread_server.url)


# -- mount prefix, microdot run and the example ---------------------------------------------

def test_websocket_under_a_script_name_mount():
    """``SCRIPT_NAME`` is the mount prefix: the route ``/echo`` answers ``/api/echo``."""
    port = free_port()
    with serve(gunicorn(port, 'wsgi_ws_app:app', '--threads', '4'), port, cwd=APPS,
               env={'SCRIPT_NAME': '/api'}) as srv:
        with ws_connect(ws_url(srv, '/api/echo')) as ws:
            ws.send('mounted')
            assert ws.recv() == 'mounted'
        assert httpx.get(srv.url + '/api/', timeout=10).text == 'Hello, World!'


def test_microdot_run_gunicorn_workers_and_threads_websocket():
    port = free_port()
    cmd = [sys.executable, '-m', 'microdot', 'run', 'wsgi_ws_app:app', '--server',
           'gunicorn', '--workers', '2', '--threads', '8', '--port', str(port)]
    with serve(cmd, port, cwd=APPS) as srv:
        with ws_connect(ws_url(srv, '/echo')) as ws:
            ws.send('via microdot run')
            assert ws.recv() == 'via microdot run'


def _documented_commands():
    """The ``gunicorn ...`` lines of ``examples/echo_wsgi.py``'s docstring."""
    text = (ROOT / 'examples' / 'echo_wsgi.py').read_text()
    doc = text.split('"""')[1]
    return [line.split('#')[0].split() for line in doc.splitlines()
            if line.strip().startswith('gunicorn ')]


def test_echo_wsgi_example_documents_both_commands():
    targets = [words[-1] for words in _documented_commands()]
    assert targets == ['echo_wsgi:app', 'examples.echo_wsgi:app']


@pytest.mark.parametrize('words', _documented_commands(), ids=lambda w: w[-1])
def test_echo_wsgi_example_with_gunicorn(words):
    """Each documented command, as written (plus a free port), serves the page and
    the echo."""
    port = free_port()
    cmd = [sys.executable, '-m', *words, '--bind', '127.0.0.1:%d' % port]
    cwd = str(ROOT) if words[-1].startswith('examples.') else EXAMPLES
    with serve(cmd, port, cwd=cwd) as srv:
        page = httpx.get(srv.url + '/', timeout=10)
        assert page.status_code == 200
        assert page.headers['content-type'].startswith('text/html')
        assert 'new WebSocket(' in page.text and '/echo' in page.text
        with ws_connect(ws_url(srv, '/echo')) as ws:
            ws.send('hello example')
            assert ws.recv() == 'hello example'
