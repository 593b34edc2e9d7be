"""Rows of the ledger in docs/migrating.md that had no test of their own.

Each test asserts what this family does; its comment says what Microdot 2.7 does and
which defect of Microdot the difference fixes. Everything goes through the public API.
"""
import asyncio
import datetime
import socket

import pytest

from microdot import Microdot, Response, send_file
from microdot.cors import CORS
from microdot.sse import with_sse
from microdot.structures import MultiDict
from microdot.test_client import TestClient
from microdot.urls import urlencode
from support import live_server


def run(coro):
    return asyncio.run(coro)


# -- Requests ---------------------------------------------------------------------------

def test_args_is_a_multidict_even_without_a_query_string():
    # Microdot 2.7: request.args is a plain dict when the URL has no '?', so
    # request.args.getlist('tag') raises AttributeError (a 500) on exactly those URLs.
    app = Microdot()

    @app.get('/')
    async def index(req):
        return {'type': type(req.args).__name__, 'tags': req.args.getlist('tag')}

    client = TestClient(app)
    res = run(client.get('/'))
    assert res.status_code == 200
    assert res.json == {'type': 'MultiDict', 'tags': []}
    assert isinstance(MultiDict(), dict)
    assert run(client.get('/?tag=a&tag=b')).json == {'type': 'MultiDict', 'tags': ['a', 'b']}


def test_urlencoded_form_that_is_not_utf8_is_400():
    # Microdot 2.7: UnicodeDecodeError in request.form, answered 500.
    app = Microdot()

    @app.post('/')
    async def index(req):
        return dict(req.form)

    res = run(TestClient(app).post(
        '/', headers={'Content-Type': 'application/x-www-form-urlencoded'},
        body=b'a=%FF%FE&b=\xff'))
    assert res.status_code == 400
    assert res.text == 'Invalid form body'


def test_urlencode_does_not_encode_twice():
    # Microdot 2.7: urlencode('a+b') is 'a%252Bb' ('+' becomes '%2B', whose '%' is then
    # encoded again), so the receiver decodes 'a%2Bb'; non-ASCII text is left raw.
    assert urlencode('a+b c') == 'a%2Bb+c'
    assert urlencode('caf\u00e9') == 'caf%C3%A9'
    assert urlencode('a"<b>') == 'a%22%3Cb%3E'  # not allowed in a URI (RFC 3986)


def test_urlencode_leaves_what_microdot_leaves():
    # as Microdot: only what ends or splits a value is escaped; '/', ':', '@' ... stay
    assert urlencode("x/y:z@w!$'()*,;") == "x/y:z@w!$'()*,;"
    assert urlencode('&=?#%') == '%26%3D%3F%23%25'


# -- Responses and files -------------------------------------------------------------

def test_send_file_buffer_size_is_16_kib_and_honoured(tmp_path, monkeypatch):
    # Microdot 2.7: 1 KiB pieces, five times slower for large files (docs/migrating.md)
    assert Response.send_file_buffer_size == 16 * 1024
    path = tmp_path / 'f.bin'
    path.write_bytes(b'x' * 100)
    monkeypatch.setattr(Response, 'send_file_buffer_size', 30)

    async def chunks():
        return [c async for c in Response.send_file(str(path)).body_iter()]

    assert [len(c) for c in asyncio.run(chunks())] == [30, 30, 30, 10]


def test_set_cookie_sends_an_aware_expiry_in_gmt():
    # Microdot 2.7 formats the datetime as given and labels it GMT, so an expiry of
    # 12:00 at UTC+2 is sent as 12:00 GMT: two hours late.
    res = Response('x')
    res.set_cookie('a', 'b', expires=datetime.datetime(
        2030, 1, 1, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2))))
    assert res.headers['Set-Cookie'] == ['a=b; Expires=Tue, 01 Jan 2030 10:00:00 GMT']


@pytest.mark.parametrize('name,ctype', [
    ('page.htm', 'text/html'), ('PHOTO.PNG', 'image/png'), ('mod.mjs', 'application/javascript'),
    ('img.webp', 'image/webp'), ('data.csv', 'text/csv'), ('app.wasm', 'application/wasm'),
])
def test_send_file_knows_more_extensions_in_any_case(tmp_path, name, ctype):
    # Microdot 2.7: types_map has 9 lower-case entries; '.htm', '.PNG', '.mjs', '.webp',
    # '.csv', '.wasm' are sent as application/octet-stream (browsers download them, and
    # refuse to run a module or WebAssembly served with that type).
    (tmp_path / name).write_bytes(b'x')
    app = Microdot()

    @app.get('/f')
    async def f(req):
        return send_file(str(tmp_path / name))

    assert run(TestClient(app).get('/f')).headers['Content-Type'] == ctype


def test_json_values_orjson_refuses_fall_back_to_json():
    # Microdot 2.7 with orjson installed: a dict with int keys makes orjson raise
    # TypeError, answered 500 (without orjson the same handler works).
    pytest.importorskip('orjson')
    app = Microdot()

    @app.get('/')
    async def index(req):
        return {1: 'one'}

    res = run(TestClient(app).get('/'))
    assert res.status_code == 200
    assert res.json == {'1': 'one'}


# -- Built-in server -----------------------------------------------------------------

def test_builtin_server_sends_204_without_content_length():
    # Microdot 2.7 sends 'Content-Length: 0' with a 204; RFC 9110 section 8.6: a server
    # MUST NOT send Content-Length in a 204 response.
    app = Microdot()

    @app.get('/none')
    async def none(req):
        return None

    with live_server(app) as server:
        with socket.create_connection((server.host, server.port), timeout=5) as s:
            s.sendall(b'GET /none HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
            raw = b''
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                raw += chunk
    head = raw.split(b'\r\n\r\n', 1)[0].lower()
    assert head.startswith(b'http/1.1 204 no content')
    assert b'content-length' not in head
    assert raw.endswith(b'\r\n\r\n')


def test_builtin_server_answers_500_when_routing_reaches_a_malformed_pattern():
    # Microdot 2.7: the ValueError of the pattern escapes the connection handler, and the
    # client gets no answer at all (the connection is closed). The test client raises
    # it, as Microdot's does (test_app_compat.py).
    app = Microdot()

    @app.route('/<bad')
    async def bad(req):
        return 'never'

    with live_server(app) as server:
        with socket.create_connection((server.host, server.port), timeout=5) as s:
            s.sendall(b'GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
            raw = b''
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                raw += chunk
    assert raw.startswith(b'HTTP/1.1 500 ')


# -- Test client ---------------------------------------------------------------------

def test_test_client_answers_an_overlong_header_with_400():
    # Microdot 2.7: the ValueError('line too long') of the parser is raised out of
    # client.get(); the real server answers such a request instead of crashing.
    app = Microdot()

    @app.get('/')
    async def index(req):
        return 'ok'

    res = run(TestClient(app).get('/', headers={'X-Long': 'x' * 3000}))
    assert res.status_code == 400


def test_test_client_sends_http_1_1():
    # Microdot 2.7's test client writes 'GET / HTTP/1.0', so request.http_version is
    # '1.0' in tests and '1.1' in production (every current client speaks HTTP/1.1).
    app = Microdot()

    @app.get('/')
    async def index(req):
        return req.http_version

    assert run(TestClient(app).get('/')).text == '1.1'


def test_test_client_parses_event_streams_as_browsers_do():
    # Microdot 2.7's test client strips the data, keeps only the last 'data:' line of an
    # event and drops events with empty data; the SSE specification (HTML Living
    # Standard, 9.2.6) joins 'data:' lines with LF and removes one leading space only.
    app = Microdot()

    @app.get('/events')
    @with_sse
    async def events(req, sse):
        await sse.send('line 1\nline 2')
        await sse.send('')
        await sse.send('  two spaces')

    res = run(TestClient(app).get('/events'))
    assert [e['data'] for e in res.events] == [b'line 1\nline 2', b'', b'  two spaces']


# -- Extensions ----------------------------------------------------------------------

def test_sse_sends_retry_zero_and_an_empty_id():
    # Microdot 2.7 tests 'if retry:' and 'if event_id:', so retry=0 (reconnect at once)
    # and event_id='' (reset the last event ID) are silently dropped.
    app = Microdot()

    @app.get('/events')
    @with_sse
    async def events(req, sse):
        await sse.send('a', retry=0)
        await sse.send('b', event_id='')

    res = run(TestClient(app).get('/events'))
    assert b'retry: 0\n' in res.body
    assert b'id: \n' in res.body
    assert res.events[0]['retry'] == 0
    assert res.events[1]['event_id'] == ''


def test_cors_origins_are_compared_as_origins():
    # Microdot 2.7 compares origin strings exactly: an allowed origin written
    # 'https://App.example.com:443' never matches the 'https://app.example.com' that
    # browsers send, although RFC 6454 (section 5) makes them the same origin.
    app = Microdot()
    CORS(app, allowed_origins=['https://App.example.com:443'])

    @app.get('/')
    async def index(req):
        return 'ok'

    res = run(TestClient(app).get('/', headers={'Origin': 'https://app.example.com'}))
    assert res.headers['Access-Control-Allow-Origin'] == 'https://app.example.com'
