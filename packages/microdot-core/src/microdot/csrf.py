"""Cross-site request forgery protection from Fetch metadata (Microdot 2.x compatible).

Unsafe requests are accepted when the browser says they are not cross-site
(``Sec-Fetch-Site``), or, for browsers that do not send that header, when their
``Origin`` is the application's own host or one the ``CORS`` object trusts.
Requests with neither header (non-browser clients) are accepted. ``Origin: null``
and malformed origins are answered 403, never 500.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple, TypeVar

from .cors import DEFAULT_PORTS, Origin, parse_origin
from .exceptions import abort
from .session import add_vary

if TYPE_CHECKING:
    from .app import Microdot
    from .cors import CORS
    from .requests import Request

_F = TypeVar('_F', bound=Callable[..., Any])

logger = logging.getLogger('microdot.csrf')


def _host_of(request: Request) -> Optional[Tuple[str, Optional[int]]]:
    """``(host, port or None)`` from the request's ``Host`` header, lower case."""
    host = request.headers.get('Host')
    if not host:
        return None
    host = host.strip().lower()
    if host.startswith('['):
        name, _, rest = host[1:].partition(']')
        port_text = rest[1:] if rest.startswith(':') else ''
    else:
        name, _, port_text = host.partition(':')
    if not name:
        return None
    if port_text:
        if not port_text.isdigit():
            return None
        return name, int(port_text)
    return name, None


class CSRF:
    """Protect an application's unsafe-method routes (or chosen routes) from CSRF.

    Args:
        app: The application to protect now (else call :meth:`initialize`).
        cors: A :class:`~microdot.cors.CORS` object whose allowed origins are trusted
            as well.
        protect_all: Check every request whose method is not in
            :attr:`SAFE_METHODS` (``False``: only the routes marked with
            :meth:`protect`).
        allow_subdomains: Trust requests from subdomains of the trusted origins
            (``Sec-Fetch-Site: same-site`` included).
    """

    SAFE_METHODS = ['GET', 'HEAD', 'OPTIONS']

    def __init__(self, app: Optional[Microdot] = None, cors: Optional[CORS] = None,
                 protect_all: bool = True, allow_subdomains: bool = False) -> None:
        self.cors: Optional[CORS] = None
        self.protect_all = protect_all
        self.allow_subdomains = allow_subdomains
        self.exempt_routes: List[Callable[..., Any]] = []
        self.protected_routes: List[Callable[..., Any]] = []
        if app is not None:
            self.initialize(app, cors)

    def initialize(self, app: Microdot, cors: Optional[CORS] = None) -> None:
        """Install the check on an application.

        A request refused is answered 403 through the application's error handlers.

        Args:
            app: The application.
            cors: A :class:`~microdot.cors.CORS` object whose allowed origins are trusted
                as well.
        """
        self.cors = cors

        @app.before_request
        async def csrf_before_request(request: Request) -> None:
            if self._needs_check(request) and not self.is_allowed(request):
                logger.info('CSRF: refused %s %s (Sec-Fetch-Site=%r, Origin=%r)',
                            request.method, request.path,
                            request.headers.get('Sec-Fetch-Site'),
                            request.headers.get('Origin'))
                abort(403, 'Forbidden')

    def _needs_check(self, request: Request) -> bool:
        handler = request.route  # the handler function, as in Microdot
        if handler is not None and handler in self.protected_routes:
            return True
        return (self.protect_all and request.method.upper() not in self.SAFE_METHODS
                and handler not in self.exempt_routes)

    def is_allowed(self, request: Request) -> bool:
        """Tell whether a request may proceed (it is not a cross-site forgery).

        Args:
            request: The request to check.

        Returns:
            ``True`` if the browser says it is not cross-site, its origin is the
            application's own or a trusted one, or it carries neither header (not a
            browser request).
        """
        sfs = (request.headers.get('Sec-Fetch-Site') or '').strip().lower()
        origin = (request.headers.get('Origin') or '').strip()  # empty: absent, as Microdot
        if sfs in ('same-origin', 'none') or (sfs == 'same-site' and self.allow_subdomains):
            add_vary(request, 'Sec-Fetch-Site')
            return True
        if origin:
            parsed = parse_origin(origin)
            if parsed is None:
                return False  # "null" (sandboxed, file://, redirects) or malformed
            if not sfs and self._is_own_origin(request, parsed):
                return True
            return self._is_trusted_origin(parsed)
        return not sfs  # no browser metadata at all: not a browser request

    @staticmethod
    def _is_own_origin(request: Request, origin: Origin) -> bool:
        host = _host_of(request)
        if host is None:
            return False
        scheme, name, port = origin
        host_name, host_port = host
        if host_port is None:
            host_port = DEFAULT_PORTS.get(scheme)
        return name == host_name and port == host_port

    def _is_trusted_origin(self, origin: Origin) -> bool:
        cors = self.cors
        allowed: Any = getattr(cors, 'allowed_origins', None)
        if not allowed or allowed == '*':
            return False
        if isinstance(allowed, str):
            allowed = [allowed]
        scheme, host, port = origin
        for candidate in allowed:
            trusted = parse_origin(candidate)
            if trusted is None:
                continue
            t_scheme, t_host, t_port = trusted
            if scheme != t_scheme or port != t_port:
                continue
            if host == t_host or (self.allow_subdomains and host.endswith('.' + t_host)):
                return True
        return False

    def exempt(self, f: _F) -> _F:
        """Never check a route (a decorator, placed below the route decorator).

        Args:
            f: The route handler.

        Returns:
            ``f`` itself.
        """
        self.exempt_routes.append(f)
        return f

    def protect(self, f: _F) -> _F:
        """Check a route whatever its method (a decorator, placed below the route decorator).

        Args:
            f: The route handler.

        Returns:
            ``f`` itself.
        """
        self.protected_routes.append(f)
        return f
