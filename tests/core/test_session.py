"""Signed-cookie sessions: Microdot 2.x behaviour, token format, and the defects fixed."""
import asyncio
import base64
import json
import time

import pytest
from hypothesis import given, settings, strategies as st

from microdot import Microdot
from microdot.session import Session, SessionDict, jwt_decode, jwt_encode, with_session
from microdot.test_client import TestClient

KEY = 'top-secret'
# made by PyJWT (jwt.encode(payload, 'top-secret', algorithm='HS256')), as Microdot does
PYJWT_TOKEN = ('eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJmb28iOiJiYXIiLCJuIjoxfQ.'
               'MRElYhobSXHEd26WvqtxhLFuXiEoKM_PhDqLlyJWShk')
PYJWT_TOKEN_EXP = ('eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyX2lkIjo0MiwiZXhwIjo0M'
                   'TAyNDQ0ODAwfQ.BWQ7b4Kw92CEH7BXAtEXXi2GjrW-AdKEzrHdwzEd_kY')


def run(coro):
    return asyncio.run(coro)


def b64(data):
    if isinstance(data, (dict, list)):
        data = json.dumps(data).encode()
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def make_app(secret_key=KEY, **kwargs):
    app = Microdot()
    session = Session(app, secret_key=secret_key, **kwargs)

    @app.get('/')
    @with_session
    async def index(request, session):
        return {'session': dict(session)}

    @app.post('/set/<name>/<value>')
    @with_session
    async def set_value(request, session, name, value):
        session[name] = value
        session.save()
        return 'ok'

    @app.post('/twice')
    @with_session
    def twice(request, session):  # a sync handler runs in a thread
        session['a'] = '1'
        session.save()
        session['b'] = '2'
        session.save()
        return 'ok'

    @app.post('/logout')
    @with_session
    async def logout(request, session):
        session.delete()
        return {'after_delete': dict(session)}

    return app, session


def set_cookies(res):
    value = res.headers.get('Set-Cookie') or []
    return [value] if isinstance(value, str) else list(value)


# -- Microdot 2.x behaviour ----------------------------------------------------------

def test_save_and_read_back():
    app, _ = make_app()
    client = TestClient(app)

    async def go():
        res = await client.get('/')
        assert res.json == {'session': {}}
        res = await client.post('/set/user/alice')
        assert res.status_code == 200
        assert 'session' in client.cookies
        res = await client.get('/')
        assert res.json == {'session': {'user': 'alice'}}
        await client.post('/set/color/blue')
        res = await client.get('/')
        assert res.json == {'session': {'user': 'alice', 'color': 'blue'}}
    run(go())


def test_session_dict_type_and_get_cached_per_request():
    app = Microdot()
    session_ext = Session(app, secret_key=KEY)
    seen = {}

    @app.get('/')
    async def index(request):
        s1 = session_ext.get(request)
        s2 = session_ext.get(request)
        seen['same'] = s1 is s2
        seen['type'] = type(s1)
        return 'ok'

    run(TestClient(app).get('/'))
    assert seen == {'same': True, 'type': SessionDict}


def test_delete_removes_cookie():
    app, _ = make_app()
    client = TestClient(app)

    async def go():
        await client.post('/set/user/alice')
        res = await client.post('/logout')
        assert res.json == {'after_delete': {}}
        cookie = [c for c in set_cookies(res) if c.startswith('session=')][0]
        assert 'Max-Age=0' in cookie and 'Path=/' in cookie
        assert 'session' not in client.cookies
        res = await client.get('/')
        assert res.json == {'session': {}}
    run(go())


def test_several_saves_give_one_cookie():
    app, _ = make_app()
    client = TestClient(app)

    async def go():
        res = await client.post('/twice')
        assert len([c for c in set_cookies(res) if c.startswith('session=')]) == 1
        res = await client.get('/')
        assert res.json == {'session': {'a': '1', 'b': '2'}}
    run(go())


def test_initialize_later_and_update_directly():
    app = Microdot()
    session_ext = Session()
    session_ext.initialize(app, secret_key=KEY)

    @app.post('/')
    async def index(request):
        session_ext.update(request, {'x': 1})
        return 'ok'

    @app.get('/read')
    async def read(request):
        return dict(session_ext.get(request))

    client = TestClient(app)

    async def go():
        await client.post('/')
        return await client.get('/read')
    assert run(go()).json == {'x': 1}


def test_with_session_on_the_instance():
    app = Microdot()
    session_ext = Session(app, secret_key=KEY)

    @app.get('/<int:n>')
    @session_ext.with_session
    async def index(request, session, n):
        session['n'] = n
        session.save()
        return {'n': n, 'type': type(session).__name__}

    client = TestClient(app)
    res = run(client.get('/7'))
    assert res.json == {'n': 7, 'type': 'SessionDict'}
    assert session_ext.decode(client.cookies['session']) == {'n': 7}


def test_missing_secret_key_is_an_error():
    app = Microdot()
    session_ext = Session(app)

    @app.get('/')
    async def index(request):
        with pytest.raises(ValueError):
            session_ext.get(request)
        with pytest.raises(ValueError):
            session_ext.encode({'a': 1})
        return 'ok'

    assert run(TestClient(app).get('/')).text == 'ok'


def test_vary_cookie():
    app, _ = make_app()
    res = run(TestClient(app).get('/'))
    assert 'Cookie' in res.headers['Vary']


# -- token format (compatible with Microdot's PyJWT tokens) ----------------------------

def test_encode_matches_pyjwt_format():
    session = Session(secret_key=KEY)
    assert session.encode({'foo': 'bar', 'n': 1}) == PYJWT_TOKEN
    header = PYJWT_TOKEN.split('.')[0]
    assert json.loads(base64.urlsafe_b64decode(header + '==')) == {'alg': 'HS256',
                                                                   'typ': 'JWT'}


def test_decode_pyjwt_tokens():
    session = Session(secret_key=KEY)
    assert session.decode(PYJWT_TOKEN) == {'foo': 'bar', 'n': 1}
    assert session.decode(PYJWT_TOKEN_EXP) == {'user_id': 42, 'exp': 4102444800}
    assert session.decode(PYJWT_TOKEN, secret_key='other') == {}


def test_cookie_from_microdot_is_read():
    app, _ = make_app()
    client = TestClient(app, cookies={'session': PYJWT_TOKEN})
    assert run(client.get('/')).json == {'session': {'foo': 'bar', 'n': 1}}


# -- defects fixed: bad cookies give an empty session, never a 500 ---------------------

def forged(header, payload, key=KEY):
    signing_input = b64(header) + '.' + b64(payload)
    import hashlib
    import hmac
    sig = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + '.' + b64(sig)


BAD_TOKENS = [
    '',
    'garbage',
    'a.b',
    'a.b.c',
    'a.b.c.d',
    '...',
    PYJWT_TOKEN[:-2],                                   # truncated signature
    PYJWT_TOKEN.replace('eyJmb28iOiJiYXIiLCJuIjoxfQ',
                        b64({'foo': 'admin', 'n': 1})),  # tampered payload
    PYJWT_TOKEN + 'x',
    PYJWT_TOKEN.replace('.', '!', 1),
    b64({'alg': 'none', 'typ': 'JWT'}) + '.' + b64({'foo': 'bar'}) + '.',
    b64({'alg': 'none'}) + '.' + b64({'foo': 'bar'}) + '.' + PYJWT_TOKEN.split('.')[2],
    forged({'alg': 'HS512', 'typ': 'JWT'}, {'foo': 'bar'}),  # other algorithm
    forged({'alg': 'hs256'}, {'foo': 'bar'}),
    forged(['HS256'], {'foo': 'bar'}),                       # header not an object
    forged({'alg': 'HS256'}, b'[1, 2]'),                      # payload not an object
    forged({'alg': 'HS256'}, b'\xff\xfe'),                    # payload not UTF-8 JSON
    forged({'alg': 'HS256'}, b'{"a":'),                       # payload not JSON
    forged({'alg': 'HS256'}, {'exp': 1}),                     # long expired
    forged({'alg': 'HS256'}, {'exp': 'never'}),               # exp not a number
    forged({'alg': 'HS256'}, {'exp': True}),
    forged({'alg': 'HS256'}, {'nbf': time.time() + 3600}),    # not valid yet
    forged({'alg': 'HS256'}, {'a': 1}, key='wrong-key'),
    'x' * 1900,
    'é.é.é',
]


@pytest.mark.parametrize('token', BAD_TOKENS)
def test_bad_cookie_gives_empty_session(token):
    app, _ = make_app()
    client = TestClient(app, cookies={'session': token} if token else None)
    res = run(client.get('/'))
    assert res.status_code == 200
    assert res.json == {'session': {}}


def test_oversized_token_is_not_parsed():
    token = jwt_encode({'data': 'x' * 20000}, KEY)
    assert jwt_decode(token, KEY) is None
    assert jwt_decode(jwt_encode({'data': 'x'}, KEY), KEY) == {'data': 'x'}


def test_expired_claim_and_valid_claims():
    now = time.time()
    assert jwt_decode(jwt_encode({'exp': now - 1}, KEY), KEY) is None
    assert jwt_decode(jwt_encode({'exp': now + 60, 'a': 1}, KEY), KEY)['a'] == 1
    assert jwt_decode(jwt_encode({'nbf': now - 60, 'iat': now, 'a': 1}, KEY), KEY)['a'] == 1
    assert jwt_decode(jwt_encode({'iat': 'yesterday'}, KEY), KEY) is None


def test_key_rotation():
    old = Session(secret_key='old-key')
    token_old = old.encode({'user': 'alice'})
    app, session_ext = make_app(secret_key=['new-key', 'old-key'])
    client = TestClient(app, cookies={'session': token_old})

    async def go():
        res = await client.get('/')
        assert res.json == {'session': {'user': 'alice'}}
        await client.post('/set/color/red')
        token = client.cookies['session']
        assert Session(secret_key='new-key').decode(token) == {'user': 'alice',
                                                               'color': 'red'}
        assert Session(secret_key='old-key').decode(token) == {}
    run(go())
    assert make_app(secret_key=['newer'])[1].decode(token_old) == {}


# -- defects fixed: cookie attributes ---------------------------------------------------

def session_cookie(res):
    return [c for c in set_cookies(res) if c.startswith('session=')][0]


def test_default_cookie_attributes_over_http():
    app, _ = make_app()
    cookie = session_cookie(run(TestClient(app).post('/set/a/b')))
    attrs = [a.strip() for a in cookie.split(';')]
    assert 'HttpOnly' in attrs
    assert 'SameSite=Lax' in attrs
    assert 'Path=/' in attrs
    assert 'Secure' not in attrs
    assert not any(a.startswith('Max-Age') for a in attrs)  # a browser-session cookie


def test_secure_over_https():
    app, _ = make_app()
    cookie = session_cookie(run(TestClient(app, scheme='https').post('/set/a/b')))
    assert 'Secure' in [a.strip() for a in cookie.split(';')]


def test_cookie_options():
    app, _ = make_app(cookie_options={'samesite': 'Strict', 'secure': True,
                                      'path': '/app', 'domain': 'example.com'})
    cookie = session_cookie(run(TestClient(app).post('/set/a/b')))
    attrs = [a.strip() for a in cookie.split(';')]
    for attr in ('SameSite=Strict', 'Secure', 'Path=/app', 'Domain=example.com',
                 'HttpOnly'):
        assert attr in attrs


def test_cookie_options_can_turn_http_only_off_and_samesite_none_forces_secure():
    app, _ = make_app(cookie_options={'http_only': False, 'samesite': 'None'})
    cookie = session_cookie(run(TestClient(app).post('/set/a/b')))
    attrs = [a.strip() for a in cookie.split(';')]
    assert 'HttpOnly' not in attrs
    assert 'SameSite=None' in attrs and 'Secure' in attrs


def test_max_age_expires_sessions(monkeypatch):
    app, session_ext = make_app(max_age=60)
    client = TestClient(app)

    async def go():
        res = await client.post('/set/user/alice')
        assert 'Max-Age=60' in session_cookie(res)
        payload = session_ext.decode(client.cookies['session'])
        assert payload['user'] == 'alice' and 0 < payload['exp'] - time.time() <= 61
        res = await client.get('/')
        assert res.json == {'session': {'user': 'alice'}}  # exp is not shown as data
        real_time = time.time
        monkeypatch.setattr(time, 'time', lambda: real_time() + 120)
        res = await client.get('/')
        assert res.json == {'session': {}}
    run(go())


def test_max_age_from_cookie_options():
    app, session_ext = make_app(cookie_options={'max_age': 30})
    client = TestClient(app)
    res = run(client.post('/set/a/b'))
    assert 'Max-Age=30' in session_cookie(res)
    assert session_ext.decode(client.cookies['session'])['exp'] <= time.time() + 31


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e,
                                      blacklist_characters=';,"\\'), max_size=300))
def test_any_cookie_value_gives_a_session_not_an_error(token):
    app, _ = make_app()
    client = TestClient(app, cookies={'session': token} if token else None)
    res = run(client.get('/'))
    assert res.status_code == 200
    assert isinstance(res.json['session'], dict)
