"""Sans-I/O HTTP/1.1 request parser and response-head serialiser.

Bytes go in through :meth:`RequestParser.feed`, events come out of
:meth:`RequestParser.next_event`; nothing here touches sockets or asyncio, so
the same code serves the asyncio server, ``Request.create()`` and the test
client.  Syntax follows RFC 9110 (semantics) and RFC 9112 (HTTP/1.1 framing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, NoReturn, cast

__all__ = [
    'ProtocolError', 'RequestHead', 'Data', 'EndOfMessage', 'Event',
    'NEED_DATA', 'PAUSED', 'CONNECTION_CLOSED', 'RequestParser',
    'serialize_response_head', 'REASONS', 'encode_chunk', 'LAST_CHUNK',
    'FORBIDDEN_TRAILERS',
]


# --------------------------------------------------------------------------
# Errors, events and sentinels
# --------------------------------------------------------------------------

class ProtocolError(Exception):
    """Malformed or unacceptable request; the server answers status_code and closes.

    ``reason`` is fixed text written here, never a copy of the peer's bytes.

    Args:
        status_code: The status to answer.
        reason: What is wrong (for the log and the answer's body).
    """

    status_code: int
    reason: str

    def __init__(self, status_code: int = 400,
                 reason: str = 'Bad Request') -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[int, str]]:
        return type(self), (self.status_code, self.reason)

    def __repr__(self) -> str:
        return f'ProtocolError({self.status_code}, {self.reason!r})'


class RequestHead:
    """Request line and header section of one request, validated and decoded.

    Strings are latin-1 decoded so every byte round-trips; the path is still
    percent-encoded.

    Args:
        method: The method.
        target: The request target, as sent.
        path: The target's path (percent-encoded).
        query: The target's query string (without ``?``).
        version: The HTTP version: ``'1.1'`` or ``'1.0'``.
        headers: The header fields, as ``(name, value)`` pairs in order.
        content_length: The ``Content-Length``, or ``None``.
        chunked: Whether the body is chunked.
        keep_alive: Whether the connection may carry another request.
        expect_continue: Whether the client sent ``Expect: 100-continue``.
        host: The ``Host`` header, or ``None``.
    """

    __slots__ = ('method', 'target', 'path', 'query', 'version', 'headers',
                 'content_length', 'chunked', 'keep_alive', 'expect_continue',
                 'host')

    method: str
    target: str
    path: str
    query: str
    version: str
    headers: list[tuple[str, str]]
    content_length: int | None
    chunked: bool
    keep_alive: bool
    expect_continue: bool
    host: str | None

    def __init__(self, method: str, target: str, path: str, query: str,
                 version: str, headers: list[tuple[str, str]],
                 content_length: int | None, chunked: bool, keep_alive: bool,
                 expect_continue: bool, host: str | None) -> None:
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.host = host

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RequestHead):
            return NotImplemented
        return all(getattr(self, a) == getattr(other, a)
                   for a in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]

    def __repr__(self) -> str:
        return (f'RequestHead({self.method} {self.target} HTTP/{self.version}'
                f', {len(self.headers)} headers)')


class Data:
    """A piece of the request body, delivered as soon as it is available.

    Args:
        data: The bytes.
    """

    __slots__ = ('data',)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Data):
            return NotImplemented
        return self.data == other.data

    __hash__ = None  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]

    def __repr__(self) -> str:
        return f'Data({self.data!r})'


class EndOfMessage:
    """The request body is complete.

    Args:
        trailers: The trailer fields of a chunked body, as ``(name, value)`` pairs.
    """

    __slots__ = ('trailers',)

    def __init__(self, trailers: list[tuple[str, str]] | None = None) -> None:
        self.trailers = [] if trailers is None else trailers

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EndOfMessage):
            return NotImplemented
        return self.trailers == other.trailers

    __hash__ = None  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]

    def __repr__(self) -> str:
        return f'EndOfMessage({self.trailers!r})'


class _Sentinel:
    __slots__ = ('_name',)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        return self._name


#: The parser needs more bytes (call ``feed()``) before it can go on.
NEED_DATA = _Sentinel('NEED_DATA')
#: A whole request was parsed; call ``start_next_request()`` for the next one.
PAUSED = _Sentinel('PAUSED')
#: The peer closed the connection cleanly between two requests.
CONNECTION_CLOSED = _Sentinel('CONNECTION_CLOSED')

#: What ``next_event()`` may return.
Event = RequestHead | Data | EndOfMessage | _Sentinel


# --------------------------------------------------------------------------
# Grammar (RFC 9110 §5.6.2 token, §5.5 field values; RFC 9112 §3, §7.1)
# --------------------------------------------------------------------------

_TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN = re.compile(f'[{_TCHAR}]+')

# Fast path: a well-formed HTTP/1.0 or HTTP/1.1 request line (head decoded
# as latin-1).  Anything else goes through _diagnose_request_line().
_REQUEST_LINE = re.compile(f'([{_TCHAR}]+) ([\\x21-\\x7e]+) HTTP/1\\.([01])')
_HTTP_VERSION = re.compile(r'HTTP/[0-9]\.[0-9]')

# Bytes allowed in a head or trailer section: HTAB, CR, LF (CR and LF are
# checked separately, as line terminators), SP, VCHAR and obs-text.  Field
# values may contain all of them; field names and the request line are
# checked more strictly by their own patterns.
_FIELD_BYTES_NO_CRLF = bytes([9, *range(0x20, 0x7f), *range(0x80, 0x100)])
_FIELD_BYTES_WITH_CRLF = _FIELD_BYTES_NO_CRLF + b'\r\n'

# Validated field names -> lower-cased names (bounded; names repeat a lot).
_NAME_CACHE: dict[str, str] = {}
_NAME_CACHE_MAX = 1024
# Methods seen in valid request lines (bounded): tokens, so a request line made of
# one of them, a target and a version needs no regex.
_GOOD_METHODS: set[str] = {'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS',
                           'QUERY'}
# Validated Host header values (bounded).
_HOST_CACHE: set[str] = set()
_HOST_CACHE_MAX = 256

# chunk = chunk-size *( BWS ";" BWS name [ BWS "=" BWS value ] ) (RFC 9112
# §7.1.1); value is a token or a quoted-string (RFC 9110 §5.6.4).
_QUOTED_STRING = (rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]'
                  rb'|\\[\t \x21-\x7e\x80-\xff])*"')
_TOKEN_RE_B = f'[{_TCHAR}]+'.encode()
_CHUNK_LINE = re.compile(
    rb'([0-9A-Fa-f]+)(?:[ \t]*;[ \t]*' + _TOKEN_RE_B
    + rb'(?:[ \t]*=[ \t]*(?:' + _TOKEN_RE_B + rb'|' + _QUOTED_STRING + rb'))?)*')

_HEXDIG = b'0123456789ABCDEFabcdef'
_REG_NAME = r"[0-9A-Za-z\-._~!$&'()*+,;=%]"
_HOST_NAME = (r"(?:\[[0-9A-Za-z:._~!$&'()*+,;=%\-]+\]|" + _REG_NAME + r'+)')
# Host header: uri-host [":" port], or empty (RFC 9112 §3.2).
_HOST_HEADER = re.compile(f'(?:{_HOST_NAME}(?::[0-9]*)?)?')
# authority-form (CONNECT): uri-host ":" port.
_AUTHORITY_FORM = re.compile(f'{_HOST_NAME}:[0-9]+')
# absolute-form for http/https: no userinfo, non-empty host (RFC 9110 §4.2).
_ABSOLUTE_FORM = re.compile(
    f'(?i:https?)://({_HOST_NAME}(?::[0-9]*)?)(/[^?]*)?(?:\\?(.*))?', re.S)

_MAX_CHUNK_SIZE = 2 ** 63 - 1
_MAX_CONTENT_LENGTH = 2 ** 63 - 1
_MAX_LEADING_EMPTY_LINES = 4

# Header fields the parser interprets itself (Content-Type only to refuse two
# different values: a proxy may pick one and the application the other).
_FRAMING_FIELDS = frozenset(
    ('host', 'content-length', 'transfer-encoding', 'connection', 'expect',
     'content-type'))

# Names that software translating '-' to '_' (CGI, WSGI environ keys) cannot tell
# from a framing field: a field named e.g. 'Content_Length' is refused, so that a
# proxy ignoring it and a back end honouring it never read one request two ways.
_UNDERSCORE_LOOKALIKES = frozenset((
    'content-length', 'transfer-encoding', 'content-type', 'keep-alive',
    'proxy-connection'))

#: Fields that must not appear in a trailer section (RFC 9110 §6.5.1:
#: framing, routing, authentication, request modifiers, controls, content
#: format).
FORBIDDEN_TRAILERS = frozenset((
    'content-length', 'transfer-encoding', 'host', 'trailer', 'te',
    'connection', 'keep-alive', 'proxy-connection', 'upgrade', 'expect',
    'max-forwards', 'authorization', 'proxy-authorization',
    'www-authenticate', 'proxy-authenticate', 'authentication-info',
    'cookie', 'set-cookie', 'content-type', 'content-encoding',
    'content-range', 'content-location', 'range', 'if-match',
    'if-none-match', 'if-modified-since', 'if-unmodified-since', 'if-range',
    'cache-control', 'pragma', 'age', 'expires', 'vary', 'location',
    'retry-after', 'date',
))

# Parser states.
_S_HEAD = 0          # waiting for (more of) the request head
_S_BODY = 1          # Content-Length body, self._remaining bytes to go
_S_CHUNK_SIZE = 2    # waiting for a chunk-size line
_S_CHUNK_DATA = 3    # inside chunk data, self._remaining bytes to go
_S_CHUNK_CRLF = 4    # waiting for the CRLF that ends chunk data
_S_TRAILERS = 5      # after the last chunk, waiting for the trailer section
_S_EOM = 6           # body complete, EndOfMessage not returned yet
_S_DONE = 7          # EndOfMessage returned; PAUSED until start_next_request
_S_CLOSED = 8        # clean EOF between requests
_S_ERROR = 9         # a ProtocolError was raised; it is raised again

_COMPACT_AT = 1 << 16


def _bad(reason: str) -> ProtocolError:
    return ProtocolError(400, reason)


# --------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------

class RequestParser:
    """Incremental HTTP/1.1 server-side request parser (bytes in, events out).

    ``next_event()`` returns a :class:`RequestHead`, then zero or more
    :class:`Data`, then an :class:`EndOfMessage`, then ``PAUSED`` until
    ``start_next_request()`` is called; ``NEED_DATA`` whenever more bytes are
    needed.  Invalid input raises :class:`ProtocolError`, after which the
    parser is dead and raises the same error again.

    Args:
        max_request_line: The longest request line, in bytes (414 beyond).
        max_header_line: The longest header field line, in bytes (431 beyond).
        max_header_bytes: The most bytes of a header section (431 beyond).
        max_headers: The most header fields (431 beyond).
        max_chunk_line: The longest chunk-size line of a chunked body.
    """

    __slots__ = ('max_request_line', 'max_header_line', 'max_header_bytes',
                 'max_headers', 'max_chunk_line', '_buf', '_pos', '_scan',
                 '_state', '_remaining', '_eof', '_error', '_empty_lines',
                 '_crlf')

    def __init__(self, *, max_request_line: int = 8190,
                 max_header_line: int = 8190, max_header_bytes: int = 65536,
                 max_headers: int = 100, max_chunk_line: int = 1024) -> None:
        self.max_request_line = max_request_line
        self.max_header_line = max_header_line
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.max_chunk_line = max_chunk_line
        # Unconsumed input is self._buf[self._pos:].  _buf is the caller's
        # bytes object when a feed lands in an empty buffer (no copy) and a
        # bytearray once data has to be appended.
        self._buf: bytes | bytearray = b''
        self._pos = 0
        self._scan = 0        # where the next search for a blank line starts
        self._state = _S_HEAD
        self._remaining = 0   # body / chunk bytes still to deliver
        self._eof = False
        self._error: ProtocolError | None = None
        self._empty_lines = 0
        # whether the current request's head ended its lines in CRLF: its chunked
        # framing and trailers must then do so too (no bare LF mixed in)
        self._crlf = True

    # -- input -------------------------------------------------------------

    def feed(self, data: bytes) -> int:
        """Add bytes received from the peer; ``b''`` signals EOF.

        Args:
            data: The bytes received.

        Returns:
            The bytes now buffered (as :attr:`buffered`), so that a server can bound
            its memory without asking again.

        Raises:
            RuntimeError: Non-empty data fed after EOF (a programming error).
        """
        if not data:
            self._eof = True
            return len(self._buf) - self._pos
        if self._eof:
            raise RuntimeError('feed() called after EOF')
        if self._state == _S_ERROR:
            return len(self._buf) - self._pos
        buf = self._buf
        pos = self._pos
        if pos >= len(buf):
            # Everything was consumed: adopt the new data as the buffer.
            self._buf = bytes(data)
            self._pos = self._scan = 0
            return len(data)
        if not isinstance(buf, bytearray):
            buf = bytearray(memoryview(buf)[pos:])
            self._scan = max(0, self._scan - pos)
            self._pos = 0
        elif pos >= _COMPACT_AT or pos * 2 >= len(buf):
            del buf[:pos]
            self._scan = max(0, self._scan - pos)
            self._pos = 0
        buf += data
        self._buf = buf
        return len(buf) - self._pos

    @property
    def buffered(self) -> int:
        """Bytes fed but not consumed yet, so a server can bound its memory."""
        return len(self._buf) - self._pos

    @property
    def at_start(self) -> bool:
        """True while no byte of the next request has arrived (idle timeout applies)."""
        return (self._state in (_S_HEAD, _S_DONE, _S_CLOSED)
                and self._pos >= len(self._buf))

    def take_buffered(self) -> bytes:
        """Remove and return the unconsumed bytes (e.g. after an Upgrade switch).

        Returns:
            The bytes fed but not parsed.
        """
        buf = self._buf
        data = bytes(buf[self._pos:])
        self._buf = b''
        self._pos = self._scan = 0
        return data

    def start_next_request(self) -> None:
        """Reset for the next request on the connection; bytes already fed are kept.

        Raises:
            RuntimeError: The current request's ``EndOfMessage`` was not returned yet.
        """
        if self._state != _S_DONE:
            raise RuntimeError('start_next_request() called before '
                               'EndOfMessage')
        self._state = _S_HEAD
        self._remaining = 0
        self._empty_lines = 0
        self._scan = self._pos
        buf = self._buf
        if self._pos >= len(buf):
            self._buf = b''
            self._pos = self._scan = 0

    def next_request(self) -> int:
        """End a request that has no body and get ready for the next one at once.

        Called after a request's head: what ``next_event()`` returning its
        ``EndOfMessage``, then ``start_next_request()``, do.

        Returns:
            0 (nothing done) when the request has a body or was not complete: use
            those two then; 1 when done and nothing is buffered (no EOF either), so
            ``next_event()`` would return ``NEED_DATA``; 2 when done otherwise.
        """
        if self._state != _S_EOM:
            return 0
        self._state = _S_HEAD
        self._empty_lines = 0
        pos = self._pos
        if pos >= len(self._buf):
            self._buf = b''
            self._pos = self._scan = 0
            return 2 if self._eof else 1
        self._scan = pos
        return 2

    # -- events ------------------------------------------------------------

    def next_event(self) -> Event:
        """Parse what was fed up to the next event.

        Returns:
            The next event: a :class:`RequestHead`, :class:`Data` or
            :class:`EndOfMessage`; else ``NEED_DATA``, ``PAUSED`` or
            ``CONNECTION_CLOSED``.

        Raises:
            ProtocolError: Input that must be answered with an error.
        """
        state = self._state
        try:
            if state == _S_HEAD:
                return self._next_head()
            if state == _S_BODY:
                return self._next_body()
            if state == _S_EOM:
                self._state = _S_DONE
                return EndOfMessage([])
            if state == _S_DONE:
                return PAUSED
            if state <= _S_TRAILERS:
                return self._next_chunked()
            if state == _S_CLOSED:
                return CONNECTION_CLOSED
            assert self._error is not None
            raise self._error
        except ProtocolError as exc:
            self._state = _S_ERROR
            self._error = exc
            raise

    def _need_data(self, where: str) -> _Sentinel:
        if self._eof:
            raise _bad(f'connection closed in the middle of the {where}')
        return NEED_DATA

    def _take(self, start: int, end: int) -> bytes:
        buf = self._buf
        if type(buf) is bytes:
            return buf[start:end]
        return bytes(memoryview(buf)[start:end])

    # -- blank-line search ---------------------------------------------------

    def _find_section(self, max_len: int) -> tuple[Any, Any] | tuple[Any, Any, Any] | None:
        """Split off the field section that starts at _pos and ends in an empty line.

        Returns its lines (latin-1 decoded, terminators removed, '' last) and
        its size in bytes, plus False when the lines end in bare LF (a request
        written by hand), moving _pos past the empty line; None if incomplete.
        All lines must end alike: a bare LF among CRLF lines is refused, as a
        proxy may not split there.
        """
        buf = self._buf
        pos = self._pos
        scan = self._scan
        if scan < pos:
            scan = pos
        limit = pos + max_len
        i = buf.find(b'\r\n\r\n', scan, limit)
        if i >= 0:
            raw = buf[pos:i + 2]
            lines = raw.decode('latin-1').split('\r\n')
            # Deleting every allowed byte but CR and LF must leave exactly one
            # CR and one LF per line: otherwise there is a control character,
            # a bare CR or a bare LF (each CRLF pair accounts for one of each).
            crlf = 2 * len(lines) - 2
            if len(raw.translate(None, _FIELD_BYTES_NO_CRLF)) == crlf:
                self._pos = self._scan = i + 4
                return lines, i + 2 - pos
            if raw.count(b'\n') * 2 == crlf:  # no bare LF
                if raw.count(b'\r') * 2 != crlf:
                    raise _bad('bare CR in request head')
                raise _bad('invalid character in request head')
            # A bare LF ends some line earlier: use the slow search below.
        j = buf.find(b'\n\n', scan, limit)
        k = buf.find(b'\n\r\n', scan, limit)
        if j < 0 and k < 0:
            self._scan = max(pos, min(len(buf), limit) - 3)
            return None
        if k < 0 or 0 <= j < k:
            last_lf, end = j, j + 2
        else:
            last_lf, end = k, k + 3
        raw = buf[pos:last_lf + 1]
        if raw.translate(None, _FIELD_BYTES_WITH_CRLF):
            raise _bad('invalid character in request head')
        if last_lf != j or b'\r\n' in raw:
            # some line ends in CRLF, another (at least the last) in a bare LF
            raise _bad('bare LF among CRLF line endings')
        lines = raw.decode('latin-1').split('\n')
        for line in lines:
            if '\r' in line:
                raise _bad('bare CR in request head')
        self._pos = self._scan = end
        return lines, last_lf + 1 - pos, False

    def _check_field_limits(self, lines: list[str], first: int,
                            size: int) -> None:
        """Enforce max_headers, max_header_bytes and max_header_line (431).

        ``lines[first:-1]`` are the field lines and ``size`` their byte count.
        """
        if len(lines) - 1 - first > self.max_headers:
            raise ProtocolError(431, 'too many header fields')
        if size > self.max_header_bytes:
            raise ProtocolError(431, 'header section too large')
        if size > self.max_header_line + 2 and \
                max(map(len, lines[first:])) > self.max_header_line:
            raise ProtocolError(431, 'header field line too long')

    # -- head ----------------------------------------------------------------

    def _next_head(self) -> Event:
        buf = self._buf
        pos = self._pos
        n = len(buf)
        if pos < n and buf[pos] in b'\r\n':
            pos = self._skip_empty_lines(buf, pos, n)
        if pos >= n:
            if self._eof:
                self._state = _S_CLOSED
                return CONNECTION_CLOSED
            return NEED_DATA
        max_len = self.max_request_line + self.max_header_bytes + 4
        found = self._find_section(max_len)
        if found is None:
            self._check_partial_head(max_len)
            return self._need_data('request head')
        return self._parse_head(*found)

    def _skip_empty_lines(self, buf: bytes | bytearray, pos: int,
                          n: int) -> int:
        # RFC 9112 §2.2: ignore a few empty lines before the request line.
        while pos < n:
            c = buf[pos]
            if c == 10:
                pos += 1
            elif c == 13:
                if pos + 1 >= n:
                    break
                if buf[pos + 1] != 10:
                    raise _bad('bare CR before request line')
                pos += 2
            else:
                break
            self._empty_lines += 1
            if self._empty_lines > _MAX_LEADING_EMPTY_LINES:
                raise _bad('too many empty lines before request line')
        self._pos = pos
        if self._scan < pos:
            self._scan = pos
        return pos

    def _check_partial_head(self, max_len: int) -> None:
        # Called while the head is incomplete so that an oversized head is
        # rejected without waiting for (or buffering) all of it.
        buf = self._buf
        pos = self._pos
        n = len(buf)
        mrl = self.max_request_line
        lf = buf.find(b'\n', pos, pos + mrl + 2)
        if lf < 0:
            if n - pos > mrl + 1:
                raise ProtocolError(414, 'request line too long')
            return
        if lf - pos - (lf > pos and buf[lf - 1] == 13) > mrl:
            raise ProtocolError(414, 'request line too long')
        if n - lf - 1 > self.max_header_bytes + 2 or n - pos >= max_len:
            raise ProtocolError(431, 'request header section too large')
        last = buf.rfind(b'\n', lf, n)
        if n - last - 1 > self.max_header_line + 1:
            raise ProtocolError(431, 'request header field line too long')

    def _parse_head(self, lines: list[str], size: int, crlf: bool = True) -> RequestHead:
        request_line = lines[0]
        if len(request_line) > self.max_request_line:
            raise ProtocolError(414, 'request line too long')
        size -= len(request_line) + 2  # the field lines'
        if len(lines) - 2 > self.max_headers or size > self.max_header_bytes or \
                size > self.max_header_line + 2:
            self._check_field_limits(lines, 1, size)  # (only a long section may fail)
        # the usual request line without a regex: a known method, one space, a target
        # (the head holds no control character but HTAB: checked when it was split
        # off), one space, HTTP/1.1 or HTTP/1.0; anything else is checked in full
        parts = request_line.split(' ')
        if len(parts) == 3 and parts[0] in _GOOD_METHODS and \
                (parts[2] == 'HTTP/1.1' or parts[2] == 'HTTP/1.0') and \
                parts[1] and parts[1].isascii() and '\t' not in parts[1]:
            method, target, version = parts
            version = version[5:]
        else:
            m = _REQUEST_LINE.fullmatch(request_line)
            if m is None:
                _diagnose_request_line(request_line)
            method, target, minor = m.groups()
            version = '1.1' if minor == '1' else '1.0'
            if len(_GOOD_METHODS) < 64:
                _GOOD_METHODS.add(method)

        # Field lines; framing-related fields are collected on the way (Host on its
        # own: every HTTP/1.1 request has one).
        headers: list[tuple[str, str]] = []
        append = headers.append
        special: dict[str, list[str]] | None = None
        host: str | None = None
        hosts = 0
        known_name = _NAME_CACHE.get
        for line in lines[1:-1]:
            name, colon, value = line.partition(':')
            lname = known_name(name)
            if lname is None or not colon:
                lname = _check_field_name(line, name, colon)
            value = value.strip(' \t')
            append((name, value))
            if lname in _FRAMING_FIELDS:
                if lname == 'host':
                    host = value
                    hosts += 1
                elif special is None:
                    special = {lname: [value]}
                elif lname in special:
                    if lname == 'content-type' and value != special[lname][0]:
                        raise _bad('more than one Content-Type value')
                    special[lname].append(value)
                else:
                    special[lname] = [value]

        content_length: int | None = None
        chunked = False
        keep_alive = version == '1.1'
        expect_continue = False
        if host is not None:
            if hosts > 1:
                raise _bad('more than one Host header')
            if host not in _HOST_CACHE:
                if _HOST_HEADER.fullmatch(host) is None:
                    raise _bad('invalid Host header')
                if len(_HOST_CACHE) < _HOST_CACHE_MAX:
                    _HOST_CACHE.add(host)
        if special is not None:
            te = special.get('transfer-encoding')
            cl = special.get('content-length')
            if te is not None:
                if version == '1.0':
                    raise _bad('Transfer-Encoding in an HTTP/1.0 request')
                if cl is not None:
                    raise _bad('both Transfer-Encoding and Content-Length')
                if len(te) > 1 or te[0].lower() != 'chunked':
                    _check_transfer_encoding(te)
                chunked = True
            elif cl is not None:
                content_length = _parse_content_length(cl)
            conn = special.get('connection')
            if conn is not None:
                tokens = _lower_list(conn)
                if 'close' in tokens:
                    keep_alive = False
                elif version == '1.0':
                    keep_alive = 'keep-alive' in tokens
            expect = special.get('expect')
            if expect is not None and version == '1.1':
                expect_continue = '100-continue' in _lower_list(expect)
        if host is None and version == '1.1':
            raise _bad('missing Host header')

        # Request target (RFC 9112 §3.2).
        if target[0] == '/':
            if method == 'CONNECT':
                raise _bad('CONNECT requires an authority-form target')
            path, _, query = target.partition('?')
        elif target == '*':
            if method != 'OPTIONS':
                raise _bad('asterisk-form target is only valid for OPTIONS')
            path, query = '*', ''
        elif method == 'CONNECT':
            if _AUTHORITY_FORM.fullmatch(target) is None:
                raise _bad('invalid authority-form target')
            path, query, host = '/', '', target
        else:
            am = _ABSOLUTE_FORM.fullmatch(target)
            if am is None:
                raise _bad('invalid request target')
            host = am.group(1)
            path = am.group(2) or '/'
            query = am.group(3) or ''

        if chunked:
            self._state = _S_CHUNK_SIZE
            self._crlf = crlf  # its chunked framing must end lines the same way
        elif content_length:
            self._state = _S_BODY
            self._remaining = content_length
        else:
            self._state = _S_EOM
        return RequestHead(method, target, path, query, version, headers,
                           content_length, chunked, keep_alive,
                           expect_continue, host)

    # -- Content-Length body -------------------------------------------------

    def _next_body(self) -> Event:
        pos = self._pos
        avail = len(self._buf) - pos
        if avail <= 0:
            return self._need_data('request body')
        remaining = self._remaining
        n = remaining if avail >= remaining else avail
        data = self._take(pos, pos + n)
        self._pos = pos + n
        self._remaining = remaining - n
        if n == remaining:
            self._state = _S_EOM
        return Data(data)

    # -- chunked body --------------------------------------------------------

    def _next_chunked(self) -> Event:
        while True:
            state = self._state
            buf = self._buf
            pos = self._pos
            n = len(buf)
            if state == _S_CHUNK_DATA:
                avail = n - pos
                if avail <= 0:
                    return self._need_data('chunked body')
                remaining = self._remaining
                k = remaining if avail >= remaining else avail
                data = self._take(pos, pos + k)
                self._pos = pos + k
                self._remaining = remaining - k
                if k == remaining:
                    self._state = _S_CHUNK_CRLF
                return Data(data)
            if state == _S_CHUNK_SIZE:
                mcl = self.max_chunk_line
                lf = buf.find(b'\n', pos, pos + mcl + 2)
                if lf < 0:
                    if n - pos > mcl + 1:
                        raise _bad('chunk-size line too long')
                    return self._need_data('chunked body')
                if lf > pos and buf[lf - 1] == 13:
                    end = lf - 1
                elif self._crlf:
                    raise _bad('bare LF in the chunked framing of a request using CRLF')
                else:
                    end = lf
                if end - pos > mcl:
                    raise _bad('chunk-size line too long')
                line = buf[pos:end]
                if 0 < len(line) <= 15 and not line.translate(None, _HEXDIG):
                    size = int(line, 16)   # common case: no extensions
                else:
                    m = _CHUNK_LINE.fullmatch(line)
                    if m is None:
                        raise _bad('invalid chunk-size line')
                    size = int(m.group(1), 16)
                    if size > _MAX_CHUNK_SIZE:
                        raise _bad('chunk size too large')
                self._pos = lf + 1
                if size:
                    self._remaining = size
                    self._state = _S_CHUNK_DATA
                else:
                    self._state = _S_TRAILERS
                    self._scan = lf + 1
            elif state == _S_CHUNK_CRLF:
                if pos >= n:
                    return self._need_data('chunked body')
                c = buf[pos]
                if c == 10 and not self._crlf:
                    self._pos = pos + 1
                elif c == 13:
                    if pos + 1 >= n:
                        return self._need_data('chunked body')
                    if buf[pos + 1] != 10:
                        raise _bad('chunk data not followed by CRLF')
                    self._pos = pos + 2
                else:
                    raise _bad('chunk data not followed by CRLF')
                self._state = _S_CHUNK_SIZE
            else:
                return self._next_trailers(buf, pos, n)

    def _next_trailers(self, buf: bytes | bytearray, pos: int,
                       n: int) -> Event:
        if pos >= n:
            return self._need_data('chunked body')
        c = buf[pos]
        if c == 10 or c == 13:
            if c == 10 and self._crlf:
                raise _bad('bare LF in the chunked framing of a request using CRLF')
            if c == 13:
                if pos + 1 >= n:
                    return self._need_data('chunked body')
                if buf[pos + 1] != 10:
                    raise _bad('bare CR in trailer section')
                pos += 1
            self._pos = self._scan = pos + 1
            self._state = _S_DONE
            return EndOfMessage([])
        mhb = self.max_header_bytes
        found = self._find_section(mhb + 2)
        if found is None:
            if n - pos > mhb + 1:
                raise ProtocolError(431, 'trailer section too large')
            last = buf.rfind(b'\n', pos, n)
            if n - max(last + 1, pos) > self.max_header_line + 1:
                raise ProtocolError(431, 'trailer field line too long')
            return self._need_data('trailer section')
        if len(found) > 2 and self._crlf:
            raise _bad('bare LF in the trailers of a request using CRLF')
        lines, size = found[0], found[1]
        self._check_field_limits(lines, 0, size)
        trailers: list[tuple[str, str]] = []
        known_name = _NAME_CACHE.get
        for line in lines[:-1]:
            name, colon, value = line.partition(':')
            lname = known_name(name)
            if lname is None or not colon:
                lname = _check_field_name(line, name, colon)
            if lname in FORBIDDEN_TRAILERS:
                raise _bad('field not allowed in trailer section')
            trailers.append((name, value.strip(' \t')))
        self._state = _S_DONE
        return EndOfMessage(trailers)


# --------------------------------------------------------------------------
# Header value helpers
# --------------------------------------------------------------------------

def _lower_list(values: list[str]) -> set[str]:
    """Comma-separated list elements of all values, lower-cased, OWS stripped."""
    if len(values) == 1 and ',' not in values[0]:
        return {values[0].lower()}
    return {item.strip(' \t').lower()
            for value in values for item in value.split(',')}


def _parse_content_length(values: list[str]) -> int:
    """Content-Length (RFC 9110 §8.6): exactly one field holding one number.

    The list form (``5, 5``) and repeated fields, which RFC 9110 lets a recipient
    collapse when identical, are refused: a proxy in front may frame them otherwise.
    """
    if len(values) != 1:
        raise _bad('more than one Content-Length field')
    item = values[0]
    if not (item.isascii() and item.isdigit()):
        raise _bad('invalid Content-Length')
    digits = item.lstrip('0')
    if len(digits) > 19:
        raise ProtocolError(413, 'Content-Length too large')
    length = int(digits) if digits else 0
    if length > _MAX_CONTENT_LENGTH:
        raise ProtocolError(413, 'Content-Length too large')
    return length


def _check_transfer_encoding(values: list[str]) -> None:
    """Only a final, single ``chunked`` is supported (RFC 9112 §6.1, §6.3)."""
    codings: list[str] = []
    chunked_params = False
    for value in values:
        for item in value.split(','):
            name, semi, _params = item.partition(';')
            name = name.strip(' \t').lower()
            if not name:
                if semi:
                    raise _bad('invalid Transfer-Encoding')
                continue  # empty list element (RFC 9110 §5.6.1)
            if _TOKEN.fullmatch(name) is None:
                raise _bad('invalid Transfer-Encoding')
            if name == 'chunked' and semi:
                chunked_params = True
            codings.append(name)
    if not codings:
        raise _bad('empty Transfer-Encoding')
    count = codings.count('chunked')
    if count > 1:
        raise _bad('chunked applied more than once')
    if count == 1 and codings[-1] != 'chunked':
        raise _bad('chunked is not the final transfer coding')
    if len(codings) > 1 or count == 0:
        raise ProtocolError(501, 'unsupported transfer coding')
    if chunked_params:
        raise _bad('chunked transfer coding takes no parameters')


def _diagnose_request_line(line: str) -> NoReturn:
    """Raise the right ProtocolError for a request line the fast regex refused."""
    parts = line.split(' ')
    if len(parts) != 3:
        raise _bad('malformed request line')
    method, target, version = parts
    if _TOKEN.fullmatch(method) is None:
        raise _bad('invalid method')
    if not target or any(not 0x21 <= ord(c) <= 0x7e for c in target):
        raise _bad('invalid request target')
    if _HTTP_VERSION.fullmatch(version) is not None:
        raise ProtocolError(505, 'HTTP version not supported')
    raise _bad('invalid HTTP version')


def _check_field_name(line: str, name: str, colon: str) -> str:
    """Validate a field name not seen before; return it lower-cased and cache it.

    Raises ProtocolError (400) saying what is wrong with the field line.
    """
    if line[:1] in (' ', '\t'):
        raise _bad('obsolete line folding is not allowed')
    if not colon:
        raise _bad('header field line without a colon')
    if name[-1:] in (' ', '\t'):
        raise _bad('whitespace between header field name and colon')
    if _TOKEN.fullmatch(name) is None:
        raise _bad('invalid header field name')
    lname = name.lower()
    if '_' in lname and lname.replace('_', '-') in _UNDERSCORE_LOOKALIKES:
        raise _bad('header field name that reads as a framing field')
    if len(_NAME_CACHE) < _NAME_CACHE_MAX:
        _NAME_CACHE[name] = lname
    return lname


# --------------------------------------------------------------------------
# Serialisation
# --------------------------------------------------------------------------

#: Standard reason phrases (RFC 9110 §15 plus common registered extensions).
REASONS: dict[int, str] = {
    100: 'Continue', 101: 'Switching Protocols', 102: 'Processing',
    103: 'Early Hints',
    200: 'OK', 201: 'Created', 202: 'Accepted',
    203: 'Non-Authoritative Information', 204: 'No Content',
    205: 'Reset Content', 206: 'Partial Content', 207: 'Multi-Status',
    208: 'Already Reported', 226: 'IM Used',
    300: 'Multiple Choices', 301: 'Moved Permanently', 302: 'Found',
    303: 'See Other', 304: 'Not Modified', 305: 'Use Proxy',
    307: 'Temporary Redirect', 308: 'Permanent Redirect',
    400: 'Bad Request', 401: 'Unauthorized', 402: 'Payment Required',
    403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
    406: 'Not Acceptable', 407: 'Proxy Authentication Required',
    408: 'Request Timeout', 409: 'Conflict', 410: 'Gone',
    411: 'Length Required', 412: 'Precondition Failed',
    413: 'Content Too Large', 414: 'URI Too Long',
    415: 'Unsupported Media Type', 416: 'Range Not Satisfiable',
    417: 'Expectation Failed', 418: "I'm a teapot",
    421: 'Misdirected Request', 422: 'Unprocessable Content', 423: 'Locked',
    424: 'Failed Dependency', 425: 'Too Early', 426: 'Upgrade Required',
    428: 'Precondition Required', 429: 'Too Many Requests',
    431: 'Request Header Fields Too Large',
    451: 'Unavailable For Legal Reasons',
    500: 'Internal Server Error', 501: 'Not Implemented',
    502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
    505: 'HTTP Version Not Supported', 506: 'Variant Also Negotiates',
    507: 'Insufficient Storage', 508: 'Loop Detected', 510: 'Not Extended',
    511: 'Network Authentication Required',
}

_CLASS_REASONS = {1: 'Informational', 2: 'Success', 3: 'Redirection',
                  4: 'Client Error', 5: 'Server Error'}

_REASON_PHRASE = re.compile(r'[\t \x21-\x7e\x80-\xff]*')
_VERSION_NUMBER = re.compile(r'[0-9]\.[0-9]')
_STATUS_LINES: dict[tuple[int, str], str] = {}
_GOOD_NAMES: set[str] = set()
_GOOD_NAMES_MAX = 1024


def reason_phrase(status_code: int) -> str:
    """The standard reason phrase for a status code, or its class's phrase."""
    return REASONS.get(status_code) or _CLASS_REASONS.get(status_code // 100, 'Unknown')


def serialize_response_head(status_code: int, reason: str | None,
                            headers: list[tuple[str, str]] | Iterable[Any],
                            version: str = '1.1') -> bytes:
    """Encode a status line and header fields, ending with the empty line.

    Args:
        status_code: The status code (100 to 999).
        reason: The reason phrase (``None``: the standard one).
        headers: The header fields, as ``(name, value)`` pairs or a mapping; a list
            or tuple value gives one field per item.
        version: The HTTP version of the status line.

    Returns:
        The head, latin-1 encoded (values outside latin-1 as UTF-8).

    Raises:
        ValueError: Anything that would let a caller inject extra lines: an invalid
            status, reason, version or header name, or CR, LF or NUL in a value.
    """
    if isinstance(status_code, bool) or not isinstance(status_code, int):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ValueError('status code must be an integer')
    code = int(status_code)
    if not 100 <= code <= 999:
        raise ValueError(f'status code {code} outside 100-999')
    if reason is None:
        reason = REASONS.get(code) or _CLASS_REASONS.get(code // 100,
                                                         'Unknown')
    key = (code, reason)
    status_line = _STATUS_LINES.get(key) if version == '1.1' else None
    if status_line is None:
        if (not isinstance(reason, str)  # pyright: ignore[reportUnnecessaryIsInstance]
                or _REASON_PHRASE.fullmatch(reason) is None):
            raise ValueError('invalid reason phrase')
        if (not isinstance(version, str)  # pyright: ignore[reportUnnecessaryIsInstance]
                or _VERSION_NUMBER.fullmatch(version) is None):
            raise ValueError('invalid HTTP version')
        status_line = f'HTTP/{version} {code} {reason}\r\n'
        if version == '1.1' and len(_STATUS_LINES) < 256:
            _STATUS_LINES[key] = status_line

    parts = [status_line]
    append = parts.append
    good = _GOOD_NAMES
    items = cast(Any, headers).items() if hasattr(headers, 'items') else headers
    for name, value in items:
        if name not in good:
            if isinstance(name, (bytes, bytearray)):
                name = bytes(name).decode('latin-1')
            if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
                raise ValueError(f'invalid header name {name!r}')
            if len(good) < _GOOD_NAMES_MAX:
                good.add(name)
        if type(value) is str:
            append(f'{name}: {value}\r\n')
        elif isinstance(value, (list, tuple)):
            # A multi-valued header (e.g. Set-Cookie) gives one line each.
            for v in value:  # pyright: ignore[reportUnknownVariableType]
                append(f'{name}: {_value_text(v)}\r\n')
        else:
            append(f'{name}: {_value_text(value)}\r\n')
    append('\r\n')
    text = ''.join(parts)
    lines = len(parts)
    if (text.count('\n') != lines or text.count('\r') != lines
            or '\x00' in text):
        for line in parts[1:-1]:
            if line.count('\n') != 1 or line.count('\r') != 1 \
                    or '\x00' in line:
                raise ValueError('CR, LF or NUL in the value of header '
                                 + line.partition(':')[0])
        raise ValueError('CR, LF or NUL in response head')  # pragma: no cover
    try:
        return text.encode('latin-1')
    except UnicodeEncodeError:
        # Values outside latin-1 are sent as UTF-8 rather than refused.
        return b''.join(p.encode('latin-1') if p.isascii() else
                        _encode_value(p) for p in parts)


def is_field_name(name: Any) -> bool:
    """Whether ``name`` can be sent as a header field name (a ``str`` token).

    Args:
        name: The candidate name.

    Returns:
        ``True`` for a non-empty ``str`` of token characters (RFC 9110 §5.1).
    """
    return name in _GOOD_NAMES or (isinstance(name, str)
                                   and _TOKEN.fullmatch(name) is not None)


def check_fields(fields: list[tuple[str, str]]) -> None:
    """Check header fields, for servers that frame responses themselves (ASGI, WSGI).

    Args:
        fields: The header fields, as ``(name, value)`` pairs.

    Raises:
        ValueError: A name that is not a token, or a value holding CR, LF or NUL.
    """
    good = _GOOD_NAMES
    for name, _ in fields:
        if name not in good:
            if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:  # pyright: ignore[reportUnnecessaryIsInstance]
                raise ValueError(f'invalid header name {name!r}')
            if len(good) < _GOOD_NAMES_MAX:
                good.add(name)
    text = ''.join([value for _, value in fields])
    if '\r' in text or '\n' in text or '\x00' in text:
        for name, value in fields:
            if '\r' in value or '\n' in value or '\x00' in value:
                raise ValueError('CR, LF or NUL in the value of header ' + name)


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode('latin-1')
    return str(value)


def _encode_value(text: str) -> bytes:
    try:
        return text.encode('latin-1')
    except UnicodeEncodeError:
        return text.encode('utf-8')


#: The zero-size chunk plus empty trailer section that ends a chunked body.
LAST_CHUNK: bytes = b'0\r\n\r\n'


def encode_chunk(data: bytes) -> bytes:
    """Frame ``data`` as one chunk of the chunked coding.

    An empty chunk would end the body, so use :data:`LAST_CHUNK` for that explicitly.

    Args:
        data: The chunk's bytes.

    Returns:
        The framed chunk; ``b''`` for empty data.
    """
    size = len(data)
    if not size:
        return b''
    return b'%x\r\n%b\r\n' % (size, data)
