"""The Microdot application: route registration, handlers, hooks, errors, mounting."""
import asyncio
import logging
import threading

import pytest

from microdot import HTTPException, Microdot, Request, Response, abort
from microdot.test_client import TestClient


def run(coro):
    return asyncio.run(coro)


def call(app, method, path, **kwargs):
    return run(TestClient(app).request(method, path, **kwargs))


# -- registration ----------------------------------------------------------------------

@pytest.mark.parametrize('shortcut,method', [
    ('get', 'GET'), ('post', 'POST'), ('put', 'PUT'), ('patch', 'PATCH'),
    ('delete', 'DELETE'), ('query', 'QUERY'),
])
def test_method_shortcuts(shortcut, method):
    app = Microdot()

    @getattr(app, shortcut)('/r')
    async def r(req):
        return req.method

    res = call(app, method, '/r')
    assert res.status_code == 200
    assert res.text == method
    other = 'POST' if method != 'POST' else 'GET'
    res = call(app, other, '/r')
    assert res.status_code == 405
    assert method in res.headers['Allow']


def test_route_defaults_to_get():
    app = Microdot()

    @app.route('/r')
    async def r(req):
        return 'ok'

    assert call(app, 'GET', '/r').text == 'ok'
    assert call(app, 'POST', '/r').status_code == 405


def test_route_with_several_methods():
    app = Microdot()

    @app.route('/r', methods=['GET', 'POST', 'DELETE'])
    async def r(req):
        return req.method

    for method in ('GET', 'POST', 'DELETE'):
        assert call(app, method, '/r').text == method
    assert call(app, 'PUT', '/r').status_code == 405


def test_query_method_receives_body():
    app = Microdot()

    @app.query('/search')
    async def search(req):
        return {'q': req.json}

    res = call(app, 'QUERY', '/search', body={'term': 'x'})
    assert res.json == {'q': {'term': 'x'}}


def test_decorators_return_the_function():
    app = Microdot()

    def f(req):
        return 'x'

    assert app.route('/a')(f) is f
    assert app.get('/b')(f) is f
    assert app.before_request(f) is f
    assert app.after_request(f) is f
    assert app.after_error_request(f) is f
    assert app.errorhandler(404)(f) is f


# -- handler execution -----------------------------------------------------------------

def test_sync_handlers_run_in_a_worker_thread_async_on_the_loop():
    app = Microdot()
    threads = {}

    @app.route('/sync')
    def sync_handler(req):
        threads['sync'] = threading.current_thread()
        return 'sync'

    @app.route('/async')
    async def async_handler(req):
        threads['async'] = threading.current_thread()
        return 'async'

    async def main():
        threads['loop'] = threading.current_thread()
        client = TestClient(app)
        assert (await client.get('/sync')).text == 'sync'
        assert (await client.get('/async')).text == 'async'

    run(main())
    assert threads['sync'] is not threads['loop']
    assert threads['async'] is threads['loop']


def test_sync_handler_does_not_block_the_loop():
    app = Microdot()
    event = threading.Event()

    @app.route('/wait')
    def wait(req):
        # returns only if the loop could run the other request meanwhile
        return 'released' if event.wait(5) else 'blocked'

    @app.route('/release')
    async def release(req):
        event.set()
        return 'ok'

    async def main():
        client = TestClient(app)
        first = asyncio.ensure_future(client.get('/wait'))
        await asyncio.sleep(0.05)
        await client.get('/release')
        return await first

    assert run(main()).text == 'released'


def test_sync_hooks_and_error_handlers_work():
    app = Microdot()
    calls = []

    @app.before_request
    def before(req):
        calls.append('before')

    @app.after_request
    def after(req, res):
        calls.append('after')

    @app.errorhandler(404)
    def not_found(req):
        return 'sync 404', 404

    @app.route('/')
    def index(req):
        return 'index'

    assert call(app, 'GET', '/').text == 'index'
    assert call(app, 'GET', '/x').text == 'sync 404'
    assert calls == ['before', 'after']


def test_handler_receives_request():
    app = Microdot()

    @app.route('/r')
    async def r(req):
        assert isinstance(req, Request)
        assert req.app is app
        return 'ok'

    assert call(app, 'GET', '/r').text == 'ok'


# -- hooks -------------------------------------------------------------------------------

def test_before_request_non_none_short_circuits():
    app = Microdot()
    calls = []

    @app.before_request
    async def check(req):
        calls.append('check')
        if req.args.get('deny'):
            return 'denied', 403

    @app.before_request
    async def second(req):
        calls.append('second')

    @app.route('/r')
    async def r(req):
        calls.append('route')
        return 'route'

    res = call(app, 'GET', '/r?deny=1')
    assert res.status_code == 403
    assert res.text == 'denied'
    assert calls == ['check']
    calls.clear()
    res = call(app, 'GET', '/r')
    assert res.text == 'route'
    assert calls == ['check', 'second', 'route']


def test_before_request_falsy_non_none_value_short_circuits():
    app = Microdot()

    @app.before_request
    async def empty(req):
        return ''

    @app.route('/r')
    async def r(req):
        return 'route'

    res = call(app, 'GET', '/r')
    assert res.status_code == 200
    assert res.text == ''


def test_before_request_response_goes_through_after_request():
    app = Microdot()

    @app.before_request
    async def stop(req):
        return Response('stopped', 401)

    @app.after_request
    async def tag(req, res):
        res.headers['X-After'] = '1'

    @app.route('/r')
    async def r(req):
        return 'route'

    res = call(app, 'GET', '/r')
    assert res.status_code == 401
    assert res.headers['X-After'] == '1'


def test_before_request_sets_g_for_handler():
    app = Microdot()

    @app.before_request
    async def load(req):
        req.g.user = 'alice'

    @app.route('/r')
    async def r(req):
        return req.g.user

    assert call(app, 'GET', '/r').text == 'alice'


def test_after_request_modifies_or_replaces_response():
    app = Microdot()

    @app.after_request
    async def modify(req, res):
        res.headers['X-One'] = '1'
        # returning None keeps the response

    @app.after_request
    async def replace(req, res):
        if req.args.get('replace'):
            return Response('replaced', 202, {'X-One': res.headers['X-One']})

    @app.route('/r')
    async def r(req):
        return 'original'

    res = call(app, 'GET', '/r')
    assert res.text == 'original'
    assert res.headers['X-One'] == '1'
    res = call(app, 'GET', '/r?replace=1')
    assert res.status_code == 202
    assert res.text == 'replaced'
    assert res.headers['X-One'] == '1'


def test_after_request_not_run_for_errors_after_error_request_is():
    app = Microdot()
    calls = []

    @app.after_request
    async def after(req, res):
        calls.append(('after', res.status_code))

    @app.after_error_request
    async def after_error(req, res):
        calls.append(('after_error', res.status_code))
        res.headers['X-Error'] = 'yes'

    @app.route('/ok')
    async def ok(req):
        return 'ok'

    @app.route('/fail')
    async def fail(req):
        raise RuntimeError('boom')

    @app.route('/abort')
    async def abort_route(req):
        abort(409)

    res = call(app, 'GET', '/ok')
    assert 'X-Error' not in res.headers
    assert calls == [('after', 200)]
    calls.clear()
    assert call(app, 'GET', '/missing').headers['X-Error'] == 'yes'
    assert call(app, 'GET', '/fail').headers['X-Error'] == 'yes'
    assert call(app, 'GET', '/abort').headers['X-Error'] == 'yes'
    assert call(app, 'POST', '/ok').headers['X-Error'] == 'yes'
    assert calls == [('after_error', 404), ('after_error', 500), ('after_error', 409),
                     ('after_error', 405)]


def test_after_error_request_can_replace_response():
    app = Microdot()

    @app.after_error_request
    async def replace(req, res):
        return Response({'error': res.status_code}, res.status_code)

    res = call(app, 'GET', '/missing')
    assert res.status_code == 404
    assert res.json == {'error': 404}


def test_request_after_request_runs_after_app_wide_ones():
    app = Microdot()
    order = []

    @app.after_request
    async def app_wide(req, res):
        order.append('app')

    @app.route('/r')
    async def r(req):
        @req.after_request
        async def per_request(req, res):
            order.append('request')
            res.headers['X-Per-Request'] = 'yes'
            return res
        return 'r'

    @app.route('/other')
    async def other(req):
        return 'other'

    res = call(app, 'GET', '/r')
    assert res.headers['X-Per-Request'] == 'yes'
    assert order == ['app', 'request']
    order.clear()
    res = call(app, 'GET', '/other')
    assert 'X-Per-Request' not in res.headers
    assert order == ['app']


def test_request_after_request_can_replace_response():
    app = Microdot()

    @app.route('/r')
    async def r(req):
        req.after_request(lambda req, res: Response('replaced'))
        return 'original'

    assert call(app, 'GET', '/r').text == 'replaced'


def test_hooks_added_after_first_request_are_used():
    app = Microdot()

    @app.route('/r')
    async def r(req):
        return 'r'

    assert call(app, 'GET', '/r').text == 'r'

    @app.before_request
    async def stop(req):
        return 'stopped'

    assert call(app, 'GET', '/r').text == 'stopped'


# -- error handling ----------------------------------------------------------------------

def test_default_error_answers():
    app = Microdot()

    @app.route('/r')
    async def r(req):
        return 'r'

    res = call(app, 'GET', '/missing')
    assert res.status_code == 404
    assert res.text == 'Not found'
    res = call(app, 'POST', '/r')
    assert res.status_code == 405


@pytest.mark.parametrize('status', [404, 405])
def test_errorhandler_by_status(status):
    app = Microdot()

    @app.route('/r')
    async def r(req):
        return 'r'

    @app.errorhandler(status)
    async def handler(req):
        assert isinstance(req, Request)
        return {'status': status}, status

    res = call(app, 'POST' if status == 405 else 'GET', '/r' if status == 405 else '/x')
    assert res.status_code == status
    assert res.json == {'status': status}


def test_errorhandler_405_keeps_allow_header():
    app = Microdot()

    @app.post('/r')
    async def r(req):
        return 'r'

    @app.errorhandler(405)
    async def handler(req):
        return 'custom 405', 405

    res = call(app, 'GET', '/r')
    assert res.text == 'custom 405'
    assert 'POST' in res.headers['Allow']


def test_errorhandler_500_for_unhandled_exception():
    app = Microdot()

    @app.route('/r')
    async def r(req):
        raise ValueError('boom')

    @app.errorhandler(500)
    async def handler(req):
        return 'custom 500', 500

    res = call(app, 'GET', '/r')
    assert res.status_code == 500
    assert res.text == 'custom 500'


def test_errorhandler_413():
    app = Microdot()
    app.max_content_length = 10

    @app.post('/r')
    async def r(req):
        return 'r'

    @app.errorhandler(413)
    async def handler(req):
        return 'too big!', 413

    res = call(app, 'POST', '/r', body=b'x' * 11)
    assert res.status_code == 413
    assert res.text == 'too big!'
    assert call(app, 'POST', '/r', body=b'x' * 10).text == 'r'


def test_errorhandler_by_exception_class_most_specific_wins():
    class AppError(Exception):
        pass

    class NotFoundError(AppError):
        pass

    class VeryNotFoundError(NotFoundError):
        pass

    app = Microdot()

    @app.errorhandler(AppError)
    async def app_error(req, exc):
        return {'handler': 'app', 'exc': type(exc).__name__}, 400

    @app.errorhandler(NotFoundError)
    async def not_found(req, exc):
        return {'handler': 'not_found', 'exc': type(exc).__name__}, 404

    @app.errorhandler(LookupError)
    async def lookup(req, exc):
        return {'handler': 'lookup', 'exc': str(exc)}, 422

    @app.route('/<kind>')
    async def raise_(req, kind):
        raise {'app': AppError, 'nf': NotFoundError, 'vnf': VeryNotFoundError,
               'key': KeyError}[kind]('x')

    assert call(app, 'GET', '/app').json == {'handler': 'app', 'exc': 'AppError'}
    res = call(app, 'GET', '/nf')
    assert res.status_code == 404
    assert res.json == {'handler': 'not_found', 'exc': 'NotFoundError'}
    assert call(app, 'GET', '/vnf').json == {'handler': 'not_found',
                                             'exc': 'VeryNotFoundError'}
    res = call(app, 'GET', '/key')   # KeyError is a LookupError
    assert res.status_code == 422
    assert res.json['handler'] == 'lookup'


def test_exception_handler_registration_order_does_not_matter():
    class Base(Exception):
        pass

    class Child(Base):
        pass

    app = Microdot()

    @app.errorhandler(Child)
    async def child(req, exc):
        return 'child'

    @app.errorhandler(Base)
    async def base(req, exc):
        return 'base'

    @app.errorhandler(Exception)
    async def everything(req, exc):
        return 'exception'

    @app.route('/<kind>')
    async def raise_(req, kind):
        raise {'child': Child, 'base': Base, 'other': OSError}[kind]()

    assert call(app, 'GET', '/child').text == 'child'
    assert call(app, 'GET', '/base').text == 'base'
    assert call(app, 'GET', '/other').text == 'exception'


def test_error_handler_that_raises_gives_500(caplog):
    app = Microdot()

    @app.errorhandler(404)
    async def broken(req):
        raise RuntimeError('handler broke')

    @app.errorhandler(ZeroDivisionError)
    async def broken_exc(req, exc):
        raise RuntimeError('exception handler broke')

    @app.route('/div')
    async def div(req):
        return 1 / 0

    with caplog.at_level(logging.ERROR, logger='microdot'):
        res = call(app, 'GET', '/missing')
        assert res.status_code == 500
        assert 'handler broke' not in res.text
        res = call(app, 'GET', '/div')
        assert res.status_code == 500
        assert 'exception handler broke' not in res.text
    messages = [r for r in caplog.records if r.name == 'microdot']
    assert len(messages) >= 2
    assert any(r.exc_info and 'handler broke' in str(r.exc_info[1]) for r in messages)


def test_exception_handler_that_aborts_gives_the_500_answer():
    app = Microdot()

    @app.errorhandler(KeyError)
    async def key_error(req, exc):
        abort(404, 'no such key')

    @app.route('/r')
    async def r(req):
        raise KeyError('k')

    res = call(app, 'GET', '/r')        # as in Microdot: a failing handler means 500
    assert res.status_code == 500
    assert res.text == 'Internal server error'


def test_abort_and_reason():
    app = Microdot()

    @app.route('/plain')
    async def plain(req):
        abort(403)

    @app.route('/reason')
    async def with_reason(req):
        abort(401, 'Login first')

    @app.route('/method')
    async def method(req):
        Microdot.abort(418)

    @app.route('/instance')
    async def instance(req):
        app.abort(451, 'Gone for legal reasons')

    @app.route('/raise')
    async def raise_(req):
        raise HTTPException(400, 'Bad thing')

    res = call(app, 'GET', '/plain')
    assert res.status_code == 403
    assert res.text == '403 error'
    res = call(app, 'GET', '/reason')
    assert res.status_code == 401
    assert res.text == 'Login first'
    assert call(app, 'GET', '/method').status_code == 418
    res = call(app, 'GET', '/instance')
    assert res.status_code == 451
    assert res.text == 'Gone for legal reasons'
    res = call(app, 'GET', '/raise')
    assert res.status_code == 400
    assert res.text == 'Bad thing'


def test_abort_uses_status_error_handler():
    app = Microdot()

    @app.errorhandler(403)
    async def forbidden(req):
        return 'custom forbidden', 403

    @app.route('/r')
    async def r(req):
        abort(403)

    assert call(app, 'GET', '/r').text == 'custom forbidden'


def test_abort_in_before_request():
    app = Microdot()

    @app.before_request
    async def guard(req):
        abort(401)

    @app.route('/r')
    async def r(req):
        return 'r'

    assert call(app, 'GET', '/r').status_code == 401


def test_500_without_traceback_even_in_debug(caplog, capsys):
    app = Microdot()

    @app.route('/r')
    async def r(req):
        raise ValueError('secret detail')

    with caplog.at_level(logging.ERROR, logger='microdot'):
        res = call(app, 'GET', '/r')
    assert res.status_code == 500
    assert 'secret detail' not in res.text
    assert 'Traceback' not in res.text
    records = [r for r in caplog.records if r.name == 'microdot']
    assert records and records[0].levelno == logging.ERROR
    assert isinstance(records[0].exc_info[1], ValueError)
    out, err = capsys.readouterr()
    assert 'secret detail' not in out and 'secret detail' not in err

    app.debug = True
    res = call(app, 'GET', '/r')
    assert res.status_code == 500
    assert res.text == 'Internal server error'


def test_handled_exception_not_logged_as_error(caplog):
    app = Microdot()

    @app.errorhandler(KeyError)
    async def handled(req, exc):
        return 'handled', 400

    @app.route('/r')
    async def r(req):
        raise KeyError('x')

    with caplog.at_level(logging.ERROR, logger='microdot'):
        assert call(app, 'GET', '/r').text == 'handled'
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_exception_in_after_request_gives_500(caplog):
    app = Microdot()

    @app.after_request
    async def broken(req, res):
        raise RuntimeError('after broke')

    @app.route('/r')
    async def r(req):
        return 'r'

    with caplog.at_level(logging.ERROR, logger='microdot'):
        assert call(app, 'GET', '/r').status_code == 500


def test_invalid_request_gets_400():
    app = Microdot()

    @app.errorhandler(400)
    async def bad(req):
        return 'custom bad request', 400

    async def main():
        return await app.dispatch_request(None)

    res = run(main())
    assert res.status_code == 400
    assert res.body == b'custom bad request'


# -- limits ------------------------------------------------------------------------------

def test_max_content_length_class_default_gives_413():
    app = Microdot()

    @app.post('/r')
    async def r(req):
        return str(len(req.body))

    assert Request.max_content_length == 16 * 1024
    res = call(app, 'POST', '/r', body=b'x' * (16 * 1024 + 1))
    assert res.status_code == 413
    assert call(app, 'POST', '/r', body=b'x' * (16 * 1024)).text == str(16 * 1024)


def test_max_content_length_class_attribute_change(monkeypatch):
    monkeypatch.setattr(Request, 'max_content_length', 5)
    app = Microdot()

    @app.post('/r')
    async def r(req):
        return 'ok'

    assert call(app, 'POST', '/r', body=b'123456').status_code == 413
    assert call(app, 'POST', '/r', body=b'12345').text == 'ok'


def test_per_app_max_content_length_does_not_affect_other_apps():
    small = Microdot()
    small.max_content_length = 4
    default = Microdot()
    for app in (small, default):
        app.post('/r')(lambda req: 'ok')
    assert call(small, 'POST', '/r', body=b'12345').status_code == 413
    assert call(default, 'POST', '/r', body=b'12345').text == 'ok'
    assert Request.max_content_length == 16 * 1024


# -- mounting ----------------------------------------------------------------------------

def _sub_app(calls):
    sub = Microdot()

    @sub.before_request
    async def sub_before(req):
        calls.append('sub_before')

    @sub.after_request
    async def sub_after(req, res):
        res.headers['X-Sub'] = 'yes'

    @sub.errorhandler(KeyError)
    async def sub_key_error(req, exc):
        return 'sub key error', 400

    @sub.errorhandler(404)
    async def sub_404(req):
        return 'sub 404', 404

    @sub.route('/hello')
    async def hello(req):
        return {'prefix': req.url_prefix, 'sub': req.subapp is sub, 'path': req.path}

    @sub.route('/item/<int:n>')
    async def item(req, n):
        return {'n': n}

    @sub.route('/key')
    async def key(req):
        raise KeyError('x')

    return sub


def _parent_app():
    app = Microdot()

    @app.route('/main')
    async def main_route(req):
        return {'prefix': req.url_prefix, 'sub': req.subapp}

    @app.route('/key')
    async def key(req):
        raise KeyError('y')

    return app


def test_mount_routes_under_prefix():
    calls = []
    app = _parent_app()
    sub = _sub_app(calls)
    app.mount(sub, url_prefix='/sub')
    res = call(app, 'GET', '/sub/hello')
    assert res.json == {'prefix': '/sub', 'sub': True, 'path': '/sub/hello'}
    assert call(app, 'GET', '/sub/item/5').json == {'n': 5}
    assert call(app, 'GET', '/hello').status_code == 404
    assert call(app, 'GET', '/main').json == {'prefix': '', 'sub': None}


def test_mount_prefix_trailing_slash_stripped():
    app = Microdot()
    sub = Microdot()
    sub.route('/x')(lambda req: 'x')
    app.mount(sub, url_prefix='/api/')
    assert call(app, 'GET', '/api/x').text == 'x'


def test_mount_copies_hooks_and_error_handlers_to_parent():
    calls = []
    app = _parent_app()
    sub = _sub_app(calls)
    app.mount(sub, url_prefix='/sub')
    res = call(app, 'GET', '/main')
    assert calls == ['sub_before']            # sub's hook runs for the parent's routes
    assert res.headers['X-Sub'] == 'yes'
    assert call(app, 'GET', '/key').text == 'sub key error'
    assert call(app, 'GET', '/nothing').text == 'sub 404'
    assert call(app, 'GET', '/sub/key').text == 'sub key error'


def test_mount_sub_error_handlers_replace_parents():
    calls = []
    app = _parent_app()

    @app.errorhandler(404)
    async def parent_404(req):
        return 'parent 404', 404

    app.mount(_sub_app(calls), url_prefix='/sub')
    assert call(app, 'GET', '/nothing').text == 'sub 404'   # as in Microdot


def test_mount_local_applies_hooks_only_to_subapp_routes():
    calls = []
    app = _parent_app()
    sub = _sub_app(calls)
    app.mount(sub, url_prefix='/sub', local=True)

    res = call(app, 'GET', '/main')
    assert calls == []
    assert 'X-Sub' not in res.headers
    res = call(app, 'GET', '/key')
    assert res.status_code == 500          # sub's KeyError handler is local
    assert call(app, 'GET', '/nothing').text == 'Not found'

    res = call(app, 'GET', '/sub/hello')
    assert calls == ['sub_before']
    assert res.headers['X-Sub'] == 'yes'
    assert res.json['prefix'] == '/sub'
    assert call(app, 'GET', '/sub/key').text == 'sub key error'


def test_mount_local_parent_hooks_and_handlers_still_apply():
    calls = []
    app = _parent_app()

    @app.before_request
    async def parent_before(req):
        calls.append('parent_before')

    @app.errorhandler(ZeroDivisionError)
    async def zero(req, exc):
        return 'parent zero', 400

    sub = _sub_app(calls)

    @sub.route('/zero')
    async def zero_route(req):
        return 1 / 0

    app.mount(sub, url_prefix='/sub', local=True)
    assert call(app, 'GET', '/sub/zero').text == 'parent zero'
    assert calls == ['parent_before', 'sub_before']


def test_nested_mount():
    app = Microdot()
    mid = Microdot()
    leaf = Microdot()

    @leaf.route('/x')
    async def x(req):
        return {'prefix': req.url_prefix, 'leaf': req.subapp is leaf}

    mid.mount(leaf, url_prefix='/leaf')
    app.mount(mid, url_prefix='/mid')
    assert call(app, 'GET', '/mid/leaf/x').json == {'prefix': '/mid/leaf', 'leaf': True}


def test_nested_local_mount_hooks():
    app = Microdot()
    mid = Microdot()
    leaf = Microdot()
    calls = []

    @mid.before_request
    async def mid_before(req):
        calls.append('mid')

    @leaf.before_request
    async def leaf_before(req):
        calls.append('leaf')

    @mid.route('/m')
    async def m(req):
        return 'm'

    @leaf.route('/x')
    async def x(req):
        return 'x'

    mid.mount(leaf, url_prefix='/leaf', local=True)
    app.mount(mid, url_prefix='/mid', local=True)
    assert call(app, 'GET', '/mid/leaf/x').text == 'x'
    assert calls == ['mid', 'leaf']
    calls.clear()
    assert call(app, 'GET', '/mid/m').text == 'm'
    assert calls == ['mid']


def test_mount_405_sets_subapp_and_prefix():
    app = Microdot()
    sub = Microdot()

    @sub.post('/p')
    async def p(req):
        return 'p'

    app.mount(sub, url_prefix='/s')
    res = call(app, 'GET', '/s/p')
    assert res.status_code == 405
    assert 'POST' in res.headers['Allow']


def test_startup_and_shutdown_hooks():
    app = Microdot()
    calls = []

    @app.on_startup
    async def start():
        calls.append('start')

    @app.on_shutdown
    def stop(scope):
        calls.append(('stop', scope))

    run(app.run_startup())
    run(app.run_shutdown('scope'))
    assert calls == ['start', ('stop', 'scope')]


def test_route_methods_case_insensitive():
    app = Microdot()

    @app.route('/r', methods=['get', 'post'])
    async def r(req):
        return req.method

    assert call(app, 'POST', '/r').text == 'POST'
    assert call(app, 'GET', '/r').text == 'GET'


def test_already_handled_response_is_not_answered_again():
    app = Microdot()
    seen = {}

    @app.route('/ws')
    async def ws(req):
        seen['sock'] = req.sock
        return Response.already_handled

    res = call(app, 'GET', '/ws')
    assert isinstance(Response.already_handled, Response)
    assert res.status_code is None
    assert seen['sock'] is not None
