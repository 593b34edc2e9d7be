"""WebSocket and SSE under real uvicorn and hypercorn processes on 127.0.0.1.

WebSocket clients are the ``websockets`` library's; SSE clients are httpx streams. The
app records what it sees in a file; waits on it are bounded polls, never fixed sleeps.
"""
import json
import os
import signal
import sys

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from support import ROOT, ServerProcess, free_port, serve, wait_for_line

APPS = str(ROOT / 'tests' / 'apps')
EXAMPLES = str(ROOT / 'examples')

# (server, uvicorn --ws implementation); hypercorn has a single one (wsproto)
SERVERS = [('uvicorn', None), ('uvicorn', 'wsproto'), ('uvicorn', 'websockets'),
           ('hypercorn', None)]
IDS = ['uvicorn', 'uvicorn-wsproto', 'uvicorn-websockets-legacy', 'hypercorn']


def server_cmd(name, port, target, ws=None):
    if name == 'uvicorn':
        extra = ['--ws', ws] if ws else []
        return [sys.executable, '-m', 'uvicorn', '--host', '127.0.0.1', '--port', str(port),
                '--log-level', 'warning', *extra, target]
    return [sys.executable, '-m', 'hypercorn', '--bind', '127.0.0.1:%d' % port,
            '--log-level', 'warning', target]



@pytest.fixture(scope='module', params=SERVERS, ids=IDS)
def server(request, tmp_path_factory):
    """One server process per implementation, shared by this module's tests."""
    name, ws = request.param
    events = tmp_path_factory.mktemp('ws') / 'events.txt'
    port = free_port()
    proc = ServerProcess(server_cmd(name, port, 'asgi_ws_app:app', ws), port, cwd=APPS,
                         env={'MICRODOT_TEST_EVENTS': str(events)})
    try:
        proc.wait_ready()
        proc.events = str(events)
        proc.name = name
        proc.ws_url = 'ws://127.0.0.1:%d' % port
        yield proc
    finally:
        proc.stop()
    # nothing went wrong on the server side (the app logs no errors in these tests)
    assert 'Traceback' not in proc.output, proc.output
    assert 'Exception in ASGI application' not in proc.output, proc.output


def ws_connect(server, path, **kwargs):
    kwargs.setdefault('open_timeout', 10)
    kwargs.setdefault('close_timeout', 5)
    return connect(server.ws_url + path, **kwargs)


def test_echo_text_and_binary(server):
    with ws_connect(server, '/echo') as ws:
        ws.send('hello \u20ac')
        assert ws.recv(timeout=10) == 'hello \u20ac'
        ws.send(b'\x00\x01\xff')
        assert ws.recv(timeout=10) == b'\x00\x01\xff'
        big = os.urandom(200_000)
        ws.send(big)
        assert ws.recv(timeout=10) == big


def test_server_close_code_and_reason_seen_by_client(server):
    with ws_connect(server, '/echo') as ws:
        ws.send('close:4001:see you')
        with pytest.raises(ConnectionClosed) as exc:
            ws.recv(timeout=10)
    assert exc.value.rcvd is not None
    assert (exc.value.rcvd.code, exc.value.rcvd.reason) == (4001, 'see you')


def test_client_close_code_seen_by_handler(server):
    with ws_connect(server, '/watch') as ws:
        assert ws.recv(timeout=10) == 'watching'
        ws.close(4005, 'client done')
    # hypercorn (0.18) does not pass the client's close code on: it reports 1006
    expected = 'watch closed 1006' if server.name == 'hypercorn' else \
        'watch closed 4005 client done'
    assert wait_for_line(server.events, expected), open(server.events).read()


def test_subprotocol_negotiated(server):
    with ws_connect(server, '/chat', subprotocols=['v9', 'superchat', 'chat']) as ws:
        assert ws.subprotocol == 'superchat'
        assert ws.recv(timeout=10) == 'superchat'
        ws.send('hi')
        assert ws.recv(timeout=10) == 'hi'
    with ws_connect(server, '/chat') as ws:
        assert ws.subprotocol is None
        assert ws.recv(timeout=10) == ''


def test_message_too_big_closes_1009(server):
    with ws_connect(server, '/limited') as ws:
        ws.send('x' * 1024)
        assert ws.recv(timeout=10) == 'x' * 1024
        ws.send('x' * 1025)
        with pytest.raises(ConnectionClosed) as exc:
            ws.recv(timeout=10)
    assert exc.value.rcvd is not None and exc.value.rcvd.code == 1009


@pytest.mark.parametrize('path,status,body', [('/secret', 401, None),
                                              ('/nowhere', 404, b'Not found'),
                                              ('/plain', 200, b'plain http')])
def test_refused_websocket_gets_the_http_answer(server, path, status, body):
    # both servers implement the websocket.http.response (denial) extension
    with pytest.raises(InvalidStatus) as exc:
        ws_connect(server, path)
    assert exc.value.response.status_code == status
    if body is not None:  # the body arrives too
        assert exc.value.response.body == body
    with ws_connect(server, '/secret?token=letmein') as ws:
        assert ws.recv(timeout=10) == 'the secret'


def test_sse_first_event_arrives_before_the_stream_ends_and_disconnect_stops_it(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        with client.stream('GET', '/events') as res:
            assert res.status_code == 200
            assert res.headers['content-type'] == 'text/event-stream'
            lines = []
            for line in res.iter_lines():
                if not line and lines:
                    break  # the first complete event; the stream is still open
                lines.append(line)
            assert lines == ['event: greeting', 'id: 1',
                             'data: ' + json.dumps({'hello': 'world'})]
            assert not res.is_closed  # the server has not ended the stream
            assert wait_for_line(server.events, 'sse sent first')
    assert wait_for_line(server.events, 'sse stopped'), open(server.events).read()


def test_sse_stream_that_ends(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        with client.stream('GET', '/countdown?n=3') as res:
            text = ''.join(res.iter_text())
    assert text == ''.join('event: count\ndata: %d\ndata: left\n\n' % i
                           for i in (3, 2, 1))


@pytest.mark.parametrize('name', [
    'uvicorn',
    pytest.param('hypercorn', marks=pytest.mark.skipif(
        sys.version_info >= (3, 12),
        reason='Hypercorn 0.18 ignores --graceful-timeout on Python 3.12+ while a '
               'connection is open (pgjones/hypercorn#308): it never gives up on the '
               'stream, so there is nothing to test')),
])
def test_sse_cleanup_runs_when_the_server_gives_up_on_the_stream(name, tmp_path):
    """With a graceful-shutdown timeout the server cancels the open stream, then runs
    the lifespan shutdown without waiting for it (uvicorn then re-raises SIGTERM): the
    event function's ``finally`` still runs, and before the shutdown hooks."""
    events = tmp_path / 'events.txt'
    port = free_port()
    cmd = server_cmd(name, port, 'asgi_ws_app:app')
    cmd[-1:-1] = (['--timeout-graceful-shutdown', '1'] if name == 'uvicorn'
                  else ['--graceful-timeout', '1'])
    server = ServerProcess(cmd, port, cwd=APPS, env={'MICRODOT_TEST_EVENTS': str(events)})
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            with client.stream('GET', '/events') as res:
                lines = res.iter_lines()  # kept: a dropped iterator closes the response
                assert next(lines) == 'event: greeting'
                assert wait_for_line(events, 'sse sent first')
                assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM), server.output
    finally:
        server.stop()
    seen = open(events).read().splitlines()
    assert 'sse stopped' in seen, (seen, server.output)
    assert seen.index('sse stopped') < seen.index('shutdown hook ran'), seen


@pytest.mark.parametrize('name', ['uvicorn', 'hypercorn'])
def test_echo_example_runs_as_documented(name):
    """``uvicorn echo_asgi:app`` from examples/: the page at / and the echo socket."""
    port = free_port()
    with serve(server_cmd(name, port, 'echo_asgi:app'), port, cwd=EXAMPLES) as srv:
        res = httpx.get(srv.url + '/', timeout=10)
        assert res.status_code == 200
        assert res.headers['content-type'].startswith('text/html')
        assert "'/echo'" in res.text and 'new WebSocket' in res.text
        with connect('ws://127.0.0.1:%d/echo' % port, open_timeout=10) as ws:
            ws.send('ping?')
            assert ws.recv(timeout=10) == 'ping?'
            ws.send(b'bin')
            assert ws.recv(timeout=10) == b'bin'


def test_echo_example_with_microdot_run_uvicorn_two_workers():
    """``microdot run echo_asgi:app --server uvicorn --workers 2``, as the README says."""
    port = free_port()
    cmd = [sys.executable, '-m', 'microdot', 'run', 'echo_asgi:app', '--server',
           'uvicorn', '--workers', '2', '--port', str(port)]
    with serve(cmd, port, cwd=EXAMPLES):
        for i in range(4):  # whichever worker takes the connection
            with connect('ws://127.0.0.1:%d/echo' % port, open_timeout=10) as ws:
                ws.send('hello %d' % i)
                assert ws.recv(timeout=10) == 'hello %d' % i
