"""The built-in HTTP/1.1 server, on a real loopback socket, with raw-socket clients."""
import asyncio
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import httpx
import pytest

import microdot
from microdot import Microdot
from support import ServerProcess, free_port, recv_all
from support import live_server as _live_server


def make_app():
    app = Microdot()

    @app.route('/')
    async def index(req):
        return 'Hello, World!'

    @app.route('/echo', methods=['POST', 'PUT'])
    async def echo(req):
        data = req.body if req.body else await req.stream.read()
        return data, {'Content-Type': 'application/octet-stream'}

    @app.route('/stream')
    async def stream(req):
        async def gen():
            for i in range(3):
                yield 'part %d\n' % i
        return gen()

    @app.route('/info')
    async def info(req):
        return {'path': req.path, 'query': req.query_string, 'method': req.method,
                'version': req.http_version, 'host': req.headers.get('Host'),
                'client': list(req.client_addr), 'scheme': req.scheme}

    @app.route('/sync')
    def sync(req):
        return 'sync'

    return app


@contextmanager
def live_server(app=None, **kwargs):
    """The built-in server for ``app`` (default: :func:`make_app`), in a thread."""
    with _live_server(app or make_app(), **kwargs) as server:
        yield server


def connect(server, timeout=5):
    s = socket.create_connection((server.host, server.port), timeout=timeout)
    return s


def read_response(s, timeout=5):
    """Read one response (Content-Length or chunked framed) from a keep-alive socket."""
    s.settimeout(timeout)
    buf = b''
    while b'\r\n\r\n' not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError('closed before a full head: %r' % buf)
        buf += chunk
    head, _, rest = buf.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(':')
        headers[k.strip().lower()] = v.strip()
    if 'content-length' in headers:
        n = int(headers['content-length'])
        while len(rest) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, headers, rest[:n], rest[n:]
    if headers.get('transfer-encoding') == 'chunked':
        while not rest.endswith(b'0\r\n\r\n'):
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        body = b''
        data = rest
        while True:
            size_line, _, data = data.partition(b'\r\n')
            size = int(size_line, 16)
            if size == 0:
                break
            body += data[:size]
            data = data[size + 2:]
        return status, headers, body, b''
    return status, headers, rest, b''


def status_of(raw):
    assert raw.startswith(b'HTTP/1.1 '), raw[:80]
    return int(raw.split(b' ', 2)[1])


# -- basic behaviour --------------------------------------------------------------------

def test_hello_with_httpx_keeps_the_connection_alive():
    with live_server() as server:
        with httpx.Client(base_url='http://127.0.0.1:%d' % server.port) as client:
            for _ in range(5):
                res = client.get('/')
                assert res.status_code == 200
                assert res.text == 'Hello, World!'
                assert res.http_version == 'HTTP/1.1'
            assert len(server.connections) == 1
            assert client.get('/sync').text == 'sync'
            info = client.get('/info?x=1').json()
            assert info['query'] == 'x=1' and info['version'] == '1.1'
            assert info['client'][0] == '127.0.0.1'


def test_keep_alive_and_pipelining_on_one_socket():
    with live_server() as server:
        s = connect(server)
        s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n'
                  b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'
                  b'GET /info?a=b HTTP/1.1\r\nHost: x\r\n\r\n')
        status, _, body, rest = read_response(s)
        assert (status, body) == (200, b'Hello, World!')
        # the remaining responses may already be buffered in ``rest``
        data = rest
        s.settimeout(5)
        while data.count(b'HTTP/1.1 200') < 2 or not data.endswith(b'}'):
            data += s.recv(65536)
        assert b'hello' in data and b'"query":"a=b"' in data.replace(b' ', b'')
        s.close()


def test_byte_by_byte_delivery():
    with live_server() as server:
        s = connect(server)
        for b in b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc':
            s.send(bytes([b]))
        status, _, body, _ = read_response(s)
        assert (status, body) == (200, b'abc')
        s.close()


def test_http10_closes_by_default_and_keeps_alive_on_request():
    with live_server() as server:
        s = connect(server)
        s.sendall(b'GET / HTTP/1.0\r\n\r\n')
        raw = recv_all(s)
        assert raw.startswith(b'HTTP/1.0 200 OK\r\n')
        assert b'connection: close' in raw.lower()
        s = connect(server)
        s.sendall(b'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
        status, headers, body, _ = read_response(s)
        assert status == 200 and headers['connection'].lower() == 'keep-alive'
        s.sendall(b'GET / HTTP/1.0\r\n\r\n')
        assert b'Hello, World!' in recv_all(s)


def test_connection_close_is_honoured():
    with live_server() as server:
        s = connect(server)
        s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        raw = recv_all(s)
        assert status_of(raw) == 200 and raw.endswith(b'Hello, World!')
        assert b'Connection: close' in raw


def test_streaming_response_is_chunked_on_http11_and_close_delimited_on_http10():
    with live_server() as server:
        s = connect(server)
        s.sendall(b'GET /stream HTTP/1.1\r\nHost: x\r\n\r\n')
        status, headers, body, _ = read_response(s)
        assert headers['transfer-encoding'] == 'chunked'
        assert body == b'part 0\npart 1\npart 2\n'
        s = connect(server)
        s.sendall(b'GET /stream HTTP/1.0\r\n\r\n')
        raw = recv_all(s)
        assert b'transfer-encoding' not in raw.lower()
        assert raw.endswith(b'part 0\npart 1\npart 2\n')


def test_head_has_no_body_but_the_get_length():
    with live_server() as server:
        s = connect(server)
        s.sendall(b'HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n')
        s.settimeout(5)
        data = b''
        while not data.endswith(b'Hello, World!'):
            data += s.recv(65536)
        first, _, second = data.partition(b'\r\n\r\n')
        assert b'Content-Length: 13' in first
        assert second.startswith(b'HTTP/1.1 200 OK')  # no body bytes in between


def test_plain_responses_have_exactly_length_type_and_date(monkeypatch):
    app = Microdot()
    app.route('/s')(lambda req: 'plain')
    app.route('/c')(lambda req: ('made', 201))
    app.route('/h')(lambda req: ('x', {'X-A': '1'}))
    with live_server(app) as server, connect(server) as s:
        s.sendall(b'GET /s HTTP/1.1\r\nHost: x\r\n\r\n')
        status, headers, body, _ = read_response(s)
        assert (status, body) == (200, b'plain')
        assert sorted(headers) == ['content-length', 'content-type', 'date']
        assert headers['content-type'] == 'text/plain; charset=UTF-8'
        s.sendall(b'GET /c HTTP/1.1\r\nHost: x\r\n\r\n')
        status, headers, body, _ = read_response(s)
        assert (status, body) == (201, b'made') and headers['content-length'] == '4'
        monkeypatch.setattr(microdot.Response, 'default_content_type', 'text/x-50%')
        s.sendall(b'GET /s HTTP/1.1\r\nHost: x\r\n\r\n')
        _, headers, body, _ = read_response(s)
        assert headers['content-type'] == 'text/x-50%; charset=UTF-8' and body == b'plain'
        s.sendall(b'GET /h HTTP/1.1\r\nHost: x\r\n\r\n')  # own headers: full path
        _, headers, body, _ = read_response(s)
        assert headers['x-a'] == '1' and body == b'x' and 'date' in headers


def test_unsendable_headers_give_a_plain_500(monkeypatch, caplog):
    app = Microdot()
    app.route('/bad')(lambda req: ('x', {'X-Bad': 'a\r\nSet-Cookie: evil=1'}))
    app.route('/plain')(lambda req: 'x')
    with live_server(app) as server:
        with connect(server) as s:
            s.sendall(b'GET /bad HTTP/1.1\r\nHost: x\r\n\r\n')
            status, headers, body, _ = read_response(s)
            assert status == 500 and 'set-cookie' not in headers
            assert headers['connection'] == 'close' and recv_all(s) == b''
        monkeypatch.setattr(microdot.Response, 'default_content_type', 'a\r\nX-Evil: 1')
        with connect(server) as s:
            s.sendall(b'GET /plain HTTP/1.1\r\nHost: x\r\n\r\n')
            status, headers, body, _ = read_response(s)
            assert status == 500 and 'x-evil' not in headers
            assert headers['content-type'] == 'text/plain; charset=UTF-8'
            assert body.strip() == b'Internal server error'


def test_chunked_upload_with_trailers():
    with live_server() as server:
        s = connect(server)
        s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
                  b'5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n')
        status, _, body, _ = read_response(s)
        assert (status, body) == (200, b'hello world')


def test_expect_100_continue():
    with live_server() as server:
        s = connect(server)
        s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n'
                  b'Expect: 100-continue\r\n\r\n')
        s.settimeout(5)
        interim = s.recv(1024)
        assert interim.startswith(b'HTTP/1.1 100 Continue\r\n\r\n')
        s.sendall(b'data')
        data = interim[len(b'HTTP/1.1 100 Continue\r\n\r\n'):]
        while not data.endswith(b'data'):
            data += s.recv(1024)
        assert status_of(data) == 200


def test_expect_100_continue_refused_with_413_when_too_large():
    with live_server() as server:
        s = connect(server)
        s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n'
                  b'Expect: 100-continue\r\n\r\n')
        raw = recv_all(s)
        assert status_of(raw) == 413
        assert b'100 Continue' not in raw


def test_large_body_streams_through_request_stream():
    app = make_app()
    app.max_content_length = 10 * 1024 * 1024
    with live_server(app) as server:
        payload = os.urandom(3 * 1024 * 1024)
        res = httpx.post('http://127.0.0.1:%d/echo' % server.port, content=payload,
                         timeout=30)
        assert res.status_code == 200 and res.content == payload


def test_body_over_the_limit_is_413_before_reading_it():
    with live_server() as server:
        s = connect(server)
        s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n')
        raw = recv_all(s)  # answered and closed without us sending the body
        assert status_of(raw) == 413


def test_chunked_body_over_the_limit_is_413():
    with live_server() as server:
        s = connect(server)
        chunk = b'4000\r\n' + b'x' * 0x4000 + b'\r\n'
        s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
                  + chunk * 2)
        raw = recv_all(s)
        assert status_of(raw) == 413


# -- strict parsing: every rejection closes the connection ------------------------------

BAD_REQUESTS = [
    (b'GET / HTTP/1.1\r\n\r\n', 400),  # no Host
    (b'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400),
    (b'GET  / HTTP/1.1\r\nHost: x\r\n\r\n', 400),
    (b'GET / HTTP/1.1x\r\nHost: x\r\n\r\n', 400),
    (b'GET / HTTP/2.0\r\nHost: x\r\n\r\n', 505),
    (b'G@T / HTTP/1.1\r\nHost: x\r\n\r\n', 400),
    (b'GET /a b HTTP/1.1\r\nHost: x\r\n\r\n', 400),
    (b'GET noslash HTTP/1.1\r\nHost: x\r\n\r\n', 400),
    (b'GET / HTTP/1.1\r\nHost : x\r\n\r\n', 400),
    (b'GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n', 400),
    (b'GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n', 400),
    (b'GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n', 400),
    (b'GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n', 400),
    (b'GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n', 400),
    (b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n', 400),
    (b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n', 400),
    (b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
     400),
    (b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n'
     b'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400),
    (b'POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400),
    (b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 400),
    (b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', 400),
    (b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501),
    (b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo\r\n\r\n', 501),
    (b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400),
    (b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n', 400),
    (b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
     b'3\r\nabcXX', 400),
    (b'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
     b'3\r\nabc\r\n0\r\nContent-Length: 5\r\n\r\n', 400),
    (b'GET /' + b'a' * 5000 + b' HTTP/1.1\r\nHost: x\r\n\r\n', 414),
    (b'GET / HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'v' * 5000 + b'\r\n\r\n', 431),
    (b'GET / HTTP/1.1\r\nHost: x\r\n' + b''.join(b'X-%d: v\r\n' % i for i in range(150))
     + b'\r\n', 431),
]


@pytest.mark.parametrize('raw,status', BAD_REQUESTS,
                         ids=[str(i) for i in range(len(BAD_REQUESTS))])
def test_malformed_requests_are_rejected_and_closed(raw, status):
    with live_server() as server:
        s = connect(server)
        s.sendall(raw)
        answer = recv_all(s)  # the server must close
        assert status_of(answer) == status, answer[:200]
        assert b'Traceback' not in answer
        assert b'Connection: close' in answer
        # the server is still healthy
        assert httpx.get('http://127.0.0.1:%d/' % server.port).status_code == 200


def test_malformed_request_goes_to_the_applications_400_handler():
    # as Microdot: a request that cannot be parsed is answered by errorhandler(400)
    # and the after_error_request hooks, with None for the request; the connection closes
    app = make_app()
    seen = []

    @app.errorhandler(400)
    async def bad_request(request):
        seen.append(request)
        return 'custom bad request page', 400

    @app.after_error_request
    async def after_error(request, response):
        response.headers['X-After-Error'] = 'yes'

    with live_server(app) as server:
        s = connect(server)
        s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n')
        answer = recv_all(s)
    assert status_of(answer) == 400
    assert answer.endswith(b'\r\n\r\ncustom bad request page')
    assert b'X-After-Error: yes' in answer and b'Connection: close' in answer
    assert seen == [None]


def test_malformed_request_without_a_handler_gets_microdots_body():
    with live_server() as server:
        s = connect(server)
        s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n')
        answer = recv_all(s)
    assert status_of(answer) == 400 and answer.endswith(b'\r\n\r\nBad request')


def test_absolute_form_target_is_accepted():
    with live_server() as server:
        s = connect(server)
        s.sendall(b'GET http://example.com:8080/info?z=1 HTTP/1.1\r\nHost: other\r\n'
                  b'Connection: close\r\n\r\n')
        raw = recv_all(s)
        assert status_of(raw) == 200
        assert b'"path":"/info"' in raw.replace(b' ', b'')
        assert b'"query":"z=1"' in raw.replace(b' ', b'')


def test_bare_lf_line_endings_are_accepted():
    with live_server() as server:
        s = connect(server)
        s.sendall(b'GET / HTTP/1.1\nHost: x\nConnection: close\n\n')
        raw = recv_all(s)
        assert status_of(raw) == 200


# -- deadlines and limits ------------------------------------------------------------------

def test_slow_header_client_is_cut_off_with_408():
    with live_server(head_timeout=0.5) as server:
        s = connect(server)
        s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n')  # never finishes the head
        start = time.monotonic()
        raw = recv_all(s, timeout=5)
        assert status_of(raw) == 408
        assert time.monotonic() - start < 4


def test_trickling_client_is_cut_off_at_the_head_deadline():
    with live_server(head_timeout=0.6) as server:
        s = connect(server)
        s.sendall(b'GET / HTTP/1.1\r\n')
        start = time.monotonic()
        s.settimeout(5)
        closed = False
        for i in range(40):  # a byte every 0.1 s would otherwise last 4 s
            try:
                s.sendall(b'X')
                s.recv(1, socket.MSG_DONTWAIT)
            except BlockingIOError:
                pass
            except OSError:
                closed = True
                break
            if time.monotonic() - start > 3:
                break
            time.sleep(0.1)  # the client's own pacing, not synchronisation
        assert closed or time.monotonic() - start < 3.5


def test_idle_keep_alive_connection_is_closed_silently():
    with live_server(keep_alive_timeout=0.5) as server:
        s = connect(server)
        s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        status, _, _, _ = read_response(s)
        assert status == 200
        start = time.monotonic()
        assert recv_all(s, timeout=5) == b''  # closed, nothing written
        assert time.monotonic() - start < 4


def test_stalled_body_gets_408():
    with live_server(body_timeout=0.5) as server:
        s = connect(server)
        s.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc')
        raw = recv_all(s, timeout=5)
        assert status_of(raw) == 408


def test_max_connections_answers_503():
    # (no per-client limit: all clients here share 127.0.0.1)
    with live_server(max_connections=2, max_connections_per_client=0) as server:
        a, b = connect(server), connect(server)
        a.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        b.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        assert read_response(a)[0] == 200 and read_response(b)[0] == 200
        c = connect(server)
        raw = recv_all(c)
        assert status_of(raw) == 503
        assert b'Retry-After: ' in raw and b'Connection: close' in raw
        a.close()
        b.close()


def test_hundreds_of_concurrent_connections():
    async def client(port, i):
        reader, writer = await asyncio.open_connection('127.0.0.1', port)
        writer.write(b'GET /info?i=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' % i)
        data = await asyncio.wait_for(reader.read(), 20)
        writer.close()
        return data

    async def main(port):
        return await asyncio.gather(*(client(port, i) for i in range(300)))

    with live_server(max_connections_per_client=0) as server:
        results = asyncio.run(main(server.port))
    assert len(results) == 300
    for i, data in enumerate(results):
        assert status_of(data) == 200
        assert b'i=%d"' % i in data


# -- lifecycle -----------------------------------------------------------------------------

def test_startup_and_shutdown_hooks_run_around_serving():
    events = []
    app = make_app()

    @app.on_startup
    async def start():
        events.append('start')

    @app.on_shutdown
    def stop(scope):
        events.append(('stop', scope))

    with live_server(app) as server:
        assert events == ['start']
        httpx.get('http://127.0.0.1:%d/' % server.port)
    assert events == ['start', ('stop', None)]


def test_start_server_inside_an_existing_loop_alongside_other_tasks():
    app = make_app()
    port = free_port()

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        srv = asyncio.create_task(app.start_server(host='127.0.0.1', port=port))
        for _ in range(200):
            if app.server is not None and app.server.sockets:
                break
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient() as client:
            res = await client.get('http://127.0.0.1:%d/' % port)
        app.shutdown()
        await asyncio.wait_for(srv, 10)
        t.cancel()
        return res.text, ticks

    text, ticks = asyncio.run(main())
    assert text == 'Hello, World!'
    assert ticks > 0


def test_shutdown_finishes_in_flight_requests():
    app = make_app()
    started = threading.Event()

    @app.route('/slow')
    async def slow(req):
        started.set()
        await asyncio.sleep(0.5)
        return 'done'

    with live_server(app) as server:
        s = connect(server)
        s.sendall(b'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
        assert started.wait(5)
        server.loop.call_soon_threadsafe(server.shutdown)
        raw = recv_all(s, timeout=10)
        assert status_of(raw) == 200 and raw.endswith(b'done')
        assert b'Connection: close' in raw


def test_access_log(caplog):
    app = make_app()
    with caplog.at_level(logging.INFO, logger='microdot.access'):
        with live_server(app, access_log=True) as server:
            httpx.get('http://127.0.0.1:%d/info?q=1' % server.port)
    lines = [r.getMessage() for r in caplog.records if r.name == 'microdot.access']
    assert any('"GET /info?q=1 HTTP/1.1" 200' in line for line in lines), lines


def test_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip('this Python has no IPv6 support')
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(('::1', 0))
    except OSError:
        pytest.skip('no IPv6 loopback address (::1) on this machine')
    with live_server(host='::1') as server:
        res = httpx.get('http://[::1]:%d/info' % server.port)
        assert res.json()['client'][0] == '::1'


@pytest.fixture
def tls_contexts(tmp_path):
    """(server context, client context) for a throwaway self-signed certificate."""
    openssl = shutil.which('openssl')
    if openssl is None:
        pytest.skip('the openssl command is needed to make a test certificate')
    cert, key = tmp_path / 'cert.pem', tmp_path / 'key.pem'
    subprocess.run([openssl, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
                    '-subj', '/CN=localhost', '-keyout', str(key), '-out', str(cert)],
                   check=True, capture_output=True, timeout=60)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    client_ctx = ssl.create_default_context(cafile=str(cert))
    client_ctx.check_hostname = False
    return ctx, client_ctx


def test_tls(tls_contexts):
    ctx, client_ctx = tls_contexts
    with live_server(ssl_context=ctx) as server:
        res = httpx.get('https://127.0.0.1:%d/info' % server.port, verify=client_ctx)
        assert res.status_code == 200 and res.json()['scheme'] == 'https'


@pytest.mark.parametrize('close_notify', [True, False])
def test_tls_client_closing_is_not_logged_as_a_warning(tls_contexts, caplog, close_notify):
    """A TLS client ending its keep-alive connection (with or without close_notify) is
    routine: asyncio must not be asked to keep the TLS transport half open."""
    ctx, client_ctx = tls_contexts
    caplog.set_level(logging.WARNING)
    with live_server(ssl_context=ctx) as server:
        raw = socket.create_connection(('127.0.0.1', server.port), timeout=10)
        sock = client_ctx.wrap_socket(raw, server_hostname='localhost')
        sock.sendall(b'GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n')
        assert sock.recv(65536).startswith(b'HTTP/1.1 200 ')
        if close_notify:
            try:
                sock = sock.unwrap()  # 3.11+: the server answers with its close_notify
            except ssl.SSLError:  # 3.10's asyncio closes without answering
                pass
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        assert sock.recv(100) == b''  # the server closes its side in answer
        sock.close()
        deadline = time.monotonic() + 10
        while server.connections and time.monotonic() < deadline:
            time.sleep(0.01)  # the connection's bookkeeping ends on the server's loop
        assert not server.connections
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


SLOW_APP = '''
import asyncio, sys
from microdot import Microdot
app = Microdot()

@app.route('/slow')
async def slow(req):
    print('handler started', flush=True)
    await asyncio.sleep(1)
    return 'finished'

@app.on_shutdown
def bye():
    print('shutdown hook ran', flush=True)

app.run(host='127.0.0.1', port=int(sys.argv[1]))
'''


def test_sigterm_during_an_in_flight_request(tmp_path):
    script = tmp_path / 'slow_app.py'
    script.write_text(SLOW_APP)
    port = free_port()
    server = ServerProcess([sys.executable, str(script), str(port)], port)
    try:
        server.wait_ready()
        s = socket.create_connection(('127.0.0.1', port), timeout=10)
        s.sendall(b'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
        # wait until the handler runs (the start-up line and other log lines come first)
        lines = []
        while not lines or 'handler started' not in lines[-1]:
            lines.append(server.proc.stdout.readline())
            assert lines[-1] and len(lines) < 20, lines
        server.proc.send_signal(signal.SIGTERM)
        raw = recv_all(s, timeout=10)
        assert status_of(raw) == 200 and raw.endswith(b'finished')
        assert server.proc.wait(10) == 0
        with pytest.raises(OSError):
            socket.create_connection(('127.0.0.1', port), timeout=2)
    finally:
        server.stop()
    assert 'shutdown hook ran' in server.output


def test_start_server_on_a_given_socket():
    app = make_app()
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    port = listener.getsockname()[1]

    async def main():
        srv = asyncio.create_task(app.start_server(sock=listener))
        for _ in range(200):
            if app.server is not None and app.server.sockets:
                break
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient() as client:
            res = await client.get('http://127.0.0.1:%d/' % port)
        app.shutdown()
        await asyncio.wait_for(srv, 10)
        return res.text

    assert asyncio.run(main()) == 'Hello, World!'


def test_client_half_close_stops_a_streaming_body():
    app = make_app()
    closed = threading.Event()

    @app.route('/forever')
    async def forever(req):
        async def gen():
            try:
                yield 'first\n'
                await asyncio.Event().wait()  # idle: nothing more to send
            finally:
                closed.set()
        return gen()

    with live_server(app) as server:
        s = connect(server)
        s.sendall(b'GET /forever HTTP/1.1\r\nHost: x\r\n\r\n')
        s.settimeout(5)
        data = b''
        while b'first' not in data:
            data += s.recv(1024)
        s.shutdown(socket.SHUT_WR)
        assert closed.wait(5), 'the generator was not stopped'
        s.close()
