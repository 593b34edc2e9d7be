"""HTTP Basic and token authentication for routes (Microdot 2.x compatible).

Malformed credentials (bad base64, no colon, undecodable bytes) are treated as
missing ones: the client gets the error answer (401 with ``WWW-Authenticate`` by
default), never a 500.
"""
from __future__ import annotations

import base64
import binascii
import logging
from typing import Any, Callable, Optional, Tuple

from .app import invoke_handler
from .exceptions import abort
from .helpers import wraps

logger = logging.getLogger('microdot.auth')

Handler = Callable[..., Any]


class BaseAuth:
    """Shared machinery: the authentication and error callbacks, and the decorators."""

    def __init__(self) -> None:
        self.auth_callback: Optional[Handler] = None
        self.error_callback: Handler = self.authentication_error

    def _get_auth(self, request: Any) -> Optional[Tuple[Any, ...]]:  # pragma: no cover
        raise NotImplementedError

    async def authentication_error(self, request: Any) -> Any:  # pragma: no cover
        abort(401)

    def authenticate(self, f: Handler) -> Handler:
        """Decorator: ``f(request, *credentials)`` returns the user, or None to refuse."""
        self.auth_callback = f
        return f

    def errorhandler(self, f: Handler) -> Handler:
        """Decorator: ``f(request)`` makes the answer sent when authentication fails."""
        self.error_callback = f
        return f

    async def _authenticate(self, request: Any) -> Any:
        if self.auth_callback is None:
            raise RuntimeError('No authentication callback: decorate one with '
                               '@auth.authenticate')
        auth = self._get_auth(request)
        if not auth:
            return None
        return await invoke_handler(self.auth_callback, request, *auth)

    def __call__(self, f: Handler) -> Handler:
        """Decorator: run the route only for an authenticated user
        (``request.g.current_user``); otherwise answer with the error callback."""
        @wraps(f)
        async def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            user = await self._authenticate(request)
            request.g.current_user = user
            if not user:
                return await invoke_handler(self.error_callback, request)
            return await invoke_handler(f, request, *args, **kwargs)
        return wrapper

    def optional(self, f: Handler) -> Handler:
        """Decorator: run the route in any case; ``request.g.current_user`` is the
        authenticated user or ``None``."""
        @wraps(f)
        async def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            request.g.current_user = await self._authenticate(request) or None
            return await invoke_handler(f, request, *args, **kwargs)
        return wrapper

    @staticmethod
    def _has_error_handler(request: Any, status: int) -> bool:
        for app in (getattr(request, 'subapp', None), getattr(request, 'app', None)):
            if status in (getattr(app, 'error_handlers', None) or {}):
                return True
        return False


class BasicAuth(BaseAuth):
    """HTTP Basic authentication; the callback gets ``(request, username, password)``."""

    def __init__(self, realm: str = 'Please login', charset: str = 'UTF-8',
                 scheme: str = 'Basic', error_status: int = 401) -> None:
        super().__init__()
        self.realm = realm
        self.charset = charset
        self.scheme = scheme
        self.error_status = error_status

    def _get_auth(self, request: Any) -> Optional[Tuple[str, str]]:
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

    async def authentication_error(self, request: Any) -> Any:
        """401 (or ``error_status``) with a ``WWW-Authenticate`` challenge."""
        return '', self.error_status, {
            'WWW-Authenticate': '{} realm="{}", charset="{}"'.format(
                self.scheme, self.realm.replace('"', '\\"'), self.charset)}


class TokenAuth(BaseAuth):
    """Token authentication; the callback gets ``(request, token)``.

    With ``header='Authorization'`` the token follows ``scheme`` (``Bearer``); with
    another header the whole header value is the token.
    """

    def __init__(self, header: str = 'Authorization', scheme: str = 'Bearer',
                 error_status: int = 401) -> None:
        super().__init__()
        self.header = header
        self.scheme = scheme.lower()
        self.error_status = error_status

    def _get_auth(self, request: Any) -> Optional[Tuple[str]]:
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

    async def authentication_error(self, request: Any) -> Any:
        """``abort(error_status)`` if the app handles that status; else the error with
        a ``WWW-Authenticate`` challenge (for 401 on the ``Authorization`` header)."""
        if self._has_error_handler(request, self.error_status) or \
                self.error_status != 401 or self.header.lower() != 'authorization':
            abort(self.error_status)
        return '401 error', 401, {
            'WWW-Authenticate': '{}'.format(self.scheme.capitalize())}
