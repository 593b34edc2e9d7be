"""The WSGI adapter where it is meant to match Microdot 2.7, or to differ from it
because Microdot is defective: ``app.shutdown()`` (gunicorn's arbiter, after the
response; Microdot signals its process-group leader at once) and streamed bodies that
stop when the client leaves while they wait (under gunicorn)."""
import asyncio
import io
import os
import signal
import socket
import struct
import sys
import threading
import time
import types
from wsgiref.util import setup_testing_defaults

import pytest

import microdot.wsgi as wsgi_module
from microdot.wsgi import Microdot, server_master_pid


@pytest.fixture
def kills(monkeypatch):
    """Record ``os.kill``/``os.killpg`` and start from a process that sent nothing."""
    calls = []
    monkeypatch.setattr(os, 'kill', lambda pid, sig: calls.append((pid, sig)))
    monkeypatch.setattr(os, 'killpg', lambda *a: calls.append(('killpg',) + a))
    monkeypatch.setattr(wsgi_module, '_server_shutdown', wsgi_module._ServerShutdown())
    return calls


def environ_for(path, **extra):
    env = {}
    setup_testing_defaults(env)
    env.update({'REQUEST_METHOD': 'GET', 'PATH_INFO': path, 'QUERY_STRING': '',
                'wsgi.input': io.BytesIO()}, **extra)
    return env


def start(app, path, **extra):
    """Call ``app``; returns (status, the body iterable)."""
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen['status'] = status

    body = app(environ_for(path, **extra), start_response)
    return seen['status'], body


def stopping_app():
    app = Microdot()

    @app.route('/sync')
    def sync_stop(req):
        req.app.shutdown()
        return 'bye'

    @app.route('/async')
    async def async_stop(req):
        req.app.shutdown()
        return 'bye'

    return app


# -- app.shutdown() ---------------------------------------------------------------------

def test_shutdown_outside_a_request_signals_this_process_at_once(kills):
    Microdot().shutdown()
    assert kills == [(os.getpid(), signal.SIGTERM)]


@pytest.mark.parametrize('path', ['/sync', '/async'])
def test_shutdown_from_a_handler_signals_once_the_server_sent_the_response(kills, path):
    status, body = start(stopping_app(), path)
    assert status == '200 OK'
    assert b''.join(body) == b'bye'
    assert kills == []  # the server has not finished with the response yet
    body.close()  # PEP 3333: the server is done with it
    assert kills == [(os.getpid(), signal.SIGTERM)]


def test_shutdown_is_signalled_once(kills):
    app = stopping_app()
    for path in ('/sync', '/async'):
        body = start(app, path)[1]
        list(body)
        body.close()
    app.shutdown()
    assert kills == [(os.getpid(), signal.SIGTERM)]


def test_shutdown_signals_anyway_when_the_server_never_closes_the_response(kills,
                                                                           monkeypatch):
    monkeypatch.setattr(wsgi_module._ServerShutdown, 'grace', 0.1)
    start(stopping_app(), '/sync')
    deadline = time.monotonic() + 5
    while not kills and time.monotonic() < deadline:
        time.sleep(0.01)
    assert kills == [(os.getpid(), signal.SIGTERM)]


def test_master_pid_outside_gunicorn_is_this_process():
    assert server_master_pid() == os.getpid()


def test_master_pid_of_a_gunicorn_worker_is_the_arbiter(monkeypatch):
    monkeypatch.setenv('SERVER_SOFTWARE', 'gunicorn/27.0.1')
    monkeypatch.setitem(sys.modules, 'gunicorn.workers.base', types.ModuleType('base'))
    monkeypatch.setattr(os, 'getppid', lambda: 4242)
    assert server_master_pid() == 4242
    monkeypatch.setattr(os, 'getppid', lambda: 1)  # the arbiter is gone
    assert server_master_pid() == os.getpid()
    monkeypatch.setattr(os, 'getppid', lambda: 4242)
    monkeypatch.delitem(sys.modules, 'gunicorn.workers.base')  # a child of the app
    assert server_master_pid() == os.getpid()


# -- streamed bodies under gunicorn: the client leaving while the body waits -------------

def idle_app(record, pause=3600.0):
    app = Microdot()

    @app.route('/idle')
    async def idle(req):
        async def body():
            try:
                while True:
                    yield b'frame'
                    await asyncio.sleep(pause)
            finally:
                record.append('closed')
        return body()

    return app


@pytest.fixture
def client_socket():
    """(server side as gunicorn would pass it, client side) of a connection."""
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


@pytest.mark.parametrize('how', ['close', 'reset'])
def test_client_leaving_stops_a_waiting_body(client_socket, how):
    server, client = client_socket
    record = []
    body = start(idle_app(record), '/idle', **{'gunicorn.socket': server})[1]
    assert next(body) == b'frame'
    if how == 'reset':
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    threading.Timer(0.1, client.close).start()
    started = time.monotonic()
    with pytest.raises(ConnectionResetError):
        next(body)  # gunicorn drops the connection quietly on ECONNRESET
    assert time.monotonic() - started < 1
    assert record == ['closed']
    body.close()
    assert record == ['closed']


def test_data_from_the_client_does_not_stop_the_body(client_socket):
    """A pipelined request is not the client leaving: the body goes on (and the
    socket is no longer watched)."""
    server, client = client_socket
    record = []
    body = start(idle_app(record, pause=0.3), '/idle', **{'gunicorn.socket': server})[1]
    assert next(body) == b'frame'
    client.sendall(b'GET / HTTP/1.1\r\n\r\n')
    assert next(body) == b'frame'
    assert record == []
    assert server.recv(100, socket.MSG_PEEK).startswith(b'GET /')  # left for gunicorn
    body.close()
    assert record == ['closed']


@pytest.mark.skipif(not wsgi_module._POLLRDHUP, reason='needs POLLRDHUP (Linux)')
def test_client_leaving_after_sending_data_stops_the_body(client_socket):
    """Data the server has not read does not hide the client leaving afterwards."""
    server, client = client_socket
    record = []
    body = start(idle_app(record), '/idle', **{'gunicorn.socket': server})[1]
    assert next(body) == b'frame'
    client.sendall(b'GET / HTTP/1.1\r\n\r\n')
    threading.Timer(0.3, client.close).start()
    started = time.monotonic()
    with pytest.raises(ConnectionResetError):
        next(body)
    assert 0.3 <= time.monotonic() - started < 1
    assert record == ['closed']


def test_http2_connections_are_not_watched(client_socket):
    server, client = client_socket
    body = start(idle_app([], pause=0.2), '/idle', SERVER_PROTOCOL='HTTP/2',
                 **{'gunicorn.socket': server})[1]
    assert body.sock is None
    body.close()


@pytest.mark.skipif(not hasattr(signal, 'setitimer'), reason='needs setitimer')
def test_worker_timeout_while_the_body_waits_still_closes_it(client_socket):
    """gunicorn's worker timeout raises SystemExit in the waiting worker: the body is
    stopped there, and the server's close() afterwards is harmless."""
    server, client = client_socket
    record = []
    body = start(idle_app(record), '/idle', **{'gunicorn.socket': server})[1]
    assert next(body) == b'frame'

    def abort(*args):
        raise SystemExit(1)

    previous = signal.signal(signal.SIGALRM, abort)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(SystemExit):
            next(body)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert record == ['closed']
    body.close()


def test_plain_app_served_through_the_adapter_stops_the_server_too(kills):
    """``microdot run app:app --server gunicorn`` with a plain ``microdot.Microdot``:
    its ``shutdown()`` stops the WSGI server, after the response."""
    import microdot
    from microdot.wsgi import wsgi_adapter
    app = microdot.Microdot()

    @app.route('/stop')
    def stop(req):
        req.app.shutdown()
        return 'bye'

    adapter = wsgi_adapter(app)
    wsgi_adapter(app)  # wrapping again changes nothing
    body = start(adapter, '/stop')[1]
    assert b''.join(body) == b'bye' and kills == []
    body.close()
    assert kills == [(os.getpid(), signal.SIGTERM)]
    stopped = []
    app.server = types.SimpleNamespace(shutdown=lambda: stopped.append('builtin'))
    app.shutdown()
    assert stopped == ['builtin'] and len(kills) == 1
