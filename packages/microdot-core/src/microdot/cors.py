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
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit


logger = logging.getLogger('microdot.cors')

_ORIGIN_RE = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s\\]+$')
_DEFAULT_PORTS = {'http': 80, 'https': 443, 'ws': 80, 'wss': 443}

Origin = Tuple[str, str, Optional[int]]


def parse_origin(origin: Any) -> Optional[Origin]:
    """``(scheme, host, port)`` of a serialized origin, or ``None`` if it is ``null``
    or malformed (a path, credentials, a bad port, control characters...)."""
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
        port = _DEFAULT_PORTS.get(scheme)
    return scheme, host.lower(), port


def normalize_origin(origin: str) -> Optional[str]:
    """The canonical text of an origin (lower case, default port dropped), or None."""
    parsed = parse_origin(origin)
    if parsed is None:
        return None
    scheme, host, port = parsed
    if ':' in host:
        host = '[%s]' % host
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return '%s://%s' % (scheme, host)
    return '%s://%s:%d' % (scheme, host, port)


class CORS:
    """Add CORS headers to an application's responses and answer preflight requests.

    ``allowed_origins`` is ``'*'`` (any origin) or a list of origins; ``None`` allows
    none. ``allowed_methods``/``allowed_headers`` of ``None`` allow what is asked for.
    """

    def __init__(self, app: Any = None,
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
        self.default_options_handler: Any = None
        self._check_credentials()
        if app is not None:
            self.initialize(app, handle_cors=handle_cors)

    @property
    def allowed_origins(self) -> Union[None, str, List[str]]:
        return self._allowed_origins

    @allowed_origins.setter
    def allowed_origins(self, value: Union[None, str, Sequence[str]]) -> None:
        self._normalized: set = set()
        if value is None or value == '*':
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

    def initialize(self, app: Any, handle_cors: bool = True) -> None:
        """Install the CORS hooks (and preflight handler) on ``app``.

        Raises ``ValueError`` if ``allowed_origins`` is ``'*'`` while
        ``allow_credentials`` is true.
        """
        self._check_credentials()
        self.default_options_handler = app.options_handler
        if handle_cors:
            app.options_handler = self.options_handler
            app.after_request(self.after_request)
            app.after_error_request(self.after_request)

    def origin_allowed(self, origin: Any) -> bool:
        """True if ``origin`` (an ``Origin`` header value) is one this object trusts."""
        if self._allowed_origins is None:
            return False
        if parse_origin(origin) is None:
            return False
        if self._allowed_origins == '*':
            return True
        return normalize_origin(origin) in self._normalized

    def options_handler(self, request: Any) -> Any:
        """Answer OPTIONS: the application's default answer plus the CORS headers."""
        headers = self.default_options_handler(request) if self.default_options_handler \
            else {}
        cors_headers = self.get_cors_headers(request)
        target = headers.headers if hasattr(headers, 'headers') else headers
        target.update(cors_headers)
        return headers

    def get_cors_headers(self, request: Any) -> Dict[str, str]:
        """The CORS headers for ``request``, as Microdot computes them.

        ``Access-Control-Allow-Origin`` (and ``-Credentials``) only for an allowed
        origin; ``Access-Control-Expose-Headers`` and, for OPTIONS, the preflight
        headers whatever the origin (a browser ignores them without the first).
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
    def _vary_origin(request: Any) -> None:
        vary = getattr(request.g, '_vary', None)
        if vary is None:
            vary = request.g._vary = set()
        vary.add('Origin')

    def after_request(self, request: Any, response: Any) -> Any:
        """Add the CORS headers to a response (dispatch adds ``Vary: Origin``)."""
        if request is None:
            return response
        response.headers.update(self.get_cors_headers(request))
        return response
