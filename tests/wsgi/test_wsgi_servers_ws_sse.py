"""WebSocket and SSE under real gunicorn (sync and gthread), waitress and wsgiref."""
import asyncio
import base64
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest
from websockets.asyncio.client import connect as aws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from microdot import ws_protocol as wsp
from support import ROOT, ServerProcess, free_port, serve

APPS = str(ROOT / 'tests' / 'apps')
EXAMPLES = str(ROOT / 'examples')

WORKERS = {
    'sync': ['--worker-class', 'sync', '--workers', '2'],
    'gthread': ['--worker-class', 'gthread', '--threads', '8'],
}


def gunicorn(port, target='wsgi_ws_app:app', *extra):
    return [sys.executable, '-m', 'gunicorn', '--bind', '127.0.0.1:%d' % port,
            '--log-level', 'warning', '--graceful-timeout', '3', *extra, target]


def ws_url(server, path):
    return 'ws://%s:%d%s' % (server.host, server.port, path)


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
    with ws_connect(ws_url(server, '/echo'), max_size=4 << 20) as ws:
        ws.send('hello é')
        assert ws.recv() == 'hello é'
        ws.send(b'\x00\x01\xff')
        assert ws.recv() == b'\x00\x01\xff'
        big = os.urandom(1 << 20)
        ws.send(big)
        assert ws.recv() == big
        text = 'x' * (1 << 20)
        ws.send(text)
        assert ws.recv() == text
        for i in range(50):
            ws.send('message %d' % i)
        assert [ws.recv() for _ in range(50)] == ['message %d' % i for i in range(50)]
        ws.close()
    assert ws.close_code == 1000


def test_subprotocol_negotiation(server):
    with ws_connect(ws_url(server, '/chat'), subprotocols=['chat.v2', 'chat.v1']) as ws:
        assert ws.subprotocol == 'chat.v2'
        assert ws.recv() == 'protocol=chat.v2'


def test_server_close_code_and_reason(server):
    with ws_connect(ws_url(server, '/bye')) as ws:
        ws.send('bye')
        with pytest.raises(ConnectionClosed) as info:
            ws.recv()
    assert info.value.rcvd.code == 4000 and info.value.rcvd.reason == 'see you'


def test_handler_error_closes_with_1011(server):
    with ws_connect(ws_url(server, '/boom')) as ws:
        ws.send('go')
        with pytest.raises(ConnectionClosed) as info:
            ws.recv()
    assert info.value.rcvd.code == 1011


def test_too_big_message_closes_with_1009(server):
    with ws_connect(ws_url(server, '/small')) as ws:
        ws.send('a' * 10)
        assert ws.recv() == 'a' * 10
        ws.send('b' * 2000)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv()
    assert info.value.rcvd.code == 1009


def test_refused_handshakes_get_http_answers(server):
    with pytest.raises(InvalidStatus) as info:
        ws_connect(ws_url(server, '/private'))
    assert info.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as info:
        ws_connect(ws_url(server, '/nowhere'))
    assert info.value.response.status_code == 404
    with ws_connect(ws_url(server, '/private?token=ok')) as ws:
        assert ws.recv() == 'secret'
    headers = {'Upgrade': 'websocket', 'Connection': 'Upgrade',
               'Sec-WebSocket-Key': base64.b64encode(os.urandom(16)).decode(),
               'Sec-WebSocket-Version': '8'}
    res = httpx.get(server.url + '/echo', headers=headers, timeout=10)
    assert res.status_code == 426 and res.headers['sec-websocket-version'] == '13'
    res = httpx.get(server.url + '/echo', timeout=10)  # not an upgrade at all
    assert res.status_code == 400


def _raw_handshake(server, path='/echo'):
    """Open a socket and complete the handshake by hand; returns (sock, head, rest)."""
    sock = socket.create_connection((server.host, server.port), timeout=10)
    headers, key = wsp.client_handshake_headers()
    lines = ['GET %s HTTP/1.1' % path, 'Host: %s:%d' % (server.host, server.port)]
    lines += ['%s: %s' % h for h in headers]
    sock.sendall(('\r\n'.join(lines) + '\r\n\r\n').encode())
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = sock.recv(4096)
        assert chunk, 'connection closed during the handshake'
        data += chunk
    head, _, rest = data.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 101 ')
    assert ('\r\nSec-WebSocket-Accept: ' + wsp.accept_key(key)).encode() in head
    return sock, head, rest


def test_nothing_follows_the_session_and_the_server_closes(server):
    """After the closing handshake gunicorn writes no HTTP bytes and closes the TCP
    connection itself: exactly one 101 head, the echo, the Close frame, then EOF."""
    sock, head, rest = _raw_handshake(server)
    conn = wsp.WebSocketConnection(is_client=True)
    assert head.count(b'HTTP/1.1') == 1 and b'transfer-encoding' not in head.lower()
    sock.sendall(conn.send('ping?'))
    sock.sendall(conn.close(1000, 'done'))
    received = bytearray(rest)
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    sock.close()
    conn.receive_data(bytes(received))
    conn.receive_data(b'')
    events = list(conn.events())
    assert isinstance(events[0], wsp.Message) and events[0].data == 'ping?'
    assert isinstance(events[1], wsp.Close) and events[1].code == 1000
    assert len(events) == 2  # EOF after a Close is not reported: no stray bytes
    assert b'HTTP/' not in bytes(received)


def test_client_dropping_the_connection_frees_the_worker(server):
    for _ in range(3):
        sock, _, _ = _raw_handshake(server)
        sock.close()  # no Close frame: 1006 on the server side
    with ws_connect(ws_url(server, '/echo')) as ws:
        ws.send('still here')
        assert ws.recv() == 'still here'
    assert httpx.get(server.url + '/', timeout=10).text == 'Hello, World!'


# -- concurrency -----------------------------------------------------------------------

def test_gthread_concurrent_websockets_each_on_its_own_thread(gthread_server):
    with ExitStack() as stack:
        clients = [stack.enter_context(ws_connect(ws_url(gthread_server, '/whoami')))
                   for _ in range(6)]
        owners = [ws.recv().split() for ws in clients]
        assert len({pid for pid, _ in owners}) == 1  # one worker process
        assert len({tid for _, tid in owners}) == 6  # one thread per WebSocket
        for rnd in range(20):  # interleaved traffic on all of them
            for i, ws in enumerate(clients):
                ws.send('%d-%d' % (i, rnd))
            for i, ws in enumerate(clients):
                assert ws.recv() == '%d-%d' % (i, rnd)


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

def _events(lines):
    """Yield (event, data) pairs from an iterator of SSE lines."""
    event, data = None, []
    for line in lines:
        if line.startswith('event: '):
            event = line[7:]
        elif line.startswith('data: '):
            data.append(line[6:])
        elif line == '' and data:
            yield event, '\n'.join(data)
            event, data = None, []


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
        with client.stream('GET', srv.url + '/sse/file', params={'path': str(flag)}) as res:
            assert res.headers['content-type'].startswith('text/event-stream')
            events = _events(res.iter_lines())
            assert next(events) == ('step', 'first')
            assert not flag.exists()
            flag.write_text('go')
            assert next(events) == ('step', '{"second": true}')
            assert list(events) == []


def test_sse_gthread_event_released_by_another_request(gthread_server):
    with httpx.Client(timeout=10) as client:
        with client.stream('GET', gthread_server.url + '/sse/gate') as res:
            events = _events(res.iter_lines())
            assert next(events) == ('step', 'first')
            released = client.post(gthread_server.url + '/sse/release')
            assert released.text == 'released'
            assert next(events) == ('step', 'second released=True')


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
