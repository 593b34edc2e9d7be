"""Authentication, login and CSRF, written against Microdot's public API (see
``app.py``)."""
import os

FLAVOUR = os.environ.get('MICRODOT_FLAVOUR', 'builtin')
if FLAVOUR == 'asgi':
    from microdot.asgi import Microdot
elif FLAVOUR == 'wsgi':
    from microdot.wsgi import Microdot
else:
    from microdot import Microdot
from microdot.auth import BasicAuth, TokenAuth
from microdot.csrf import CSRF
from microdot.login import Login
from microdot.session import Session

app = Microdot()
Session(app, secret_key='top-secret')
CSRF(app)
basic = BasicAuth()
token = TokenAuth()
login = Login()
USERS = {'susan': 'hello', 'david': 'bye'}


class User:
    def __init__(self, name):
        self.id = name
        self.name = name


@basic.authenticate
async def check_basic(request, username, password):
    if USERS.get(username) == password:
        return username


@token.authenticate
async def check_token(request, value):
    if value == 'secret-token':
        return 'token-user'


@login.user_loader
async def load_user(user_id):
    return User(user_id) if user_id in USERS else None


@app.route('/basic')
@basic
async def basic_route(request):
    return 'hello ' + request.g.current_user


@app.route('/basic-optional')
@basic.optional
async def basic_optional(request):
    return 'hello ' + str(request.g.current_user)


@app.route('/token')
@token
async def token_route(request):
    return 'hello ' + request.g.current_user


@app.route('/login', methods=['GET', 'POST'])
async def login_route(request):
    if request.method == 'GET':
        return '<form method="post"></form>', {'Content-Type': 'text/html'}
    name = request.form.get('name')
    if name not in USERS:
        return 'bad user', 401
    return await login.login_user(request, User(name),
                                  remember=bool(request.form.get('remember')))


@app.route('/me')
@login
async def me(request):
    return 'you are ' + request.g.current_user.name


@app.route('/logout', methods=['POST'])
@login
async def logout(request):
    await login.logout_user(request)
    return 'bye'


@app.post('/submit')
async def submit(request):
    return 'submitted'
