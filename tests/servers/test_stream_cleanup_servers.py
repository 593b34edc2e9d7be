"""A streamed body stops, and its ``finally`` runs, within a second of the client leaving,
under real uvicorn (h11 and httptools), Hypercorn, Granian (when installed) and gunicorn
(sync and gthread).

The bodies are endless, like Microdot's video-streaming example (a frame every 50 ms,
or a frame then an hour's wait). The client is a raw socket: it reads a few frames,
then closes the connection (FIN, or a reset), and the test waits, bounded, for the
line the generator's ``finally`` writes.
"""
import importlib.util
import socket
import ssl
import struct
import subprocess
import sys
import time

import pytest

from support import ROOT, ServerProcess, free_port, serve, wait_for_line

APPS = str(ROOT / 'tests' / 'apps')
#: How long after the client leaves the body's cleanup must have run.
CLEANUP_DEADLINE = 1.0

HAVE_HTTPTOOLS = importlib.util.find_spec('httptools') is not None
HAVE_GRANIAN = importlib.util.find_spec('granian') is not None


def server_cmd(name, port):
    """The command line that serves tests/apps/stream_cleanup_app.py with ``name``."""
    if name.startswith('uvicorn'):
        return [sys.executable, '-m', 'uvicorn', '--host', '127.0.0.1', '--port', str(port),
                '--http', name.split('-')[1], '--log-level', 'warning',
                'stream_cleanup_app:asgi_app']
    if name == 'granian':
        return [sys.executable, '-m', 'granian', '--interface', 'asgi', '--host',
                '127.0.0.1', '--port', str(port), '--log-level', 'warning',
                'stream_cleanup_app:asgi_app']
    if name == 'hypercorn':
        return [sys.executable, '-m', 'hypercorn', '--bind', '127.0.0.1:%d' % port,
                '--log-level', 'warning', 'stream_cleanup_app:asgi_app']
    worker = ['--worker-class', 'sync', '--workers', '2'] if name == 'gunicorn-sync' \
        else ['--worker-class', 'gthread', '--threads', '4']
    return [sys.executable, '-m', 'gunicorn', '--bind', '127.0.0.1:%d' % port,
            '--log-level', 'warning', '--graceful-timeout', '3', *worker,
            'stream_cleanup_app:wsgi_app']


SERVERS = [
    'uvicorn-h11',
    pytest.param('uvicorn-httptools', marks=pytest.mark.skipif(
        not HAVE_HTTPTOOLS, reason='httptools is not installed (uvicorn[standard])')),
    'hypercorn',
    pytest.param('granian', marks=pytest.mark.skipif(
        not HAVE_GRANIAN, reason='granian is not installed')),
    'gunicorn-sync',
    'gunicorn-gthread',
]


@pytest.fixture(scope='module', params=SERVERS)
def server(request, tmp_path_factory):
    """One server process per server kind, shared by this module's tests."""
    events = tmp_path_factory.mktemp('streams') / 'events.txt'
    port = free_port()
    proc = ServerProcess(server_cmd(request.param, port), port, cwd=APPS,
                         env={'MICRODOT_TEST_EVENTS': str(events)})
    try:
        proc.wait_ready()
        proc.events = str(events)
        yield proc
    finally:
        proc.stop()
    assert 'Traceback' not in proc.output, proc.output


def read_frames(sock, count):
    """Read from ``sock`` until ``count`` frame boundaries arrived after the head."""
    data = b''
    while data.count(b'--frame\r\n') < count:
        chunk = sock.recv(65536)
        assert chunk, 'the server closed the stream early: %r' % data[-200:]
        data += chunk
    assert data.startswith(b'HTTP/1.1 200 '), data[:200]
    assert b'multipart/x-mixed-replace' in data.split(b'\r\n\r\n', 1)[0]


@pytest.mark.parametrize('how', ['close', 'reset'])
@pytest.mark.parametrize('path,frames', [('sync-frames', 3), ('async-frames', 3),
                                         ('async-slow', 1)])
def test_client_leaving_stops_an_endless_stream(server, path, frames, how):
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b'GET /%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' % path.encode())
        read_frames(sock, frames)
        assert wait_for_line(server.events, '%s started' % path)
        before = open(server.events).read().count('%s stopped' % path)
        if how == 'reset':  # an RST instead of a FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    left = time.monotonic()
    deadline = left + CLEANUP_DEADLINE
    while open(server.events).read().count('%s stopped' % path) == before:
        assert time.monotonic() < deadline, (
            'the body was not closed within %.1f s of the client leaving'
            % CLEANUP_DEADLINE)
        time.sleep(0.02)


@pytest.fixture(scope='module')
def certificate(tmp_path_factory):
    """A self-signed certificate and key for 127.0.0.1."""
    folder = tmp_path_factory.mktemp('tls')
    cert, key = folder / 'cert.pem', folder / 'key.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days',
                    '1', '-subj', '/CN=127.0.0.1', '-keyout', str(key), '-out', str(cert)],
                   check=True, capture_output=True)
    return cert, key


@pytest.mark.parametrize('how', ['close', 'close_notify'])
@pytest.mark.parametrize('worker', ['sync', 'gthread'])
def test_gunicorn_over_tls_stops_a_waiting_stream_when_the_client_leaves(
        worker, how, certificate, tmp_path):
    """Over TLS the adapter looks at the TCP stream under the TLS socket; a client
    may close it with or without a TLS close_notify alert first."""
    cert, key = certificate
    events = tmp_path / 'events.txt'
    port = free_port()
    command = server_cmd('gunicorn-' + worker, port)
    command[-1:-1] = ['--certfile', str(cert), '--keyfile', str(key)]
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    with serve(command, port, cwd=APPS, env={'MICRODOT_TEST_EVENTS': str(events)}):
        raw = socket.create_connection(('127.0.0.1', port), timeout=10)
        with context.wrap_socket(raw) as sock:
            sock.sendall(b'GET /async-slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
            read_frames(sock, 1)
            assert wait_for_line(events, 'async-slow started')
            if how == 'close_notify':
                sock.setblocking(False)
                try:
                    sock.unwrap()  # sends the alert; the server does not answer it
                except (ssl.SSLWantReadError, ssl.SSLError, OSError):
                    pass
        assert wait_for_line(events, 'async-slow stopped', CLEANUP_DEADLINE), \
            'the body was not closed within %.1f s' % CLEANUP_DEADLINE
