"""Dispatch shortcuts (issue #19) answer exactly as the general routing does."""
import asyncio

from microdot import Microdot, Request


def dispatch(app, method, path):
    req = Request(app, ('127.0.0.1', 1), method, path, '1.1', {})
    req.inline_sync = True  # def handlers called in this thread, as WSGI does
    res = asyncio.run(app.dispatch_request(req))
    return res.status_code, res.body, res.headers.get('Allow')


def make_app():
    app = Microdot()
    for name, methods in (('a', ['GET']), ('b', ['POST', 'HEAD']), ('c', ['GET', 'POST']),
                          ('d', ['HEAD', 'PUT'])):
        app.route('/r', methods=methods)(lambda req, name=name: name)
    app.route('/h', methods=['HEAD'])(lambda req: 'head')
    app.route('/h')(lambda req: 'get')
    return app


def test_static_path_answers_with_the_first_route_for_each_method():
    app = make_app()
    assert dispatch(app, 'GET', '/r')[:2] == (200, b'a')
    assert dispatch(app, 'POST', '/r')[:2] == (200, b'b')
    assert dispatch(app, 'PUT', '/r')[:2] == (200, b'd')
    # HEAD: the first route accepting HEAD or GET (its body is not sent)
    head = dispatch(app, 'HEAD', '/r')
    assert head[0] == 200
    assert dispatch(app, 'HEAD', '/h')[:2] == (200, b'head')
    assert dispatch(app, 'GET', '/h')[:2] == (200, b'get')


def test_head_goes_to_the_first_get_route_before_a_later_head_route():
    app = Microdot()
    app.route('/x')(lambda req: 'get')
    app.route('/x', methods=['HEAD'])(lambda req: ('head', 203))
    assert dispatch(app, 'HEAD', '/x')[0] == 200


def test_other_methods_and_spellings_take_the_general_path():
    app = make_app()
    assert dispatch(app, 'get', '/r')[:2] == (200, b'a')  # upper-cased, as Microdot does
    status, _, allow = dispatch(app, 'DELETE', '/r')
    assert status == 405 and allow == 'GET, POST, HEAD, PUT, OPTIONS'
    assert dispatch(app, 'OPTIONS', '/r')[2] == 'GET, POST, HEAD, PUT, OPTIONS'
    app.options_handler = None
    app.route('/o', methods=['OPTIONS'])(lambda req: 'mine')
    assert dispatch(app, 'OPTIONS', '/o')[:2] == (200, b'mine')


def test_routes_added_later_are_seen():
    app = make_app()
    assert dispatch(app, 'GET', '/new')[0] == 404
    app.route('/new')(lambda req: 'new')
    assert dispatch(app, 'GET', '/new')[:2] == (200, b'new')


def test_limits_from_the_application_class_and_instance():
    class Small(Microdot):
        max_content_length = 4

    app = Small()
    app.route('/p', methods=['POST'])(lambda req: 'ok')

    def post(length):
        req = Request(app, None, 'POST', '/p', '1.1', {'Content-Length': str(length)},
                      body=b'')
        return asyncio.run(app.dispatch_request(req)).status_code

    assert (post(4), post(5)) == (200, 413)
    app.max_content_length = 100
    assert post(5) == 200
    assert Microdot().max_content_length is None  # the Request default applies


def test_one_url_argument_is_passed_as_by_keyword():
    import functools
    app = Microdot()

    @app.route('/u/<name>')
    def plain(req, name):
        return 'plain %s' % name

    @app.route('/i/<int:id>')
    async def number(req, id):
        return 'number %r' % (id,)

    @app.route('/k/<name>')
    def keywords(req, **kwargs):
        return 'keywords %s' % kwargs

    def reads_keywords(f):
        @functools.wraps(f)
        def wrapper(req, **kwargs):
            return f(req, kwargs['name'].upper())
        return wrapper

    @app.route('/w/<name>')
    @reads_keywords
    def wrapped(req, name):
        return 'wrapped %s' % name

    @app.route('/o/<name>')
    def other_name(req, value=None, name=None):
        return 'other %s %s' % (value, name)

    @app.route('/p/<name>')
    def positional_only(req, name, /):
        return 'never'

    assert dispatch(app, 'GET', '/u/a')[:2] == (200, b'plain a')
    assert dispatch(app, 'GET', '/i/-3')[:2] == (200, b'number -3')
    assert dispatch(app, 'GET', '/k/a')[:2] == (200, b"keywords {'name': 'a'}")
    assert dispatch(app, 'GET', '/w/a')[:2] == (200, b'wrapped A')
    assert dispatch(app, 'GET', '/o/a')[:2] == (200, b'other None a')
    assert dispatch(app, 'GET', '/p/a')[0] == 500  # TypeError, as by keyword
    router = app._compile()
    positional = {route.pattern.url_pattern: route.positional for route in router.routes}
    assert positional == {'/u/<name>': 'name', '/i/<int:id>': 'id', '/k/<name>': None,
                          '/w/<name>': None, '/o/<name>': None, '/p/<name>': None}


def test_before_request_hooks_may_change_the_url_arguments():
    app = Microdot()

    @app.route('/u/<name>')
    def user(req, name):
        return name

    @app.before_request
    def rename(req):
        req.url_args['name'] = 'changed'

    assert dispatch(app, 'GET', '/u/a')[:2] == (200, b'changed')
