"""The Request object: attributes, lazily parsed parts, body limits, Request.create."""
import asyncio

import pytest

from microdot import AsyncBytesIO, Microdot, MultiDict, NoCaseDict, Request
from microdot.http11 import ProtocolError
from microdot.test_client import TestClient


def run(coro):
    return asyncio.run(coro)


def create(raw, app=None, addr=('10.0.0.1', 4321), scheme=None):
    app = app if app is not None else Microdot()
    return run(Request.create(app, AsyncBytesIO(raw), AsyncBytesIO(), addr, scheme=scheme))


def capture(app, method, path, **kwargs):
    """Send a request and return the Request object the handler received."""
    seen = {}

    @app.route('/<path:p>', methods=[method])
    async def handler(req, p):
        seen['req'] = req
        seen['body'] = req.body
        return 'ok'

    res = run(TestClient(app).request(method, path, **kwargs))
    assert res.status_code == 200, res.text
    return seen['req']


# -- basic attributes ------------------------------------------------------------------

def test_basic_attributes():
    app = Microdot()
    req = capture(app, 'GET', '/a/b?x=1&y=two')
    assert req.app is app
    assert req.method == 'GET'
    assert req.url == '/a/b?x=1&y=two'
    assert req.path == '/a/b'
    assert req.query_string == 'x=1&y=two'
    assert req.http_version == '1.1'
    assert req.scheme == 'http'
    assert req.client_addr == ('127.0.0.1', 1234)
    assert req.content_length == 0
    assert req.content_type is None
    assert req.url_prefix == ''
    assert req.subapp is None
    assert req.route is not None and req.route.__name__ == 'handler'
    assert req.body == b''


def test_url_without_query_string():
    req = capture(Microdot(), 'GET', '/plain')
    assert req.url == '/plain'
    assert req.query_string is None  # as Microdot 2.x
    assert req.args == {}


def test_scheme_https():
    app = Microdot()
    seen = {}

    @app.route('/')
    async def index(req):
        seen['scheme'] = req.scheme
        return 'ok'

    run(TestClient(app, scheme='https').get('/'))
    assert seen['scheme'] == 'https'


def test_args_multidict_with_repeated_keys():
    req = capture(Microdot(), 'GET', '/q?tag=a&tag=b&name=J%C3%BCrgen+M&empty=&flag')
    assert isinstance(req.args, MultiDict)
    assert req.args['tag'] == 'a'
    assert req.args.getlist('tag') == ['a', 'b']
    assert req.args['name'] == 'J\u00fcrgen M'
    assert req.args['empty'] == ''
    assert req.args['flag'] == ''
    assert req.args.get('missing') is None
    assert req.args.get('missing', 'd') == 'd'


def test_args_get_with_type():
    req = capture(Microdot(), 'GET', '/q?page=3&n=1&n=2')
    assert req.args.get('page', type=int) == 3
    assert req.args.getlist('n', type=int) == [1, 2]


def test_headers_case_insensitive():
    req = capture(Microdot(), 'GET', '/h', headers={'X-Custom-Header': 'value',
                                                    'accept': 'text/html'})
    assert isinstance(req.headers, NoCaseDict)
    assert req.headers['x-custom-header'] == 'value'
    assert req.headers['X-CUSTOM-HEADER'] == 'value'
    assert req.headers.get('Accept') == 'text/html'
    assert 'x-custom-header' in req.headers
    assert 'X-Custom-Header' in list(req.headers.keys())
    assert req.headers['Host'] == 'example.com:1234'


def test_repeated_headers_are_comma_joined():
    req = create(b'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\nX-A: 3\r\n\r\n')
    assert req.headers['X-A'] == '1, 2, 3'


def test_cookies_from_several_cookie_headers_are_merged():
    req = create(b'GET / HTTP/1.1\r\nHost: x\r\nCookie: a=1; b=2\r\n'
                 b'Cookie: c=3\r\n\r\n')
    assert req.cookies == {'a': '1', 'b': '2', 'c': '3'}


def test_odd_cookie_pairs():
    req = create(b'GET / HTTP/1.1\r\nHost: x\r\n'
                 b'Cookie: a=1; flag; =novalue; ;b="quoted"; c=x=y\r\n\r\n')
    # as Microdot: a pair without '=' is a cookie with an empty value, quotes are kept
    assert req.cookies == {'a': '1', 'flag': '', 'b': '"quoted"', 'c': 'x=y'}


def test_no_cookies():
    req = create(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    assert req.cookies == {}


def test_content_length_and_type():
    req = capture(Microdot(), 'POST', '/p', body=b'hello',
                  headers={'Content-Type': 'text/plain; charset=utf-8'})
    assert req.content_length == 5
    assert req.content_type == 'text/plain; charset=utf-8'
    assert req.body == b'hello'


def test_g_is_per_request():
    app = Microdot()
    seen = []

    @app.route('/')
    async def index(req):
        seen.append(hasattr(req.g, 'value'))
        req.g.value = 1
        return 'ok'

    client = TestClient(app)
    run(client.get('/'))
    run(client.get('/'))
    assert seen == [False, False]


# -- json and forms ------------------------------------------------------------------------

def test_json_body():
    req = capture(Microdot(), 'POST', '/j', body={'a': [1, 2], 'b': None})
    assert req.content_type == 'application/json'
    assert req.json == {'a': [1, 2], 'b': None}


def test_json_with_charset_parameter():
    req = capture(Microdot(), 'POST', '/j', body=b'[1, 2]',
                  headers={'Content-Type': 'application/json; charset=utf-8'})
    assert req.json == [1, 2]


def test_json_only_for_application_json():
    req = capture(Microdot(), 'POST', '/j', body=b'{"a": 1}',
                  headers={'Content-Type': 'text/plain'})
    assert req.json is None
    req = capture(Microdot(), 'POST', '/j', body=b'{"a": 1}')
    assert req.json is None


def test_invalid_json_gives_400_not_500():
    app = Microdot()

    @app.post('/j')
    async def j(req):
        return {'got': req.json}

    for body in (b'{not json', b'\xff\xfe'):
        res = run(TestClient(app).post('/j', body=body,
                                       headers={'Content-Type': 'application/json'}))
        assert res.status_code == 400
    res = run(TestClient(app).post('/j', body={'ok': True}))
    assert res.json == {'got': {'ok': True}}


def test_form_urlencoded_with_repeated_keys():
    req = capture(Microdot(), 'POST', '/f', body='a=1&b=x+y&a=2&c=%C3%A9',
                  headers={'Content-Type': 'application/x-www-form-urlencoded'})
    assert isinstance(req.form, MultiDict)
    assert req.form['a'] == '1'
    assert req.form.getlist('a') == ['1', '2']
    assert req.form['b'] == 'x y'
    assert req.form['c'] == '\u00e9'


def test_form_only_for_urlencoded():
    req = capture(Microdot(), 'POST', '/f', body='a=1',
                  headers={'Content-Type': 'text/plain'})
    assert req.form is None
    req = capture(Microdot(), 'POST', '/f', body='a=1',
                  headers={'Content-Type':
                           'application/x-www-form-urlencoded; charset=UTF-8'})
    assert req.form['a'] == '1'


# -- body and stream -------------------------------------------------------------------

def test_stream_reads_small_body():
    app = Microdot()
    results = {}

    @app.post('/s')
    async def s(req):
        results['first'] = await req.stream.read(3)
        results['line'] = await req.stream.readline()
        results['exact'] = await req.stream.readexactly(2)
        results['until'] = await req.stream.readuntil(b';')
        results['rest'] = await req.stream.read()
        results['eof'] = await req.stream.read()
        return 'ok'

    run(TestClient(app).post('/s', body=b'abcdef\nghij;klm'))
    assert results == {'first': b'abc', 'line': b'def\n', 'exact': b'gh',
                       'until': b'ij;', 'rest': b'klm', 'eof': b''}


def test_max_body_length_leaves_large_bodies_in_stream():
    app = Microdot()
    app.max_body_length = 8
    results = {}

    @app.post('/s')
    async def s(req):
        results['body'] = req.body
        results['line'] = await req.stream.readline()
        results['n'] = await req.stream.read(4)
        results['exact'] = await req.stream.readexactly(3)
        results['until'] = await req.stream.readuntil(b'!')
        results['rest'] = await req.stream.read()
        return 'ok'

    body = b'first line\n0123456!tail'
    res = run(TestClient(app).post('/s', body=body))
    assert res.status_code == 200
    assert results == {'body': b'', 'line': b'first line\n', 'n': b'0123',
                       'exact': b'456', 'until': b'!', 'rest': b'tail'}


def test_body_at_max_body_length_is_read():
    app = Microdot()
    app.max_body_length = 8

    @app.post('/s')
    async def s(req):
        return req.body

    assert run(TestClient(app).post('/s', body=b'12345678')).body == b'12345678'


def test_class_max_body_length(monkeypatch):
    monkeypatch.setattr(Request, 'max_body_length', 4)
    app = Microdot()

    @app.post('/s')
    async def s(req):
        return {'body': req.body.decode(), 'stream': (await req.stream.read()).decode()}

    res = run(TestClient(app).post('/s', body=b'123456'))
    assert res.json == {'body': '', 'stream': '123456'}


def test_per_app_limits_do_not_leak():
    a = Microdot()
    a.max_body_length = 2
    b = Microdot()
    for app in (a, b):
        @app.post('/s')
        async def s(req):
            return {'body': req.body.decode(), 'max': req.max_body_length}
    assert run(TestClient(a).post('/s', body=b'123')).json == {'body': '', 'max': 2}
    assert run(TestClient(b).post('/s', body=b'123')).json == {'body': '123',
                                                              'max': 16 * 1024}


def test_stream_bounded_to_declared_length():
    app = Microdot()
    app.max_body_length = 2
    raw = (b'POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n'
           b'hello' b'GET /next HTTP/1.1\r\n\r\n')
    req = create(raw, app)
    assert req.body == b''
    assert run(req.stream.read()) == b'hello'


# -- Request.create -------------------------------------------------------------------

def test_create_with_crlf():
    req = create(b'POST /path/x?a=1 HTTP/1.1\r\nHost: example.org\r\n'
                 b'Content-Type: application/json\r\nContent-Length: 8\r\n\r\n'
                 b'{"k": 1}', scheme='https')
    assert req.method == 'POST'
    assert req.url == '/path/x?a=1'
    assert req.path == '/path/x'
    assert req.args['a'] == '1'
    assert req.headers['Host'] == 'example.org'
    assert req.content_length == 8
    assert req.json == {'k': 1}
    assert req.client_addr == ('10.0.0.1', 4321)
    assert req.scheme == 'https'
    assert req.http_version == '1.1'


def test_create_with_bare_lf():
    req = create(b'PUT /lf HTTP/1.0\nHost: example.org\nContent-Length: 3\n'
                 b'X-Test: yes\n\nabc')
    assert req.method == 'PUT'
    assert req.path == '/lf'
    assert req.http_version == '1.0'
    assert req.headers['X-Test'] == 'yes'
    assert req.body == b'abc'


def test_create_chunked_body():
    req = create(b'POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
                 b'5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n')
    assert req.body == b'hello world'


def test_create_decodes_path():
    req = create(b'GET /caf%C3%A9/a+b?x=%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n')
    assert req.path == '/caf\u00e9/a+b'
    assert req.url == '/caf%C3%A9/a+b?x=%C3%A9'
    assert req.args['x'] == '\u00e9'


def test_create_too_long_request_line_raises():
    with pytest.raises(ProtocolError):
        create(b'GET /' + b'a' * (Request.max_readline + 10) + b' HTTP/1.1\r\n\r\n')


def test_create_too_long_header_line_raises():
    with pytest.raises(ProtocolError):
        create(b'GET / HTTP/1.1\r\nX-Big: ' + b'a' * (Request.max_readline + 10)
               + b'\r\n\r\n')


def test_create_per_app_max_readline():
    app = Microdot()
    app.max_readline = 40
    raw = b'GET /' + b'a' * 60 + b' HTTP/1.1\r\nHost: x\r\n\r\n'
    with pytest.raises(ProtocolError):
        create(raw, app)
    assert create(raw).path == '/' + 'a' * 60


def test_create_empty_input_returns_none():
    assert create(b'') is None


def test_create_truncated_head_raises():
    with pytest.raises(ProtocolError):
        create(b'GET / HTTP/1.1\r\nHost: x\r\n')


def test_large_declared_body_not_read_and_answered_413():
    app = Microdot()
    app.max_content_length = 10

    @app.post('/p')
    async def p(req):
        return 'should not run'

    raw = b'POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n' + b'x' * 100
    req = create(raw, app)
    assert req.content_length == 100
    res = run(app.dispatch_request(req))
    assert res.status_code == 413


def test_chunked_body_over_max_content_length_is_413():
    app = Microdot()
    app.max_content_length = 10

    @app.post('/p')
    async def p(req):
        return 'should not run'

    raw = (b'POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
           b'8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n')
    req = create(raw, app)
    res = run(app.dispatch_request(req))
    assert res.status_code == 413


def test_request_constructor_directly():
    app = Microdot()
    req = Request(app, ('1.2.3.4', 80), 'GET', '/x/y?z=1', '1.1',
                  {'Content-Length': '3', 'Cookie': 'a=b'}, body=b'abc')
    assert req.path == '/x/y'
    assert req.args['z'] == '1'
    assert req.content_length == 3
    assert req.headers['content-length'] == '3'
    assert req.cookies == {'a': 'b'}
    assert req.body == b'abc'
    assert run(req.stream.read()) == b'abc'


def test_headers_from_a_header_source_are_built_once_on_first_access():
    calls = []

    def build(pairs):
        calls.append(pairs)
        return NoCaseDict(pairs)

    req = Request(Microdot(), None, 'POST', '/', '1.1', None)
    req.header_source = (build, [('Content-Type', 'application/json'), ('X-A', '1')])
    assert calls == []  # nothing built until the application asks
    assert req.content_type == 'application/json'
    assert req.headers['x-a'] == '1' and req.headers is req.headers
    assert len(calls) == 1
    req.headers = {'Content-Type': 'text/plain'}  # replacing them is seen everywhere
    assert isinstance(req.headers, NoCaseDict) and req.content_type == 'text/plain'


def test_request_without_headers_has_an_empty_header_dict():
    req = Request(None, None, 'GET', '/', '1.1', None)
    assert req.headers == {} and isinstance(req.headers, NoCaseDict)
    assert req.content_type is None and req.content_length == 0


def test_after_request_handlers_are_per_request():
    a = Request(None, None, 'GET', '/', '1.1', None)
    b = Request(None, None, 'GET', '/', '1.1', None)
    a.after_request(print)
    assert a.after_request_handlers == [print] and b.after_request_handlers == []
    b.after_request_handlers = [len]
    assert b.after_request_handlers == [len]


def test_created_request_reads_content_length_from_the_parsed_head():
    req = create(b'POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX-A: 1\r\n\r\nabc')
    assert req.content_length == 3 and req.body == b'abc'
    assert req.headers['Content-Length'] == '3' and req.headers['x-a'] == '1'
