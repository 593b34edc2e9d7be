"""User sessions stored in a signed cookie (Microdot 2.x compatible).

The cookie holds an HS256 JSON Web Token, the format Microdot writes with PyJWT,
produced and checked here with the standard library only (``hmac``, ``hashlib``).
A cookie that is tampered with, malformed, signed with another algorithm (``none``
included), or expired reads as an empty session: never an error answer.

``secret_key`` may be a list for key rotation: the first key signs, every key
verifies. Cookie defaults: ``Path=/``, ``HttpOnly``, ``SameSite=Lax``, and ``Secure``
when the request came over https (set ``cookie_options`` to change them). Give
``max_age`` (seconds) to make sessions expire: the token gets an ``exp`` claim,
renewed each time the session is saved, and the cookie a matching ``Max-Age``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import time
from datetime import datetime
from typing import (TYPE_CHECKING, Any, Awaitable, Callable, Concatenate, Coroutine, Dict,
                    List, Optional, ParamSpec, Sequence, TypeGuard, TypeVar, Union, overload)

from .app import invoke_handler
from .app import merge_vary as merge_vary  # (kept here for importers)
from .helpers import wraps
from .requests import Request
from .responses import Response

if TYPE_CHECKING:
    from .app import Microdot

_P = ParamSpec('_P')
_R = TypeVar('_R')

logger = logging.getLogger('microdot.session')

SecretKey = Union[str, bytes]
SecretKeys = Union[SecretKey, Sequence[SecretKey]]

_HEADER = b'{"alg":"HS256","typ":"JWT"}'
_B64URL = re.compile(r'^[A-Za-z0-9_-]*$')
#: Tokens longer than this are not even parsed (browsers cap cookies near 4 KiB).
MAX_TOKEN_LENGTH = 16 * 1024


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def _b64decode(text: str) -> bytes:
    """Strict base64url without padding; raises ``ValueError`` on anything else."""
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError('invalid base64url segment')
    try:
        return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))
    except binascii.Error as exc:  # pragma: no cover - excluded by the checks above
        raise ValueError(str(exc)) from None


def _as_bytes(key: Union[str, bytes, bytearray]) -> bytes:
    return key.encode('utf-8') if isinstance(key, str) else bytes(key)


def _key_list(keys: Optional[SecretKeys]) -> List[bytes]:
    if keys is None:
        return []
    if isinstance(keys, (str, bytes, bytearray)):
        return [_as_bytes(keys)] if keys else []
    return [_as_bytes(k) for k in keys if k]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_json_object(value: Any) -> TypeGuard[Dict[str, Any]]:
    return isinstance(value, dict)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):  # PyJWT turns datetime claims into timestamps
        return int(value.timestamp())
    raise TypeError('%r is not JSON serializable' % (value,))


def jwt_encode(payload: Dict[str, Any], key: SecretKey) -> str:
    """Sign a payload as an HS256 JSON Web Token (the token PyJWT's ``jwt.encode`` makes).

    Args:
        payload: The claims, JSON-serializable (``datetime`` values become timestamps).
        key: The secret key.

    Returns:
        The token.
    """
    body = json.dumps(payload, separators=(',', ':'), default=_json_default).encode()
    signing_input = _b64encode(_HEADER) + '.' + _b64encode(body)
    signature = hmac.new(_as_bytes(key), signing_input.encode('ascii'),
                         hashlib.sha256).digest()
    return signing_input + '.' + _b64encode(signature)


def jwt_decode(token: Any, keys: Optional[SecretKeys], now: Optional[float] = None
               ) -> Optional[Dict[str, Any]]:
    """Check an HS256 JSON Web Token and return its payload.

    Only ``alg: HS256`` is accepted (never ``none``); ``exp`` and ``nbf`` are
    enforced.

    Args:
        token: The token (anything else than a ``str`` is invalid).
        keys: The secret key, or several: a token signed with any of them is valid.
        now: The current time as a timestamp (``None``: ``time.time()``).

    Returns:
        The payload of a valid token, else ``None``.
    """
    key_list = _key_list(keys)
    if not key_list or not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    parts = token.split('.')
    if len(parts) != 3:
        return None
    try:
        header = json.loads(_b64decode(parts[0]))
        signature = _b64decode(parts[2])
        if not _is_json_object(header) or header.get('alg') != 'HS256':
            return None
        signing_input = (parts[0] + '.' + parts[1]).encode('ascii')
        if not any(hmac.compare_digest(
                hmac.new(key, signing_input, hashlib.sha256).digest(), signature)
                for key in key_list):
            return None
        payload = json.loads(_b64decode(parts[1]))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not _is_json_object(payload):
        return None
    now = time.time() if now is None else now
    for claim in ('exp', 'nbf', 'iat'):
        if claim in payload and not _is_number(payload[claim]):
            return None
    if 'exp' in payload and payload['exp'] <= now:
        return None
    if 'nbf' in payload and payload['nbf'] > now:
        return None
    return payload


def add_vary(request: Request, header: str) -> None:
    """Record that the response depends on a request header, as Microdot does.

    The header goes in ``request.g._vary``; dispatch adds it to the ``Vary`` header
    of whatever answer the request gets, errors included.

    Args:
        request: The request being answered.
        header: The name of the header the answer depends on.
    """
    vary: Optional[set[str]] = getattr(request.g, '_vary', None)
    if vary is None:
        vary = set()
        request.g._vary = vary
    vary.add(header)


class SessionDict(Dict[str, Any]):
    """The session data: a ``dict`` with :meth:`save` and :meth:`delete`.

    Args:
        request: The request whose session this is.
        session_dict: The data read from the session cookie.
        session: The :class:`Session` extension (``None``: the application's).
    """

    def __init__(self, request: Request, session_dict: Dict[str, Any],
                 session: Optional[Session] = None) -> None:
        super().__init__(session_dict)
        self.request = request
        self._session = session

    def _extension(self) -> 'Session':
        return self._session or session_for(self.request)

    def save(self) -> None:
        """Write the session cookie with the current contents on the request's response."""
        self._extension().update(self.request, self)

    def delete(self) -> None:
        """Remove the session cookie on the request's response."""
        self._extension().delete(self.request)


class Session:
    """Session support for an application; see the module docstring for the defaults.

    Args:
        app: The application to attach to now (else call :meth:`initialize`).
        secret_key: The key that signs the session cookie, or a list of keys (the
            first signs, every one verifies: key rotation).
        cookie_options: ``Response.set_cookie`` options for the cookie (``path``,
            ``http_only``, ``samesite``, ``secure``, ``max_age``...).
        max_age: Session lifetime in seconds (``None``: until the browser session
            ends).
    """

    #: Name of the session cookie.
    cookie_name = 'session'
    secret_key: Optional[SecretKeys] = None
    #: Session lifetime in seconds (``None``: until the browser session ends).
    max_age: Optional[float] = None

    def __init__(self, app: Optional[Microdot] = None, secret_key: Optional[SecretKeys] = None,
                 cookie_options: Optional[Dict[str, Any]] = None, *,
                 max_age: Optional[float] = None) -> None:
        self.secret_key = secret_key
        self.cookie_options: Dict[str, Any] = dict(cookie_options or {})
        if max_age is not None:
            self.max_age = max_age
        if app is not None:
            self.initialize(app)

    def initialize(self, app: Microdot, secret_key: Optional[SecretKeys] = None,
                   cookie_options: Optional[Dict[str, Any]] = None, *,
                   max_age: Optional[float] = None) -> None:
        """Attach to an application (``app._session``), optionally setting the key and options.

        Args:
            app: The application.
            secret_key: The key (or keys) that sign the session cookie, if not given
                before.
            cookie_options: ``Response.set_cookie`` options for the cookie.
            max_age: Session lifetime in seconds.
        """
        if secret_key is not None:
            self.secret_key = secret_key
        if cookie_options is not None:
            self.cookie_options = dict(cookie_options)
        if max_age is not None:
            self.max_age = max_age
        self.cookie_options.setdefault('path', '/')
        self.cookie_options.setdefault('http_only', True)
        self.cookie_options.setdefault('samesite', 'Lax')
        if self.max_age is None and self.cookie_options.get('max_age') is not None:
            self.max_age = self.cookie_options['max_age']
        setattr(app, '_session', self)

    # -- the request's session ------------------------------------------------------

    def _check_key(self) -> None:
        if not _key_list(self.secret_key):
            raise ValueError('The session secret key is not configured')

    def get(self, request: Request) -> SessionDict:
        """Return the request's session.

        Args:
            request: The request.

        Returns:
            The session data; empty when the request has no valid session cookie.

        Raises:
            ValueError: If no secret key is configured.
        """
        self._check_key()
        cached: Optional[SessionDict] = getattr(request.g, '_session', None)
        if cached is not None:
            return cached
        add_vary(request, 'Cookie')
        data: Dict[str, Any] = {}
        token = request.cookies.get(self.cookie_name)
        if token:
            data = self.decode(token)
            if self.max_age is not None:
                data.pop('exp', None)  # managed here: renewed on each save
        session = SessionDict(request, data, self)
        request.g._session = session
        return session

    def _cookie_options(self, request: Request) -> Dict[str, Any]:
        options = dict(self.cookie_options)
        if self.max_age is not None:
            options.setdefault('max_age', int(self.max_age))
        if 'secure' not in options:
            options['secure'] = getattr(request, 'scheme', 'http') == 'https'
        samesite = options.get('samesite')
        if isinstance(samesite, str) and samesite.lower() == 'none':
            options['secure'] = True  # browsers refuse SameSite=None without Secure
        return options

    def _set_action(self, request: Request, action: Optional[str]) -> None:
        """Remember the last cookie change for this request; applied once, at the end."""
        request.g._session_cookie = action
        if getattr(request.g, '_session_hook', False):
            return
        request.g._session_hook = True

        def write_session_cookie(req: Request, res: Response) -> Response:
            value: Optional[str] = getattr(req.g, '_session_cookie', None)
            options = self._cookie_options(req)
            if value is None:
                options.pop('max_age', None)
                options.pop('expires', None)
                res.delete_cookie(self.cookie_name, **options)
            else:
                res.set_cookie(self.cookie_name, value, **options)
            return res
        request.after_request(write_session_cookie)

    def update(self, request: Request, session: Dict[str, Any]) -> None:
        """Set the session cookie to new contents on the request's response.

        Args:
            request: The request being answered.
            session: The session data.

        Raises:
            ValueError: If no secret key is configured.
        """
        self._check_key()
        payload = dict(session)
        if self.max_age is not None:
            payload['exp'] = int(time.time() + self.max_age)
        token = self.encode(payload)
        if len(token) > 4000:
            logger.warning('Session cookie is %d bytes; browsers may drop cookies '
                           'over 4096 bytes', len(token))
        self._set_action(request, token)

    def delete(self, request: Request) -> None:
        """Remove the session cookie on the request's response.

        Args:
            request: The request being answered.
        """
        cached: Optional[SessionDict] = getattr(request.g, '_session', None)
        if cached is not None:
            cached.clear()
        self._set_action(request, None)

    # -- token format ---------------------------------------------------------------

    def encode(self, payload: Dict[str, Any], secret_key: Optional[SecretKeys] = None) -> str:
        """Sign a session payload into a token.

        Args:
            payload: The session data.
            secret_key: The key to sign with (``None``: the first configured key).

        Returns:
            The token (an HS256 JSON Web Token).

        Raises:
            ValueError: If there is no key to sign with.
        """
        keys = _key_list(secret_key if secret_key is not None else self.secret_key)
        if not keys:
            raise ValueError('The session secret key is not configured')
        return jwt_encode(payload, keys[0])

    def decode(self, session: str, secret_key: Optional[SecretKeys] = None) -> Dict[str, Any]:
        """Read a session token.

        Args:
            session: The token.
            secret_key: The key or keys to verify with (``None``: the configured ones).

        Returns:
            The payload of a valid token, or ``{}`` if it is invalid or expired.
        """
        keys = secret_key if secret_key is not None else self.secret_key
        payload = jwt_decode(session, keys)
        return payload if payload is not None else {}

    @overload
    def with_session(self, f: Callable[Concatenate[Request, SessionDict, _P], Awaitable[_R]]
                     ) -> Callable[Concatenate[Request, _P], Coroutine[Any, Any, _R]]: ...

    @overload
    def with_session(self, f: Callable[Concatenate[Request, SessionDict, _P], _R]
                     ) -> Callable[Concatenate[Request, _P], Coroutine[Any, Any, _R]]: ...

    def with_session(self, f: Callable[..., Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
        """Give a route handler this extension's session as its second argument.

        A decorator, placed below the route decorator: the handler is called as
        ``f(request, session, *args, **kwargs)``; ``session.save()`` stores changes.

        Args:
            f: The handler, ``def`` or ``async def``.

        Returns:
            An ``async`` handler taking the request and ``f``'s other arguments.
        """
        @wraps(f)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
            return await invoke_handler(f, request, self.get(request), *args, **kwargs)
        return wrapper


def session_for(request: Request) -> Session:
    """Find the session extension of the application that serves a request.

    Args:
        request: The request.

    Returns:
        The :class:`Session` attached to the request's application, or to its
        sub-application.

    Raises:
        RuntimeError: If neither has one.
    """
    for app in (getattr(request, 'app', None), getattr(request, 'subapp', None)):
        session: Optional[Session] = getattr(app, '_session', None)
        if session is not None:
            return session
    raise RuntimeError('The session extension is not initialized for this application')


@overload
def with_session(f: Callable[Concatenate[Request, SessionDict, _P], Awaitable[_R]]
                 ) -> Callable[Concatenate[Request, _P], Coroutine[Any, Any, _R]]: ...


@overload
def with_session(f: Callable[Concatenate[Request, SessionDict, _P], _R]
                 ) -> Callable[Concatenate[Request, _P], Coroutine[Any, Any, _R]]: ...


def with_session(f: Callable[..., Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
    """Give a route handler the application's session as its second argument.

    A decorator, placed below the route decorator: the handler is called as
    ``f(request, session, *args, **kwargs)``; ``session.save()`` stores changes.

    Args:
        f: The handler, ``def`` or ``async def``.

    Returns:
        An ``async`` handler taking the request and ``f``'s other arguments.
    """
    @wraps(f)
    async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
        return await invoke_handler(f, request, session_for(request).get(request),
                                    *args, **kwargs)
    return wrapper
