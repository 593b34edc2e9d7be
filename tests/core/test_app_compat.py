"""Application behaviour that must be Microdot 2.7's: the ``Allow`` header, the order of
hooks and error handlers with mounted sub-applications, when URL patterns are
checked, the 500 answer in debug mode, and ``Vary`` on error answers.

The expected values are Microdot 2.7's observable results for the same scenarios
(except where a test name and comment say this family differs on purpose).
"""
import asyncio
import re
import subprocess
import sys
import textwrap

import httpx
import pytest

from microdot import Microdot, URLPattern, abort
from microdot.cors import CORS
from microdot.csrf import CSRF
from microdot.session import Session, with_session
from microdot.test_client import TestClient
from support import free_port, wait_for_port


def run(coro):
    return asyncio.run(coro)


def call(app, method, path, headers=None):
    return run(TestClient(app).request(method, path, headers=headers))


def vary_of(res):
    return sorted(v.strip() for v in res.headers.get('Vary', '').split(',') if v.strip())


# -- item 4: Allow lists methods as declared, then HEAD and OPTIONS -------------------

def _allow_app():
    app = Microdot()

    @app.route('/x', methods=['POST', 'GET'])
    async def x1(req):
        return 'x1'

    @app.route('/x', methods=['PUT', 'delete'])
    async def x2(req):
        return 'x2'

    @app.route('/<name>', methods=['PATCH'])
    async def named(req, name):
        return name

    @app.route('/h', methods=['HEAD', 'GET'])
    async def h(req):
        return 'h'

    @app.route('/o', methods=['OPTIONS', 'GET'])
    async def o(req):
        return 'o'

    @app.route('/d', methods=['GET', 'POST'])
    async def d1(req):
        return 'd1'

    @app.route('/d', methods=['POST', 'GET'])
    async def d2(req):
        return 'd2'

    return app


def test_allow_lists_methods_in_declaration_order_then_head_and_options():
    app = _allow_app()
    res = call(app, 'OPTIONS', '/x')
    assert res.status_code == 200
    # routes in order: /x (POST, GET), /x (PUT, DELETE), /<name> (PATCH)
    assert res.headers['Allow'] == 'POST, GET, PUT, DELETE, PATCH, HEAD, OPTIONS'
    assert call(app, 'OPTIONS', '/zz').headers['Allow'] == 'PATCH, OPTIONS'  # no GET, no HEAD


def test_405_carries_the_same_allow_header():
    # beyond Microdot, whose 405 has no Allow header (RFC 9110 requires one)
    app = _allow_app()
    res = call(app, 'TRACE', '/x')
    assert res.status_code == 405
    assert res.headers['Allow'] == 'POST, GET, PUT, DELETE, PATCH, HEAD, OPTIONS'
    res = call(app, 'GET', '/zz')
    assert res.status_code == 405
    assert res.headers['Allow'] == 'PATCH, OPTIONS'


def test_405_body_is_microdots():
    # Microdot answers a known path with another method 405 and the body 'Not found'
    app = _allow_app()
    res = call(app, 'TRACE', '/x')
    assert (res.status_code, res.text) == (405, 'Not found')


def test_allow_names_each_method_once():
    # Microdot repeats methods several routes declare ('PATCH, GET, POST, POST, GET,
    # HEAD, OPTIONS'); the field lists a set of methods (RFC 9110, 10.2.1): each once
    app = _allow_app()
    assert call(app, 'OPTIONS', '/d').headers['Allow'] == 'PATCH, GET, POST, HEAD, OPTIONS'
    assert call(app, 'OPTIONS', '/h').headers['Allow'] == 'PATCH, HEAD, GET, OPTIONS'
    assert call(app, 'OPTIONS', '/o').headers['Allow'] == 'PATCH, OPTIONS, GET, HEAD'


def test_options_for_unknown_path():
    app = Microdot()

    @app.route('/a')
    async def a(req):
        return 'a'

    res = call(app, 'OPTIONS', '/nothing')
    assert res.status_code == 200
    assert res.headers['Allow'] == 'OPTIONS'


# -- item 5: mounted sub-applications --------------------------------------------------

def _hooks(app, name, log):
    @app.before_request
    async def before(req):
        log.append(name + '.before')

    @app.after_request
    async def after(req, res):
        log.append(name + '.after')

    @app.after_error_request
    async def after_error(req, res):
        log.append(name + '.after_error')


def _mounted(local):
    log = []
    parent = Microdot()
    sub = Microdot()
    _hooks(parent, 'P', log)
    _hooks(sub, 'S', log)

    @parent.route('/p')
    async def p(req):
        log.append('P.handler')
        return 'p'

    @sub.route('/s')
    async def s(req):
        log.append('S.handler')
        return {'prefix': req.url_prefix, 'sub': req.subapp is sub}

    @sub.route('/s/abort')
    async def s_abort(req):
        abort(404)

    @sub.route('/s/<kind>')
    async def s_raise(req, kind):
        raise {'key': KeyError, 'value': ValueError, 'lookup': LookupError,
               'index': IndexError}[kind]('x')

    @parent.errorhandler(404)
    async def p404(req):
        return 'P404', 404

    @sub.errorhandler(404)
    async def s404(req):
        return 'S404', 404

    @sub.errorhandler(405)
    async def s405(req):
        return 'S405', 405

    @parent.errorhandler(KeyError)
    async def p_key(req, exc):
        return 'P KeyError', 500

    @sub.errorhandler(LookupError)
    async def s_lookup(req, exc):
        return 'S LookupError', 500

    @sub.errorhandler(ValueError)
    async def s_value(req, exc):
        return 'S ValueError', 500

    @sub.errorhandler(IndexError)
    async def s_index(req, exc):
        return None

    @parent.errorhandler(IndexError)
    async def p_index(req, exc):
        return 'P IndexError', 500

    parent.mount(sub, url_prefix='/sub', local=local)
    return parent, log


def _run_all(app, log, requests):
    results = []

    async def main():
        client = TestClient(app)
        for method, path in requests:
            log.clear()
            res = await client.request(method, path)
            results.append((res.status_code, res.text, list(log)))

    run(main())
    return results


def test_local_mount_hook_order():
    app, log = _mounted(local=True)
    ok, parent_route = _run_all(app, log, [('GET', '/sub/s'), ('GET', '/p')])
    assert ok[0] == 200
    assert ok[2] == ['P.before', 'S.before', 'S.handler', 'S.after', 'P.after']
    assert parent_route[2] == ['P.before', 'P.handler', 'P.after']


def test_local_mount_error_order_and_handlers():
    app, log = _mounted(local=True)
    aborted, unknown, not_allowed, options = _run_all(app, log, [
        ('GET', '/sub/s/abort'), ('GET', '/nothing'), ('POST', '/sub/s'),
        ('OPTIONS', '/sub/s')])
    assert aborted == (404, 'S404', ['P.before', 'S.before', 'S.after_error', 'P.after_error'])
    assert unknown == (404, 'P404', ['P.after_error'])
    # a 405 belongs to the (last) route matching the path: the sub-application's
    assert not_allowed == (405, 'S405', ['S.after_error', 'P.after_error'])
    # the automatic OPTIONS answer goes through the application's after_error hooks
    assert options == (200, '', ['P.after_error'])


def test_local_mount_exception_handlers_class_by_class():
    app, log = _mounted(local=True)
    key, value, lookup, index = _run_all(app, log, [
        ('GET', '/sub/s/key'), ('GET', '/sub/s/value'), ('GET', '/sub/s/lookup'),
        ('GET', '/sub/s/index')])
    # the parent's handler for KeyError itself beats the sub's for its base class
    assert key[:2] == (500, 'P KeyError')
    assert value[:2] == (500, 'S ValueError')
    assert lookup[:2] == (500, 'S LookupError')
    # the chosen handler returned None: the 500 answer, no second handler
    assert index[:2] == (500, 'Internal server error')
    assert index[2] == ['P.before', 'S.before', 'S.after_error', 'P.after_error']


def test_non_local_mount_moves_hooks_and_replaces_error_handlers():
    app, log = _mounted(local=False)
    ok, aborted, unknown, parent_abort = _run_all(app, log, [
        ('GET', '/sub/s'), ('GET', '/sub/s/abort'), ('GET', '/nothing'), ('GET', '/p')])
    assert ok[2] == ['P.before', 'S.before', 'S.handler', 'P.after', 'S.after']
    assert aborted == (404, 'S404', ['P.before', 'S.before', 'P.after_error', 'S.after_error'])
    # the sub-application's 404 handler replaced the parent's for every route
    assert unknown == (404, 'S404', ['P.after_error', 'S.after_error'])
    assert parent_abort[0] == 200


def _nested(outer_local, inner_local):
    log = []
    a, b, c = Microdot(), Microdot(), Microdot()
    for app, name in ((a, 'A'), (b, 'B'), (c, 'C')):
        _hooks(app, name, log)

        @app.errorhandler(404)
        async def not_found(req, name=name):
            return name + '404', 404

    @b.route('/b')
    async def b_route(req):
        return 'b'

    @c.route('/c')
    async def c_route(req):
        return {'prefix': req.url_prefix, 'subapp_is_c': req.subapp is c}

    @c.route('/c/abort')
    async def c_abort(req):
        abort(404)

    b.mount(c, url_prefix='/cc', local=inner_local)
    a.mount(b, url_prefix='/bb', local=outer_local)
    return a, log


def test_nested_mount_non_local_outside_local_inside():
    app, log = _nested(outer_local=False, inner_local=True)
    ok, aborted, unknown = _run_all(app, log, [
        ('GET', '/bb/cc/c'), ('GET', '/bb/cc/c/abort'), ('GET', '/zzz')])
    assert ok[2] == ['A.before', 'B.before', 'C.before', 'C.after', 'A.after', 'B.after']
    assert aborted[:2] == (404, 'C404')
    assert aborted[2][-3:] == ['C.after_error', 'A.after_error', 'B.after_error']
    assert unknown == (404, 'B404', ['A.after_error', 'B.after_error'])
    assert call(app, 'GET', '/bb/cc/c').json == {'prefix': '/bb/cc', 'subapp_is_c': True}


def test_nested_mount_all_non_local():
    app, log = _nested(outer_local=False, inner_local=False)
    ok, unknown = _run_all(app, log, [('GET', '/bb/cc/c'), ('GET', '/zzz')])
    assert ok[2] == ['A.before', 'B.before', 'C.before', 'A.after', 'B.after', 'C.after']
    assert unknown == (404, 'C404', ['A.after_error', 'B.after_error', 'C.after_error'])


def test_nested_local_mounts_run_every_level():
    # Deliberate difference: Microdot runs only the outermost and the innermost
    # application's hooks (A, C), skipping B's, whose routes these are as well;
    # a before_request check of B (authentication...) would silently not apply.
    app, log = _nested(outer_local=True, inner_local=True)
    ok, aborted, b_route = _run_all(app, log, [
        ('GET', '/bb/cc/c'), ('GET', '/bb/cc/c/abort'), ('GET', '/bb/b')])
    assert ok[2] == ['A.before', 'B.before', 'C.before', 'C.after', 'B.after', 'A.after']
    assert aborted == (404, 'C404', ['A.before', 'B.before', 'C.before', 'C.after_error',
                                     'B.after_error', 'A.after_error'])
    assert b_route[2] == ['A.before', 'B.before', 'B.after', 'A.after']


def test_hooks_registered_on_local_subapp_after_first_request_apply():
    log = []
    app, sub = Microdot(), Microdot()

    @sub.route('/s')
    async def s(req):
        return 's'

    app.mount(sub, url_prefix='/sub', local=True)

    async def main():
        client = TestClient(app)
        await client.get('/sub/s')

        @sub.before_request
        async def late(req):
            log.append('late')

        await client.get('/sub/s')

    run(main())
    assert log == ['late']


# -- item 9: URL patterns are checked on first use --------------------------------------

def test_url_pattern_is_checked_by_compile_not_by_the_constructor():
    pattern = URLPattern('/a/<bad')
    assert pattern.url_pattern == '/a/<bad'
    with pytest.raises(ValueError, match='invalid URL pattern'):
        pattern.compile()
    with pytest.raises(ValueError):
        pattern.match('/a/b')
    good = URLPattern('/a/<int:n>')
    assert good.regex is None
    assert good.compile() is good.regex
    assert good.regex.match('/a/5')
    assert good.match('/a/5') == {'n': 5}


@pytest.mark.parametrize('pattern', ['/a/<nosuchtype:x>', '/a/<:x>', '/a/<int:x'])
def test_invalid_patterns_raise_value_error_on_compile(pattern):
    with pytest.raises(ValueError):
        URLPattern(pattern).compile()


def test_invalid_regex_raises_value_error_and_re_error():
    with pytest.raises(ValueError) as info:
        URLPattern('/a/<re:[a-:x>').compile()
    assert isinstance(info.value, re.error)   # what Microdot raises


def test_argument_names_are_not_checked():
    # as in Microdot: the name is whatever is between ':' and '>'
    assert URLPattern('/a/<some name>').match('/a/b') == {'some name': 'b'}


def test_invalid_route_pattern_raises_when_a_request_reaches_it():
    app = Microdot()

    @app.route('/ok')
    async def ok(req):
        return 'ok'

    @app.route('/<bad')           # no error when declared
    async def bad(req):
        return 'bad'

    @app.route('/after')
    async def after(req):
        return 'after'

    async def main():
        client = TestClient(app)
        assert (await client.get('/ok')).text == 'ok'   # answered before the bad route
        for method, path in (('GET', '/after'), ('GET', '/nothing'), ('POST', '/ok'),
                             ('OPTIONS', '/ok')):
            with pytest.raises(ValueError):
                await client.request(method, path)

    run(main())


def test_segment_type_registered_after_the_route_is_declared():
    saved = URLPattern.segment_patterns, URLPattern.segment_parsers
    app = Microdot()
    try:
        @app.route('/h/<hex:value>')
        async def h(req, value):
            return str(value)

        URLPattern.register_type('hex', '[0-9a-f]+', lambda s: int(s, 16))
        assert call(app, 'GET', '/h/ff').text == '255'
    finally:
        URLPattern.segment_patterns, URLPattern.segment_parsers = saved


# -- item 11: debug=True never puts a traceback in the answer -------------------------

def test_debug_500_is_plain():
    app = Microdot()
    app.debug = True

    @app.route('/boom')
    async def boom(req):
        raise RuntimeError('secret detail in /srv/app.py')

    res = call(app, 'GET', '/boom')
    assert res.status_code == 500
    assert res.text == 'Internal server error'
    assert res.headers['Content-Type'] == 'text/plain; charset=UTF-8'


DEBUG_APP = '''
import os
from microdot import Microdot

app = Microdot()


@app.route('/boom')
async def boom(request):
    raise RuntimeError('secret detail')


os.dup2(os.open(os.devnull, os.O_WRONLY), 1)   # only stderr reaches the pipe
app.run(host='127.0.0.1', port={port}, debug=True)
'''


def test_debug_traceback_reaches_stderr_without_logging_configured(tmp_path):
    port = free_port()
    script = tmp_path / 'debug_app.py'
    script.write_text(textwrap.dedent(DEBUG_APP.format(port=port)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for_port('127.0.0.1', port, timeout=20)
        res = httpx.get('http://127.0.0.1:%d/boom' % port, timeout=10)
        assert res.status_code == 500
        assert res.text == 'Internal server error'
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=5)
    assert 'Traceback (most recent call last)' in err
    assert 'RuntimeError: secret detail' in err


# -- item 13: Vary on error answers ---------------------------------------------------

def _vary_app():
    app = Microdot()
    Session(app, secret_key='top-secret')
    CORS(app, allowed_origins=['https://a.example'])

    @app.route('/ok')
    @with_session
    async def ok(req, session):
        return 'ok'

    @app.route('/abort')
    @with_session
    async def aborted(req, session):
        abort(403)

    @app.route('/raise')
    @with_session
    async def raised(req, session):
        raise RuntimeError('x')

    @app.route('/handled')
    @with_session
    async def handled(req, session):
        raise KeyError('x')

    @app.errorhandler(KeyError)
    async def key_error(req, exc):
        return 'handled', 400, {'Vary': 'Accept'}

    return app


@pytest.mark.parametrize('path,status', [('/ok', 200), ('/abort', 403), ('/raise', 500),
                                         ('/handled', 400)])
def test_session_vary_on_every_answer(path, status):
    app = _vary_app()
    res = call(app, 'GET', path)
    assert res.status_code == status
    assert 'Cookie' in vary_of(res)
    res = call(app, 'GET', path, headers={'Origin': 'https://a.example'})
    assert res.status_code == status
    assert {'Cookie', 'Origin'} <= set(vary_of(res))
    assert res.headers['Access-Control-Allow-Origin'] == 'https://a.example'


def test_vary_merges_with_the_error_handlers_own():
    res = call(_vary_app(), 'GET', '/handled')
    assert vary_of(res) == ['Accept', 'Cookie']


def test_cors_vary_on_404_405_and_options():
    app = _vary_app()
    origin = {'Origin': 'https://a.example'}
    for method, path, status in (('GET', '/nothing', 404), ('POST', '/ok', 405),
                                 ('OPTIONS', '/ok', 200)):
        res = call(app, method, path, headers=origin)
        assert res.status_code == status
        assert vary_of(res) == ['Origin']


def test_csrf_vary_on_error_answer():
    app = Microdot()
    CSRF(app)

    @app.post('/submit')
    async def submit(req):
        abort(409)

    res = call(app, 'POST', '/submit', headers={'Sec-Fetch-Site': 'same-origin'})
    assert res.status_code == 409
    assert vary_of(res) == ['Sec-Fetch-Site']


def test_no_vary_when_no_extension_asked():
    app = Microdot()

    @app.route('/r')
    async def r(req):
        req.g.other = 1
        abort(400)

    assert 'Vary' not in call(app, 'GET', '/r').headers


# -- other dispatch details -----------------------------------------------------------

def test_falsy_before_request_result_does_not_end_the_chain():
    app = Microdot()
    log = []

    @app.before_request
    async def first(req):
        log.append('first')
        return ''

    @app.before_request
    async def second(req):
        log.append('second')

    @app.route('/r')
    async def r(req):
        log.append('handler')
        return 'handled'

    res = call(app, 'GET', '/r')
    assert res.text == 'handled'
    assert log == ['first', 'second', 'handler']


def test_failing_exception_handler_gives_the_500_handler():
    app = Microdot()

    @app.route('/raise')
    async def raising(req):
        raise ZeroDivisionError()

    @app.route('/abort')
    async def aborting(req):
        raise TypeError()

    @app.errorhandler(ZeroDivisionError)
    async def zero(req, exc):
        raise RuntimeError('in the handler')

    @app.errorhandler(TypeError)
    async def type_error(req, exc):
        abort(409)

    @app.errorhandler(500)
    async def custom_500(req):
        return 'custom 500', 500

    for path in ('/raise', '/abort'):
        res = call(app, 'GET', path)
        assert (res.status_code, res.text) == (500, 'custom 500')


def test_405_reports_the_last_matching_route():
    app = Microdot()
    first, second = Microdot(), Microdot()

    @first.route('/r', methods=['POST'])
    async def r1(req):
        return 'first'

    @second.route('/r', methods=['PUT'])
    async def r2(req):
        return 'second'

    seen = []

    @app.after_error_request
    async def record(req, res):
        seen.append(req.subapp)

    app.mount(first, url_prefix='/m')
    app.mount(second, url_prefix='/m')
    assert call(app, 'GET', '/m/r').status_code == 405
    assert seen == [second]


def test_options_handler_returning_none_gives_an_empty_answer():
    # Microdot answers with status None here; an empty 200 is what was meant
    app = Microdot()

    @app.route('/')
    async def index(req):
        return 'i'

    app.options_handler = lambda req: None
    res = call(app, 'OPTIONS', '/')
    assert (res.status_code, res.text) == (200, '')
    assert 'Allow' not in res.headers


def test_url_map_entries_unpack_as_in_microdot():
    app, sub = Microdot(), Microdot()

    @app.route('/a', methods=['get', 'POST'])
    async def a(req):
        return 'a'

    @sub.route('/b')
    async def b(req):
        return 'b'

    app.mount(sub, url_prefix='/sub')
    listing = [(methods, pattern.url_pattern, handler, prefix, subapp)
               for methods, pattern, handler, prefix, subapp in app.url_map]
    assert listing == [(['GET', 'POST'], '/a', a, '', None),
                       (['GET'], '/sub/b', b, '/sub', sub)]
    assert app.url_map[1][1].url_pattern == '/sub/b'
    assert app.ssl is False and app.debug is False


# -- deliberate differences (Microdot defects) ----------------------------------------

def test_short_tuples_are_answers_not_crashes():
    # Microdot indexes res[1] unchecked: ('x',) and () raise IndexError, answered 500
    app = Microdot()

    @app.route('/one')
    async def one(req):
        return ('x',)

    @app.route('/none')
    async def none(req):
        return ()

    assert (call(app, 'GET', '/one').status_code, call(app, 'GET', '/one').text) == (200, 'x')
    assert call(app, 'GET', '/none').status_code == 200


def test_literal_segments_are_not_regular_expressions():
    # Microdot puts literal text into its regex unescaped: '/file.txt' matches '/fileXtxt'
    assert URLPattern('/file.txt').match('/fileXtxt') is None
    assert URLPattern('/file.txt').match('/file.txt') == {}
    assert URLPattern('/a+/<x>').match('/aa/1') is None


def test_failing_after_error_hook_is_skipped():
    # Microdot lets the exception out of dispatch: the client gets no answer at all
    app = Microdot()

    @app.after_error_request
    async def broken(req, res):
        raise RuntimeError('hook broke')

    @app.after_error_request
    async def marks(req, res):
        res.headers['X-Second'] = 'yes'

    res = call(app, 'GET', '/nothing')
    assert res.status_code == 404
    assert res.headers['X-Second'] == 'yes'
