"""The ``Request`` object: one HTTP request, with lazily parsed parts."""
from __future__ import annotations

import json as _json
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Tuple,
                    TypeVar)

from . import http11
from .exceptions import HTTPException
from .streams import AsyncBytesIO, BodyStream, BodyTooLarge
from .structures import MultiDict, NoCaseDict
from urllib.parse import unquote

from .urls import urldecode_str

if TYPE_CHECKING:
    from .multipart import FileUpload
    from .typedefs import AfterRequestHandler

_A = TypeVar('_A', bound='AfterRequestHandler')

_UNSET: Any = object()

#: ``dict``'s own item access, past ``NoCaseDict``'s case folding (typed for checkers).
_dict_setitem: Callable[[Dict[str, Any], str, Any], None]
_dict_getitem: Callable[[Dict[str, Any], str], Any]
_dict_setitem = dict.__setitem__  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
_dict_getitem = dict.__getitem__  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


def _loads_json(data: bytes) -> Any:
    """Decode a JSON body with the standard module (too deep: ``RecursionError``)."""
    return _json.loads(data.decode('utf-8'))


#: The JSON decoder of request bodies: orjson's when it is installed, as Microdot
#: uses it (too deep a nesting raises its ``JSONDecodeError``, a ``ValueError``).
_loads: Callable[[bytes], Any] = _loads_json
try:  # pragma: no cover - optional speed-up
    import orjson as _orjson
    _loads = _orjson.loads
except ImportError:  # pragma: no cover
    pass


class BadRequestError(http11.ProtocolError, ValueError):
    """Raised by :meth:`Request.create` for malformed input.

    A ``ValueError``, as Microdot raises, with the ``status_code`` and ``reason`` a
    server would answer.
    """


def headers_from_list(pairs: Iterable[Tuple[str, str]]) -> NoCaseDict[str]:
    """Build request headers, joining repeated fields (``Cookie`` with ``"; "``).

    Args:
        pairs: The ``(name, value)`` header fields, in the order received.

    Returns:
        The headers, with case-insensitive names.
    """
    headers: NoCaseDict[str] = NoCaseDict()
    keymap = headers.keymap
    for name, value in pairs:
        lname = name.lower()
        if lname in keymap:
            _join_header(headers, keymap[lname], lname, value)
        else:
            keymap[lname] = name
            _dict_setitem(headers, name, value)
    return headers


def headers_from_raw(pairs: Iterable[Tuple[bytes, bytes]]) -> NoCaseDict[str]:
    """Build request headers from latin-1 byte pairs (ASGI), joining repeats.

    Args:
        pairs: The ``(name, value)`` header fields as bytes, in the order received.

    Returns:
        The headers, with case-insensitive names.
    """
    headers: NoCaseDict[str] = NoCaseDict()
    keymap = headers.keymap
    for raw_name, raw_value in pairs:
        name = raw_name.decode('latin-1')
        lname = name.lower()
        if lname in keymap:
            _join_header(headers, keymap[lname], lname, raw_value.decode('latin-1'))
        else:
            keymap[lname] = name
            _dict_setitem(headers, name, raw_value.decode('latin-1'))
    return headers


def _join_header(headers: NoCaseDict[str], real: str, lname: str, value: str) -> None:
    """Append a repeated field's value: cookies with ``"; "``, others with ``", "``."""
    sep = '; ' if lname == 'cookie' else ', '
    _dict_setitem(headers, real, _dict_getitem(headers, real) + sep + value)


def parse_cookies(header: Optional[str]) -> Dict[str, str]:
    """Cookies from a ``Cookie`` header, as Microdot reads them.

    A pair without ``=`` is a cookie with an empty value (``flag`` gives
    ``{'flag': ''}``), values are kept as sent, quotes included, and of two cookies
    with the same name the last wins, all as in Microdot. Unlike Microdot, spaces
    around a name or value are trimmed and an empty pair (``a=1; ``) is not a cookie
    named ``''``.

    Args:
        header: The ``Cookie`` header's value, or ``None`` when there is none.

    Returns:
        The cookies, by name.
    """
    cookies: Dict[str, str] = {}
    if header:
        for pair in header.split(';'):
            name, _, value = pair.partition('=')
            name = name.strip()
            if name:
                cookies[name] = value.strip()
    return cookies


def parse_urlencoded(data: Optional[str]) -> MultiDict[str]:
    """A ``MultiDict`` from ``a=1&b=2`` text (query strings, urlencoded forms).

    Args:
        data: The text, or ``None``.

    Returns:
        The decoded names and values; a name given several times has each value.
    """
    args: MultiDict[str] = MultiDict()
    if data:
        for pair in data.split('&'):
            if not pair:
                continue
            name, _, value = pair.partition('=')
            args[urldecode_str(name)] = urldecode_str(value)
    return args


class Request:
    """An HTTP request, as handlers receive it.

    Query arguments, cookies, JSON and forms are parsed on first access. Size limits
    are class attributes (process-wide defaults) that an application can override
    with attributes of the same name on the ``Microdot`` instance.

    Servers and adapters create requests; applications receive them.

    Args:
        app: The application the request is for (its limits apply), or ``None``.
        client_addr: The client's address, as the server gives it (usually a
            ``(host, port)`` tuple).
        method: The HTTP method.
        url: The request target: path and query string.
        http_version: The HTTP version, such as ``'1.1'``.
        headers: The headers: a ``NoCaseDict``, or a mapping to copy into one;
            ``None`` when :attr:`header_source` will provide them.
        body: The body, when it was read already.
        stream: An async reader over the body, when it was not read.
        sock: The connection (the built-in server's ``(reader, writer)`` pair).
        url_prefix: The path prefix the matched route is mounted at.
        subapp: The sub-application whose route matched.
        scheme: ``'http'`` or ``'https'``.
        route: The matched route's handler.
    """

    #: Largest accepted body; a larger one is answered 413 before it is read.
    max_content_length = 16 * 1024
    #: Bodies up to this size are read into :attr:`body`; larger ones stay in :attr:`stream`.
    max_body_length = 16 * 1024
    #: Longest request or header line.
    max_readline = 2 * 1024
    #: Path prefix the server mounts the application at (ASGI ``root_path``, WSGI
    #: ``SCRIPT_NAME``); routing sees the path below it and ``url_prefix`` includes it.
    root_path = ''
    #: Set by servers that already run each request in a thread of their own (WSGI):
    #: ``def`` handlers are then called inline instead of in the thread pool.
    inline_sync = False
    #: False while a request is driven without an event loop (see ``inline_sync``).
    on_loop = True

    class G:
        """Free-form per-request storage (``request.g.user = ...``)."""

    def __init__(self, app: Any, client_addr: Any, method: str, url: str,
                 http_version: str, headers: Any, body: Optional[bytes] = None,
                 stream: Any = None, sock: Any = None, url_prefix: str = '',
                 subapp: Any = None, scheme: Optional[str] = None,
                 route: Any = None) -> None:
        # request creation is on every request's path: attributes usually left at
        # their class-level default are only set when given
        self.app = app
        self.client_addr = client_addr
        self.method = method
        self.url = url
        self.http_version = http_version
        # (set here, not left at the class defaults: dispatch reads them per request)
        self.content_length = 0
        self.root_path = ''
        self._g = self._after = None
        if headers is not None:
            if type(headers) is not NoCaseDict and not isinstance(headers, NoCaseDict):
                headers = NoCaseDict(headers)
            self._headers = headers
            real = headers.keymap.get('content-length')
            if real is not None:
                cl: str = _dict_getitem(headers, real)  # pyright: ignore[reportUnknownArgumentType]
                self.content_length = int(cl) if cl.isdigit() else 0
        if body is not None:
            self._body = body
        if stream is not None:
            self._stream = stream
        if sock is not None:
            self.sock = sock
        if url_prefix:
            self.url_prefix = url_prefix
        if subapp is not None:
            self.subapp = subapp
        if scheme is not None and scheme != 'http':
            self.scheme = scheme
        if route is not None:
            self.route = route
        if '?' in url:
            path, _, self.query_string = url.partition('?')  # else None, as Microdot
        else:
            path = url
        self.path = unquote(path, errors='replace') if '%' in path else path
        if app is not None:
            try:  # a Microdot application has all three (None: the class default)
                content, body_length, readline = \
                    app.max_content_length, app.max_body_length, app.max_readline
            except AttributeError:
                content = getattr(app, 'max_content_length', None)
                body_length = getattr(app, 'max_body_length', None)
                readline = getattr(app, 'max_readline', None)
            if content is not None:
                self.max_content_length = content
            if body_length is not None:
                self.max_body_length = body_length
            if readline is not None:
                self.max_readline = readline

    # per-request state, created on first use (class-level defaults until then)
    sock: Any = None
    subapp: Any = None
    route: Any = None
    url_prefix = ''
    scheme = 'http'
    query_string: Optional[str] = None
    #: Declared body length (0 when absent or invalid).
    content_length = 0
    url_args: Optional[Dict[str, Any]] = None
    _headers: Optional[NoCaseDict[str]] = None
    #: ``(builder, data)``: how to build :attr:`headers` on first access; servers that
    #: hand over headers in their own shape (ASGI, WSGI) set it instead of ``headers``
    header_source: Optional[Tuple[Callable[[Any], NoCaseDict[str]], Any]] = None
    _body: Optional[bytes] = None
    _stream: Any = None
    _after: Optional[List[AfterRequestHandler]] = None
    _args: Optional[MultiDict[str]] = None
    _cookies: Optional[Dict[str, str]] = None
    _json: Any = _UNSET
    _form: Optional[MultiDict[str]] = None
    _files: Optional[MultiDict[FileUpload]] = None
    _g: Any = None
    _content_type: Any = _UNSET

    @property
    def headers(self) -> NoCaseDict[str]:
        """Request headers (case-insensitive names; repeated fields joined)."""
        headers = self._headers
        if headers is None:
            source = self.header_source
            headers = self._headers = NoCaseDict() if source is None \
                else source[0](source[1])
        return headers

    @headers.setter
    def headers(self, value: Any) -> None:
        self._headers = value if isinstance(value, NoCaseDict) else NoCaseDict(value)
        self._content_type = _UNSET

    @property
    def content_type(self) -> Optional[str]:
        """The ``Content-Type`` header, or ``None``."""
        ctype: Optional[str] = self._content_type
        if ctype is _UNSET:
            ctype = self._content_type = self.headers.get('Content-Type')
        return ctype

    @content_type.setter
    def content_type(self, value: Optional[str]) -> None:
        self._content_type = value

    @property
    def after_request_handlers(self) -> List[AfterRequestHandler]:
        """Hooks registered with :meth:`after_request` for this request only."""
        handlers = self._after
        if handlers is None:
            handlers = self._after = []
        return handlers

    @after_request_handlers.setter
    def after_request_handlers(self, value: List[AfterRequestHandler]) -> None:
        self._after = value

    @property
    def g(self) -> Any:
        """Free-form storage for this request (an empty object on first access)."""
        g = self._g
        if g is None:
            g = self._g = Request.G()
        return g

    @g.setter
    def g(self, value: Any) -> None:
        self._g = value

    # -- creation from a byte stream ------------------------------------------------

    @staticmethod
    async def create(app: Any, client_reader: Any, client_writer: Any,
                     client_addr: Any, scheme: Optional[str] = None) -> Optional['Request']:
        """Parse one request from an async reader (``readline``/``read``/``readexactly``).

        Args:
            app: The application (its ``max_readline`` and other limits apply).
            client_reader: The connection's reader.
            client_writer: The connection's writer.
            client_addr: The client's address.
            scheme: ``'https'`` on a TLS connection (``None``: ``'http'``).

        Returns:
            The request, or ``None`` when the peer closed before sending anything.

        Raises:
            BadRequestError: The input is malformed, or a line is longer than
                ``max_readline``: a ``ValueError``, as in Microdot, that also carries
                the status to answer.
        """
        try:
            return await Request._create(app, client_reader, client_writer, client_addr,
                                         scheme)
        except BadRequestError:
            raise
        except http11.ProtocolError as exc:
            raise BadRequestError(exc.status_code, exc.reason) from None

    @staticmethod
    async def _create(app: Any, client_reader: Any, client_writer: Any,
                      client_addr: Any, scheme: Optional[str]) -> Optional['Request']:
        max_line = getattr(app, 'max_readline', None) or Request.max_readline
        parser = http11.RequestParser(max_request_line=max_line, max_header_line=max_line)
        head = None
        while head is None:
            line = await client_reader.readline()
            if len(line) > max_line + 2 or (line and not line.endswith(b'\n')
                                            and len(line) > max_line):
                raise BadRequestError(414 if parser.at_start else 431, 'line too long')
            parser.feed(line)
            event = parser.next_event()
            if event is http11.CONNECTION_CLOSED:
                return None
            if isinstance(event, http11.RequestHead):
                head = event
            elif event is not http11.NEED_DATA:  # pragma: no cover - defensive
                raise BadRequestError(400, 'unexpected data')
            elif not line:
                parser.feed(b'')
                parser.next_event()  # raises for a request cut short
                return None

        async def receive() -> bytes:
            while True:
                event = parser.next_event()
                if isinstance(event, http11.Data):
                    return event.data
                if isinstance(event, http11.EndOfMessage) or event is http11.PAUSED:
                    return b''
                data = await client_reader.read(65536)
                parser.feed(data)

        req = Request.from_head(app, head, client_addr, receive,
                                sock=(client_reader, client_writer), scheme=scheme)
        await req._read_body()
        return req

    @classmethod
    def from_head(cls, app: Any, head: Any, client_addr: Any, receive: Any,
                  sock: Any = None, scheme: Optional[str] = None) -> 'Request':
        """Build a request from a parsed request head and a body source.

        Args:
            app: The application the request is for.
            head: The parsed head (a :class:`microdot.http11.RequestHead`).
            client_addr: The client's address.
            receive: An async callable returning the next piece of the body (``b''``
                at its end).
            sock: The connection, if the handler may take it over (WebSocket).
            scheme: ``'https'`` on a TLS connection (``None``: ``'http'``).

        Returns:
            The request; its body is read later (see :attr:`stream`).
        """
        target = head.target
        if target[:1] != '/':  # absolute-form (or '*'): what routing sees
            target = head.path + ('?' + head.query if head.query else '')
        # (positional arguments: this runs for every request)
        req = cls(app, client_addr, head.method, target, head.version, None, None, None,
                  sock, '', None, scheme)
        req.header_source = (headers_from_list, head.headers)  # built if the app reads it
        length = head.content_length
        if length:
            req.content_length = length
            req._stream = BodyStream(receive, limit=length)
        elif head.chunked:
            req._stream = BodyStream(receive, limit=req.max_content_length)
        else:
            req._body = b''
        return req

    async def _read_body(self) -> None:
        """Read the body into :attr:`body` if it fits ``max_body_length``.

        A declared length above ``max_content_length`` is left unread (dispatch answers
        413); an undeclared (chunked) body is read up to the limit, and if it is longer
        it stays in :attr:`stream` with what was read already buffered there.
        """
        stream = self._stream
        if self._body is not None or not isinstance(stream, BodyStream):
            return
        if self.content_length:
            if self.content_length > self.max_content_length:
                return
            if self.content_length <= self.max_body_length:
                self._body = await stream.readexactly(self.content_length)
                self._stream = None
            return
        try:
            while len(stream._buffer) <= self.max_body_length:  # pyright: ignore[reportPrivateUsage]
                if not await stream._fill():  # pyright: ignore[reportPrivateUsage]
                    self._body = bytes(stream._buffer)  # pyright: ignore[reportPrivateUsage]
                    self._stream = None
                    return
        except BodyTooLarge:
            self.content_length = self.max_content_length + 1
            self._body = b''
            self._stream = None

    # -- lazily parsed parts --------------------------------------------------------

    @property
    def args(self) -> MultiDict[str]:
        """Query string arguments."""
        if self._args is None:
            self._args = parse_urlencoded(self.query_string)
        return self._args

    @args.setter
    def args(self, value: MultiDict[str]) -> None:
        self._args = value

    @property
    def cookies(self) -> Dict[str, str]:
        """Request cookies (several ``Cookie`` headers are merged)."""
        if self._cookies is None:
            self._cookies = parse_cookies(self.headers.get('Cookie'))
        return self._cookies

    @cookies.setter
    def cookies(self, value: Dict[str, str]) -> None:
        self._cookies = value

    @property
    def body(self) -> bytes:
        """The body, if it was within ``max_body_length`` (else ``b''``; see :attr:`stream`)."""
        return self._body if self._body is not None else b''

    @property
    def stream(self) -> Any:
        """An async reader over the body, bounded to its length."""
        if self._stream is None:
            self._stream = AsyncBytesIO(self._body or b'')
        return self._stream

    @property
    def json(self) -> Any:
        """The body decoded as JSON for ``application/json`` requests, else ``None``.

        A body that is not valid JSON (malformed, not UTF-8, nested too deeply, or left
        in :attr:`stream` because it is longer than ``max_body_length``) raises
        ``HTTPException(400)``, so the client gets a 400 answer, not a 500.
        """
        if self._json is _UNSET:
            ctype = self.content_type
            if not ctype or ctype.split(';', 1)[0].strip().lower() != 'application/json':
                return None
            try:
                self._json = _loads(self.body)
            except (ValueError, RecursionError):  # (UnicodeDecodeError is a ValueError)
                raise HTTPException(400, 'Invalid JSON body') from None
        return self._json

    @property
    def form(self) -> Optional[MultiDict[str]]:
        """Fields of an urlencoded form body (the multipart extension fills it too)."""
        if self._form is None:
            ctype = self.content_type
            if not ctype or ctype.split(';', 1)[0].strip().lower() != \
                    'application/x-www-form-urlencoded':
                return None
            try:
                text = self.body.decode('utf-8')
            except UnicodeDecodeError:
                raise HTTPException(400, 'Invalid form body') from None
            self._form = parse_urlencoded(text)
        return self._form

    @form.setter
    def form(self, value: Optional[MultiDict[str]]) -> None:
        self._form = value

    @property
    def files(self) -> Optional[MultiDict[FileUpload]]:
        """Uploaded files (filled by :func:`microdot.multipart.with_form_data`)."""
        return self._files

    @files.setter
    def files(self, value: Optional[MultiDict[FileUpload]]) -> None:
        self._files = value

    def after_request(self, f: _A) -> _A:
        """Register ``f(request, response)`` to run after this request only.

        Args:
            f: The hook, sync or async; it may return a replacement response.

        Returns:
            ``f``, so that this works as a decorator.
        """
        self.after_request_handlers.append(f)
        return f

    def __repr__(self) -> str:
        return '<Request %s %s>' % (self.method, self.url)
