"""CSRF protection from Fetch metadata and Origin: Microdot 2.x behaviour and fixes."""
import asyncio

import pytest
from hypothesis import given, settings, strategies as st

from microdot import Microdot
from microdot.cors import CORS
from microdot.csrf import CSRF
from microdot.test_client import TestClient


def run(coro):
    return asyncio.run(coro)


def make_app(cors_origins=None, **kwargs):
    app = Microdot()
    cors = CORS(app, allowed_origins=cors_origins) if cors_origins is not None else None
    csrf = CSRF(app, cors, **kwargs)

    @app.route('/', methods=['GET', 'POST', 'PUT', 'DELETE', 'PATCH'])
    async def index(request):
        return 'ok'

    @app.post('/exempt')
    @csrf.exempt
    async def exempt(request):
        return 'exempt'

    @app.get('/protected')
    @csrf.protect
    async def protected(request):
        return 'protected'

    return app, csrf


def send(app, method='POST', path='/', **headers):
    return run(TestClient(app).request(method, path, headers=headers, body=b''))


@pytest.mark.parametrize('sfs', ['same-origin', 'none', 'Same-Origin'])
def test_same_origin_fetch_metadata_allowed(sfs):
    app, _ = make_app()
    res = send(app, **{'Sec-Fetch-Site': sfs, 'Origin': 'https://evil.example'})
    assert res.status_code == 200
    assert 'Sec-Fetch-Site' in res.headers['Vary']


@pytest.mark.parametrize('method', ['POST', 'PUT', 'PATCH', 'DELETE'])
def test_cross_site_refused(method):
    app, _ = make_app()
    res = send(app, method, **{'Sec-Fetch-Site': 'cross-site',
                               'Origin': 'https://evil.example'})
    assert res.status_code == 403


def test_same_site_needs_allow_subdomains():
    app, _ = make_app()
    assert send(app, **{'Sec-Fetch-Site': 'same-site'}).status_code == 403
    app, _ = make_app(allow_subdomains=True)
    assert send(app, **{'Sec-Fetch-Site': 'same-site'}).status_code == 200


def test_safe_methods_not_checked():
    app, _ = make_app()
    for method in ('GET', 'HEAD'):
        res = send(app, method, **{'Sec-Fetch-Site': 'cross-site'})
        assert res.status_code == 200
    res = send(app, 'OPTIONS', **{'Sec-Fetch-Site': 'cross-site'})
    assert res.status_code == 200


def test_no_browser_headers_allowed():
    app, _ = make_app()
    assert send(app).status_code == 200


def test_empty_origin_counts_as_absent():
    # as Microdot: an empty Origin header is no Origin at all
    app, _ = make_app()
    assert send(app, Origin='').status_code == 200
    assert send(app, **{'Origin': '', 'Sec-Fetch-Site': 'cross-site'}).status_code == 403


def test_exempt_and_protect():
    app, _ = make_app()
    cross = {'Sec-Fetch-Site': 'cross-site', 'Origin': 'https://evil.example'}
    assert send(app, 'POST', '/exempt', **cross).status_code == 200
    assert send(app, 'GET', '/protected', **cross).status_code == 403
    assert send(app, 'GET', '/protected', **{'Sec-Fetch-Site': 'same-origin'}).status_code \
        == 200


def test_protect_all_false():
    app, _ = make_app(protect_all=False)
    cross = {'Sec-Fetch-Site': 'cross-site', 'Origin': 'https://evil.example'}
    assert send(app, 'POST', '/', **cross).status_code == 200
    assert send(app, 'GET', '/protected', **cross).status_code == 403


def test_trusted_cors_origins():
    app, _ = make_app(cors_origins=['https://trusted.example'])
    res = send(app, **{'Sec-Fetch-Site': 'cross-site', 'Origin': 'https://trusted.example'})
    assert res.status_code == 200
    res = send(app, **{'Origin': 'https://trusted.example'})  # older browser
    assert res.status_code == 200
    res = send(app, **{'Origin': 'https://evil.example'})
    assert res.status_code == 403
    res = send(app, **{'Origin': 'https://sub.trusted.example'})
    assert res.status_code == 403


def test_trusted_subdomains():
    app, _ = make_app(cors_origins=['https://trusted.example'], allow_subdomains=True)
    assert send(app, **{'Origin': 'https://sub.trusted.example'}).status_code == 200
    assert send(app, **{'Origin': 'http://sub.trusted.example'}).status_code == 403
    assert send(app, **{'Origin': 'https://eviltrusted.example'}).status_code == 403
    assert send(app, **{'Origin': 'https://trusted.example.evil'}).status_code == 403


def test_wildcard_cors_is_not_trusted():
    app, _ = make_app(cors_origins='*')
    res = send(app, **{'Sec-Fetch-Site': 'cross-site', 'Origin': 'https://any.example'})
    assert res.status_code == 403


def test_own_origin_without_fetch_metadata():
    app, _ = make_app()
    # TestClient sends "Host: example.com:1234"
    assert send(app, Origin='http://example.com:1234').status_code == 200
    assert send(app, Origin='https://example.com:1234').status_code == 200
    assert send(app, Origin='http://example.com').status_code == 403
    assert send(app, Origin='https://evil.example').status_code == 403
    assert send(app, Origin='https://example.com', Host='example.com').status_code == 200


@pytest.mark.parametrize('origin', ['null', 'Null', 'garbage', 'https://', '://x',
                                    'https://a.example/path', 'https://x:bad',
                                    'https://trusted.example:99999'])
@pytest.mark.parametrize('subdomains', [False, True])
def test_null_and_malformed_origin_is_403_not_500(origin, subdomains):
    app, _ = make_app(cors_origins=['https://trusted.example', 'null'],
                      allow_subdomains=subdomains)
    assert send(app, Origin=origin).status_code == 403
    assert send(app, **{'Origin': origin, 'Sec-Fetch-Site': 'cross-site'}).status_code \
        == 403


def test_null_origin_without_cors():
    app, _ = make_app()
    assert send(app, Origin='null').status_code == 403


def test_initialize_later():
    app = Microdot()
    csrf = CSRF()

    @app.post('/')
    async def index(request):
        return 'ok'

    csrf.initialize(app)
    assert send(app, **{'Sec-Fetch-Site': 'cross-site'}).status_code == 403


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=60),
       st.sampled_from([None, 'cross-site', 'same-site', 'same-origin', 'bogus']),
       st.booleans())
def test_any_origin_is_200_or_403(origin, sfs, subdomains):
    app, _ = make_app(cors_origins=['https://trusted.example'], allow_subdomains=subdomains)
    headers = {'Origin': origin}
    if sfs:
        headers['Sec-Fetch-Site'] = sfs
    assert send(app, **headers).status_code in (200, 403)
