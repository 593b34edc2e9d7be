"""The Response object: return forms, bodies, cookies, write(), send_file, static files."""
import asyncio
import datetime
import email.utils
import io
import os

import pytest

from microdot import Microdot, NoCaseDict, Response, redirect, send_file
from microdot.test_client import TestClient


def run(coro):
    return asyncio.run(coro)


def call(app, method, path, **kwargs):
    return run(TestClient(app).request(method, path, **kwargs))


def app_returning(value):
    app = Microdot()

    @app.route('/')
    async def index(req):
        return value() if callable(value) else value

    return app


class Writer:
    """An async writer collecting what is written."""

    def __init__(self, fail_after=None):
        self.data = b''
        self.writes = 0
        self.fail_after = fail_after
        self.closed = False

    async def awrite(self, data):
        if self.fail_after is not None and self.writes >= self.fail_after:
            raise ConnectionResetError('client went away')
        self.writes += 1
        self.data += data

    async def aclose(self):
        self.closed = True


def written(res):
    w = Writer()
    run(res.write(w))
    return w.data


def split_response(data):
    head, _, body = data.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    return lines[0], lines[1:], body


# -- return forms -----------------------------------------------------------------------

def test_return_str():
    res = call(app_returning('héllo'), 'GET', '/')
    assert res.status_code == 200
    assert res.body == 'héllo'.encode()
    assert res.headers['Content-Type'] == 'text/plain; charset=UTF-8'
    assert res.headers['Content-Length'] == str(len('héllo'.encode()))


def test_return_bytes():
    res = call(app_returning(b'\x00\x01binary'), 'GET', '/')
    assert res.body == b'\x00\x01binary'
    assert res.headers['Content-Length'] == '8'


def test_return_dict_and_list_as_json():
    res = call(app_returning({'a': 1, 'b': [True, None]}), 'GET', '/')
    assert res.headers['Content-Type'] == 'application/json; charset=UTF-8'
    assert res.json == {'a': 1, 'b': [True, None]}
    res = call(app_returning([1, 'two']), 'GET', '/')
    assert res.headers['Content-Type'] == 'application/json; charset=UTF-8'
    assert res.json == [1, 'two']


def test_return_body_and_status():
    res = call(app_returning(('created', 201)), 'GET', '/')
    assert res.status_code == 201
    assert res.reason is None  # as Microdot's test client: only a reason the app gave
    assert res.text == 'created'


def test_return_body_and_headers():
    res = call(app_returning(('x', {'X-A': 'b'})), 'GET', '/')
    assert res.status_code == 200
    assert res.headers['X-A'] == 'b'
    assert res.text == 'x'


def test_return_body_status_and_headers():
    res = call(app_returning(({'k': 'v'}, 202, {'X-A': 'b'})), 'GET', '/')
    assert res.status_code == 202
    assert res.headers['X-A'] == 'b'
    assert res.json == {'k': 'v'}


def test_return_body_status_and_headers_with_content_type():
    res = call(app_returning(('<p>hi</p>', 200, {'Content-Type': 'text/html'})), 'GET', '/')
    assert res.headers['Content-Type'] == 'text/html'
    assert res.text == '<p>hi</p>'


def test_return_status_only():
    res = call(app_returning(204), 'GET', '/')
    assert res.status_code == 204
    assert res.body == b''


def test_return_response_object():
    res = call(app_returning(lambda: Response('teapot', 418, {'X-T': '1'})), 'GET', '/')
    assert res.status_code == 418
    assert res.reason is None
    assert res.headers['X-T'] == '1'
    assert res.text == 'teapot'


def test_return_none_is_204():
    res = call(app_returning(None), 'GET', '/')
    assert res.status_code == 204
    assert res.body == b''


def test_return_sync_generator():
    def gen():
        yield 'a'
        yield b'b'
        yield 'c'

    res = call(app_returning(gen), 'GET', '/')
    assert res.body == b'abc'
    assert 'Content-Length' not in res.headers


def test_return_async_generator():
    async def gen():
        for i in range(3):
            await asyncio.sleep(0)
            yield str(i)

    res = call(app_returning(gen), 'GET', '/')
    assert res.body == b'012'
    assert 'Content-Length' not in res.headers


def test_return_async_reader_is_streamed():
    class Reader:
        def __init__(self):
            self.data = b'x' * 100
            self.sizes = []

        async def read(self, n):
            self.sizes.append(n)
            chunk, self.data = self.data[:n], self.data[n:]
            return chunk

    reader = Reader()
    old = Response.send_file_buffer_size
    Response.send_file_buffer_size = 30
    try:
        res = call(app_returning(lambda: reader), 'GET', '/')
    finally:
        Response.send_file_buffer_size = old
    assert res.body == b'x' * 100
    assert reader.sizes == [30, 30, 30, 30, 30]


def test_default_content_type_changeable(monkeypatch):
    monkeypatch.setattr(Response, 'default_content_type', 'text/html')
    res = call(app_returning('<b>x</b>'), 'GET', '/')
    assert res.headers['Content-Type'] == 'text/html; charset=UTF-8'


# -- Response object ----------------------------------------------------------------------

def test_response_defaults():
    res = Response()
    assert res.status_code == 200
    assert res.body == b''
    assert res.reason is None
    assert len(res.headers) == 0


def test_complete_fills_length_and_type():
    res = Response('abc')
    res.complete()
    assert res.headers['Content-Length'] == '3'
    assert res.headers['Content-Type'] == 'text/plain; charset=UTF-8'
    res = Response(b'abc', headers={'Content-Type': 'image/png', 'Content-Length': '99'})
    res.complete()
    assert res.headers['Content-Type'] == 'image/png'
    assert res.headers['Content-Length'] == '99'


def test_complete_streamed_body_has_no_length():
    res = Response(iter([b'a']))
    res.complete()
    assert 'Content-Length' not in res.headers


def test_write_produces_http10_status_line():
    data = written(Response('hello', headers={'X-A': 'b'}))
    status, headers, body = split_response(data)
    assert status == 'HTTP/1.0 200 OK'
    assert 'X-A: b' in headers
    assert 'Content-Length: 5' in headers
    assert 'Content-Type: text/plain; charset=UTF-8' in headers
    assert body == b'hello'


@pytest.mark.parametrize('status,reason', [
    (201, 'Created'), (301, 'Moved Permanently'), (404, 'Not Found'),
    (418, "I'm a teapot"), (429, 'Too Many Requests'), (503, 'Service Unavailable'),
])
def test_reason_phrases(status, reason):
    status_line, _, _ = split_response(written(Response('x', status)))
    assert status_line == 'HTTP/1.0 %d %s' % (status, reason)
    assert Response('x', status).reason_phrase() == reason
    res = call(app_returning(('x', status)), 'GET', '/')
    assert res.reason is None  # the test client reports only a reason the app gave
    res = call(app_returning(lambda: Response('x', status, reason='Own')), 'GET', '/')
    assert res.reason == 'Own'


def test_reason_never_na():
    for status in (100, 202, 226, 308, 402, 422, 425, 451, 500, 511, 599, 299):
        reason = Response('', status).reason_phrase()
        assert reason and reason != 'N/A'


def test_custom_reason():
    status_line, _, _ = split_response(written(Response('x', 299, reason='Fine Thanks')))
    assert status_line == 'HTTP/1.0 299 Fine Thanks'


def test_write_streams_generator():
    def gen():
        yield b'one,'
        yield 'two'

    status, headers, body = split_response(written(Response(gen())))
    assert status == 'HTTP/1.0 200 OK'
    assert body == b'one,two'
    assert not any(h.startswith('Content-Length') for h in headers)


def test_write_head_response_has_no_body():
    closed = []

    class Body:
        def read(self, n):
            raise AssertionError('HEAD body must not be read')

        def close(self):
            closed.append(True)

    res = Response(b'hello')
    res.is_head = True
    status, headers, body = split_response(written(res))
    assert 'Content-Length: 5' in headers
    assert body == b''
    res = Response(Body())
    res.is_head = True
    written(res)
    assert closed == [True]


def test_head_closes_unsent_body():
    closed = []

    class Body:
        def read(self, n):
            raise AssertionError('HEAD body must not be read')

        def close(self):
            closed.append(True)

    res = call(app_returning(lambda: Response(Body())), 'HEAD', '/')
    assert res.status_code == 200
    assert res.body is None
    assert closed == [True]


def test_header_values_with_crlf_rejected():
    for value in ('a\r\nInjected: 1', 'a\nb', 'a\rb'):
        res = Response('x', headers={'X-Bad': value})
        with pytest.raises(ValueError):
            run(res.write(Writer()))


def test_body_iter():
    async def collect(res):
        return [chunk async for chunk in res.body_iter()]

    assert run(collect(Response('abc'))) == [b'abc']
    assert run(collect(Response(b''))) == []
    assert run(collect(Response(iter(['a', b'', 'b'])))) == [b'a', b'b']
    assert run(collect(Response(io.BytesIO(b'file data')))) == [b'file data']


def test_sync_generator_closed_when_iteration_stops_early():
    state = []

    def gen():
        try:
            yield b'a'
            yield b'b'
            state.append('exhausted')
        finally:
            state.append('closed')

    async def main():
        it = Response(gen()).body_iter()
        assert await it.__anext__() == b'a'
        await it.aclose()

    run(main())
    assert state == ['closed']


def test_async_generator_closed_when_iteration_stops_early():
    state = []

    async def gen():
        try:
            yield b'a'
            yield b'b'
            state.append('exhausted')
        finally:
            state.append('closed')

    async def main():
        it = Response(gen()).body_iter()
        assert await it.__anext__() == b'a'
        await it.aclose()

    run(main())
    assert state == ['closed']


def test_generator_closed_when_client_goes_away():
    state = []

    async def gen():
        try:
            for i in range(100):
                yield b'chunk'
        finally:
            state.append('closed')

    w = Writer(fail_after=2)   # head + one chunk, then the write fails
    run(Response(gen()).write(w))
    assert state == ['closed']
    assert w.data.endswith(b'chunk')


def test_generator_closed_after_complete_iteration():
    state = []

    def gen():
        try:
            yield b'a'
        finally:
            state.append('closed')

    written(Response(gen()))
    assert state == ['closed']


def test_reader_body_closed_after_writing():
    f = io.BytesIO(b'data')
    assert split_response(written(Response(f)))[2] == b'data'
    assert f.closed


# -- cookies -------------------------------------------------------------------------------

def test_set_cookie_with_every_attribute():
    res = Response('x')
    res.set_cookie('full', 'v', path='/p', domain='example.com',
                   expires='Wed, 21 Oct 2037 07:28:00 GMT', max_age=3600, secure=True,
                   http_only=True, partitioned=True, samesite='Strict')
    res.set_cookie('dt', '1', expires=datetime.datetime(2030, 1, 2, 3, 4, 5,
                                                        tzinfo=datetime.timezone.utc))
    res.set_cookie('naive', '2', expires=datetime.datetime(2031, 5, 6, 7, 8, 9))
    res.set_cookie('plain', '3')
    _, headers, _ = split_response(written(res))
    cookies = [h[len('Set-Cookie: '):] for h in headers if h.startswith('Set-Cookie: ')]
    assert len(cookies) == 4
    full = [p.strip() for p in cookies[0].split(';')]
    assert full[0] == 'full=v'
    assert set(full[1:]) == {'Path=/p', 'Domain=example.com',
                             'Expires=Wed, 21 Oct 2037 07:28:00 GMT', 'Max-Age=3600',
                             'Secure', 'HttpOnly', 'Partitioned', 'SameSite=Strict'}
    assert cookies[1] == 'dt=1; Expires=Wed, 02 Jan 2030 03:04:05 GMT'
    assert cookies[2] == 'naive=2; Expires=Tue, 06 May 2031 07:08:09 GMT'
    assert cookies[3] == 'plain=3'


def test_set_cookie_samesite_values():
    for value, expected in (('lax', 'Lax'), ('None', 'None'), ('strict', 'Strict')):
        res = Response()
        res.set_cookie('c', 'v', samesite=value)
        assert res.headers['Set-Cookie'] == ['c=v; SameSite=' + expected]
    with pytest.raises(ValueError):
        Response().set_cookie('c', 'v', samesite='sometimes')


def test_set_cookie_refuses_injection():
    for kwargs in ({'value': 'a\r\nX: y'}, {'value': 'a;b'}, {'path': '/;x'},
                   {'domain': 'a\nb'}):
        args = {'value': 'v'}
        args.update(kwargs)
        with pytest.raises(ValueError):
            Response().set_cookie('c', **args)


def test_set_cookie_through_app():
    app = Microdot()

    @app.route('/')
    async def index(req):
        res = Response('x')
        res.set_cookie('a', '1', http_only=True)
        res.set_cookie('b', '2', secure=True)
        return res

    res = call(app, 'GET', '/')
    assert res.headers['Set-Cookie'] == ['a=1; HttpOnly', 'b=2; Secure']


def test_delete_cookie():
    res = Response()
    res.delete_cookie('session', path='/app', domain='example.com')
    (cookie,) = res.headers['Set-Cookie']
    parts = [p.strip() for p in cookie.split(';')]
    assert parts[0] == 'session='
    assert 'Path=/app' in parts
    assert 'Domain=example.com' in parts
    assert 'Max-Age=0' in parts
    expires = [p for p in parts if p.startswith('Expires=')][0][len('Expires='):]
    assert email.utils.parsedate_to_datetime(expires).year == 1970


# -- redirect ---------------------------------------------------------------------------------

def test_redirect():
    res = Response.redirect('/login')
    assert res.status_code == 302
    assert res.headers['Location'] == '/login'
    res = redirect('https://example.com/x', status_code=301)
    assert res.status_code == 301
    assert res.headers['Location'] == 'https://example.com/x'
    status, headers, _ = split_response(written(redirect('/y', 307)))
    assert status == 'HTTP/1.0 307 Temporary Redirect'
    assert 'Location: /y' in headers


def test_redirect_refuses_crlf():
    for location in ('/x\r\nSet-Cookie: a=b', '/x\ny', '/x\rb'):
        with pytest.raises(ValueError):
            Response.redirect(location)
        with pytest.raises(ValueError):
            redirect(location)


def test_redirect_through_app():
    res = call(app_returning(lambda: redirect('/other')), 'GET', '/')
    assert res.status_code == 302
    assert res.headers['Location'] == '/other'


# -- send_file -------------------------------------------------------------------------------

@pytest.fixture
def files(tmp_path):
    (tmp_path / 'hello.txt').write_bytes(b'hello world')
    (tmp_path / 'page.html').write_bytes(b'<h1>hi</h1>')
    (tmp_path / 'data.unknownext').write_bytes(b'\x00\x01')
    (tmp_path / 'noext').write_bytes(b'n')
    (tmp_path / 'app.js').write_bytes(b'1;')
    (tmp_path / 'image.PNG').write_bytes(b'png')
    (tmp_path / 'style.css.gz').write_bytes(b'gzipped css')
    (tmp_path / 'index.html.gz').write_bytes(b'gzipped html')
    (tmp_path / 'digits.bin').write_bytes(b'0123456789')
    return tmp_path


def file_app(path, **kwargs):
    app = Microdot()

    @app.route('/f')
    async def f(req):
        return send_file(str(path), **kwargs)

    return app


def test_send_file_type_from_extension(files):
    cases = {'hello.txt': 'text/plain', 'page.html': 'text/html',
             'app.js': 'application/javascript', 'image.PNG': 'image/png',
             'data.unknownext': 'application/octet-stream',
             'noext': 'application/octet-stream'}
    for name, ctype in cases.items():
        res = call(file_app(files / name), 'GET', '/f')
        assert res.status_code == 200
        assert res.headers['Content-Type'] == ctype, name  # the bare type, as Microdot
        assert res.body == (files / name).read_bytes()
        assert res.headers['Content-Length'] == str(len(res.body))


def test_send_file_explicit_content_type_and_status(files):
    res = call(file_app(files / 'hello.txt', content_type='text/x-custom',
                        status_code=202), 'GET', '/f')
    assert res.status_code == 202
    assert res.headers['Content-Type'] == 'text/x-custom'


def test_send_file_max_age(files, monkeypatch):
    res = call(file_app(files / 'hello.txt', max_age=600), 'GET', '/f')
    assert res.headers['Cache-Control'] == 'max-age=600'
    res = call(file_app(files / 'hello.txt'), 'GET', '/f')
    assert 'Cache-Control' not in res.headers
    monkeypatch.setattr(Response, 'default_send_file_max_age', 86400)
    res = call(file_app(files / 'hello.txt'), 'GET', '/f')
    assert res.headers['Cache-Control'] == 'max-age=86400'
    res = call(file_app(files / 'hello.txt', max_age=0), 'GET', '/f')
    assert res.headers['Cache-Control'] == 'max-age=0'


def test_send_file_compressed(files):
    res = call(file_app(files / 'style.css.gz', compressed=True), 'GET', '/f')
    assert res.headers['Content-Encoding'] == 'gzip'
    assert res.headers['Content-Type'].split(';')[0] == 'text/css'
    assert res.body == b'gzipped css'


def test_send_file_compressed_with_file_extension(files):
    res = call(file_app(files / 'index.html', compressed=True, file_extension='.gz'),
               'GET', '/f')
    assert res.headers['Content-Encoding'] == 'gzip'
    assert res.headers['Content-Type'].split(';')[0] == 'text/html'
    assert res.body == b'gzipped html'


def test_send_file_file_extension(files):
    res = call(file_app(files / 'hello', file_extension='.txt'), 'GET', '/f')
    assert res.body == b'hello world'


def test_send_file_stream_argument():
    res = call(app_returning(lambda: send_file('report.csv', stream=io.BytesIO(b'a,b\n'))),
               'GET', '/')
    assert res.body == b'a,b\n'
    assert res.headers['Content-Type'].split(';')[0] == 'text/csv'


def test_send_file_missing_file_raises(tmp_path):
    with pytest.raises(OSError):
        Response.send_file(str(tmp_path / 'missing.txt'))


def test_send_file_types_map_extendable(files, monkeypatch):
    monkeypatch.setattr(Response, 'types_map', dict(Response.types_map,
                                                    unknownext='application/x-mine'))
    res = call(file_app(files / 'data.unknownext'), 'GET', '/f')
    assert res.headers['Content-Type'] == 'application/x-mine'


def test_send_file_etag_and_last_modified(files):
    path = files / 'hello.txt'
    os.utime(path, (1700000000, 1700000000))
    res = call(file_app(path), 'GET', '/f')
    assert res.headers['ETag'].startswith('"') and res.headers['ETag'].endswith('"')
    assert res.headers['Last-Modified'] == email.utils.formatdate(1700000000, usegmt=True)
    res2 = call(file_app(path), 'GET', '/f')
    assert res2.headers['ETag'] == res.headers['ETag']
    path.write_bytes(b'changed content')
    res3 = call(file_app(path), 'GET', '/f')
    assert res3.headers['ETag'] != res.headers['ETag']


def test_if_none_match_gives_304(files):
    app = file_app(files / 'hello.txt', max_age=60)
    etag = call(app, 'GET', '/f').headers['ETag']
    res = call(app, 'GET', '/f', headers={'If-None-Match': etag})
    assert res.status_code == 304
    assert res.body == b''
    assert res.headers['ETag'] == etag
    assert res.headers['Cache-Control'] == 'max-age=60'
    res = call(app, 'GET', '/f', headers={'If-None-Match': '"other", ' + etag})
    assert res.status_code == 304
    res = call(app, 'GET', '/f', headers={'If-None-Match': 'W/' + etag})
    assert res.status_code == 304
    res = call(app, 'GET', '/f', headers={'If-None-Match': '*'})
    assert res.status_code == 304
    res = call(app, 'GET', '/f', headers={'If-None-Match': '"nope"'})
    assert res.status_code == 200
    assert res.body == b'hello world'


def test_if_modified_since_gives_304(files):
    path = files / 'hello.txt'
    os.utime(path, (1700000000, 1700000000))
    app = file_app(path)
    same = email.utils.formatdate(1700000000, usegmt=True)
    later = email.utils.formatdate(1700000100, usegmt=True)
    earlier = email.utils.formatdate(1699999000, usegmt=True)
    assert call(app, 'GET', '/f', headers={'If-Modified-Since': same}).status_code == 304
    assert call(app, 'GET', '/f', headers={'If-Modified-Since': later}).status_code == 304
    res = call(app, 'GET', '/f', headers={'If-Modified-Since': earlier})
    assert res.status_code == 200
    assert res.body == b'hello world'
    res = call(app, 'GET', '/f', headers={'If-Modified-Since': 'garbage'})
    assert res.status_code == 200


def test_if_none_match_takes_precedence_over_if_modified_since(files):
    path = files / 'hello.txt'
    os.utime(path, (1700000000, 1700000000))
    later = email.utils.formatdate(1700000100, usegmt=True)
    res = call(file_app(path), 'GET', '/f',
               headers={'If-None-Match': '"nope"', 'If-Modified-Since': later})
    assert res.status_code == 200


def test_conditional_head_request(files):
    app = file_app(files / 'hello.txt')
    etag = call(app, 'GET', '/f').headers['ETag']
    assert call(app, 'HEAD', '/f', headers={'If-None-Match': etag}).status_code == 304
    res = call(app, 'HEAD', '/f')
    assert res.status_code == 200
    assert res.body is None
    assert res.headers['Content-Length'] == '11'


def test_range_request_gives_206(files):
    app = file_app(files / 'digits.bin')
    res = call(app, 'GET', '/f', headers={'Range': 'bytes=2-5'})
    assert res.status_code == 206
    assert res.body == b'2345'
    assert res.headers['Content-Range'] == 'bytes 2-5/10'
    assert res.headers['Content-Length'] == '4'
    assert call(app, 'GET', '/f').headers['Accept-Ranges'] == 'bytes'


def test_range_open_ended_and_suffix(files):
    app = file_app(files / 'digits.bin')
    res = call(app, 'GET', '/f', headers={'Range': 'bytes=7-'})
    assert res.status_code == 206
    assert res.body == b'789'
    assert res.headers['Content-Range'] == 'bytes 7-9/10'
    res = call(app, 'GET', '/f', headers={'Range': 'bytes=-3'})
    assert res.status_code == 206
    assert res.body == b'789'
    assert res.headers['Content-Range'] == 'bytes 7-9/10'
    res = call(app, 'GET', '/f', headers={'Range': 'bytes=-30'})
    assert res.status_code == 206
    assert res.body == b'0123456789'
    res = call(app, 'GET', '/f', headers={'Range': 'bytes=8-100'})
    assert res.body == b'89'
    assert res.headers['Content-Range'] == 'bytes 8-9/10'


def test_range_unsatisfiable_gives_416(files):
    app = file_app(files / 'digits.bin')
    res = call(app, 'GET', '/f', headers={'Range': 'bytes=10-20'})
    assert res.status_code == 416
    assert res.headers['Content-Range'] == 'bytes */10'
    assert res.body == b''


def test_range_ignored_when_invalid(files):
    app = file_app(files / 'digits.bin')
    for value in ('items=0-1', 'bytes=5-2', 'bytes=a-b', 'bytes=0-1,3-4'):
        res = call(app, 'GET', '/f', headers={'Range': value})
        assert res.status_code == 200, value
        assert res.body == b'0123456789'


def test_if_range(files):
    app = file_app(files / 'digits.bin')
    etag = call(app, 'GET', '/f').headers['ETag']
    res = call(app, 'GET', '/f', headers={'Range': 'bytes=0-1', 'If-Range': etag})
    assert res.status_code == 206
    assert res.body == b'01'
    res = call(app, 'GET', '/f', headers={'Range': 'bytes=0-1', 'If-Range': '"stale"'})
    assert res.status_code == 200
    assert res.body == b'0123456789'


# -- static directories ------------------------------------------------------------------------

@pytest.fixture
def static_dir(tmp_path):
    root = tmp_path / 'public'
    (root / 'css').mkdir(parents=True)
    (root / 'css' / 'site.css').write_bytes(b'body{}')
    (root / 'index.html').write_bytes(b'<p>index</p>')
    (root / 'docs').mkdir()
    (root / 'docs' / 'index.html').write_bytes(b'<p>docs</p>')
    (root / 'empty').mkdir()
    (tmp_path / 'secret.txt').write_bytes(b'TOP SECRET')
    os.symlink(tmp_path / 'secret.txt', root / 'link.txt')
    return root


def test_static_serves_files(static_dir):
    app = Microdot()
    app.static('/static', str(static_dir), max_age=120)
    res = call(app, 'GET', '/static/css/site.css')
    assert res.status_code == 200
    assert res.body == b'body{}'
    assert res.headers['Content-Type'].startswith('text/css')
    assert res.headers['Cache-Control'] == 'max-age=120'
    assert 'ETag' in res.headers
    assert call(app, 'GET', '/static/').body == b'<p>index</p>'
    assert call(app, 'GET', '/static/docs').body == b'<p>docs</p>'
    assert call(app, 'GET', '/static/missing.txt').status_code == 404
    assert call(app, 'GET', '/static/empty').status_code == 404


def test_static_conditional_and_range(static_dir):
    app = Microdot()
    app.static('/static', str(static_dir))
    etag = call(app, 'GET', '/static/css/site.css').headers['ETag']
    res = call(app, 'GET', '/static/css/site.css', headers={'If-None-Match': etag})
    assert res.status_code == 304
    res = call(app, 'GET', '/static/css/site.css', headers={'Range': 'bytes=0-3'})
    assert res.status_code == 206
    assert res.body == b'body'


@pytest.mark.parametrize('path', [
    '/static/../secret.txt',
    '/static/%2e%2e/secret.txt',
    '/static/%2E%2E/secret.txt',
    '/static/..%2fsecret.txt',
    '/static/..%2Fsecret.txt',
    '/static/css/..%2F..%2Fsecret.txt',
    '/static/css/../../secret.txt',
    '/static/..%5csecret.txt',
    '/static/link.txt',
    '/static/./index.html',
])
def test_static_refuses_traversal(static_dir, path):
    app = Microdot()
    app.static('/static', str(static_dir))

    @app.route('/<path:p>')
    async def catch_all(req, p):
        return 'catch all'

    res = call(app, 'GET', path)
    assert b'TOP SECRET' not in res.body
    assert res.status_code == 404


def test_static_absolute_path_inside_root(static_dir):
    app = Microdot()
    app.static('/static', str(static_dir))
    res = call(app, 'GET', '/static//etc/passwd')
    assert res.status_code == 404


def test_range_starting_past_the_end_is_416(tmp_path):
    f = tmp_path / 'ten.bin'
    f.write_bytes(b'0123456789')
    app = Microdot()

    @app.route('/f')
    async def handler(req):
        return Response.send_file(str(f))

    client = TestClient(app)
    for value in ('bytes=10-', 'bytes=12-20', 'bytes=-0'):
        res = asyncio.run(client.get('/f', headers={'Range': value}))
        assert res.status_code == 416, value
        assert res.headers['Content-Range'] == 'bytes */10'
    res = asyncio.run(client.get('/f', headers={'Range': 'bytes=8-20'}))
    assert res.status_code == 206 and res.body == b'89'


def test_static_refuses_hidden_files_through_the_404_handler(tmp_path):
    (tmp_path / '.env').write_text('SECRET=1')
    (tmp_path / 'ok.txt').write_text('fine')
    app = Microdot()
    app.static('/s', str(tmp_path))

    @app.errorhandler(404)
    async def not_found(req):
        return 'custom 404', 404

    client = TestClient(app)
    assert asyncio.run(client.get('/s/ok.txt')).text == 'fine'
    res = asyncio.run(client.get('/s/.env'))
    assert (res.status_code, res.text) == (404, 'custom 404')


def test_response_headers_are_created_on_first_use():
    res = Response('x')
    assert res._headers is None  # adapters test this to answer in one step
    assert res.headers == {} and isinstance(res.headers, NoCaseDict)
    res.headers['X-A'] = '1'
    assert res._headers == {'X-A': '1'}
    res.headers = {'X-B': '2'}
    assert isinstance(res.headers, NoCaseDict) and res.headers['x-b'] == '2'
    assert Response('x', headers={'X-C': '3'}).headers['x-c'] == '3'


def test_plain_type_field_only_for_byte_bodies_without_own_headers():
    from microdot.responses import plain_type_field
    assert plain_type_field(Response('x')) == ('Content-Type', 'text/plain; charset=UTF-8')
    assert plain_type_field(Response('x', 418)) is not None
    head = Response('x')
    head.is_head = True
    for res in (Response('x', headers={'X-A': '1'}), Response(b'', 204), Response(b'', 304),
                Response(iter([b'x'])), Response('x', 101), head):
        assert plain_type_field(res) is None, res.status_code
    # a dict/list body with no other header is plain too, with its JSON type
    assert plain_type_field(Response({'a': 1}, 201)) == \
        ('Content-Type', 'application/json; charset=UTF-8')
    for res in (Response({'a': 1}, headers={'X-A': '1'}),
                Response({'a': 1}, headers={'Content-Type': 'application/json'})):
        assert plain_type_field(res) is None
    res = Response([1])
    res.headers['X-Late'] = 'after_request'
    assert plain_type_field(res) is None


def test_json_bodies_are_json_dumps_output_with_the_encoder_built_once():
    # without orjson, Microdot sends json.dumps(body): its default separators
    import json
    from microdot import responses
    values = [{'message': 'Hello, World!'}, [1, 2.5, None, True, 'é\u2028'],
              {'nested': {'a': [{'b': float('inf')}]}, 1: 'int key'}, [], {}]
    for value in values:
        assert responses._dumps_json(value) == json.dumps(value).encode()
    circular: list = []
    circular.append(circular)
    with pytest.raises(ValueError, match='Circular reference'):
        responses._dumps_json(circular)
    with pytest.raises(TypeError, match='not JSON serializable'):
        responses._dumps_json({'a': object()})
    assert responses._dumps_json([{'ok': 1}]) == b'[{"ok": 1}]'  # still usable after
