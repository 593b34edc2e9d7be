"""User logins kept in the session, with "remember me" (Microdot 2.x compatible).

Requires the session extension (:class:`microdot.session.Session`). Beyond
Microdot: the ``next`` URL is only followed when it is a same-site relative path
(no ``//host``, ``/\\host``, scheme, or control characters), and the remember-me
cookie is ``HttpOnly``, ``SameSite=Lax``, and ``Secure`` over https.
"""
from __future__ import annotations

import logging
import time
from typing import (Any, Awaitable, Callable, Concatenate, Coroutine, Optional, ParamSpec,
                    Tuple, TypeVar, Union, overload)
from urllib.parse import quote

from .app import invoke_handler
from .helpers import wraps
from .requests import Request
from .responses import Response
from .session import SessionDict, session_for

logger = logging.getLogger('microdot.login')

Handler = Callable[..., Any]

_P = ParamSpec('_P')
_R = TypeVar('_R')
_F = TypeVar('_F', bound=Callable[..., Any])

#: Name of the remember-me cookie (as in Microdot).
REMEMBER_COOKIE = '_remember'


def is_safe_redirect(url: Any) -> bool:
    r"""Tell whether a URL is a relative path on this site, safe to redirect to.

    Args:
        url: The URL, usually the ``next`` query argument.

    Returns:
        ``True`` for a path that starts with one ``/`` and holds only printable ASCII
        characters (no ``//host``, ``/\host``, scheme or control characters).
    """
    if not isinstance(url, str) or not url.startswith('/'):
        return False
    if url.startswith('//') or '\\' in url:
        return False  # "//host" and "/\host" are other hosts to browsers
    return all(0x21 <= ord(ch) <= 0x7e for ch in url)


class Login:
    """Login support: ``@login`` protects routes, sending anonymous users to log in.

    Anonymous users are redirected to ``login_url`` with ``?next=`` the page they
    asked for. Requires the session extension (:class:`microdot.session.Session`).

    Args:
        login_url: Where anonymous users are redirected.
    """

    def __init__(self, login_url: str = '/login') -> None:
        self.login_url = login_url
        self.user_loader_callback: Optional[Handler] = None

    def user_loader(self, f: _F) -> _F:
        """Register the function that loads a user from its id (a decorator).

        It is called as ``f(user_id)`` (``def`` or ``async def``) and returns the user,
        or ``None``.

        Args:
            f: The function.

        Returns:
            ``f`` itself.
        """
        self.user_loader_callback = f
        return f

    def _get_session(self, request: Request) -> SessionDict:
        return session_for(request).get(request)

    def _update_remember_cookie(self, request: Request, days: float,
                                user_id: Any = None) -> None:
        """Set (or with ``days=0`` delete) the remember-me cookie on the response."""
        ext = session_for(request)
        max_age = int(days * 24 * 60 * 60)
        payload = ext.encode({'user_id': user_id, 'days': days,
                              'exp': time.time() + max_age}) if days > 0 else ''
        request.g._remember_cookie = (payload, max_age)
        if getattr(request.g, '_remember_hook', False):
            return
        request.g._remember_hook = True

        def set_remember_cookie(req: Request, res: Response) -> Response:
            options: dict[str, Any] = {
                'path': '/', 'http_only': True, 'samesite': 'Lax',
                'secure': getattr(req, 'scheme', 'http') == 'https'}
            remember: Tuple[str, int] = getattr(req.g, '_remember_cookie', ('', 0))
            value, seconds = remember
            if value:
                res.set_cookie(REMEMBER_COOKIE, value, max_age=seconds, **options)
            else:
                res.delete_cookie(REMEMBER_COOKIE, **options)
            return res
        request.after_request(set_remember_cookie)

    def _get_user_id_from_session(self, request: Request) -> Any:
        session = self._get_session(request)
        if session and '_user_id' in session:
            return session['_user_id']
        token = request.cookies.get(REMEMBER_COOKIE)
        if token:
            payload = session_for(request).decode(token)
            user_id = payload.get('user_id')
            if user_id:
                days = payload.get('days', 30)
                if not isinstance(days, (int, float)) or isinstance(days, bool) \
                        or days <= 0:
                    days = 30
                self._update_remember_cookie(request, days, user_id)
                session['_user_id'] = user_id
                session['_fresh'] = False
                session.save()
                return user_id
        return None

    def _login_redirect(self, request: Request) -> Response:
        sep = '&' if '?' in self.login_url else '?'
        return Response.redirect(self.login_url + sep + 'next=' + quote(request.url, safe='/'))

    async def _redirect_to_login(self, request: Request) -> Response:
        return self._login_redirect(request)

    async def login_user(self, request: Request, user: Any, remember: Union[bool, int] = False,
                         redirect_url: str = '/') -> Response:
        """Log a user in and redirect to the page that asked for it.

        The user's ``id`` goes in the session. The redirect goes to the ``next`` query
        argument if it is a safe local path, else to ``redirect_url``.

        Args:
            request: The login request.
            user: The user; it has an ``id`` attribute.
            remember: Keep the login in a cookie: ``True`` for 30 days, or a number of
                days.
            redirect_url: Where to go without a (safe) ``next`` argument.

        Returns:
            The redirect response.
        """
        session = self._get_session(request)
        session['_user_id'] = user.id
        session['_fresh'] = True
        session.save()
        request.g.current_user = user
        if remember:
            days = 30 if remember is True else int(remember)
            self._update_remember_cookie(request, days, session['_user_id'])
        next_url = request.args.get('next')
        if next_url is None or not is_safe_redirect(next_url):
            if next_url is not None:
                logger.info('Login: ignoring unsafe next URL %r', next_url)
            next_url = redirect_url
        return Response.redirect(next_url)

    async def logout_user(self, request: Request) -> None:
        """Log the current user out (session and remember-me cookie).

        Args:
            request: The request.
        """
        session = self._get_session(request)
        session.pop('_user_id', None)
        session.pop('_fresh', None)
        session.save()
        request.g.current_user = None
        if REMEMBER_COOKIE in request.cookies:
            self._update_remember_cookie(request, 0)

    async def get_current_user(self, request: Request) -> Any:
        """Return the logged in user, loaded once per request with the ``user_loader``.

        Args:
            request: The request.

        Returns:
            The user, or ``None`` when nobody is logged in.

        Raises:
            RuntimeError: If a user is logged in but no ``user_loader`` was registered.
        """
        if not hasattr(request.g, 'current_user'):
            user_id = self._get_user_id_from_session(request)
            user = None
            if user_id:
                if self.user_loader_callback is None:
                    raise RuntimeError('No user loader: decorate one with @login.user_loader')
                user = await invoke_handler(self.user_loader_callback, user_id)
            request.g.current_user = user
        return request.g.current_user

    @overload
    def __call__(self, f: Callable[Concatenate[Request, _P], Awaitable[_R]]
                 ) -> Callable[Concatenate[Request, _P], Coroutine[Any, Any, Union[_R, Response]]]:
        ...

    @overload
    def __call__(self, f: Callable[Concatenate[Request, _P], _R]
                 ) -> Callable[Concatenate[Request, _P], Coroutine[Any, Any, Union[_R, Response]]]:
        ...

    def __call__(self, f: Handler) -> Callable[..., Coroutine[Any, Any, Any]]:
        """Run a route for logged in users; redirect others to log in.

        The extension used as a decorator, placed below the route decorator.

        Args:
            f: The route handler, ``def`` or ``async def``.

        Returns:
            An ``async`` handler with ``f``'s parameters, returning what ``f`` returns or
            the redirect response.
        """
        @wraps(f)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
            user = await self.get_current_user(request)
            if not user:
                return await self._redirect_to_login(request)
            return await invoke_handler(f, request, *args, **kwargs)
        return wrapper

    @overload
    def fresh(self, f: Callable[Concatenate[Request, _P], Awaitable[_R]]
              ) -> Callable[Concatenate[Request, _P], Coroutine[Any, Any, Union[_R, Response]]]:
        ...

    @overload
    def fresh(self, f: Callable[Concatenate[Request, _P], _R]
              ) -> Callable[Concatenate[Request, _P], Coroutine[Any, Any, Union[_R, Response]]]:
        ...

    def fresh(self, f: Handler) -> Callable[..., Coroutine[Any, Any, Any]]:
        """Run a route for users who logged in during this session; redirect others.

        Like ``@login``, but a login restored from the remember-me cookie is not enough.
        A decorator, placed below the route decorator.

        Args:
            f: The route handler, ``def`` or ``async def``.

        Returns:
            An ``async`` handler with ``f``'s parameters, returning what ``f`` returns or
            the redirect response.
        """
        base_wrapper = self.__call__(f)

        @wraps(f)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
            session = self._get_session(request)
            if session.get('_fresh'):
                return await base_wrapper(request, *args, **kwargs)
            return await self._redirect_to_login(request)
        return wrapper
