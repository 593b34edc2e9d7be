"""URL patterns, converters, route precedence and the compiled router."""
import asyncio

import pytest

from microdot import Microdot, URLPattern
from microdot.test_client import TestClient


def run(coro):
    return asyncio.run(coro)


def get(app, path, method='GET', **kwargs):
    return run(TestClient(app).request(method, path, **kwargs))


@pytest.fixture
def restore_types():
    patterns = URLPattern.segment_patterns
    parsers = URLPattern.segment_parsers
    yield
    URLPattern.segment_patterns = patterns
    URLPattern.segment_parsers = parsers
    URLPattern.types_version += 1


# -- URLPattern.match --------------------------------------------------------------

def test_static_pattern_match():
    p = URLPattern('/foo/bar')
    assert p.match('/foo/bar') == {}
    assert p.match('/foo/bar/') is None
    assert p.match('/foo') is None
    assert p.match('/foo/barx') is None


def test_root_pattern():
    p = URLPattern('/')
    assert p.match('/') == {}
    assert p.match('/x') is None


def test_default_string_argument():
    p = URLPattern('/users/<name>')
    assert p.match('/users/alice') == {'name': 'alice'}
    assert p.match('/users/') is None
    assert p.match('/users/a/b') is None


def test_string_argument():
    p = URLPattern('/users/<string:name>/x')
    assert p.match('/users/bob/x') == {'name': 'bob'}
    assert p.match('/users/bob/y') is None
    assert p.match('/users//x') is None


def test_int_argument():
    p = URLPattern('/items/<int:id>')
    assert p.match('/items/42') == {'id': 42}
    assert isinstance(p.match('/items/42')['id'], int)
    assert p.match('/items/-7') == {'id': -7}
    assert p.match('/items/abc') is None
    assert p.match('/items/4.2') is None
    assert p.match('/items/') is None


def test_path_argument():
    p = URLPattern('/files/<path:path>')
    assert p.match('/files/a') == {'path': 'a'}
    assert p.match('/files/a/b/c.txt') == {'path': 'a/b/c.txt'}
    assert p.match('/files/') is None
    assert p.match('/files') is None


def test_path_argument_in_the_middle():
    p = URLPattern('/a/<path:p>/end')
    assert p.match('/a/x/y/end') == {'p': 'x/y'}
    assert p.match('/a/end') is None


def test_several_arguments():
    p = URLPattern('/u/<int:uid>/p/<slug>')
    assert p.match('/u/3/p/hello') == {'uid': 3, 'slug': 'hello'}
    assert p.match('/u/x/p/hello') is None


def test_regex_argument():
    p = URLPattern('/v/<re:[a-c]+:letters>')
    assert p.match('/v/abcab') == {'letters': 'abcab'}
    assert p.match('/v/abd') is None


def test_regex_argument_with_slash():
    p = URLPattern('/a/<re:[a-z]+/[0-9]+:name>/end')
    assert p.match('/a/abc/123/end') == {'name': 'abc/123'}
    assert p.match('/a/abc/end') is None


def test_regex_argument_with_colon():
    p = URLPattern('/t/<re:\\d+:\\d+:tm>')
    assert p.match('/t/12:30') == {'tm': '12:30'}
    assert p.match('/t/1230') is None


def test_regex_with_groups_followed_by_other_arguments():
    p = URLPattern('/a/<re:(x|y)+:name>/<int:id>')
    assert p.match('/a/xy/3') == {'name': 'xy', 'id': 3}
    assert p.match('/a/xz/3') is None


def test_regex_anchored_at_both_ends():
    p = URLPattern('/n/<re:[0-9]+:num>')
    assert p.match('/n/12') == {'num': '12'}
    assert p.match('/n/12a') is None


def test_trailing_newline_does_not_match():
    assert URLPattern('/items/<int:id>').match('/items/42\n') is None
    assert URLPattern('/f/<path:p>').match('/f/a\n') is None
    assert URLPattern('/r/<re:[a-z]+:w>').match('/r/abc\n') is None
    assert URLPattern('/s').match('/s\n') is None
    app = Microdot()

    @app.route('/f/<path:p>')
    async def f(req, p):
        return p

    assert get(app, '/f/a%0A').status_code == 404


@pytest.mark.parametrize('pattern', ['/a/<unknowntype:x>', '/a/<re:[:x>', '/a/<int:x',
                                     '/a/<:x>'])
def test_invalid_patterns_rejected_when_compiled(pattern):
    p = URLPattern(pattern)             # as in Microdot: not checked yet
    with pytest.raises(ValueError):
        p.compile()
    with pytest.raises(ValueError):
        p.match('/a/1')


def test_register_type(restore_types):
    URLPattern.register_type('hex', '[0-9a-fA-F]+', lambda s: int(s, 16))
    p = URLPattern('/h/<hex:value>')
    assert p.match('/h/ff') == {'value': 255}
    assert p.match('/h/xyz') is None


def test_register_type_parser_none_means_no_match(restore_types):
    def even(text):
        n = int(text)
        return n if n % 2 == 0 else None

    URLPattern.register_type('even', '\\d+', even)
    p = URLPattern('/e/<even:n>')
    assert p.match('/e/4') == {'n': 4}
    assert p.match('/e/5') is None


def test_register_type_default_pattern(restore_types):
    URLPattern.register_type('upper', parser=lambda s: s.upper() if s.isalpha() else None)
    p = URLPattern('/u/<upper:word>')
    assert p.match('/u/abc') == {'word': 'ABC'}
    assert p.match('/u/ab1') is None
    assert p.match('/u/a/b') is None


def test_register_type_used_by_app_routes(restore_types):
    URLPattern.register_type('v', 'v[0-9]+', lambda s: int(s[1:]) if s != 'v0' else None)
    app = Microdot()

    @app.route('/ver/<v:version>')
    async def ver(req, version):
        return {'version': version}

    @app.route('/ver/<rest>')
    async def other(req, rest):
        return 'other ' + rest

    assert get(app, '/ver/v12').json == {'version': 12}
    assert get(app, '/ver/v0').text == 'other v0'   # parser returned None
    assert get(app, '/ver/x').text == 'other x'


def test_register_plain_segment_type_used_by_app_routes(restore_types):
    URLPattern.register_type('lower', parser=lambda s: s if s.islower() else None)
    app = Microdot()

    @app.route('/w/<lower:word>/x')
    async def w(req, word):
        return 'lower ' + word

    @app.route('/w/<word>/x')
    async def other(req, word):
        return 'other ' + word

    assert get(app, '/w/abc/x').text == 'lower abc'
    assert get(app, '/w/ABC/x').text == 'other ABC'


def test_reregistered_builtin_type_pattern_respected(restore_types):
    URLPattern.register_type('string', '[a-z]+')
    app = Microdot()

    @app.route('/s/<name>')
    async def s(req, name):
        return name

    @app.route('/s/<int:n>')
    async def n(req, n):
        return 'int'

    assert URLPattern('/s/<name>').match('/s/ABC') is None
    assert get(app, '/s/abc').text == 'abc'
    assert get(app, '/s/ABC').status_code == 404
    assert get(app, '/s/12').text == 'int'


def test_custom_types_sharing_builtin_patterns(restore_types):
    URLPattern.register_type('even', '-?\\d+', lambda s: int(s) if int(s) % 2 == 0 else None)
    URLPattern.register_type('word', parser=lambda s: s if s.isalpha() else None)
    app = Microdot()

    @app.route('/n/<even:n>')
    async def even(req, n):
        return {'even': n}

    @app.route('/n/<int:n>')
    async def odd(req, n):
        return {'int': n}

    @app.route('/n/<word:w>')
    async def word(req, w):
        return {'word': w}

    @app.route('/n/<s>')
    async def other(req, s):
        return {'other': s}

    assert get(app, '/n/4').json == {'even': 4}
    assert get(app, '/n/-3').json == {'int': -3}
    assert get(app, '/n/abc').json == {'word': 'abc'}
    assert get(app, '/n/a1').json == {'other': 'a1'}


def test_register_type_after_first_request(restore_types):
    app = Microdot()

    @app.route('/t/<int:n>')
    async def t(req, n):
        return str(n)

    assert get(app, '/t/1').text == '1'
    URLPattern.register_type('tag', '[a-z]+')

    @app.route('/t/<tag:t>')
    async def tag(req, t):
        return 'tag ' + t

    assert get(app, '/t/abc').text == 'tag abc'
    assert get(app, '/t/2').text == '2'
    assert get(app, '/t/abc1').status_code == 404


# -- application routing ------------------------------------------------------------

def test_handler_receives_url_arguments_as_keywords():
    app = Microdot()
    seen = {}

    @app.route('/u/<int:uid>/<name>')
    async def handler(req, **kwargs):
        seen.update(kwargs)
        seen['req'] = req
        return 'ok'

    res = get(app, '/u/5/bob')
    assert res.status_code == 200
    assert seen['uid'] == 5 and seen['name'] == 'bob'
    assert seen['req'].path == '/u/5/bob'
    assert seen['req'].url_args == {'uid': 5, 'name': 'bob'}


def test_every_converter_through_app():
    app = Microdot()

    @app.route('/s/<a>/<string:b>')
    async def s(req, a, b):
        return {'a': a, 'b': b}

    @app.route('/i/<int:n>')
    async def i(req, n):
        return {'n': n}

    @app.route('/p/<path:p>')
    async def p(req, p):
        return {'p': p}

    @app.route('/r/<re:[a-z]+/\\d+:r>')
    async def r(req, r):
        return {'r': r}

    assert get(app, '/s/x/y').json == {'a': 'x', 'b': 'y'}
    assert get(app, '/i/-12').json == {'n': -12}
    assert get(app, '/i/x').status_code == 404
    assert get(app, '/p/a/b/c').json == {'p': 'a/b/c'}
    assert get(app, '/r/abc/12').json == {'r': 'abc/12'}
    assert get(app, '/r/abc/de').status_code == 404


def test_trailing_slash_is_significant():
    app = Microdot()

    @app.route('/a')
    async def a(req):
        return 'a'

    @app.route('/b/')
    async def b(req):
        return 'b/'

    @app.route('/c/<x>')
    async def c(req, x):
        return x

    assert get(app, '/a').text == 'a'
    assert get(app, '/a/').status_code == 404
    assert get(app, '/b/').text == 'b/'
    assert get(app, '/b').status_code == 404
    assert get(app, '/c/x').text == 'x'
    assert get(app, '/c/x/').status_code == 404
    assert get(app, '/c/').status_code == 404


def test_percent_decoded_path_arguments_are_utf8():
    app = Microdot()

    @app.route('/n/<name>')
    async def n(req, name):
        return {'name': name, 'path': req.path}

    @app.route('/caf\u00e9')
    async def cafe(req):
        return 'static cafe'

    res = get(app, '/n/caf%C3%A9')
    assert res.json == {'name': 'caf\u00e9', 'path': '/n/caf\u00e9'}
    assert get(app, '/caf%C3%A9').text == 'static cafe'
    assert get(app, '/n/a%20b').json['name'] == 'a b'


def test_plus_kept_in_paths():
    app = Microdot()

    @app.route('/n/<name>')
    async def n(req, name):
        return name

    @app.route('/c++')
    async def cpp(req):
        return 'cpp'

    assert get(app, '/n/a+b').text == 'a+b'
    assert get(app, '/c++').text == 'cpp'
    assert get(app, '/c%2B%2B').text == 'cpp'


def test_query_string_not_part_of_the_path():
    app = Microdot()

    @app.route('/q')
    async def q(req):
        return req.args.get('x', '')

    assert get(app, '/q?x=1').text == '1'
    assert get(app, '/q?').status_code == 200


# -- precedence ----------------------------------------------------------------------

def test_dynamic_registered_first_wins_over_static():
    app = Microdot()

    @app.route('/users/<name>')
    async def dynamic(req, name):
        return 'dynamic ' + name

    @app.route('/users/me')
    async def static(req):
        return 'static'

    assert get(app, '/users/me').text == 'dynamic me'
    assert get(app, '/users/you').text == 'dynamic you'


def test_static_registered_first_wins_over_dynamic():
    app = Microdot()

    @app.route('/users/me')
    async def static(req):
        return 'static'

    @app.route('/users/<name>')
    async def dynamic(req, name):
        return 'dynamic ' + name

    assert get(app, '/users/me').text == 'static'
    assert get(app, '/users/you').text == 'dynamic you'


def test_first_registered_wins_between_dynamic_routes():
    app = Microdot()

    @app.route('/x/<path:p>')
    async def path_route(req, p):
        return 'path'

    @app.route('/x/<int:n>')
    async def int_route(req, n):
        return 'int'

    @app.route('/y/<int:n>')
    async def int_route2(req, n):
        return 'int'

    @app.route('/y/<path:p>')
    async def path_route2(req, p):
        return 'path'

    assert get(app, '/x/3').text == 'path'
    assert get(app, '/y/3').text == 'int'
    assert get(app, '/y/z').text == 'path'


def test_int_route_falls_through_to_later_string_route():
    app = Microdot()

    @app.route('/v/<int:n>')
    async def n(req, n):
        return 'int'

    @app.route('/v/<s>')
    async def s(req, s):
        return 'str'

    assert get(app, '/v/1').text == 'int'
    assert get(app, '/v/a').text == 'str'


def test_same_path_different_methods():
    app = Microdot()

    @app.get('/r')
    async def r_get(req):
        return 'get'

    @app.post('/r')
    async def r_post(req):
        return 'post'

    assert get(app, '/r').text == 'get'
    assert get(app, '/r', method='POST').text == 'post'


def test_method_mismatch_falls_through_to_later_route():
    app = Microdot()

    @app.post('/items/<int:id>')
    async def post(req, id):
        return 'post'

    @app.get('/items/<id>')
    async def get_(req, id):
        return 'get'

    assert get(app, '/items/3').text == 'get'
    assert get(app, '/items/3', method='POST').text == 'post'


def test_405_with_allow_header():
    app = Microdot()

    @app.route('/r', methods=['GET', 'POST'])
    async def r(req):
        return 'r'

    @app.put('/r')
    async def r_put(req):
        return 'put'

    res = get(app, '/r', method='DELETE')
    assert res.status_code == 405
    allow = [m.strip() for m in res.headers['Allow'].split(',')]
    assert set(allow) >= {'GET', 'POST', 'PUT'}
    assert 'DELETE' not in allow


def test_405_for_dynamic_route():
    app = Microdot()

    @app.post('/d/<int:id>')
    async def d(req, id):
        return 'd'

    res = get(app, '/d/1')
    assert res.status_code == 405
    assert 'POST' in res.headers['Allow']
    assert get(app, '/d/x').status_code == 404


def test_404_for_unknown_url():
    app = Microdot()

    @app.route('/a')
    async def a(req):
        return 'a'

    res = get(app, '/b')
    assert res.status_code == 404
    assert 'Allow' not in res.headers


def test_automatic_options():
    app = Microdot()

    @app.route('/r', methods=['GET', 'POST'])
    async def r(req):
        raise AssertionError('handler must not run for OPTIONS')

    res = get(app, '/r', method='OPTIONS')
    assert res.status_code == 200
    allow = [m.strip() for m in res.headers['Allow'].split(',')]
    assert {'GET', 'POST', 'HEAD', 'OPTIONS'} <= set(allow)
    assert res.body == b''


def test_options_handler_replaceable():
    app = Microdot()

    @app.route('/r')
    async def r(req):
        return 'r'

    app.options_handler = lambda req: {'Allow': 'GET', 'X-Custom': 'yes'}
    res = get(app, '/r', method='OPTIONS')
    assert res.headers['X-Custom'] == 'yes'
    assert res.headers['Allow'] == 'GET'


def test_options_handler_disabled_routes_options():
    app = Microdot()
    app.options_handler = None

    @app.route('/r', methods=['OPTIONS'])
    async def r(req):
        return 'my options'

    assert get(app, '/r', method='OPTIONS').text == 'my options'


def test_head_answered_from_get_without_body():
    app = Microdot()
    calls = []

    @app.get('/h')
    async def h(req):
        calls.append(req.method)
        return 'hello world'

    res_get = get(app, '/h')
    res_head = get(app, '/h', method='HEAD')
    assert res_head.status_code == 200
    assert not res_head.body
    assert res_head.headers['Content-Length'] == res_get.headers['Content-Length'] == '11'
    assert calls == ['GET', 'HEAD']


def test_head_explicit_route():
    app = Microdot()

    @app.route('/h', methods=['HEAD'])
    async def h(req):
        return '', 200, {'X-Head': 'yes'}

    res = get(app, '/h', method='HEAD')
    assert res.status_code == 200
    assert res.headers['X-Head'] == 'yes'


def test_head_on_post_only_route_is_405():
    app = Microdot()

    @app.post('/p')
    async def p(req):
        return 'p'

    assert get(app, '/p', method='HEAD').status_code == 405


# -- compiled router -----------------------------------------------------------------

def test_router_recompiled_when_routes_added_after_first_request():
    app = Microdot()

    @app.route('/a')
    async def a(req):
        return 'a'

    assert get(app, '/b').status_code == 404
    router1 = app._compile()

    @app.route('/b')
    async def b(req):
        return 'b'

    @app.route('/c/<int:n>')
    async def c(req, n):
        return str(n)

    assert get(app, '/b').text == 'b'
    assert get(app, '/c/3').text == '3'
    assert app._compile() is not router1
    assert app._compile() is app._compile()


def test_router_recompiled_after_mount():
    app = Microdot()
    sub = Microdot()

    @sub.route('/x')
    async def x(req):
        return 'x'

    assert get(app, '/sub/x').status_code == 404
    app.mount(sub, '/sub')
    assert get(app, '/sub/x').text == 'x'


def _make_handler(i):
    async def handler(req, **kwargs):
        return {'i': i, 'kwargs': kwargs}
    return handler


def _thousand_routes():
    app = Microdot()
    expected = []
    for i in range(1000):
        kind = i % 4
        if kind == 0:
            pattern, path, kwargs = '/static%d/page' % i, '/static%d/page' % i, {}
        elif kind == 1:
            pattern, path, kwargs = '/items%d/<int:id>' % i, '/items%d/%d' % (i, i * 7), \
                {'id': i * 7}
        elif kind == 2:
            pattern, path, kwargs = '/users/<id>/posts%d' % i, '/users/u%d/posts%d' % (i, i), \
                {'id': 'u%d' % i}
        else:
            pattern, path, kwargs = '/a/<x>/b%d/<int:y>' % i, '/a/q/b%d/%d' % (i, i), \
                {'x': 'q', 'y': i}
        app.route(pattern)(_make_handler(i))
        expected.append((path, i, kwargs))
    return app, expected


def test_thousand_routes_router_finds_the_right_route():
    app, expected = _thousand_routes()
    router = app._compile()
    for path, i, kwargs in expected:
        matches = router.match(path)
        assert len(matches) == 1, path
        route, args = matches[0]
        assert route.index == i
        assert args == kwargs


def test_thousand_routes_through_the_app():
    app, expected = _thousand_routes()

    async def main():
        client = TestClient(app)
        for path, i, kwargs in expected[::7] + expected[-4:]:
            res = await client.get(path)
            assert res.json == {'i': i, 'kwargs': kwargs}, path
        assert (await client.get('/items4/1')).status_code == 404
        assert (await client.get('/users/x/posts1000')).status_code == 404
        assert (await client.get('/items1/x')).status_code == 404

    run(main())


def test_thousand_routes_added_incrementally_after_requests():
    app = Microdot()

    async def main():
        client = TestClient(app)
        for i in range(0, 1000, 50):
            app.route('/n%d/<int:v>' % i)(_make_handler(i))
            res = await client.get('/n%d/%d' % (i, i))
            assert res.json == {'i': i, 'kwargs': {'v': i}}
        assert (await client.get('/n0/0')).json['i'] == 0

    run(main())


def test_find_route_sets_request_route():
    app = Microdot()

    @app.route('/a/<int:n>')
    async def a(req, n):
        # as in Microdot, request.route is the handler function
        return {'route': req.route is a, 'args': req.url_args}

    @app.before_request
    async def seen_by_hooks(req):
        assert req.route is a

    assert get(app, '/a/4').json == {'route': True, 'args': {'n': 4}}


def test_url_args_not_shared_between_requests():
    app = Microdot()

    @app.before_request
    async def mutate(req):
        seen = dict(req.url_args)
        req.url_args['added'] = 'x'
        req.g.seen = seen

    @app.route('/users/<name>')
    async def user(req, name, added):
        return {'seen': req.g.seen, 'name': name}

    @app.route('/static')
    async def static(req, added):
        return {'seen': req.g.seen}

    @app.route('/users/me')
    async def me(req, added):  # pragma: no cover - the dynamic route wins
        return 'me'

    for _ in range(2):
        assert get(app, '/static').json == {'seen': {}}
        assert get(app, '/users/me').json == {'seen': {'name': 'me'}, 'name': 'me'}
        assert get(app, '/users/bob').json == {'seen': {'name': 'bob'}, 'name': 'bob'}


def test_static_and_dynamic_overlap_order_for_405_and_options():
    app = Microdot()

    @app.post('/users/me')
    async def me(req):
        return 'me'

    @app.get('/users/<name>')
    async def user(req, name):
        return name

    @app.put('/users/<name>')
    async def user_put(req, name):
        return 'put ' + name

    assert get(app, '/users/me').text == 'me'
    assert get(app, '/users/me', method='POST').text == 'me'
    assert get(app, '/users/me', method='PUT').text == 'put me'
    allow = get(app, '/users/me', method='OPTIONS').headers['Allow']
    assert {'GET', 'POST', 'PUT'} <= {m.strip() for m in allow.split(',')}
    assert get(app, '/users/bob', method='POST').status_code == 405
