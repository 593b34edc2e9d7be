"""microdot.test_client: TestClient and TestResponse."""
import asyncio

import pytest

import microdot

from microdot import Microdot, Response
from microdot.test_client import TestClient, TestResponse


def run(coro):
    return asyncio.run(coro)


def make_app():
    app = Microdot()

    @app.route('/echo', methods=['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'QUERY'])
    async def echo(req):
        return {'method': req.method, 'headers': dict(req.headers),
                'body': req.body.decode(), 'json': req.json, 'cookies': req.cookies,
                'type': req.content_type}

    @app.route('/login')
    async def login(req):
        res = Response('logged in')
        res.set_cookie('session', 'abc', http_only=True, path='/')
        res.set_cookie('theme', 'dark')
        return res

    @app.route('/logout')
    async def logout(req):
        res = Response('bye')
        res.delete_cookie('session', path='/')
        return res

    @app.route('/cookies')
    async def cookies(req):
        return req.cookies

    @app.route('/text')
    async def text(req):
        return 'h\u00e9llo', 201, {'X-Thing': 'yes'}

    @app.route('/binary')
    async def binary(req):
        return b'\xff\xfe\x00', 200, {'Content-Type': 'application/octet-stream'}

    @app.route('/events')
    async def events(req):
        async def gen():
            yield 'event: greeting\ndata: {"hello": "world"}\n\n'
            yield 'id: 7\ndata: line one\ndata: line two\n\n'
            yield ': a comment\n\n'
            yield 'retry: 1000\ndata: last\n\n'
        return gen(), 200, {'Content-Type': 'text/event-stream'}

    return app


def test_get_text_response_fields():
    res = run(TestClient(make_app()).get('/text'))
    assert isinstance(res, TestResponse)
    assert res.status_code == 201
    assert res.reason is None  # as in Microdot: only a reason the application gave
    assert res.headers['x-thing'] == 'yes'
    assert res.headers['Content-Type'] == 'text/plain; charset=UTF-8'
    assert res.body == 'h\u00e9llo'.encode()
    assert res.text == 'h\u00e9llo'
    assert res.json is None
    assert res.events is None


def test_binary_response_has_no_text():
    res = run(TestClient(make_app()).get('/binary'))
    assert res.body == b'\xff\xfe\x00'
    assert res.text is None


def test_json_response_decoded():
    res = run(TestClient(make_app()).get('/echo'))
    assert res.json['method'] == 'GET'
    assert res.headers['Content-Type'] == 'application/json; charset=UTF-8'


def test_dict_body_sent_as_json():
    res = run(TestClient(make_app()).post('/echo', body={'a': [1, 2]}))
    assert res.json['json'] == {'a': [1, 2]}
    assert res.json['type'] == 'application/json'
    assert res.json['headers']['Content-Length'] == str(len(res.json['body']))


def test_list_body_sent_as_json():
    res = run(TestClient(make_app()).put('/echo', body=[1, 'x']))
    assert res.json['method'] == 'PUT'
    assert res.json['json'] == [1, 'x']


def test_explicit_content_type_kept_for_dict_body():
    res = run(TestClient(make_app()).post(
        '/echo', body={'a': 1}, headers={'Content-Type': 'application/json; charset=utf-8'}))
    assert res.json['type'] == 'application/json; charset=utf-8'
    assert res.json['json'] == {'a': 1}


def test_str_and_bytes_bodies():
    client = TestClient(make_app())
    res = run(client.patch('/echo', body='caf\u00e9', headers={'Content-Type': 'text/plain'}))
    assert res.json['method'] == 'PATCH'
    assert res.json['body'] == 'caf\u00e9'
    assert res.json['json'] is None
    res = run(client.query('/echo', body=b'raw'))
    assert res.json['method'] == 'QUERY'
    assert res.json['body'] == 'raw'


def test_headers_sent():
    res = run(TestClient(make_app()).get('/echo', headers={'X-Custom': 'v',
                                                           'Authorization': 'Bearer t'}))
    headers = res.json['headers']
    assert headers['X-Custom'] == 'v'
    assert headers['Authorization'] == 'Bearer t'
    assert 'Host' in headers


def test_delete_and_other_methods():
    client = TestClient(make_app())
    assert run(client.delete('/echo')).json['method'] == 'DELETE'
    res = run(client.head('/text'))
    assert res.status_code == 201
    assert res.body is None
    assert res.headers['Content-Length'] == str(len('h\u00e9llo'.encode()))
    res = run(client.options('/echo'))
    assert 'QUERY' in res.headers['Allow']


def test_cookies_kept_across_requests_and_deleted():
    client = TestClient(make_app())
    res = run(client.get('/login'))
    assert res.headers['Set-Cookie'] == ['session=abc; Path=/; HttpOnly', 'theme=dark']
    assert client.cookies == {'session': 'abc', 'theme': 'dark'}
    assert run(client.get('/cookies')).json == {'session': 'abc', 'theme': 'dark'}
    run(client.get('/logout'))
    assert client.cookies == {'theme': 'dark'}
    assert run(client.get('/cookies')).json == {'theme': 'dark'}


def test_initial_cookies_and_explicit_cookie_header():
    client = TestClient(make_app(), cookies={'a': '1'})
    assert run(client.get('/cookies')).json == {'a': '1'}
    res = run(client.get('/cookies', headers={'Cookie': 'b=2'}))
    assert res.json == {'a': '1', 'b': '2'}


def test_cookie_jars_are_per_client():
    app = make_app()
    one = TestClient(app)
    two = TestClient(app)
    run(one.get('/login'))
    assert run(two.get('/cookies')).json == {}


def test_event_stream_parsed_into_events():
    res = run(TestClient(make_app()).get('/events'))
    assert res.headers['Content-Type'] == 'text/event-stream'
    # the same shape as Microdot 2.x's test client gives
    assert res.events == [
        {'event': 'greeting', 'event_id': None, 'retry': None,
         'data': b'{"hello": "world"}', 'data_json': {'hello': 'world'}},
        {'event': None, 'event_id': '7', 'retry': None,
         'data': b'line one\nline two', 'data_json': None},
        {'event': None, 'event_id': None, 'retry': 1.0, 'data': b'last', 'data_json': None},
    ]
    assert res.json is None


def test_not_found_response():
    res = run(TestClient(make_app()).get('/nothing'))
    assert res.status_code == 404
    assert res.reason is None
    assert res.text == 'Not found'


def test_malformed_request_answered_400():
    app = make_app()
    res = run(TestClient(app).request('GET', '/bad path with spaces'))
    assert res.status_code == 400


def test_scheme_and_host():
    app = Microdot()

    @app.route('/')
    async def index(req):
        return {'scheme': req.scheme, 'host': req.headers['Host']}

    res = run(TestClient(app, scheme='https', host='api.example.org').get('/'))
    assert res.json == {'scheme': 'https', 'host': 'api.example.org'}


def test_header_values_are_stripped_and_injection_refused():
    app = microdot.Microdot()

    @app.route('/h')
    async def h(req):
        return req.headers.get('Authorization')

    client = TestClient(app)
    res = run(client.get('/h', headers={'Authorization': 'Basic dXNlcjpwdw==\n'}))
    assert res.text == 'Basic dXNlcjpwdw=='
    with pytest.raises(ValueError):
        run(client.get('/h', headers={'X-Evil': 'a\r\nX-Injected: 1'}))


def test_cookies_follow_their_path():
    app = microdot.Microdot()

    @app.route('/admin/set')
    async def set_cookie(req):
        res = microdot.Response('set')
        res.set_cookie('admin', '1', path='/admin')
        return res

    @app.route('/admin/drop')
    async def drop(req):
        res = microdot.Response('dropped')
        res.delete_cookie('admin', path='/admin')
        return res

    @app.route('/<path:p>')
    async def show(req, p):
        return req.cookies

    client = TestClient(app)
    run(client.get('/admin/set'))
    assert run(client.get('/admin/x')).json == {'admin': '1'}
    assert run(client.get('/other')).json == {}
    run(client.get('/admin/drop'))
    assert run(client.get('/admin/x')).json == {}
