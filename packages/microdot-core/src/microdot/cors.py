"""Cross-Origin Resource Sharing headers and preflight answers (Microdot 2.x compatible).

Beyond Microdot: ``null`` and malformed ``Origin`` values are never allowed (no
error either), and ``allowed_origins='*'`` with ``allow_credentials=True`` is refused
with ``ValueError`` (Microdot echoes any origin with credentials, so every site can
read authenticated answers). ``Vary: Origin`` is added when the request's origin is
echoed.
"""
from __future__ import annotations

import logging
import re
from typing import (TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Set, Tuple,
                    Union)
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .app import Microdot
    from .requests import Request
    from .responses import Response

logger = logging.getLogger('microdot.cors')

_ORIGIN_RE = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s\\]+$')
#: The port each scheme implies when an origin names none.
DEFAULT_PORTS = {'http': 80, 'https': 443, 'ws': 80, 'wss': 443}

Origin = Tuple[str, str, Optional[int]]


def parse_origin(origin: Any) -> Optional[Origin]:
    """Split a serialized origin (an ``Origin`` header value) into its parts.

    Args:
        origin: The origin text, such as ``'https://example.com:8443'``.

    Returns:
        ``(scheme, host, port)`` (lower case; the scheme's default port when none is
        given), or ``None`` if it is ``null`` or malformed (a path, credentials, a bad
        port, control characters...).
    """
    if not isinstance(origin, str) or not _ORIGIN_RE.match(origin):
        return None
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if not host:
        return None
    scheme = parts.scheme.lower()
    if port is None:
        port = DEFAULT_PORTS.get(scheme)
    return scheme, host.lower(), port


def normalize_origin(origin: str) -> Optional[str]:
    """Write an origin in its canonical form (lower case, default port dropped).

    Args:
        origin: The origin text.

    Returns:
        The canonical text, or ``None`` if ``origin`` is ``null`` or malformed.
    """
    parsed = parse_origin(origin)
    if parsed is None:
        return None
    scheme, host, port = parsed
    if ':' in host:
        host = '[%s]' % host
    if port is None or port == DEFAULT_PORTS.get(scheme):
        return '%s://%s' % (scheme, host)
    return '%s://%s:%d' % (scheme, host, port)


class CORS:
    """Add CORS headers to an application's responses and answer preflight requests.

    Args:
        app: The application to install the hooks on now (else call
            :meth:`initialize`).
        allowed_origins: ``'*'`` (any origin) or the origins allowed (a list, or one
            origin); ``None`` allows none.
        allow_credentials: Send ``Access-Control-Allow-Credentials: true`` to allowed
            origins (refused with ``'*'``).
        allowed_methods: The methods a preflight may ask for; ``None`` allows what is
            asked for.
        expose_headers: The response headers scripts may read
            (``Access-Control-Expose-Headers``).
        allowed_headers: The request headers a preflight may ask for; ``None`` allows
            what is asked for.
        max_age: Seconds a browser may cache a preflight answer.
        handle_cors: Install the hooks and the preflight handler (``False``: only
            compute headers with :meth:`get_cors_headers`).

    Raises:
        ValueError: If ``allowed_origins`` is ``'*'`` while ``allow_credentials`` is
            true (any site could read the answers to its users' authenticated
            requests).
    """

    def __init__(self, app: Optional[Microdot] = None,
                 allowed_origins: Union[None, str, Sequence[str]] = None,
                 allow_credentials: bool = False,
                 allowed_methods: Optional[Sequence[str]] = None,
                 expose_headers: Optional[Sequence[str]] = None,
                 allowed_headers: Optional[Sequence[str]] = None,
                 max_age: Optional[int] = None, handle_cors: bool = True) -> None:
        self.allowed_origins = allowed_origins
        self.allow_credentials = allow_credentials
        self.allowed_methods = None if allowed_methods is None \
            else [m.upper() for m in allowed_methods]
        self.expose_headers = expose_headers
        self.allowed_headers = None if allowed_headers is None \
            else [h.lower() for h in allowed_headers]
        self.max_age = max_age
        self.default_options_handler: Optional[Callable[[Request], Any]] = None
        self._check_credentials()
        if app is not None:
            self.initialize(app, handle_cors=handle_cors)

    @property
    def allowed_origins(self) -> Union[None, str, List[str]]:
        """The allowed origins: ``'*'``, a list of origins, or ``None`` for none."""
        return self._allowed_origins

    @allowed_origins.setter
    def allowed_origins(self, value: Union[None, str, Sequence[str]]) -> None:
        self._normalized: Set[str] = set()
        if value is None or (isinstance(value, str) and value == '*'):
            self._allowed_origins: Union[None, str, List[str]] = value
            return
        origins = [value] if isinstance(value, str) else list(value)
        self._allowed_origins = origins
        for origin in origins:
            norm = normalize_origin(origin)
            if norm is None:
                logger.warning('CORS: ignoring invalid allowed origin %r', origin)
            else:
                self._normalized.add(norm)

    def _check_credentials(self) -> None:
        if self._allowed_origins == '*' and self.allow_credentials:
            raise ValueError(
                "CORS: allowed_origins='*' cannot be combined with allow_credentials=True: "
                "any site could read the answers to its users' authenticated requests. "
                "List the trusted origins instead, e.g. "
                "allowed_origins=['https://app.example.com']")

    def initialize(self, app: Microdot, handle_cors: bool = True) -> None:
        """Install the CORS hooks (and the preflight handler) on an application.

        Args:
            app: The application.
            handle_cors: Install them (``False``: only remember the application's
                OPTIONS handler).

        Raises:
            ValueError: If ``allowed_origins`` is ``'*'`` while ``allow_credentials`` is
                true.
        """
        self._check_credentials()
        self.default_options_handler = app.options_handler
        if handle_cors:
            app.options_handler = self.options_handler
            app.after_request(self.after_request)
            app.after_error_request(self.after_request)

    def origin_allowed(self, origin: Optional[str]) -> bool:
        """Tell whether an origin is one this object trusts.

        Args:
            origin: An ``Origin`` header value.

        Returns:
            ``True`` if it is well formed and allowed.
        """
        if self._allowed_origins is None:
            return False
        if origin is None or parse_origin(origin) is None:
            return False
        if self._allowed_origins == '*':
            return True
        return normalize_origin(origin) in self._normalized

    def options_handler(self, request: Request) -> Any:
        """Answer an OPTIONS request: the application's default answer plus the CORS headers.

        Args:
            request: The OPTIONS request.

        Returns:
            The headers (or response) of the answer.
        """
        headers: Any = self.default_options_handler(request) \
            if self.default_options_handler else {}
        cors_headers = self.get_cors_headers(request)
        target: Any = headers.headers if hasattr(headers, 'headers') else headers
        target.update(cors_headers)
        return headers

    def get_cors_headers(self, request: Request) -> Dict[str, str]:
        """Compute the CORS headers for a request, as Microdot does.

        ``Access-Control-Allow-Origin`` (and ``-Credentials``) only for an allowed
        origin; ``Access-Control-Expose-Headers`` and, for OPTIONS, the preflight
        headers whatever the origin (a browser ignores them without the first).

        Args:
            request: The request being answered.

        Returns:
            The header names and values to add.
        """
        headers: Dict[str, str] = {}
        origin = request.headers.get('Origin')
        if origin is None:
            if self._allowed_origins == '*':
                headers['Access-Control-Allow-Origin'] = '*'
        elif self.origin_allowed(origin):
            headers['Access-Control-Allow-Origin'] = origin
            self._vary_origin(request)
            if self.allow_credentials and self._allowed_origins != '*':
                headers['Access-Control-Allow-Credentials'] = 'true'
        if self.expose_headers:
            headers['Access-Control-Expose-Headers'] = ', '.join(self.expose_headers)
        if request.method.upper() == 'OPTIONS':
            if self.max_age:
                headers['Access-Control-Max-Age'] = str(self.max_age)
            method = request.headers.get('Access-Control-Request-Method')
            if method:
                method = method.strip().upper()
                if self.allowed_methods is None or method in self.allowed_methods:
                    headers['Access-Control-Allow-Methods'] = method
            requested = request.headers.get('Access-Control-Request-Headers')
            if requested:
                if self.allowed_headers is None:
                    headers['Access-Control-Allow-Headers'] = requested
                else:
                    headers['Access-Control-Allow-Headers'] = ', '.join(
                        h for h in (n.strip() for n in requested.split(','))
                        if h and h.lower() in self.allowed_headers)
        return headers

    @staticmethod
    def _vary_origin(request: Request) -> None:
        vary: Optional[Set[str]] = getattr(request.g, '_vary', None)
        if vary is None:
            vary = set()
            request.g._vary = vary
        vary.add('Origin')

    def after_request(self, request: Optional[Request], response: Response) -> Response:
        """Add the CORS headers to a response (dispatch adds ``Vary: Origin``).

        Args:
            request: The request answered (``None`` for a malformed one: nothing added).
            response: Its response.

        Returns:
            ``response``, with the headers added.
        """
        if request is None:
            return response
        response.headers.update(self.get_cors_headers(request))
        return response
