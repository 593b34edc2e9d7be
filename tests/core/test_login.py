"""Logins: Microdot 2.x behaviour, the open-redirect fix and remember-me cookie flags."""
import asyncio
from urllib.parse import quote

import pytest

from microdot import Microdot
from microdot.login import Login, is_safe_redirect
from microdot.session import Session
from microdot.test_client import TestClient


class User:
    def __init__(self, id, name):
        self.id = id
        self.name = name


USERS = {1: User(1, 'alice'), 2: User(2, 'bob')}


def run(coro):
    return asyncio.run(coro)


def make_app(sync_loader=False):
    app = Microdot()
    Session(app, secret_key='login-secret')
    login = Login()

    if sync_loader:
        @login.user_loader
        def load_user(user_id):
            return USERS.get(user_id)
    else:
        @login.user_loader
        async def load_user(user_id):
            return USERS.get(user_id)

    @app.route('/login', methods=['GET', 'POST'])
    async def login_page(request):
        if request.method == 'GET':
            return 'login form'
        form = request.form
        remember = form.get('remember')  # absent, 'yes' (30 days) or a number of days
        remember = int(remember) if remember and remember.isdigit() else remember == 'yes'
        return await login.login_user(request, USERS[int(form['id'])], remember=remember,
                                      redirect_url='/home')

    @app.post('/logout')
    async def logout(request):
        await login.logout_user(request)
        return 'bye'

    @app.get('/private')
    @login
    async def private(request):
        user = await login.get_current_user(request)
        return {'user': user.name}

    @app.get('/private/<int:n>')
    @login
    def private_sync(request, n):
        return {'user': request.g.current_user.name, 'n': n}

    @app.get('/settings')
    @login.fresh
    async def settings(request):
        return {'user': request.g.current_user.name}

    @app.get('/whoami')
    async def whoami(request):
        user = await login.get_current_user(request)
        return {'user': user.name if user else None}

    return app, login


FORM = {'Content-Type': 'application/x-www-form-urlencoded'}


def do_login(client, user_id=1, next_url=None, remember=None):
    path = '/login'
    if next_url is not None:
        path += '?next=' + quote(next_url, safe='')
    body = 'id=%d' % user_id
    if remember is not None:
        body += '&remember=%s' % remember
    return run(client.post(path, headers=FORM, body=body))


def set_cookie(res, name):
    values = res.headers.get('Set-Cookie') or []
    values = [values] if isinstance(values, str) else values
    found = [v for v in values if v.startswith(name + '=')]
    return found[0] if found else None


def attrs(cookie):
    return [a.strip() for a in cookie.split(';')[1:]]


def test_login_required_redirects_with_next():
    app, _ = make_app()
    res = run(TestClient(app).get('/private?a=1&b=2'))
    assert res.status_code == 302
    assert res.headers['Location'] == '/login?next=/private%3Fa%3D1%26b%3D2'


@pytest.mark.parametrize('sync_loader', [False, True])
def test_login_flow(sync_loader):
    app, _ = make_app(sync_loader)
    client = TestClient(app)
    res = do_login(client, 1, next_url='/private?a=1')
    assert res.status_code == 302
    assert res.headers['Location'] == '/private?a=1'
    assert run(client.get('/private')).json == {'user': 'alice'}
    assert run(client.get('/private/5')).json == {'user': 'alice', 'n': 5}
    assert run(client.get('/settings')).json == {'user': 'alice'}
    assert run(client.get('/whoami')).json == {'user': 'alice'}
    res = run(client.post('/logout'))
    assert res.text == 'bye'
    assert run(client.get('/whoami')).json == {'user': None}
    assert run(client.get('/private')).status_code == 302


def test_login_without_next_goes_to_redirect_url():
    app, _ = make_app()
    res = do_login(TestClient(app))
    assert res.headers['Location'] == '/home'


@pytest.mark.parametrize('next_url', [
    '//evil.example',
    '//evil.example/path',
    '/\\evil.example',
    '\\\\evil.example',
    '\\/evil.example',
    'https://evil.example',
    'http:evil.example',
    'http:/evil.example',
    'javascript:alert(1)',
    'JavaScript:alert(1)',
    'data:text/html,hi',
    'evil.example',
    '/\t/evil.example',
    '/\n/evil.example',
    '/ok\r\nSet-Cookie: x=1',
    '/\x00',
    '/caf\u00e9',
    '',
    ' /private',
])
def test_unsafe_next_is_not_followed(next_url):
    app, _ = make_app()
    client = TestClient(app)
    res = do_login(client, next_url=next_url)
    assert res.status_code == 302
    assert res.headers['Location'] == '/home'
    assert run(client.get('/whoami')).json == {'user': 'alice'}  # the login worked


@pytest.mark.parametrize('next_url', ['/', '/private', '/a/b?c=d&e=f#frag', '/%2F%2Fx'])
def test_safe_next_is_followed(next_url):
    app, _ = make_app()
    res = do_login(TestClient(app), next_url=next_url)
    assert res.headers['Location'] == next_url


def test_is_safe_redirect():
    assert is_safe_redirect('/x')
    assert not is_safe_redirect(None)
    assert not is_safe_redirect('//x')


def test_remember_cookie_flags_over_http():
    app, _ = make_app()
    res = do_login(TestClient(app), remember='yes')
    cookie = set_cookie(res, '_remember')
    assert cookie is not None
    a = attrs(cookie)
    assert 'HttpOnly' in a and 'SameSite=Lax' in a and 'Path=/' in a
    assert 'Max-Age=%d' % (30 * 24 * 3600) in a
    assert 'Secure' not in a


def test_remember_cookie_secure_over_https():
    app, _ = make_app()
    res = do_login(TestClient(app, scheme='https'), remember='7')
    cookie = set_cookie(res, '_remember')
    a = attrs(cookie)
    assert 'Secure' in a and 'HttpOnly' in a
    assert 'Max-Age=%d' % (7 * 24 * 3600) in a
    session_cookie = set_cookie(res, 'session')
    assert 'Secure' in attrs(session_cookie)


def test_remember_restores_a_non_fresh_login():
    app, _ = make_app()
    client = TestClient(app)
    do_login(client, 2, remember='yes')
    assert '_remember' in client.cookies
    del client.cookies['session']  # the browser session ended
    res = run(client.get('/private'))
    assert res.json == {'user': 'bob'}
    assert 'session' in client.cookies and '_remember' in client.cookies
    res = run(client.get('/settings'))  # fresh login required
    assert res.status_code == 302
    assert res.headers['Location'] == '/login?next=/settings'
    do_login(client, 2)
    assert run(client.get('/settings')).json == {'user': 'bob'}


def test_logout_removes_remember_cookie():
    app, _ = make_app()
    client = TestClient(app)
    do_login(client, 1, remember='yes')
    res = run(client.post('/logout'))
    cookie = set_cookie(res, '_remember')
    assert cookie is not None and 'Max-Age=0' in attrs(cookie)
    assert '_remember' not in client.cookies
    assert run(client.get('/whoami')).json == {'user': None}


@pytest.mark.parametrize('token', ['garbage', 'a.b.c', ''])
def test_bad_remember_cookie_is_ignored(token):
    app, _ = make_app()
    client = TestClient(app, cookies={'_remember': token} if token else None)
    res = run(client.get('/private'))
    assert res.status_code == 302


def test_remember_cookie_signed_with_other_key_is_ignored():
    app, _ = make_app()
    forged = Session(secret_key='attacker').encode(
        {'user_id': 1, 'days': 30, 'exp': 4102444800})
    client = TestClient(app, cookies={'_remember': forged})
    assert run(client.get('/whoami')).json == {'user': None}


def test_deleted_user_is_logged_out():
    app, login = make_app()
    client = TestClient(app)
    do_login(client, 1)
    login.user_loader(lambda user_id: None)
    assert run(client.get('/private')).status_code == 302


def test_login_needs_the_session_extension():
    app = Microdot()
    login = Login(login_url='/auth?x=1')

    @login.user_loader
    def load_user(user_id):
        return None

    @app.get('/private')
    @login
    async def private(request):
        return 'secret'

    res = run(TestClient(app).get('/private'))
    assert res.status_code == 500
    Session(app, secret_key='k')
    res = run(TestClient(app).get('/private'))
    assert res.headers['Location'] == '/auth?x=1&next=/private'
