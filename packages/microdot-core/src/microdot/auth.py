"""HTTP Basic and token authentication for routes (Microdot 2.x compatible).

Malformed credentials (bad base64, no colon, undecodable bytes) are treated as
missing ones: the client gets the error answer (401 with ``WWW-Authenticate`` by
default), never a 500.
"""
from __future__ import annotations

import base64
import binascii
import logging
from typing import (Any, Awaitable, Callable, Concatenate, Coroutine, Optional, ParamSpec,
                    Tuple, TypeVar, Union, overload)

from .app import invoke_handler
from .exceptions import abort
from .helpers import wraps
from .requests import Request
from .typedefs import ResponseValue

logger = logging.getLogger('microdot.auth')

Handler = Callable[..., Any]

_P = ParamSpec('_P')
_R = TypeVar('_R')
_F = TypeVar('_F', bound=Callable[..., Any])


class BaseAuth:
    """The machinery of the authentication extensions: the callbacks and the decorators.

    A subclass reads the credentials of a request (``_get_auth``) and makes the
    answer a request without valid ones gets (:meth:`authentication_error`).
    """

    def __init__(self) -> None:
        self.auth_callback: Optional[Handler] = None
        self.error_callback: Handler = self.authentication_error

    def _get_auth(self, request: Request) -> Optional[Tuple[Any, ...]]:  # pragma: no cover
        raise NotImplementedError

    async def authentication_error(self, request: Request) -> ResponseValue:  # pragma: no cover
        """Make the answer to a request that did not authenticate.

        Args:
            request: The request.

        Returns:
            The answer; this base version always raises instead.

        Raises:
            HTTPException: 401, through ``abort``.
        """
        abort(401)

    def authenticate(self, f: _F) -> _F:
        """Register the function that checks credentials (a decorator).

        It is called as ``f(request, *credentials)`` (``def`` or ``async def``) and
        returns the user, or ``None`` (or anything false) to refuse.

        Args:
            f: The function.

        Returns:
            ``f`` itself.
        """
        self.auth_callback = f
        return f

    def errorhandler(self, f: _F) -> _F:
        """Register the function that answers a request that did not authenticate.

        A decorator: ``f(request)`` (``def`` or ``async def``) returns the answer.

        Args:
            f: The function.

        Returns:
            ``f`` itself.
        """
        self.error_callback = f
        return f

    async def _authenticate(self, request: Request) -> Any:
        if self.auth_callback is None:
            raise RuntimeError('No authentication callback: decorate one with '
                               '@auth.authenticate')
        auth = self._get_auth(request)
        if not auth:
            return None
        return await invoke_handler(self.auth_callback, request, *auth)

    @overload
    def __call__(self, f: Callable[Concatenate[Request, _P], Awaitable[_R]]
                 ) -> Callable[Concatenate[Request, _P],
                               Coroutine[Any, Any, Union[_R, ResponseValue]]]: ...

    @overload
    def __call__(self, f: Callable[Concatenate[Request, _P], _R]
                 ) -> Callable[Concatenate[Request, _P],
                               Coroutine[Any, Any, Union[_R, ResponseValue]]]: ...

    def __call__(self, f: Handler) -> Callable[..., Coroutine[Any, Any, Any]]:
        """Run a route only for an authenticated user (the extension used as a decorator).

        Placed below the route decorator: the user goes in ``request.g.current_user``;
        a request without valid credentials gets the error callback's answer instead.

        Args:
            f: The route handler, ``def`` or ``async def``.

        Returns:
            An ``async`` handler with ``f``'s parameters, returning what ``f`` returns or
            the error answer.

        Raises:
            RuntimeError: When called, if no authentication callback was registered.
        """
        @wraps(f)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
            user = await self._authenticate(request)
            request.g.current_user = user
            if not user:
                return await invoke_handler(self.error_callback, request)
            return await invoke_handler(f, request, *args, **kwargs)
        return wrapper

    @overload
    def optional(self, f: Callable[Concatenate[Request, _P], Awaitable[_R]]
                 ) -> Callable[Concatenate[Request, _P], Coroutine[Any, Any, _R]]: ...

    @overload
    def optional(self, f: Callable[Concatenate[Request, _P], _R]
                 ) -> Callable[Concatenate[Request, _P], Coroutine[Any, Any, _R]]: ...

    def optional(self, f: Handler) -> Callable[..., Coroutine[Any, Any, Any]]:
        """Run a route in any case, noting the authenticated user if there is one.

        A decorator, placed below the route decorator: ``request.g.current_user`` is the
        authenticated user or ``None``.

        Args:
            f: The route handler, ``def`` or ``async def``.

        Returns:
            An ``async`` handler with ``f``'s parameters and return value.

        Raises:
            RuntimeError: When called, if no authentication callback was registered.
        """
        @wraps(f)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
            request.g.current_user = await self._authenticate(request) or None
            return await invoke_handler(f, request, *args, **kwargs)
        return wrapper

    @staticmethod
    def _has_error_handler(request: Request, status: int) -> bool:
        for app in (getattr(request, 'subapp', None), getattr(request, 'app', None)):
            if status in (getattr(app, 'error_handlers', None) or {}):
                return True
        return False


class BasicAuth(BaseAuth):
    """HTTP Basic authentication; the callback gets ``(request, username, password)``.

    Args:
        realm: The realm announced in the ``WWW-Authenticate`` challenge.
        charset: The encoding of the credentials (others are refused).
        scheme: The authentication scheme accepted besides ``Basic``.
        error_status: The status of the answer to a request that did not
            authenticate.
    """

    def __init__(self, realm: str = 'Please login', charset: str = 'UTF-8',
                 scheme: str = 'Basic', error_status: int = 401) -> None:
        super().__init__()
        self.realm = realm
        self.charset = charset
        self.scheme = scheme
        self.error_status = error_status

    def _get_auth(self, request: Request) -> Optional[Tuple[str, str]]:
        header = request.headers.get('Authorization')
        if not header:
            return None
        scheme, _, credentials = header.strip().partition(' ')
        if scheme.lower() not in ('basic', self.scheme.lower()):
            return None
        try:
            raw = base64.b64decode(credentials.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        try:
            # as Microdot: credentials that are not in the announced charset fail
            text = raw.decode(self.charset or 'utf-8')
        except (UnicodeDecodeError, LookupError):
            return None
        username, sep, password = text.partition(':')
        if not sep:
            return None
        return username, password

    async def authentication_error(self, request: Request) -> ResponseValue:
        """Answer ``error_status`` (401) with a ``WWW-Authenticate`` challenge.

        Args:
            request: The request that did not authenticate.

        Returns:
            An empty body, the status and the challenge header.
        """
        return '', self.error_status, {
            'WWW-Authenticate': '{} realm="{}", charset="{}"'.format(
                self.scheme, self.realm.replace('"', '\\"'), self.charset)}


class TokenAuth(BaseAuth):
    """Token authentication; the callback gets ``(request, token)``.

    With ``header='Authorization'`` the token follows ``scheme`` (``Bearer``); with
    another header the whole header value is the token.

    Args:
        header: The header that carries the token.
        scheme: The scheme before the token in the ``Authorization`` header.
        error_status: The status of the answer to a request that did not
            authenticate.
    """

    def __init__(self, header: str = 'Authorization', scheme: str = 'Bearer',
                 error_status: int = 401) -> None:
        super().__init__()
        self.header = header
        self.scheme = scheme.lower()
        self.error_status = error_status

    def _get_auth(self, request: Request) -> Optional[Tuple[str]]:
        value = request.headers.get(self.header)
        if not value:
            return None
        if self.header.lower() == 'authorization':
            scheme, _, token = value.strip().partition(' ')
            token = token.strip()
            if scheme.lower() != self.scheme or not token:
                return None
            return (token,)
        return (value.strip(),)

    async def authentication_error(self, request: Request) -> ResponseValue:
        """Answer a request that did not authenticate, as Microdot does.

        ``abort(error_status)`` if the application handles that status; else the error,
        with a ``WWW-Authenticate`` challenge for 401 on the ``Authorization`` header.

        Args:
            request: The request that did not authenticate.

        Returns:
            The 401 answer with its challenge.

        Raises:
            HTTPException: ``error_status``, through ``abort``, in the other cases.
        """
        if self._has_error_handler(request, self.error_status) or \
                self.error_status != 401 or self.header.lower() != 'authorization':
            abort(self.error_status)
        return '401 error', 401, {
            'WWW-Authenticate': '{}'.format(self.scheme.capitalize())}
