"""A streaming, sans-I/O parser for ``multipart/form-data`` bodies (RFC 7578 / 2046).

Feed it bytes as they arrive (``feed(b'')`` at the end of the body) and pull events
with :meth:`MultipartParser.next_event`: :class:`PartHeaders`, :class:`PartData`
(any number, of any size), :data:`PART_END`, then :data:`FINISHED` after the close
delimiter. It buffers at most one part-header block or a delimiter's length of body
bytes, so memory does not grow with the size of the parts. Malformed input raises
:class:`MultipartError`.
"""
from __future__ import annotations

import re
from typing import Dict, List, NamedTuple, Optional, Tuple, Union
from urllib.parse import unquote


class MultipartError(ValueError):
    """The body is not valid ``multipart/form-data`` (or breaks a parser limit)."""


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: More bytes are needed before the next event.
NEED_DATA = _Marker('NEED_DATA')
#: The current part's data is complete.
PART_END = _Marker('PART_END')
#: The close delimiter was seen; anything after it (the epilogue) is ignored.
FINISHED = _Marker('FINISHED')


class PartHeaders(NamedTuple):
    """A part starts: its header fields as ``(name, value)`` pairs."""
    headers: List[Tuple[str, str]]


class PartData(NamedTuple):
    """A piece of the current part's content."""
    data: bytes


Event = Union[PartHeaders, PartData, _Marker]

_PREAMBLE, _AFTER_DELIMITER, _HEADERS, _BODY, _DONE = range(5)
_TOKEN = re.compile(rb'^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$')
#: Whitespace allowed between a boundary and its line end ("transport padding").
_MAX_PADDING = 64


def valid_boundary(boundary: str) -> bool:
    """Tell whether a boundary can delimit parts.

    Args:
        boundary: The ``boundary`` parameter of the content type.

    Returns:
        ``True`` for 1 to 200 printable ASCII characters not ending with a space.
    """
    return 0 < len(boundary) <= 200 and all(0x20 <= ord(c) <= 0x7e for c in boundary) \
        and not boundary.endswith(' ')


class MultipartParser:
    """Parses one multipart body; see the module docstring for the event protocol.

    Args:
        boundary: The boundary of the body's content type.
        max_header_size: The largest header block of one part, in bytes.
        max_headers: The most header fields in one part.
        max_parts: The most parts in the body.

    Raises:
        MultipartError: If ``boundary`` is not valid.
    """

    def __init__(self, boundary: Union[str, bytes], max_header_size: int = 8192,
                 max_headers: int = 32, max_parts: int = 1000) -> None:
        if isinstance(boundary, str):
            if not valid_boundary(boundary):
                raise MultipartError('invalid multipart boundary')
            boundary = boundary.encode('ascii')
        self.delimiter = b'\r\n--' + boundary
        self.max_header_size = max_header_size
        self.max_headers = max_headers
        self.max_parts = max_parts
        self.parts = 0
        # a leading CRLF lets the first boundary match at the very start of the body
        self._buffer = bytearray(b'\r\n')
        self._state = _PREAMBLE
        self._eof = False

    def feed(self, data: bytes) -> None:
        """Add body bytes; ``b''`` marks the end of the body.

        Args:
            data: The bytes received.
        """
        if not data:
            self._eof = True
        elif self._state != _DONE:
            self._buffer += data

    @property
    def finished(self) -> bool:
        """Whether the close delimiter was seen."""
        return self._state == _DONE

    def next_event(self) -> Event:
        """Parse the next event from the bytes fed so far.

        Returns:
            :class:`PartHeaders`, :class:`PartData`, :data:`PART_END`, :data:`FINISHED`,
            or :data:`NEED_DATA` when more bytes are needed.

        Raises:
            MultipartError: If the body is malformed, breaks a limit, or ends before its
                close delimiter.
        """
        state = self._state
        if state == _BODY:
            event = self._body()
        elif state == _HEADERS:
            event = self._headers()
        elif state == _AFTER_DELIMITER:
            event = self._after_delimiter()
        elif state == _PREAMBLE:
            event = self._preamble()
        else:
            return FINISHED
        if event is NEED_DATA and self._eof:
            raise MultipartError('multipart body ends before its close delimiter')
        return event

    # -- states ---------------------------------------------------------------------

    def _preamble(self) -> Event:
        buf = self._buffer
        i = buf.find(self.delimiter)
        if i == -1:
            keep = len(self.delimiter) - 1
            if len(buf) > keep:
                del buf[:len(buf) - keep]
            return NEED_DATA
        del buf[:i + len(self.delimiter)]
        self._state = _AFTER_DELIMITER
        return self._after_delimiter()

    def _after_delimiter(self) -> Event:
        buf = self._buffer
        if len(buf) < 2:
            return NEED_DATA
        if buf.startswith(b'--'):
            self._state = _DONE
            self._buffer = bytearray()
            return FINISHED
        i = buf.find(b'\r\n', 0, _MAX_PADDING + 2)
        if i == -1:
            if len(buf) >= _MAX_PADDING + 2 or buf.strip(b' \t\r'):
                raise MultipartError('garbage after a multipart boundary')
            return NEED_DATA
        if buf[:i].strip(b' \t'):
            raise MultipartError('garbage after a multipart boundary')
        del buf[:i + 2]
        self.parts += 1
        if self.parts > self.max_parts:
            raise MultipartError('too many parts in the multipart body')
        self._state = _HEADERS
        return self._headers()

    def _headers(self) -> Event:
        buf = self._buffer
        if buf.startswith(b'\r\n'):
            del buf[:2]
            self._state = _BODY
            return PartHeaders([])
        i = buf.find(b'\r\n\r\n', 0, self.max_header_size + 4)
        if i == -1:
            if len(buf) > self.max_header_size:
                raise MultipartError('multipart part headers too large')
            return NEED_DATA
        block = bytes(buf[:i])
        del buf[:i + 4]
        self._state = _BODY
        return PartHeaders(self._parse_headers(block))

    def _parse_headers(self, block: bytes) -> List[Tuple[str, str]]:
        headers: List[Tuple[str, str]] = []
        for line in block.split(b'\r\n'):
            if line[:1] in (b' ', b'\t'):
                if not headers:
                    raise MultipartError('malformed multipart part header')
                name, value = headers[-1]
                headers[-1] = (name, value + ' ' + _decode(line.strip()))
                continue
            raw_name, sep, raw_value = line.partition(b':')
            raw_name = raw_name.strip()
            if not sep or not _TOKEN.match(raw_name):
                raise MultipartError('malformed multipart part header')
            headers.append((raw_name.decode('ascii'), _decode(raw_value.strip())))
            if len(headers) > self.max_headers:
                raise MultipartError('too many multipart part headers')
        return headers

    def _body(self) -> Event:
        buf = self._buffer
        delimiter = self.delimiter
        i = buf.find(delimiter)
        if i == 0:
            del buf[:len(delimiter)]
            self._state = _AFTER_DELIMITER
            return PART_END
        if i > 0:
            data = bytes(buf[:i])
            del buf[:i]
            return PartData(data)
        # no delimiter yet: everything but a possible partial delimiter at the end
        safe = len(buf) - len(delimiter) + 1
        if safe <= 0:
            return NEED_DATA
        tail = buf.find(b'\r', safe)
        while tail != -1 and not delimiter.startswith(bytes(buf[tail:])):
            tail = buf.find(b'\r', tail + 1)
        safe = tail if tail != -1 else len(buf)
        if safe == 0:
            return NEED_DATA
        data = bytes(buf[:safe])
        del buf[:safe]
        return PartData(data)


def _decode(value: bytes) -> str:
    """Header bytes as text: UTF-8 (what browsers send), else Latin-1."""
    try:
        return value.decode('utf-8')
    except UnicodeDecodeError:
        return value.decode('latin-1')


# -- header values ---------------------------------------------------------------------

def _split_params(text: str) -> List[str]:
    """Split ``text`` on ``;`` outside quoted strings; raises on an unclosed quote."""
    parts: List[str] = []
    current: List[str] = []
    quoted = escaped = False
    for ch in text:
        if quoted:
            current.append(ch)
            if escaped:
                escaped = False
            elif ch == '\\':
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
            current.append(ch)
        elif ch == ';':
            parts.append(''.join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        raise MultipartError('unterminated quoted string in a header')
    parts.append(''.join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        # only \" and \\ are unescaped: browsers send Windows paths unescaped
        return value[1:-1].replace('\\\\', '\\').replace('\\"', '"')
    return value


def _decode_extended(value: str) -> Optional[str]:
    """An RFC 8187 ``charset'lang'percent-encoded`` value, or None if malformed."""
    parts = value.split("'", 2)
    if len(parts) != 3:
        return None
    charset = parts[0].strip() or 'utf-8'
    try:
        return unquote(parts[2], encoding=charset, errors='replace')
    except LookupError:
        return unquote(parts[2], encoding='utf-8', errors='replace')


def parse_options_header(value: Optional[str], extended: bool = True
                         ) -> Tuple[str, Dict[str, str]]:
    """Split a header value such as ``type/sub; a=1; b="x y"`` into the value and its parameters.

    Parameter names are lower-cased; with ``extended``, ``name*=charset''text``
    (RFC 8187) values are decoded and take precedence over plain ``name=``; without,
    they are ignored.

    Args:
        value: The header value (``None`` or empty: ``('', {})``).
        extended: Decode RFC 8187 ``name*=`` parameters.

    Returns:
        ``(value, parameters)``: the lower-case main value and a dict of parameters.

    Raises:
        MultipartError: For an unterminated quoted string.
    """
    if not value:
        return '', {}
    parts = _split_params(value)
    main = parts[0].strip().lower()
    params: Dict[str, str] = {}
    extended_params: Dict[str, str] = {}
    for part in parts[1:]:
        name, sep, val = part.partition('=')
        name = name.strip().lower()
        if not name:
            continue
        val = val.strip()
        if name.endswith('*'):
            decoded = _decode_extended(val) if extended else None
            if decoded is not None:
                extended_params[name[:-1]] = decoded
            continue
        params.setdefault(name, _unquote(val) if sep else '')
    params.update(extended_params)
    return main, params
