"""A typed user application, checked by mypy --strict and pyright (strict).

``hatch run types:check`` type-checks this file; it is not a pytest module. It uses
the API the way an application does (routes, hooks, error handlers, sessions,
WebSocket, SSE, authentication, the test client, the ASGI and WSGI adapters) and
states what the checkers must infer with ``assert_type``. The lines ending in
``# type: ignore[...]`` (mypy) and ``# pyright: ignore[...]`` comments are wrong on
purpose: a decorator that erased the handler's type would let them pass, and then
each checker reports its comment as unused (mypy's ``warn_unused_ignores``, part of
``--strict``; pyright's ``reportUnnecessaryTypeIgnoreComment``), so the check fails.
"""
from __future__ import annotations

from typing import Any, AsyncIterator, Dict, Generator, List, Optional, Tuple, Union
from wsgiref.simple_server import make_server

import uvicorn
from hypercorn.typing import ASGIFramework
from typing_extensions import assert_type

from microdot import Microdot, Request, Response, abort, redirect
from microdot.asgi import Microdot as ASGIMicrodot
from microdot.auth import BasicAuth
from microdot.cors import CORS
from microdot.csrf import CSRF
from microdot.login import Login
from microdot.session import Session, SessionDict, with_session
from microdot.sse import SSE, with_sse
from microdot.test_client import TestClient, TestResponse
from microdot.typedefs import (AfterRequestHandler, ASGIApp, BeforeRequestHandler,
                               ExceptionHandler, WSGIApp)
from microdot.websocket import WebSocket, with_websocket
from microdot.wsgi import Microdot as WSGIMicrodot

app = Microdot()
Session(app, secret_key='top-secret')
CORS(app, allowed_origins=['https://example.com'])
CSRF(app)
basic_auth = BasicAuth()
login = Login()


class User:
    def __init__(self, id: int, name: str) -> None:
        self.id = id
        self.name = name


USERS = {1: User(1, 'susan')}


# -- routes -----------------------------------------------------------------------------

@app.route('/')
async def index(request: Request) -> str:
    return 'Hello, ' + request.path


@app.get('/users/<int:user_id>')
def get_user(request: Request, user_id: int) -> Dict[str, Any]:
    user = USERS.get(user_id)
    if user is None:
        abort(404)
    return {'id': user.id, 'name': user.name}


@app.post('/users')
async def create_user(request: Request) -> Tuple[Dict[str, Any], int]:
    data = request.json
    return {'created': data}, 201


@app.route('/old', methods=['GET', 'POST'])
async def old(request: Request) -> Response:
    return redirect('/')


# -- hooks and error handlers -------------------------------------------------------

@app.before_request
async def check_maintenance(request: Request) -> Optional[Tuple[str, int]]:
    if request.args.get('maintenance'):
        return 'Down for maintenance', 503
    return None


@app.after_request
def add_header(request: Request, response: Response) -> Response:
    response.headers['X-Typed'] = 'yes'
    return response


@app.errorhandler(404)
async def not_found(request: Request) -> Tuple[str, int]:
    return 'Not here', 404


@app.errorhandler(ValueError)
def bad_value(request: Request, exc: ValueError) -> Tuple[str, int]:
    return str(exc), 400


@app.on_startup
async def startup() -> None:
    pass


# -- extensions ---------------------------------------------------------------------

@app.route('/counter')
@with_session
async def counter(request: Request, session: SessionDict) -> Dict[str, int]:
    count = int(session.get('count', 0)) + 1
    session['count'] = count
    session.save()
    return {'count': count}


@app.route('/echo')
@with_websocket
async def echo(request: Request, ws: WebSocket) -> None:
    while True:
        message = await ws.receive()
        assert_type(message, Union[str, bytes])
        await ws.send(message)


@app.route('/chat')
@with_websocket(subprotocols=['chat'])
async def chat(request: Request, ws: WebSocket) -> None:
    await ws.send('welcome')


@app.route('/events/<int:start>')
@with_sse
async def events(request: Request, sse: SSE, start: int) -> None:
    for i in range(start, start + 3):
        await sse.send({'n': i}, event='tick')


@basic_auth.authenticate
async def verify(request: Request, username: str, password: str) -> Optional[User]:
    return USERS.get(1) if (username, password) == ('susan', 'hello') else None


@app.route('/secret')
@basic_auth
async def secret(request: Request) -> str:
    return 'secret'


@login.user_loader
async def load_user(user_id: int) -> Optional[User]:
    return USERS.get(user_id)


@app.route('/me')
@login
async def me(request: Request) -> str:
    return 'logged in'


# -- the decorators keep the handlers' types ----------------------------------------

async def check_handlers(request: Request, session: SessionDict, ws: WebSocket) -> None:
    assert_type(await index(request), str)
    assert_type(get_user(request, 1), Dict[str, Any])
    assert_type(await create_user(request), Tuple[Dict[str, Any], int])
    assert_type(await check_maintenance(request), Optional[Tuple[str, int]])
    assert_type(await not_found(request), Tuple[str, int])
    assert_type(bad_value(request, ValueError('x')), Tuple[str, int])
    # the session argument is supplied by with_session: callers give the request only
    assert_type(await counter(request), Dict[str, int])
    assert_type(await echo(request), Response)
    assert_type(await events(request, 1), Tuple[AsyncIterator[bytes], int, Dict[str, str]])
    assert_type(await secret(request), Union[str, Any])
    assert_type(await me(request), Union[str, Response])

    # wrong on purpose: each ignore is needed only while the types are kept
    await index(request, 1)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    get_user(request, 'one')  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await counter(request, session)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    await echo(request, ws)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    await events(request, 'one')  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    await me(request, 1)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    length: int = await index(request)  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
    del length


# -- the test client ------------------------------------------------------------------

async def run_tests() -> None:
    client = TestClient(app)
    res = await client.get('/')
    assert_type(res, TestResponse)
    assert res.status_code == 200
    text: Optional[str] = res.text
    assert text == 'Hello, /'
    res = await client.post('/users', body={'name': 'joe'})
    assert res.json == {'created': {'name': 'joe'}}

    def ws_client() -> Generator[Optional[str], Union[str, bytes, None], None]:
        reply = yield 'hello'
        assert reply == 'hello'

    res = await client.websocket('/echo', ws_client)
    close_code: Optional[int] = res.close_code
    del close_code
    events_received: Optional[List[Dict[str, Any]]] = (await client.get('/events/1')).events
    del events_received


# -- typed hooks stored and passed around ----------------------------------------------

def hooks() -> None:
    before: BeforeRequestHandler = check_maintenance
    after: AfterRequestHandler = add_header
    on_value_error: ExceptionHandler[ValueError] = bad_value
    app.before_request(before)
    app.after_request(after)
    app.errorhandler(ValueError)(on_value_error)


# -- ASGI and WSGI --------------------------------------------------------------------

asgi_app = ASGIMicrodot()
asgi_app.mount(app)
wsgi_app = WSGIMicrodot()
wsgi_app.mount(app)


def serve_asgi() -> None:
    typed: ASGIApp = asgi_app
    # hypercorn types the ASGI protocol in full (TypedDict scopes and events)
    strict: ASGIFramework = asgi_app
    also_strict: ASGIFramework = typed
    uvicorn.run(asgi_app, host='127.0.0.1', port=8000)
    del strict, also_strict


def serve_wsgi() -> None:
    typed: WSGIApp = wsgi_app
    with make_server('127.0.0.1', 8000, wsgi_app) as server:
        server.serve_forever()
    del typed


def plain_app_served() -> None:
    # the core application is served by ASGI and WSGI servers too (microdot.adapters)
    as_asgi: ASGIApp = app
    as_wsgi: WSGIApp = app
    del as_asgi, as_wsgi
