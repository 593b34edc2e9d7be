"""microdot.wsgi.Microdot is its own WSGIAdapter (issue #19)."""
import io

import microdot
from microdot.wsgi import Microdot, WSGIAdapter, WSGIRequest, wsgi_adapter


def environ(**extra):
    env = {'REQUEST_METHOD': 'GET', 'PATH_INFO': '/', 'QUERY_STRING': '',
           'SERVER_NAME': '127.0.0.1', 'SERVER_PORT': '80', 'SERVER_PROTOCOL': 'HTTP/1.1',
           'wsgi.url_scheme': 'http', 'wsgi.input': io.BytesIO(b''),
           'wsgi.errors': io.StringIO()}
    env.update(extra)
    return env


def test_the_application_is_its_own_adapter():
    app = Microdot()
    assert isinstance(app, WSGIAdapter) and app.app is app
    assert wsgi_adapter(app) is app and app._wsgi is app
    # run() serves the application on the built-in server, as Microdot's does; the
    # adapter's coroutine driver keeps its former name on WSGIAdapter
    assert Microdot.run is microdot.Microdot.run
    assert WSGIAdapter.run is WSGIAdapter.drive


def test_requests_run_def_handlers_inline_and_keep_the_environ():
    app = Microdot()
    seen = []

    @app.route('/v')
    def version(req):
        seen.append((type(req), req.environ['PATH_INFO'], req.inline_sync))
        return req.http_version

    out = []
    for protocol, version in (('HTTP/1.1', b'1.1'), ('HTTP/1.0', b'1.0'), ('HTTP/2', b'2'),
                              ('HTTP/3', b'3'), ('', b'1.1')):
        body = b''.join(app(environ(PATH_INFO='/v', SERVER_PROTOCOL=protocol),
                            lambda status, headers, exc_info=None: out.append(status)))
        assert body == version, protocol
    assert set(out) == {'200 OK'}
    assert seen[0] == (WSGIRequest, '/v', True)
