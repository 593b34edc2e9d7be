"""WebSocket and SSE checks run against real WSGI servers (uWSGI in
tests/wsgi/test_uwsgi.py, gunicorn in tests/wsgi/test_wsgi_servers_ws_sse.py), serving
``tests/apps/wsgi_ws_app.py``. ``server`` is a running ``support.ServerProcess``.
"""
import base64
import os
import socket
from contextlib import ExitStack

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from microdot import ws_protocol as wsp


def ws_url(server, path):
    """The ``ws://`` URL of ``path`` on ``server``."""
    return 'ws://%s:%d%s' % (server.host, server.port, path)


def sse_events(lines):
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


def raw_handshake(server, path='/echo', status=b'HTTP/1.1 101 '):
    """Open a socket and complete the handshake by hand, the answer's head starting
    with ``status``; returns (sock, head, rest)."""
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
    assert head.startswith(status)
    assert ('\r\nSec-WebSocket-Accept: ' + wsp.accept_key(key)).encode() in head
    return sock, head, rest


def check_echo_text_binary_and_large_message(server):
    """Text, binary, 1 MiB messages and 50 in a row come back; the client's close is
    answered with 1000."""
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


def check_subprotocol_negotiation(server):
    """The handler selects the first subprotocol it knows."""
    with ws_connect(ws_url(server, '/chat'), subprotocols=['chat.v2', 'chat.v1']) as ws:
        assert ws.subprotocol == 'chat.v2'
        assert ws.recv() == 'protocol=chat.v2'


def check_server_close_code_and_reason(server):
    """The handler's close code and reason reach the client."""
    with ws_connect(ws_url(server, '/bye')) as ws:
        ws.send('bye')
        with pytest.raises(ConnectionClosed) as info:
            ws.recv()
    assert info.value.rcvd.code == 4000 and info.value.rcvd.reason == 'see you'


def check_handler_error_closes_with_1011(server):
    """An exception in the handler closes the session with 1011."""
    with ws_connect(ws_url(server, '/boom')) as ws:
        ws.send('go')
        with pytest.raises(ConnectionClosed) as info:
            ws.recv()
    assert info.value.rcvd.code == 1011


def check_too_big_message_closes_with_1009(server):
    """A message over the route's limit closes the session with 1009."""
    with ws_connect(ws_url(server, '/small')) as ws:
        ws.send('a' * 10)
        assert ws.recv() == 'a' * 10
        ws.send('b' * 2000)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv()
    assert info.value.rcvd.code == 1009


def check_refused_handshakes_get_http_answers(server):
    """Refused, unknown, wrong-version and non-upgrade requests get HTTP answers."""
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


def check_one_head_then_frames_then_eof(server, status=b'HTTP/1.1 101 '):
    """After the closing handshake the server writes no HTTP bytes and closes the TCP
    connection itself: exactly one 101 head, the echo, the Close frame, then EOF."""
    sock, head, rest = raw_handshake(server, status=status)
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


def check_client_dropping_the_connection(server, times):
    """``times`` clients drop their connection without a Close frame; the server still
    serves WebSocket and HTTP."""
    for _ in range(times):
        sock, _, _ = raw_handshake(server)
        sock.close()  # no Close frame: 1006 on the server side
    with ws_connect(ws_url(server, '/echo')) as ws:
        ws.send('still here')
        assert ws.recv() == 'still here'
    assert httpx.get(server.url + '/', timeout=10).text == 'Hello, World!'


def check_concurrent_websockets_each_on_its_own_thread(server, rounds, http_too=False):
    """Six sessions, each on its own thread of one process, exchange ``rounds`` rounds
    of interleaved messages (then, with ``http_too``, ``/`` answers while they are
    open)."""
    with ExitStack() as stack:
        clients = [stack.enter_context(ws_connect(ws_url(server, '/whoami')))
                   for _ in range(6)]
        owners = [ws.recv().split() for ws in clients]
        assert len({pid for pid, _ in owners}) == 1  # one worker process
        assert len({tid for _, tid in owners}) == 6  # one thread per WebSocket
        for rnd in range(rounds):  # interleaved traffic on all of them
            for i, ws in enumerate(clients):
                ws.send('%d-%d' % (i, rnd))
            for i, ws in enumerate(clients):
                assert ws.recv() == '%d-%d' % (i, rnd)
        if http_too:
            assert httpx.get(server.url + '/', timeout=10).text == 'Hello, World!'


def check_sse_flushed_as_produced(http, url, flag):
    """``/sse/file`` on ``url``: the first event arrives while the handler still waits
    for ``flag``, which the check only creates after reading it."""
    with http.stream('GET', url + '/sse/file', params={'path': str(flag)}) as res:
        assert res.headers['content-type'].startswith('text/event-stream')
        events = sse_events(res.iter_lines())
        assert next(events) == ('step', 'first')
        assert not flag.exists()
        flag.write_text('go')
        assert next(events) == ('step', '{"second": true}')
        assert list(events) == []


def check_sse_released_by_another_request(http, url):
    """``/sse/gate`` on ``url`` sends its second event once another request, served
    at the same time, releases it."""
    with http.stream('GET', url + '/sse/gate') as res:
        events = sse_events(res.iter_lines())
        assert next(events) == ('step', 'first')
        released = http.post(url + '/sse/release')
        assert released.text == 'released'
        assert next(events) == ('step', 'second released=True')
