"""Response fields checked when they are set, and sent in one step (issue #19).

The ``headers`` dict given to ``Response`` and the cookies of ``set_cookie()`` are
checked when they are set and kept apart from a ``NoCaseDict`` until ``headers`` is
read; the built-in server and both adapters then send them in one step. What the
client gets must be what the full path (headers read, then sent) gives.
"""
import asyncio
import io
import socket

import pytest

import microdot
from microdot import Response
from microdot.responses import _cookie_text, one_step_type_field, plain_type_field
from microdot.structures import NoCaseDict

from support import live_server, recv_all


def test_given_fields_and_cookies_wait_until_headers_is_read():
    res = Response('x', headers={'X-One': '1', 'X-Two': '2'})
    res.set_cookie('a', 'b')
    res.set_cookie('c', 'd', path='/', http_only=True)
    assert res._headers is None
    assert res._fields == {'X-One': '1', 'X-Two': '2'}
    assert res._cookies == ['a=b', 'c=d; Path=/; HttpOnly']
    assert one_step_type_field(res) == ('Content-Type', 'text/plain; charset=UTF-8')
    assert plain_type_field(res) is None  # not plain: it has fields of its own
    headers = res.headers
    assert isinstance(headers, NoCaseDict)
    assert list(headers.items()) == [('X-One', '1'), ('X-Two', '2'),
                                     ('Set-Cookie', ['a=b', 'c=d; Path=/; HttpOnly'])]
    assert res._fields is None and res._cookies is None
    assert one_step_type_field(res) is None  # from now on, the full path
    res.set_cookie('e', 'f')  # added to the NoCaseDict, in a new list
    assert headers['set-cookie'] == ['a=b', 'c=d; Path=/; HttpOnly', 'e=f']


def test_json_type_fields_and_cookies_keep_their_order():
    res = Response({'a': 1}, headers={'X-One': '1'})
    res.set_cookie('a', 'b')
    assert res._headers is None
    assert one_step_type_field(res) == ('Content-Type', 'application/json; charset=UTF-8')
    assert list(res.headers.items()) == [
        ('X-One', '1'), ('Content-Type', 'application/json; charset=UTF-8'),
        ('Set-Cookie', ['a=b'])]
    plain = Response([1])
    assert plain._headers is None and plain.headers == {
        'Content-Type': 'application/json; charset=UTF-8'}


def test_replacing_headers_drops_what_waited():
    res = Response({'a': 1}, headers={'X-One': '1'})
    res.set_cookie('a', 'b')
    res.headers = {'X-Two': '2'}
    assert dict(res.headers) == {'X-Two': '2'}
    res.complete()
    assert res.headers['Content-Type'] == 'text/plain; charset=UTF-8'


def test_given_dict_is_copied():
    given = {'X-One': '1'}
    res = Response('x', headers=given)
    given['X-Two'] = '2'
    res.headers['X-Three'] = '3'
    assert given == {'X-One': '1', 'X-Two': '2'}
    assert dict(res.headers) == {'X-One': '1', 'X-Three': '3'}


@pytest.mark.parametrize('given', [
    {'Content-Type': 'text/html'},          # framing and server fields
    {'content-length': '1'},
    {'Set-Cookie': 'a=b'},
    {'Date': 'today'},
    {'Connection': 'close'},
    {'X-List': ['1', '2']},                 # not a str
    {'X-Number': 5},
    {'X-Bad': 'a\r\nInjected: 1'},          # refused when sent
    {'Bad Name': '1'},
    {'X-Case': '1', 'x-case': '2'},         # one field, set twice
])
def test_fields_that_cannot_wait_go_into_the_nocasedict(given):
    res = Response('x', headers=given)
    assert res._fields is None and isinstance(res._headers, NoCaseDict)
    assert res._headers == NoCaseDict(given)


def test_another_spelling_of_a_known_name_goes_into_the_nocasedict():
    assert Response('x', headers={'X-Spelling': '1'})._fields is not None
    res = Response('x', headers={'x-spelling': '1', 'X-Other': '2'})
    assert res._fields is None and dict(res.headers) == {'x-spelling': '1', 'X-Other': '2'}


@pytest.mark.parametrize('name,value', [
    ('a', 'b'), ('session', 'abc123'), ('', 'v'), ('n', ''), ('n', 'caf\xe9'),
    ('n', 'a b'), ('n', 'a\tb'), ('n', 'x=y'), ('n', '"quoted"'), ('n', '\u20ac'),
])
def test_cookie_text_is_the_same_on_both_paths(name, value):
    res = Response()
    res.set_cookie(name, value)
    assert res._cookies == [_cookie_text(name, value, None, None, None, None, False, False,
                                         False, None)]


@pytest.mark.parametrize('name,value', [
    ('n', 'a;b'), ('n;x', 'v'), ('n', 'a\r\nb'), ('n\n', 'v'), ('n', 'a\0b'),
])
def test_cookie_checks_still_refuse(name, value):
    res = Response()
    with pytest.raises(ValueError):
        res.set_cookie(name, value)
    assert res._cookies is None and res._headers is None


def _routes(app):
    def fields(req, full=False):
        body = {'a': 1} if req.args.get('json') else 'Hello'
        res = Response(body, headers={'X-One': '1', 'X-Two': 'caf\xe9'})
        res.set_cookie('session', 'abc123')
        res.set_cookie('theme', 'dark', path='/', secure=True)
        if req.args.get('full'):
            res.headers  # read: the full path sends it
        return res

    def euro(req):
        res = Response('x', headers={'X-Euro': '\u20ac'})
        if req.args.get('full'):
            res.headers
        return res

    app.route('/fields')(fields)
    app.route('/euro')(euro)


def _normalized(pairs):
    return sorted((name.lower(), value) for name, value in pairs
                  if name.lower() not in ('date', 'server', 'connection', 'keep-alive'))


def _asgi_call(app, path, query=b''):
    sent = []

    async def receive():
        return {'type': 'http.request', 'body': b'', 'more_body': False}

    async def send(message):
        sent.append(message)

    scope = {'type': 'http', 'asgi': {'version': '3.0'}, 'http_version': '1.1',
             'method': 'GET', 'scheme': 'http', 'path': path, 'raw_path': path.encode(),
             'query_string': query, 'root_path': '', 'headers': [(b'host', b'x')],
             'client': ('127.0.0.1', 1), 'server': ('127.0.0.1', 80)}
    asyncio.run(app(scope, receive, send))
    return sent[0]['status'], _normalized(
        (n.decode('latin-1'), v.decode('latin-1')) for n, v in sent[0]['headers'])


@pytest.mark.parametrize('query', [b'', b'json=1'])
def test_asgi_one_step_fields_are_the_full_paths(query):
    from microdot.asgi import Microdot
    app = Microdot()
    _routes(app)
    fast = _asgi_call(app, '/fields', query)
    full = _asgi_call(app, '/fields', query + (b'&' if query else b'') + b'full=1')
    assert fast == full and fast[0] == 200
    assert ('set-cookie', 'theme=dark; Path=/; Secure') in fast[1]
    assert ('x-two', 'caf\xe9') in fast[1]


def test_asgi_refuses_a_value_that_is_not_latin1_on_both_paths(caplog):
    from microdot.asgi import Microdot
    app = Microdot()
    _routes(app)
    assert _asgi_call(app, '/euro')[0] == 500
    assert _asgi_call(app, '/euro', b'full=1')[0] == 500


def _wsgi_call(app, path, query=''):
    got = []
    environ = {'REQUEST_METHOD': 'GET', 'PATH_INFO': path, 'QUERY_STRING': query,
               'SERVER_NAME': '127.0.0.1', 'SERVER_PORT': '80', 'SERVER_PROTOCOL': 'HTTP/1.1',
               'REMOTE_ADDR': '127.0.0.1', 'HTTP_HOST': 'x', 'wsgi.url_scheme': 'http',
               'wsgi.input': io.BytesIO(b''), 'wsgi.errors': io.StringIO(),
               'wsgi.version': (1, 0), 'wsgi.multithread': False,
               'wsgi.multiprocess': False, 'wsgi.run_once': False}
    body = b''.join(app(environ, lambda status, headers, exc_info=None:
                        got.append((status, headers))))
    return got[0][0], _normalized(got[0][1]), body


@pytest.mark.parametrize('query', ['', 'json=1'])
def test_wsgi_one_step_fields_are_the_full_paths(query):
    from microdot.wsgi import Microdot
    app = Microdot()
    _routes(app)
    fast = _wsgi_call(app, '/fields', query)
    full = _wsgi_call(app, '/fields', query + ('&' if query else '') + 'full=1')
    assert fast == full and fast[0] == '200 OK'
    assert _wsgi_call(app, '/euro') == _wsgi_call(app, '/euro', 'full=1')


def _keep_alive_get(server, target):
    # the one-step path serves keep-alive HTTP/1.1 requests: two on one connection
    with socket.create_connection(('127.0.0.1', server.port), timeout=5) as s:
        request = b'GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % target
        s.sendall(request + request[:-2] + b'Connection: close\r\n\r\n')
        data = recv_all(s)
    first = data.split(b'HTTP/1.1 ')[1]
    head = first.partition(b'\r\n\r\n')[0]
    lines = head.split(b'\r\n')
    pairs = [line.decode('latin-1').split(': ', 1) for line in lines[1:]]
    return lines[0], _normalized(pairs)


@pytest.mark.parametrize('query', [b'', b'json=1'])
def test_builtin_server_one_step_fields_are_the_full_paths(query):
    app = microdot.Microdot()
    _routes(app)
    sep = b'&' if query else b''
    with live_server(app) as server:
        fast = _keep_alive_get(server, b'/fields?' + query)
        full = _keep_alive_get(server, b'/fields?' + query + sep + b'full=1')
        assert fast == full and fast[0] == b'200 OK'
        assert ('set-cookie', 'session=abc123') in fast[1]
        # a value outside latin-1 goes as UTF-8 on both paths
        euro = _keep_alive_get(server, b'/euro')
        assert euro == _keep_alive_get(server, b'/euro?full=1')
        assert ('x-euro', '\u20ac'.encode('utf-8').decode('latin-1')) in euro[1]


def test_fields_checked_before_are_known_by_name_and_value():
    from microdot import responses
    assert Response('x', headers={'X-Known': 'a'})._fields == {'X-Known': 'a'}
    assert ('X-Known', 'a') in responses._CHECKED_ITEMS
    # the same name with another value is checked again (and refused here)
    bad = Response('x', headers={'X-Known': 'a\r\nInjected: 1'})
    assert bad._fields is None and bad._headers == {'X-Known': 'a\r\nInjected: 1'}
    # values that vary fill the cache: it starts again, and checks go on
    for i in range(responses._CHECKED_ITEMS_MAX + 10):
        assert Response('x', headers={'X-Count': str(i)})._fields == {'X-Count': str(i)}
    assert len(responses._CHECKED_ITEMS) <= responses._CHECKED_ITEMS_MAX
    assert Response('x', headers={'X-Count': '1\n'})._fields is None
