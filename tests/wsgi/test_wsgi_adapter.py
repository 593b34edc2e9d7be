"""The WSGI adapter, driven through ``wsgiref.validate`` (PEP 3333 checks)."""
import asyncio
import io
import json
import threading
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

import microdot
from microdot.plugins import get_adapter
from microdot.wsgi import Microdot, wsgi_adapter


def make_app(cls=Microdot):
    app = cls()

    @app.route('/')
    def index(req):
        return 'Hello, World!'

    @app.route('/async')
    async def async_index(req):
        await asyncio.sleep(0)
        return 'async ' + threading.current_thread().name

    @app.route('/info')
    def info(req):
        return {'path': req.path, 'url': req.url, 'prefix': req.url_prefix,
                'client': req.client_addr, 'x': req.headers.get('X-Test'),
                'has_environ': isinstance(req.environ, dict),
                'thread': threading.current_thread().name}

    @app.route('/u/<name>')
    def user(req, name):
        return name

    @app.route('/echo', methods=['POST'])
    async def echo(req):
        return req.body or await req.stream.read()

    @app.route('/stream')
    def stream(req):
        def gen():
            try:
                for i in range(3):
                    yield 'part %d\n' % i
            finally:
                state['closed'] = True
        return gen()

    @app.route('/teapot')
    def teapot(req):
        return 'short and stout', 418

    return app


state = {}


def call(app, path='/', method='GET', body=b'', headers=None, validate=True, **environ):
    env = {}
    setup_testing_defaults(env)
    env['REQUEST_METHOD'] = method
    env['QUERY_STRING'] = ''
    if '?' in path:
        path, env['QUERY_STRING'] = path.split('?', 1)
    env['PATH_INFO'] = path
    env['wsgi.input'] = io.BytesIO(body)
    if body:
        env['CONTENT_LENGTH'] = str(len(body))
    for k, v in (headers or {}).items():
        env['HTTP_' + k.upper().replace('-', '_')] = v
    env.update(environ)
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured['status'] = status
        captured['headers'] = headers
        return lambda data: None

    wsgi = validator(app) if validate else app
    result = wsgi(env, start_response)
    try:
        body = b''.join(result)
    finally:
        if hasattr(result, 'close'):
            result.close()
    return captured['status'], dict(captured['headers']), body


def test_reexports_everything_microdot_exports():
    import microdot.wsgi as wsgi
    for name in microdot.__all__:
        assert hasattr(wsgi, name), name


def test_seed_example_shape():
    status, headers, body = call(make_app())
    assert status == '200 OK' and body == b'Hello, World!'
    assert headers['Content-Type'] == 'text/plain; charset=UTF-8'


def test_plain_app_through_the_adapter_entry_point():
    assert get_adapter('wsgi') is wsgi_adapter
    status, _, body = call(wsgi_adapter(make_app(microdot.Microdot)), '/u/bob')
    assert body == b'bob'


def test_sync_handlers_run_inline_and_async_ones_on_a_loop():
    app = make_app()
    _, _, body = call(app, '/info')
    assert json.loads(body)['thread'] == threading.current_thread().name
    _, _, body = call(app, '/async')
    assert body.decode() == 'async ' + threading.current_thread().name


def test_script_name_is_the_mount_prefix_and_path_info_is_utf8():
    app = make_app()
    status, _, body = call(app, '/info', SCRIPT_NAME='/api')
    data = json.loads(body)
    assert data['path'] == '/info' and data['prefix'] == '/api'
    # PATH_INFO as a WSGI server gives it: UTF-8 bytes decoded as latin-1
    status, _, body = call(app, '/u/' + 'café'.encode().decode('latin-1'))
    assert body.decode() == 'café'


def test_empty_content_length_and_missing_remote_addr():
    app = make_app()
    env_extra = {'CONTENT_LENGTH': ''}
    status, _, body = call(app, '/info', validate=False, **env_extra)
    assert status == '200 OK'
    status, _, body = call(app, '/info', REMOTE_ADDR='')
    assert json.loads(body)['client'] is None


def test_invalid_content_length_is_400():
    status, _, _ = call(make_app(), '/echo', 'POST', validate=False, CONTENT_LENGTH='abc')
    assert status.startswith('400')


def test_body_and_chunked_input():
    app = make_app()
    status, _, body = call(app, '/echo', 'POST', body=b'hello')
    assert body == b'hello'
    status, _, body = call(app, '/echo', 'POST', validate=False,
                           **{'wsgi.input': io.BytesIO(b'chunked body'),
                              'wsgi.input_terminated': True,
                              'HTTP_TRANSFER_ENCODING': 'chunked'})
    assert body == b'chunked body'
    # a request without framing headers has no body, even if the input has bytes
    status, _, body = call(app, '/echo', 'POST', validate=False,
                           **{'wsgi.input': io.BytesIO(b'stray'),
                              'wsgi.input_terminated': True})
    assert body == b''


def test_large_body_streamed_from_wsgi_input_and_limit_413():
    app = make_app()
    app.max_content_length = 1 << 20
    payload = b'y' * 200000
    status, _, body = call(app, '/echo', 'POST', body=payload)
    assert body == payload
    status, _, _ = call(app, '/echo', 'POST', body=b'z' * (2 << 20))
    assert status.startswith('413')


def test_no_hop_by_hop_headers_and_real_reasons():
    app = make_app()
    status, headers, body = call(app, '/stream')
    assert status == '200 OK' and body == b'part 0\npart 1\npart 2\n'
    assert 'Transfer-Encoding' not in headers and 'Connection' not in headers
    status, _, _ = call(app, '/teapot')
    assert status == "418 I'm a Teapot" or status.startswith('418 I')
    status, _, _ = call(app, '/nope')
    assert status == '404 Not Found'


@pytest.mark.parametrize('returned, status, ctype', [
    ('plain', '200 OK', 'text/plain; charset=UTF-8'),
    (('made', 201), '201 Created', 'text/plain; charset=UTF-8'),
    ((b'odd', 299), '299 Unknown', 'text/plain; charset=UTF-8'),
    ({'a': 1}, '200 OK', 'application/json; charset=UTF-8'),
])
def test_plain_byte_responses_have_exactly_type_and_length(returned, status, ctype):
    app = Microdot()
    app.route('/')(lambda req: returned)
    got, headers, body = call(app, '/')
    assert got.split()[0] == status.split()[0]
    assert headers == {'Content-Type': ctype, 'Content-Length': str(len(body))}


def test_custom_reason_is_kept():
    app = Microdot()
    app.route('/')(lambda req: microdot.Response('x', 200, reason='Fine'))
    assert call(app, '/')[0] == '200 Fine'


def test_changed_default_content_type_is_used(monkeypatch):
    monkeypatch.setattr(microdot.Response, 'default_content_type', 'text/html')
    app = Microdot()
    app.route('/')(lambda req: '<b>x</b>')
    assert call(app, '/')[1]['Content-Type'] == 'text/html; charset=UTF-8'
    monkeypatch.setattr(microdot.Response, 'default_content_type', 'application/x-thing')
    assert call(app, '/')[1]['Content-Type'] == 'application/x-thing; charset=UTF-8'


def test_unsendable_default_content_type_gives_500(monkeypatch):
    monkeypatch.setattr(microdot.Response, 'default_content_type', 'text/plain\r\nX-Evil: 1')
    app = Microdot()
    app.route('/')(lambda req: 'x')
    status, headers, _ = call(app, '/')
    assert status.startswith('500') and 'X-Evil' not in str(headers)


def test_headers_are_only_built_when_read():
    app = Microdot()
    seen = {}

    @app.route('/')
    def index(req):
        seen['before'] = req._headers
        return req.headers.get('X-A', '-') + req.headers.get('Content-Type', '-')

    assert call(app, '/', headers={'X-A': 'v'}, CONTENT_TYPE='text/x')[2] == b'vtext/x'
    assert seen['before'] is None


def test_head_has_no_body():
    status, headers, body = call(make_app(), '/', 'HEAD')
    assert body == b'' and headers['Content-Length'] == '13'


def test_close_stops_the_generator():
    state.clear()
    app = make_app()
    env = {}
    setup_testing_defaults(env)
    env['PATH_INFO'] = '/stream'
    result = app(env, lambda s, h, e=None: None)
    assert next(iter(result)) == b'part 0\n'
    result.close()
    assert state['closed'] is True


def test_file_wrapper_used_for_send_file(tmp_path):
    f = tmp_path / 'a.txt'
    f.write_bytes(b'file body')
    app = Microdot()

    @app.route('/file')
    def file(req):
        return microdot.send_file(str(f))

    used = []

    class Wrapper:
        def __init__(self, fh, blksize=8192):
            used.append(blksize)
            self.fh = fh

        def __iter__(self):
            return iter([self.fh.read()])

        def close(self):
            self.fh.close()

    status, headers, body = call(app, '/file', validate=False,
                                 **{'wsgi.file_wrapper': Wrapper})
    assert body == b'file body' and used


def test_threads_do_not_share_an_event_loop():
    app = make_app()
    errors = []
    bodies = []

    def worker():
        try:
            for _ in range(20):
                bodies.append(call(app, '/async')[2])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(bodies) == 160 and all(b.startswith(b'async ') for b in bodies)


def test_startup_hooks_run_once_per_process():
    app = make_app()
    calls = []
    app.on_startup(lambda: calls.append('start'))
    call(app, '/')
    call(app, '/')
    assert calls == ['start']


def test_a_finished_threads_event_loop_is_closed():
    import gc
    app = Microdot()
    loops = []

    @app.route('/loop')
    async def loop_route(req):
        loops.append(asyncio.get_running_loop())
        return 'ok'

    thread = threading.Thread(target=lambda: call(app, '/loop'))
    thread.start()
    thread.join(10)
    del thread
    gc.collect()
    assert len(loops) == 1 and loops[0].is_closed()
