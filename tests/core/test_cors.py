"""CORS headers and preflight answers: Microdot 2.x behaviour and the fixes."""
import asyncio

import pytest

from microdot import Microdot, abort
from microdot.cors import CORS, normalize_origin, parse_origin
from microdot.test_client import TestClient


def run(coro):
    return asyncio.run(coro)


def make_app(**kwargs):
    app = Microdot()
    cors = CORS(app, **kwargs)

    @app.route('/', methods=['GET', 'POST'])
    async def index(request):
        return 'ok'

    @app.get('/vary')
    async def vary(request):
        return 'ok', {'Vary': 'Accept-Encoding'}

    @app.get('/fail')
    async def fail(request):
        abort(401)

    return app, cors


def request(app, method='GET', path='/', **headers):
    return run(TestClient(app).request(method, path, headers=headers))


def vary_of(res):
    return [v.strip() for v in (res.headers.get('Vary') or '').split(',') if v.strip()]


def test_allowed_origin_is_echoed_with_vary():
    app, _ = make_app(allowed_origins=['https://a.example', 'http://b.example:8080'])
    res = request(app, Origin='https://a.example')
    assert res.status_code == 200
    assert res.headers['Access-Control-Allow-Origin'] == 'https://a.example'
    assert 'Access-Control-Allow-Credentials' not in res.headers
    assert 'Origin' in vary_of(res)
    res = request(app, Origin='http://b.example:8080')
    assert res.headers['Access-Control-Allow-Origin'] == 'http://b.example:8080'


def test_other_origin_gets_no_cors_headers():
    app, _ = make_app(allowed_origins=['https://a.example'])
    for origin in ('https://evil.example', 'http://a.example', 'https://a.example:444',
                   'https://a.example.evil.example'):
        res = request(app, Origin=origin)
        assert res.status_code == 200
        assert 'Access-Control-Allow-Origin' not in res.headers
        assert 'Vary' not in res.headers  # as Microdot: only an echoed origin varies


def test_no_origin_header_with_list():
    app, _ = make_app(allowed_origins=['https://a.example'])
    res = request(app)
    assert 'Access-Control-Allow-Origin' not in res.headers
    assert 'Vary' not in res.headers


def test_wildcard():
    app, _ = make_app(allowed_origins='*')
    res = request(app)
    assert res.headers['Access-Control-Allow-Origin'] == '*'
    assert 'Origin' not in vary_of(res)
    res = request(app, Origin='https://any.example')
    assert res.headers['Access-Control-Allow-Origin'] == 'https://any.example'
    assert 'Origin' in vary_of(res)


def test_credentials():
    app, _ = make_app(allowed_origins=['https://a.example'], allow_credentials=True)
    res = request(app, Origin='https://a.example')
    assert res.headers['Access-Control-Allow-Credentials'] == 'true'
    res = request(app, Origin='https://evil.example')
    assert 'Access-Control-Allow-Credentials' not in res.headers


def test_star_with_credentials_refused_at_setup():
    with pytest.raises(ValueError, match='List the trusted origins'):
        make_app(allowed_origins='*', allow_credentials=True)
    cors = CORS(allowed_origins='*')
    cors.allow_credentials = True
    with pytest.raises(ValueError, match='allow_credentials'):
        cors.initialize(Microdot())


def test_star_without_credentials_echoes_origin():
    app, _ = make_app(allowed_origins='*')
    res = request(app)
    assert res.headers['Access-Control-Allow-Origin'] == '*'
    assert 'Access-Control-Allow-Credentials' not in res.headers
    res = request(app, Origin='https://any.example')
    assert res.headers['Access-Control-Allow-Origin'] == 'https://any.example'
    assert 'Access-Control-Allow-Credentials' not in res.headers


def test_expose_headers():
    app, _ = make_app(allowed_origins='*', expose_headers=['X-One', 'X-Two'])
    res = request(app, Origin='https://any.example')
    assert res.headers['Access-Control-Expose-Headers'] == 'X-One, X-Two'


def test_preflight():
    app, _ = make_app(allowed_origins=['https://a.example'], max_age=600,
                      allowed_methods=['GET', 'POST'], allow_credentials=True)
    res = request(app, 'OPTIONS', Origin='https://a.example',
                  **{'Access-Control-Request-Method': 'post',
                     'Access-Control-Request-Headers': 'X-Custom, Content-Type'})
    assert res.status_code == 200
    assert res.headers['Access-Control-Allow-Origin'] == 'https://a.example'
    assert res.headers['Access-Control-Allow-Methods'] == 'POST'
    assert res.headers['Access-Control-Allow-Headers'] == 'X-Custom, Content-Type'
    assert res.headers['Access-Control-Max-Age'] == '600'
    assert res.headers['Access-Control-Allow-Credentials'] == 'true'
    assert 'Origin' in vary_of(res)
    assert set(res.headers['Allow'].split(', ')) == {'GET', 'POST', 'HEAD', 'OPTIONS'}


def test_preflight_refusals():
    app, _ = make_app(allowed_origins=['https://a.example'], allowed_methods=['GET'],
                      allowed_headers=['X-Allowed'])
    res = request(app, 'OPTIONS', Origin='https://a.example',
                  **{'Access-Control-Request-Method': 'DELETE',
                     'Access-Control-Request-Headers': 'X-Allowed, X-Other'})
    assert 'Access-Control-Allow-Methods' not in res.headers
    assert res.headers['Access-Control-Allow-Headers'] == 'X-Allowed'
    res = request(app, 'OPTIONS', Origin='https://evil.example',
                  **{'Access-Control-Request-Method': 'GET'})
    assert 'Access-Control-Allow-Origin' not in res.headers   # what the browser checks
    assert res.headers['Access-Control-Allow-Methods'] == 'GET'  # sent anyway, as Microdot
    # a plain OPTIONS (no Access-Control-Request-Method) is not a preflight
    res = request(app, 'OPTIONS', Origin='https://a.example')
    assert 'Access-Control-Allow-Methods' not in res.headers
    assert res.headers['Access-Control-Allow-Origin'] == 'https://a.example'


@pytest.mark.parametrize('origin', ['null', 'Null', 'https://', 'a.example',
                                    'https://a.example/path', 'https://u@a.example',
                                    'https://a.example:99999', 'https://a.example:x',
                                    'javascript:alert(1)', '*', 'https://a b.example',
                                    'https://a.example\\x'])
@pytest.mark.parametrize('allowed', ['*', ['https://a.example', 'null']])
def test_null_and_malformed_origins_are_not_allowed(origin, allowed):
    app, _ = make_app(allowed_origins=allowed, allow_credentials=allowed != '*')
    for method, extra in (('GET', {}), ('OPTIONS', {'Access-Control-Request-Method': 'GET'})):
        res = request(app, method, Origin=origin, **extra)
        assert res.status_code == 200
        assert 'Access-Control-Allow-Origin' not in res.headers
        assert 'Access-Control-Allow-Credentials' not in res.headers


def test_error_responses_get_cors_headers():
    app, _ = make_app(allowed_origins=['https://a.example'])
    res = request(app, path='/fail', Origin='https://a.example')
    assert res.status_code == 401
    assert res.headers['Access-Control-Allow-Origin'] == 'https://a.example'
    res = request(app, path='/missing', Origin='https://a.example')
    assert res.status_code == 404
    assert res.headers['Access-Control-Allow-Origin'] == 'https://a.example'


def test_existing_vary_is_kept():
    app, _ = make_app(allowed_origins=['https://a.example'])
    res = request(app, path='/vary', Origin='https://a.example')
    assert vary_of(res) == ['Accept-Encoding', 'Origin']


def test_handle_cors_false_and_manual_headers():
    app = Microdot()
    cors = CORS(app, allowed_origins=['https://a.example'], handle_cors=False)

    @app.get('/')
    async def index(request):
        return 'ok', cors.get_cors_headers(request)

    res = request(app, Origin='https://a.example')
    assert res.headers['Access-Control-Allow-Origin'] == 'https://a.example'
    res = request(app, 'OPTIONS', Origin='https://a.example',
                  **{'Access-Control-Request-Method': 'GET'})
    assert 'Access-Control-Allow-Origin' not in res.headers


def test_initialize_later_and_no_origins():
    app = Microdot()

    @app.get('/')
    async def index(request):
        return 'ok'

    cors = CORS(allowed_origins=None)
    cors.initialize(app)
    res = request(app, Origin='https://a.example')
    assert 'Access-Control-Allow-Origin' not in res.headers
    cors.allowed_origins = ['https://a.example']
    res = request(app, Origin='https://a.example')
    assert res.headers['Access-Control-Allow-Origin'] == 'https://a.example'


def test_origin_helpers():
    assert parse_origin('https://A.Example') == ('https', 'a.example', 443)
    assert parse_origin('http://[::1]:8080') == ('http', '::1', 8080)
    assert parse_origin('null') is None
    assert normalize_origin('HTTPS://a.example:443') == 'https://a.example'
    assert normalize_origin('http://a.example:8080') == 'http://a.example:8080'
