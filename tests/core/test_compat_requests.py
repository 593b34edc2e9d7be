"""Requests, responses and the test client behave as Microdot 2.7 (issue #12 items 1,
2, 3, 6, 7, 10; issue #13 item 6), through the public API."""
import asyncio
import json

import pytest

from microdot import Microdot, Request, Response, send_file
from microdot.microdot import AsyncBytesIO, MultiDict
from microdot.sse import with_sse
from microdot.test_client import TestClient
from microdot.websocket import with_websocket
import microdot.requests as requests_module


def run(coro):
    return asyncio.run(coro)


def client_for(app):
    return TestClient(app)


# -- item 1: HEAD and WebSocket test responses carry no body ---------------------------

def head_app():
    app = Microdot()

    @app.get('/text')
    async def text(req):
        return 'hello'

    @app.get('/json')
    async def js(req):
        return {'a': 1}

    @app.get('/events')
    @with_sse
    async def events(req, sse):
        await sse.send('x')

    @app.get('/none')
    async def none(req):
        return None

    @app.get('/empty')
    async def empty(req):
        return ''

    @app.get('/ws')
    @with_websocket
    async def ws(req, ws):
        await ws.send(await ws.receive())

    @app.get('/refused')
    @with_websocket
    async def refused(req, ws):  # pragma: no cover - never reached
        pass

    @app.before_request
    async def guard(req):
        if req.path == '/refused':
            return 'go away', 401

    return app


@pytest.mark.parametrize('path', ['/text', '/json', '/events', '/none'])
def test_head_response_has_no_body_text_json_or_events(path):
    res = run(client_for(head_app()).request('HEAD', path))
    get = run(client_for(head_app()).get(path))
    assert res.status_code == get.status_code
    assert res.headers['Content-Type'] == get.headers['Content-Type']
    assert (res.body, res.text, res.json, res.events) == (None, None, None, None)


@pytest.mark.parametrize('path', ['/none', '/empty'])
def test_get_with_an_empty_body_gives_empty_bytes_not_none(path):
    res = run(client_for(head_app()).get(path))
    assert res.body == b''
    assert res.text == ''
    assert res.json is None


def test_websocket_session_response_has_no_body():
    def client():
        reply = yield 'hi'
        assert reply == 'hi'

    res = run(client_for(head_app()).websocket('/ws', client))
    assert res.status_code == 101
    assert (res.body, res.text, res.json) == (None, None, None)


def test_websocket_route_refused_before_the_upgrade_keeps_its_body():
    def client():  # pragma: no cover - the handshake is refused
        yield 'never sent'

    res = run(client_for(head_app()).websocket('/refused', client))
    assert res.status_code == 401
    assert res.text == 'go away'


# -- item 2: JSON responses ----------------------------------------------------------

def test_json_response_content_type_has_charset():
    res = run(client_for(head_app()).get('/json'))
    assert res.headers['Content-Type'] == 'application/json; charset=UTF-8'
    r = Response([1, 2])
    assert r.headers['Content-Type'] == 'application/json; charset=UTF-8'


def test_json_content_type_given_by_the_application_is_kept():
    r = Response({'a': 1}, headers={'content-type': 'application/problem+json'})
    r.complete()
    assert r.headers['Content-Type'] == 'application/problem+json'
    assert list(r.headers) == ['content-type', 'Content-Length']


def test_json_body_bytes_match_microdot():
    data = {'a': 1, 'b': [1, 2.5, None, True], 'c': 'caf\u00e9'}
    try:
        import orjson
    except ImportError:  # Microdot uses json.dumps(data): default separators, ASCII
        expected = json.dumps(data).encode()
    else:  # Microdot uses orjson.dumps(data) when installed: compact UTF-8
        expected = orjson.dumps(data)
    assert Response(data).body == expected


# -- item 3: send_file types ---------------------------------------------------------

@pytest.mark.parametrize('name,ctype', [
    ('a.txt', 'text/plain'), ('a.css', 'text/css'), ('a.html', 'text/html'),
    ('a.js', 'application/javascript'), ('a.json', 'application/json'),
    ('a.svg', 'image/svg+xml'), ('a.bin', 'application/octet-stream'),
    ('noext', 'application/octet-stream')])
def test_send_file_and_static_send_the_bare_type(tmp_path, name, ctype):
    (tmp_path / name).write_bytes(b'{}')
    app = Microdot()
    app.static('/static', str(tmp_path))

    @app.get('/f')
    async def f(req):
        return send_file(str(tmp_path / name))

    for path in ('/f', '/static/' + name):
        res = run(client_for(app).get(path))
        assert res.status_code == 200
        assert res.headers['Content-Type'] == ctype
        assert res.body == b'{}'


def test_send_file_compressed_types_the_inner_file(tmp_path):
    (tmp_path / 'a.css.gz').write_bytes(b'\x1f\x8b')
    res = send_file(str(tmp_path / 'a.css.gz'), compressed=True)
    assert res.headers['Content-Type'] == 'text/css'
    assert res.headers['Content-Encoding'] == 'gzip'
    res.body.close()


# -- item 6: Request.create and bodies beyond max_body_length ---------------------------

async def create(raw, app=None):
    return await Request.create(app or Microdot(), AsyncBytesIO(raw), AsyncBytesIO(b''),
                                ('127.0.0.1', 1234))


@pytest.mark.parametrize('raw', [
    b'GET /' + b'a' * 3000 + b' HTTP/1.1\r\nHost: x\r\n\r\n',
    b'GET / HTTP/1.1\r\nHost: x\r\nX-Long: ' + b'a' * 3000 + b'\r\n\r\n',
    b'GET / HTTP/1.1\r\nX-Long: ' + b'a' * 3000,  # no line end at all
])
def test_create_line_longer_than_max_readline_raises_value_error(raw):
    with pytest.raises(ValueError, match='line too long'):
        run(create(raw))


@pytest.mark.parametrize('raw', [b'GET /\r\n\r\n', b'GET / HTTP/1.1\r\nno colon\r\n\r\n'])
def test_create_malformed_request_raises_value_error_with_a_status(raw):
    with pytest.raises(ValueError) as info:
        run(create(raw))
    assert info.value.status_code == 400


def test_create_line_within_max_readline_is_accepted():
    req = run(create(b'GET /' + b'a' * 2000 + b' HTTP/1.1\r\nHost: x\r\n\r\n'))
    assert req.path == '/' + 'a' * 2000


def body_app(seen):
    app = Microdot()
    app.max_body_length = 16

    @app.post('/raw')
    async def raw(req):
        seen['body'] = req.body
        seen['stream'] = await req.stream.read()
        return 'ok'

    @app.post('/form')
    async def form(req):
        seen['body'] = req.body
        seen['form'] = req.form
        return 'ok'

    @app.post('/json')
    async def js(req):
        seen['body'] = req.body
        return {'json': req.json}

    return app


def test_body_beyond_max_body_length_is_left_in_the_stream():
    seen = {}
    data = b'x' * 40
    res = run(client_for(body_app(seen)).post('/raw', body=data))
    assert res.status_code == 200
    assert seen == {'body': b'', 'stream': data}


def test_form_beyond_max_body_length_is_empty():
    seen = {}
    res = run(client_for(body_app(seen)).post(
        '/form', body='a=1&b=' + '2' * 40,
        headers={'Content-Type': 'application/x-www-form-urlencoded'}))
    assert res.status_code == 200
    assert seen['body'] == b''
    assert seen['form'] == {}


def test_json_beyond_max_body_length_is_a_400_not_a_crash():
    seen = {}
    res = run(client_for(body_app(seen)).post('/json', body=list(range(20))))
    assert seen['body'] == b''
    assert res.status_code == 400


# -- issue #13 item 6: deeply nested JSON ----------------------------------------------

def json_app():
    app = Microdot()
    app.max_content_length = app.max_body_length = 256 * 1024

    @app.post('/j')
    async def j(req):
        return {'type': type(req.json).__name__}

    return app


DEEP = '[' * 1100 + ']' * 1100  # 2.2 KB: RecursionError up to Python 3.11
DEEPER = '[' * 100000 + ']' * 100000  # RecursionError on every supported Python


def post_json(text):
    return run(client_for(json_app()).post('/j', body=text,
                                           headers={'Content-Type': 'application/json'}))


def test_deeply_nested_json_is_400_with_the_json_module(monkeypatch):
    monkeypatch.setattr(requests_module, '_loads', requests_module._loads_json)
    assert post_json(DEEPER).status_code == 400
    # Python 3.12+ decodes this one (200); older versions refuse it (400); never 500
    assert post_json(DEEP).status_code in (200, 400)
    assert post_json('[[1]]').json == {'type': 'list'}


@pytest.mark.parametrize('text', ['{', '\udcff', '[1,]', '"\\x"'])
def test_malformed_json_is_400_with_the_json_module(monkeypatch, text):
    monkeypatch.setattr(requests_module, '_loads', requests_module._loads_json)
    body = text.encode('utf-8', 'surrogateescape')
    res = run(client_for(json_app()).post('/j', body=body,
                                          headers={'Content-Type': 'application/json'}))
    assert res.status_code == 400


def test_deeply_nested_json_never_500_with_orjson(monkeypatch):
    orjson = pytest.importorskip('orjson')
    monkeypatch.setattr(requests_module, '_loads', orjson.loads)
    # recent orjson refuses more than 1024 levels (400); older versions decode them
    assert post_json(DEEPER).status_code in (200, 400)
    assert post_json(DEEP).status_code in (200, 400)
    assert post_json('{').status_code == 400
    assert post_json('[[1]]').json == {'type': 'list'}


def test_deeply_nested_json_is_never_500_with_the_default_decoder():
    assert post_json(DEEP).status_code in (200, 400)
    assert post_json(DEEPER).status_code == 400


# -- item 7: cookies -----------------------------------------------------------------

def cookies_of(header):
    app = Microdot()

    @app.get('/c')
    async def c(req):
        return req.cookies

    return run(client_for(app).get('/c', headers={'Cookie': header})).json


@pytest.mark.parametrize('header,expected', [
    ('a=1;flag;b=2', {'a': '1', 'flag': '', 'b': '2'}),
    ('a=1; flag', {'a': '1', 'flag': ''}),
    ('a="x y"', {'a': '"x y"'}),
    ('a=x=y', {'a': 'x=y'}),
    ('a=', {'a': ''}),
    ('a=1; a=2', {'a': '2'}),  # the last wins, as in Microdot
    ('a=1; ', {'a': '1'}),  # beyond Microdot: an empty pair is not a cookie named ''
    (' b = 2 ', {'b': '2'}),  # beyond Microdot: names and values trimmed
])
def test_cookie_parsing(header, expected):
    assert cookies_of(header) == expected


# -- item 10: an exception in an SSE handler ------------------------------------------

def sse_app(before):
    app = Microdot()

    @app.get('/events')
    @with_sse
    async def events(req, sse):
        for data in before:
            await sse.send(data)
        raise KeyError('feed broke')

    return app


@pytest.mark.parametrize('before', [[], ['one', 'two']])
def test_sse_handler_exception_propagates_out_of_the_test_client(before):
    with pytest.raises(KeyError, match='feed broke'):
        run(client_for(sse_app(before)).get('/events'))


# -- other observable details ----------------------------------------------------------

def test_sse_fields_in_microdot_order():
    app = Microdot()

    @app.get('/events')
    @with_sse
    async def events(req, sse):
        await sse.send({'x': 1}, event='e', event_id='7', retry=2.5)

    res = run(client_for(app).get('/events'))
    try:
        import orjson  # noqa: F401
        data = b'{"x":1}'
    except ImportError:
        data = b'{"x": 1}'
    assert res.body == b'retry: 2500\nevent: e\nid: 7\ndata: ' + data + b'\n\n'
    assert res.events == [{'data': data, 'data_json': {'x': 1}, 'event': 'e',
                           'event_id': '7', 'retry': 2.5}]


def test_multidict_holds_lists_like_microdot():
    app = Microdot()

    @app.get('/q')
    async def q(req):
        return {'items': list(req.args.items()), 'first': req.args['t'], 'all': req.args}

    res = run(client_for(app).get('/q?t=a&t=b&u=c'))
    assert res.json == {'items': [['t', ['a', 'b']], ['u', ['c']]], 'first': 'a',
                        'all': {'t': ['a', 'b'], 'u': ['c']}}
    d = MultiDict({'k': 'v'})
    assert dict(d) == {'k': ['v']}
    assert MultiDict(d).getlist('k') == ['v']


def test_test_client_forgets_a_cookie_with_negative_max_age():
    app = Microdot()

    @app.get('/set')
    async def set_(req):
        res = Response('x')
        res.set_cookie('a', '1')
        return res

    @app.get('/drop')
    async def drop(req):
        res = Response('x')
        res.set_cookie('a', '', max_age=-5)
        return res

    @app.get('/c')
    async def c(req):
        return req.cookies

    client = client_for(app)
    run(client.get('/set'))
    assert run(client.get('/c')).json == {'a': '1'}
    run(client.get('/drop'))
    assert run(client.get('/c')).json == {}


# -- multipart: request.form and request.files as Microdot's dicts ---------------------

def multipart_body(parts, boundary='BNDRY'):
    out = []
    for name, value in parts:
        if isinstance(value, tuple):
            filename, data = value
            out.append(('--%s\r\nContent-Disposition: form-data; name="%s"; '
                        'filename="%s"\r\nContent-Type: text/plain\r\n\r\n'
                        % (boundary, name, filename)).encode() + data + b'\r\n')
        else:
            out.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                        % (boundary, name, value)).encode())
    return b''.join(out) + ('--%s--\r\n' % boundary).encode()


def upload_app():
    from microdot.multipart import with_form_data
    app = Microdot()

    @app.post('/up')
    @with_form_data
    async def up(req):
        if req.files is None:
            return {'form': req.form, 'files': None}
        files = {}
        for name, upload in req.files.items():  # one upload per name, as in Microdot
            files[name] = [upload.filename, (await upload.read()).decode()]
        return {'form': dict(req.form.items()), 'dict_form': dict(req.form),
                'values': list(req.form.values()), 'files': files,
                'all_tags': req.form.getlist('tag'), 'tag': req.form.get('tag')}

    return app


def test_multipart_form_and_files_iterate_like_dicts():
    body = multipart_body([('tag', 'a'), ('tag', 'b'), ('title', 't'),
                           ('doc', ('d.txt', b'hello'))])
    res = run(client_for(upload_app()).post(
        '/up', body=body, headers={'Content-Type': 'multipart/form-data; boundary=BNDRY'}))
    assert res.status_code == 200
    # a repeated name gives its last value, as Microdot's dict; getlist() has them all
    assert res.json == {'form': {'tag': 'b', 'title': 't'},
                        'dict_form': {'tag': 'b', 'title': 't'},
                        'values': ['b', 't'], 'files': {'doc': ['d.txt', 'hello']},
                        'all_tags': ['a', 'b'], 'tag': 'b'}


def test_with_form_data_leaves_files_none_without_a_multipart_body():
    res = run(client_for(upload_app()).post(
        '/up', body='a=1', headers={'Content-Type': 'application/x-www-form-urlencoded'}))
    assert res.json == {'form': {'a': ['1']}, 'files': None}
    res = run(client_for(upload_app()).post(
        '/up', body=b'--BNDRY--\r\n',
        headers={'Content-Type': 'multipart/form-data; boundary=BNDRY'}))
    assert res.json == {'form': None, 'files': None}


def test_test_client_cookie_jar_has_microdot_shape():
    app = Microdot()

    @app.get('/set')
    async def set_(req):
        res = Response('x')
        res.set_cookie('root', 'r')
        res.set_cookie('scoped', 's', path='/p')
        return res

    @app.get('/drop')
    async def drop(req):
        res = Response('x')
        res.delete_cookie('scoped', path='/p')
        return res

    @app.get('/<path:path>')
    async def show(req, path):
        return req.cookies

    jar = {'given': 'g'}
    client = TestClient(app, cookies=jar)
    run(client.get('/set'))
    assert jar == {'given': 'g', 'root': 'r', 'scoped': ('s', '/p')}  # the same dict
    assert run(client.get('/p/x')).json == {'given': 'g', 'root': 'r', 'scoped': 's'}
    assert run(client.get('/q')).json == {'given': 'g', 'root': 'r'}
    run(client.get('/drop'))
    assert jar == {'given': 'g', 'root': 'r'}
    client = TestClient(app, cookies={'t': ('v', '/p')})
    assert run(client.get('/p')).json == {'t': 'v'}
    assert run(client.get('/q')).json == {}


def test_headers_shared_between_responses_are_not_changed():
    from microdot import NoCaseDict
    shared = NoCaseDict({'X-A': '1', 'Set-Cookie': ['a=1']})
    plain = {'X-B': '2'}
    app = Microdot()

    @app.get('/<int:n>')
    async def n(req, n):
        res = Response('x' * n, headers=shared if n % 2 else plain)
        res.set_cookie('n', str(n))
        return res

    client = client_for(app)
    for n in (1, 3, 2, 4):
        res = run(client.get('/%d' % n))
        assert res.headers['Content-Length'] == str(n)
    assert shared == {'X-A': '1', 'Set-Cookie': ['a=1']}
    assert plain == {'X-B': '2'}


def test_async_bytes_io_captures_a_written_response():
    async def main():
        out = AsyncBytesIO(b'')
        await Response({'a': 1}, 201, headers={'X-A': 'b'}).write(out)
        return out.stream.getvalue()

    assert run(main()) == (b'HTTP/1.0 201 Created\r\nX-A: b\r\n'
                           b'Content-Type: application/json; charset=UTF-8\r\n'
                           b'Content-Length: ' + str(len(Response({'a': 1}).body)).encode()
                           + b'\r\n\r\n' + Response({'a': 1}).body)


def test_test_client_request_headers_as_microdot_sends_them():
    app = Microdot()

    @app.route('/e', methods=['GET', 'POST'])
    async def e(req):
        return {'headers': list(req.headers.items()), 'length': req.content_length}

    client = TestClient(app, cookies={'a': '1'})
    res = run(client.post('/e'))
    assert res.json == {'headers': [['Host', 'example.com:1234'], ['Cookie', 'a=1']],
                        'length': 0}  # no Content-Length for an empty body; Host first
    res = run(client.post('/e', body='xy', headers={'X-A': 'b', 'Cookie': 'z=9'}))
    assert res.json == {'headers': [['Host', 'example.com:1234'], ['X-A', 'b'],
                                    ['Cookie', 'z=9; a=1'], ['Content-Length', '2']],
                        'length': 2}
