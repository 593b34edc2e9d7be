"""Sans-I/O WebSocket protocol (RFC 6455) codec.

This module performs no I/O: the caller feeds received bytes to a
:class:`WebSocketConnection`, iterates over the decoded events, and writes the
bytes returned by the sending methods to its transport. The same codec is used
by the built-in server, by the WSGI adapter and (as a masking client) by the
in-process test client.

Typical server loop::

    conn = WebSocketConnection()
    while True:
        conn.receive_data(sock.recv(65536))      # b'' means EOF
        try:
            for event in conn.events():
                if isinstance(event, Message):
                    sock.sendall(conn.send(event.data))     # echo
                elif isinstance(event, Ping):
                    sock.sendall(conn.pong(event.data))
                elif isinstance(event, Close):
                    sock.sendall(conn.answer_close())       # b'' if not needed
        except ProtocolError as exc:
            sock.sendall(conn.close(exc.code, exc.reason))
            break                   # fail the connection: drop the socket
        if conn.state == 'closed':
            break

Decisions where RFC 6455 leaves room (all enforced on the receiving side):

* Non-minimal 16/64-bit extended payload lengths are refused with 1002
  (section 5.2: "the minimal number of bytes MUST be used").
* Text payloads are validated incrementally as they arrive, including inside a
  frame that has only partially arrived, so invalid UTF-8 fails fast (1007)
  while a valid-but-truncated prefix never fails early.
* Sizes are checked from the frame header: a frame longer than
  ``max_frame_size`` or a message whose declared length would exceed
  ``max_message_size`` is refused (1009) before its payload is buffered.
* Once a Close frame has been received, all further input is discarded.
* An EOF (``receive_data(b'')``) that arrives before a Close frame is reported
  once as ``Close(CLOSE_ABNORMAL)`` (1006, a code that never goes on the wire).
* Pings are not answered automatically and a received Close is not echoed
  automatically: the caller uses :meth:`WebSocketConnection.pong` and
  :meth:`WebSocketConnection.answer_close`, keeping this class free of output
  queues.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import os
import struct
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, Union

__all__ = [
    'OP_CONT', 'OP_TEXT', 'OP_BINARY', 'OP_CLOSE', 'OP_PING', 'OP_PONG',
    'CLOSE_NORMAL', 'CLOSE_GOING_AWAY', 'CLOSE_PROTOCOL_ERROR',
    'CLOSE_UNSUPPORTED', 'CLOSE_NO_STATUS', 'CLOSE_ABNORMAL',
    'CLOSE_INVALID_DATA', 'CLOSE_POLICY', 'CLOSE_TOO_BIG',
    'CLOSE_MANDATORY_EXT', 'CLOSE_INTERNAL_ERROR', 'CLOSE_SERVICE_RESTART',
    'CLOSE_TRY_AGAIN_LATER', 'CLOSE_BAD_GATEWAY', 'CLOSE_TLS_HANDSHAKE',
    'WS_GUID', 'HandshakeError', 'ProtocolError', 'ConnectionClosed',
    'accept_key', 'check_handshake', 'handshake_response_headers',
    'client_handshake_headers', 'check_handshake_response',
    'is_valid_close_code', 'mask', 'Message', 'Ping', 'Pong', 'Close',
    'Event', 'WebSocketConnection',
]

# -- opcodes (RFC 6455 section 5.2) -------------------------------------------
#: Continuation frame of a fragmented data message.
OP_CONT = 0x0
#: Text data frame (payload is UTF-8).
OP_TEXT = 0x1
#: Binary data frame.
OP_BINARY = 0x2
#: Connection close control frame.
OP_CLOSE = 0x8
#: Ping control frame.
OP_PING = 0x9
#: Pong control frame.
OP_PONG = 0xA

# -- close status codes (RFC 6455 section 7.4.1 and the IANA registry) --------
#: Normal closure.
CLOSE_NORMAL = 1000
#: Endpoint going away (server shutdown, page navigation).
CLOSE_GOING_AWAY = 1001
#: Protocol violation.
CLOSE_PROTOCOL_ERROR = 1002
#: Data type the endpoint cannot accept.
CLOSE_UNSUPPORTED = 1003
#: Reported locally when a Close frame carried no status code (never sent).
CLOSE_NO_STATUS = 1005
#: Reported locally when the connection dropped without a Close (never sent).
CLOSE_ABNORMAL = 1006
#: Payload inconsistent with the message type (e.g. invalid UTF-8).
CLOSE_INVALID_DATA = 1007
#: Generic policy violation.
CLOSE_POLICY = 1008
#: Message too big to process.
CLOSE_TOO_BIG = 1009
#: Client expected an extension the server did not negotiate.
CLOSE_MANDATORY_EXT = 1010
#: Unexpected server condition.
CLOSE_INTERNAL_ERROR = 1011
#: Server restarting (IANA registry).
CLOSE_SERVICE_RESTART = 1012
#: Try again later (IANA registry).
CLOSE_TRY_AGAIN_LATER = 1013
#: Bad gateway (IANA registry).
CLOSE_BAD_GATEWAY = 1014
#: Reported locally when the TLS handshake failed (never sent).
CLOSE_TLS_HANDSHAKE = 1015

#: The GUID concatenated to Sec-WebSocket-Key to compute Sec-WebSocket-Accept.
WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

_MASK_CHUNK = 1 << 14
_HDR16 = struct.Struct('!BBH')
_HDR64 = struct.Struct('!BBQ')
_CLOSE_CODE = struct.Struct('!H')
_utf8_decoder = codecs.getincrementaldecoder('utf-8')


# -- exceptions ---------------------------------------------------------------

class HandshakeError(Exception):
    """An opening handshake was refused; carries the HTTP error to answer with.

    Args:
        status_code: 400 or 426 (426 comes with ``Sec-WebSocket-Version`` in
            ``headers``); for :func:`check_handshake_response`, the status the
            server answered with.
        reason: What was wrong.
        headers: Headers for the error answer.
    """

    def __init__(self, status_code: int, reason: str,
                 headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(f'{status_code} {reason}')
        self.status_code = status_code
        self.reason = reason
        self.headers: list[tuple[str, str]] = list(headers)


class ProtocolError(Exception):
    """The peer violated RFC 6455; ``code`` is the close code to send back.

    Args:
        code: The close code (1002, 1007, 1009...).
        reason: What was wrong.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f'{code} {reason}')
        self.code = code
        self.reason = reason


class ConnectionClosed(RuntimeError):
    """Raised when sending on a connection that no longer accepts frames."""


# -- handshake ----------------------------------------------------------------

def accept_key(key: str) -> str:
    """Compute the ``Sec-WebSocket-Accept`` value for a ``Sec-WebSocket-Key``.

    That is base64(SHA-1(key + GUID)), as in RFC 6455 section 4.2.2.

    Args:
        key: The client's ``Sec-WebSocket-Key``.

    Returns:
        The accept value.
    """
    digest = hashlib.sha1((key + WS_GUID).encode('ascii', 'replace'),
                          usedforsecurity=False).digest()
    return base64.b64encode(digest).decode('ascii')


def _tokens(value: str | None) -> list[str]:
    """Split a comma-separated header value into stripped, non-empty items."""
    if not value:
        return []
    return [item.strip() for item in value.split(',') if item.strip()]


def _http_version_ok(http_version: str) -> bool:
    version = http_version.strip()
    if version[:5].upper() == 'HTTP/':
        version = version[5:]
    major, _, minor = version.partition('.')
    if not (major.isdigit() and minor.isdigit()):
        return False
    return int(major) == 1 and int(minor) >= 1


def check_handshake(method: str, http_version: str,
                    get_header: Callable[[str], str | None],
                    subprotocols: Sequence[str] = ()
                    ) -> tuple[str, str | None]:
    """Validate a client's opening handshake (RFC 6455 section 4.2.1).

    Args:
        method: The request method (only ``GET`` is valid).
        http_version: ``'HTTP/1.1'`` or ``'1.1'`` (1.1 and later are valid).
        get_header: Looks headers up case-insensitively; repeated headers must be
            joined with ``', '``.
        subprotocols: The subprotocols the server supports.

    Returns:
        ``(accept, subprotocol)``: the ``Sec-WebSocket-Accept`` value and the first
        subprotocol *in the client's order of preference* that is also in
        ``subprotocols`` (``None`` if there is none).

    Raises:
        HandshakeError: 426 (with a ``Sec-WebSocket-Version: 13`` header) when the
            version header is missing or not 13, 400 for anything else.
    """
    if method != 'GET':
        raise HandshakeError(400, 'WebSocket handshake requires GET')
    if not _http_version_ok(http_version):
        raise HandshakeError(400, 'WebSocket handshake requires HTTP/1.1')
    if 'websocket' not in (t.lower() for t in _tokens(get_header('Upgrade'))):
        raise HandshakeError(400, 'missing "Upgrade: websocket" header')
    if 'upgrade' not in (t.lower() for t in _tokens(get_header('Connection'))):
        raise HandshakeError(400, 'missing "Connection: Upgrade" header')
    version = get_header('Sec-WebSocket-Version')
    if version is None or version.strip() != '13':
        raise HandshakeError(426, 'unsupported WebSocket version',
                             [('Sec-WebSocket-Version', '13')])
    key = get_header('Sec-WebSocket-Key')
    if key is None:
        raise HandshakeError(400, 'missing Sec-WebSocket-Key header')
    key = key.strip()
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise HandshakeError(400, 'invalid Sec-WebSocket-Key header') from None
    if len(raw) != 16:
        raise HandshakeError(400, 'invalid Sec-WebSocket-Key header')
    chosen = None
    if subprotocols:
        supported = set(subprotocols)
        for offered in _tokens(get_header('Sec-WebSocket-Protocol')):
            if offered in supported:
                chosen = offered
                break
    return accept_key(key), chosen


def handshake_response_headers(accept: str, subprotocol: str | None = None
                               ) -> list[tuple[str, str]]:
    """Make the headers of the server's ``101 Switching Protocols`` answer.

    Args:
        accept: The ``Sec-WebSocket-Accept`` value.
        subprotocol: The subprotocol selected, or ``None``.

    Returns:
        The ``(name, value)`` pairs.
    """
    headers = [('Upgrade', 'websocket'), ('Connection', 'Upgrade'),
               ('Sec-WebSocket-Accept', accept)]
    if subprotocol is not None:
        headers.append(('Sec-WebSocket-Protocol', subprotocol))
    return headers


def client_handshake_headers(key: str | None = None,
                             subprotocols: Sequence[str] = ()
                             ) -> tuple[list[tuple[str, str]], str]:
    """Make the headers of a client's opening handshake (``Host`` is left to the caller).

    Args:
        key: The ``Sec-WebSocket-Key`` (``None``: a random one).
        subprotocols: The subprotocols to offer, in order of preference.

    Returns:
        ``(headers, key)``.
    """
    if key is None:
        key = base64.b64encode(os.urandom(16)).decode('ascii')
    headers = [('Upgrade', 'websocket'), ('Connection', 'Upgrade'),
               ('Sec-WebSocket-Key', key), ('Sec-WebSocket-Version', '13')]
    if subprotocols:
        headers.append(('Sec-WebSocket-Protocol', ', '.join(subprotocols)))
    return headers, key


def check_handshake_response(status_code: int,
                             get_header: Callable[[str], str | None],
                             key: str, subprotocols: Sequence[str] = ()
                             ) -> str | None:
    """Validate a server's handshake answer on the client side (section 4.1).

    Args:
        status_code: The status the server answered with.
        get_header: Looks the answer's headers up case-insensitively.
        key: The ``Sec-WebSocket-Key`` the client sent.
        subprotocols: The subprotocols the client offered.

    Returns:
        The subprotocol the server selected, or ``None``.

    Raises:
        HandshakeError: Carrying the received status, when the answer is not a valid
            ``101`` (or selects a subprotocol that was not offered).
    """
    if status_code != 101:
        raise HandshakeError(status_code, 'server did not switch protocols')
    if 'websocket' not in (t.lower() for t in _tokens(get_header('Upgrade'))):
        raise HandshakeError(status_code,
                             'missing "Upgrade: websocket" header')
    if 'upgrade' not in (t.lower() for t in _tokens(get_header('Connection'))):
        raise HandshakeError(status_code,
                             'missing "Connection: Upgrade" header')
    if (get_header('Sec-WebSocket-Accept') or '').strip() != accept_key(key):
        raise HandshakeError(status_code,
                             'invalid Sec-WebSocket-Accept header')
    protocol = get_header('Sec-WebSocket-Protocol')
    if protocol is None:
        return None
    protocol = protocol.strip()
    if protocol not in subprotocols:
        raise HandshakeError(status_code, 'server selected a subprotocol that '
                             'was not offered')
    return protocol


# -- framing helpers ----------------------------------------------------------

def is_valid_close_code(code: int) -> bool:
    """Tell whether a close code may appear in a Close frame on the wire.

    Args:
        code: The close code.

    Returns:
        ``True`` for 1000-1003, 1007-1014 and 3000-4999.
    """
    return (1000 <= code <= 1003 or 1007 <= code <= 1014
            or 3000 <= code <= 4999)


def mask(data: bytes | bytearray | memoryview, key: bytes | bytearray) -> bytes:
    """XOR data with a 4-byte key repeated (masking is symmetric).

    Works on whole machine integers (``int.from_bytes``) in 16 KiB blocks, so a
    1 MiB payload takes a few milliseconds instead of a per-byte loop.

    Args:
        data: The payload.
        key: The masking key.

    Returns:
        The masked (or unmasked) payload.

    Raises:
        ValueError: If ``key`` is not 4 bytes long.
    """
    if len(key) != 4:
        raise ValueError('the masking key must be 4 bytes long')
    n = len(data)
    if n <= _MASK_CHUNK:
        if not n:
            return b''
        return (int.from_bytes(data, 'little')
                ^ int.from_bytes((key * ((n >> 2) + 1))[:n], 'little')
                ).to_bytes(n, 'little')
    from_bytes = int.from_bytes
    step = _MASK_CHUNK
    block_key = from_bytes(key * (step >> 2), 'little')
    view = memoryview(data)
    parts: list[bytes] = []
    append = parts.append
    end = n - n % step
    for i in range(0, end, step):
        append((from_bytes(view[i:i + step], 'little') ^ block_key)
               .to_bytes(step, 'little'))
    if end < n:
        append(mask(view[end:], key))   # end is a multiple of 4: same phase
    return b''.join(parts)


# -- events -------------------------------------------------------------------

@dataclass(slots=True)
class Message:
    """A complete data message: ``data`` is ``str`` for text, ``bytes`` for binary.

    Attributes:
        data: The message.
    """

    data: str | bytes


@dataclass(slots=True)
class Ping:
    """A ping from the peer; answer it with ``conn.pong(event.data)``.

    Attributes:
        data: The ping's payload.
    """

    data: bytes = b''


@dataclass(slots=True)
class Pong:
    """A pong from the peer (an answer to our ping or an unsolicited one).

    Attributes:
        data: The pong's payload.
    """

    data: bytes = b''


@dataclass(slots=True)
class Close:
    """The peer closed: ``code`` is ``None`` for an empty Close frame (1005).

    Also yielded once with ``code == CLOSE_ABNORMAL`` (1006) on EOF without a
    Close frame. Answer a real Close with ``conn.answer_close()``.

    Attributes:
        code: The close code, or ``None``.
        reason: The close reason.
    """

    code: int | None = None
    reason: str = ''


#: Anything :meth:`WebSocketConnection.events` yields.
Event = Union[Message, Ping, Pong, Close]

_NEED_DATA = object()   # sentinel: the current frame needs more bytes
_FRAME = object()       # sentinel: a frame header was parsed


# -- the connection -----------------------------------------------------------

class WebSocketConnection:
    """The framing state of one WebSocket connection, after the handshake.

    Bytes in with :meth:`receive_data`, events out with :meth:`events`; the
    sending methods return bytes to write.

    Args:
        is_client: Mask the frames sent (a client) and expect unmasked ones.
        max_message_size: The largest message accepted, in bytes (``None``: no
            limit); a larger one is a protocol error (1009).
        max_frame_size: The largest frame accepted, in bytes (``None``: no limit).
    """

    def __init__(self, *, is_client: bool = False,
                 max_message_size: int | None = 1 << 20,
                 max_frame_size: int | None = None) -> None:
        self.is_client = is_client
        self.max_message_size = max_message_size
        self.max_frame_size = max_frame_size
        self._buf: bytearray = bytearray()
        self._pos: int = 0              # start of unconsumed data in _buf
        # frame whose header has been parsed and whose payload is pending
        self._in_frame: bool = False
        self._f_opcode: int = 0
        self._f_fin: bool = False
        self._f_left: int = 0           # payload bytes not yet consumed
        self._f_done: int = 0           # payload bytes consumed (mask phase)
        self._f_mask: bytes | None = None
        # data message being received (opcode 0 = none)
        self._m_opcode: int = 0
        self._m_size: int = 0           # declared bytes of the message so far
        self._m_parts: list[Any] = []    # str (text) or bytes chunks
        self._m_decoder: codecs.IncrementalDecoder | None = None
        # sending side
        self._sending_fragmented = False
        self._close_sent = False
        self._close_received: Close | None = None
        self._eof = False
        self._eof_reported = False
        self._error: ProtocolError | None = None

    # -- state -------------------------------------------------------------

    @property
    def state(self) -> str:
        """'open', 'closing' (we sent a Close) or 'closed' (both sides did).

        EOF also makes the state 'closed'. A Close received from the peer
        alone does not change the state: see :attr:`close_received`.
        """
        if self._eof or (self._close_sent
                         and self._close_received is not None):
            return 'closed'
        if self._close_sent:
            return 'closing'
        return 'open'

    @property
    def close_received(self) -> Close | None:
        """The Close event received from the peer, or None if none yet."""
        return self._close_received

    @property
    def close_sent(self) -> bool:
        """Whether :meth:`close` has produced a Close frame."""
        return self._close_sent

    # -- receiving ---------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the transport; ``b''`` signals EOF.

        Input after EOF, after a received Close or after a protocol error is
        discarded.

        Args:
            data: The bytes read.
        """
        if not data:
            self._eof = True
            return
        if (self._eof or self._close_received is not None
                or self._error is not None):
            return
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        self._buf += data

    def events(self) -> Iterator[Event]:
        """Yield the events decodable from the data received so far.

        After a protocol error, answer with ``close(err.code, err.reason)``.

        Yields:
            :class:`Message`, :class:`Ping`, :class:`Pong` and :class:`Close` events.

        Raises:
            ProtocolError: When the peer breaks the protocol (again on every later
                call).
        """
        while True:
            event = self._next_event()
            if event is None:
                return
            yield event

    def _next_event(self) -> Event | None:
        if self._error is not None:
            raise self._error
        try:
            while self._close_received is None:
                if not self._in_frame:
                    header: Event | None = self._read_header()
                    if header is None:
                        break
                    if header is not _FRAME:
                        return header
                event: Event | None = self._read_payload()
                if event is _NEED_DATA:
                    break
                if event is not None:
                    return event
        except ProtocolError as exc:
            self._error = exc
            self._discard()
            raise
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0
        if (self._eof and not self._eof_reported
                and self._close_received is None):
            self._eof_reported = True
            return Close(CLOSE_ABNORMAL, '')
        return None

    def _discard(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._m_parts = []
        self._m_decoder = None

    def _read_header(self) -> Any:
        """Parse the next frame header: _FRAME, None if more bytes are needed,
        or a Message when a whole single-frame message is already buffered."""
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail < 2:
            return None
        b0 = buf[pos]
        b1 = buf[pos + 1]
        # everything decidable from the first two bytes fails immediately
        if b0 & 0x70:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR,
                                'reserved bits set without an extension')
        opcode = b0 & 0x0F
        fin = bool(b0 & 0x80)
        length = b1 & 0x7F
        if opcode >= OP_CLOSE:
            if opcode > OP_PONG:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR,
                                    f'unknown opcode {opcode:#x}')
            if not fin:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR,
                                    'fragmented control frame')
            if length > 125:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR,
                                    'control frame payload over 125 bytes')
        elif opcode == OP_CONT:
            if not self._m_opcode:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR,
                                    'continuation frame without a message')
        elif opcode <= OP_BINARY:
            if self._m_opcode:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR,
                                    'new message inside a fragmented message')
        else:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR,
                                f'unknown opcode {opcode:#x}')
        masked = b1 & 0x80
        if masked and self.is_client:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR,
                                'masked frame from the server')
        if not masked and not self.is_client:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR,
                                'unmasked frame from the client')
        # the length is validated as soon as it is complete, even if the
        # masking key has not arrived yet
        if length == 126:
            if avail < 4:
                return None
            length = (buf[pos + 2] << 8) | buf[pos + 3]
            if length < 126:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR,
                                    'non-minimal payload length encoding')
            size = 4
        elif length == 127:
            if avail < 10:
                return None
            length = int.from_bytes(buf[pos + 2:pos + 10], 'big')
            if length >> 63:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR,
                                    'payload length with the high bit set')
            if length < 65536:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR,
                                    'non-minimal payload length encoding')
            size = 10
        else:
            size = 2
        if self.max_frame_size is not None and length > self.max_frame_size:
            raise ProtocolError(CLOSE_TOO_BIG, 'frame too big')
        total = self._m_size + length
        if (opcode < OP_CLOSE and self.max_message_size is not None
                and total > self.max_message_size):
            raise ProtocolError(CLOSE_TOO_BIG, 'message too big')
        if masked:
            size += 4
            if avail < size:
                return None
        if fin and opcode and opcode < OP_CLOSE and avail >= size + length:
            # fast path: a complete single-frame message is buffered
            start = pos + size
            end = start + length
            payload: bytes | bytearray = buf[start:end]
            self._pos = end
            if masked and length:
                key = buf[start - 4:start]
                if length <= _MASK_CHUNK:
                    payload = (int.from_bytes(payload, 'little')
                               ^ int.from_bytes((key * ((length >> 2) + 1))
                                                [:length], 'little')
                               ).to_bytes(length, 'little')
                else:
                    payload = mask(payload, key)
            if opcode == OP_TEXT:
                try:
                    return Message(payload.decode('utf-8'))
                except UnicodeDecodeError:
                    raise ProtocolError(CLOSE_INVALID_DATA,
                                        'invalid UTF-8 in text message') \
                        from None
            return Message(bytes(payload))
        self._f_mask = bytes(buf[pos + size - 4:pos + size]) if masked \
            else None
        if opcode < OP_CLOSE:
            if opcode:
                self._m_opcode = opcode
            self._m_size = total
        self._pos = pos + size
        self._f_opcode = opcode
        self._f_fin = fin
        self._f_left = length
        self._f_done = 0
        self._in_frame = True
        return _FRAME

    def _read_payload(self) -> Any:
        """Consume payload of the current frame.

        Returns an event, None (frame done, no event) or _NEED_DATA.
        """
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        left = self._f_left
        opcode = self._f_opcode
        if opcode >= OP_CLOSE:              # control: wait for all of it
            if avail < left:
                return _NEED_DATA
            payload = bytes(buf[pos:pos + left])
            self._pos = pos + left
            self._in_frame = False
            if self._f_mask is not None:
                payload = mask(payload, self._f_mask)
            return self._control_event(opcode, payload)

        # data frame: consume whatever is available (streaming)
        if left > avail:
            if not avail:
                return _NEED_DATA
            n = avail
        else:
            n = left
        chunk: bytes | bytearray = buf[pos:pos + n]
        self._pos = pos + n
        key = self._f_mask
        if key is not None:
            phase = self._f_done & 3
            if phase:
                key = key[phase:] + key[:phase]
            chunk = mask(chunk, key)
        self._f_done += n
        left -= n
        self._f_left = left
        fin = self._f_fin and not left
        if left == 0:
            self._in_frame = False

        if self._m_opcode == OP_TEXT:
            decoder = self._m_decoder
            if fin and decoder is None and not self._m_parts:
                # whole message in a single chunk: the fast path
                try:
                    text = chunk.decode('utf-8')
                except UnicodeDecodeError:
                    raise ProtocolError(CLOSE_INVALID_DATA,
                                        'invalid UTF-8 in text message') \
                        from None
                self._end_message()
                return Message(text)
            if decoder is None:
                decoder = self._m_decoder = _utf8_decoder('strict')
            try:
                text = decoder.decode(chunk, fin)
            except UnicodeDecodeError:
                raise ProtocolError(CLOSE_INVALID_DATA,
                                    'invalid UTF-8 in text message') from None
            if not fin:
                pending = decoder.getstate()[0]
                # CPython accepts ED A0..BF as a prefix; it can only
                # become a surrogate, which UTF-8 forbids: fail now
                if (len(pending) >= 2 and pending[0] == 0xED
                        and pending[1] >= 0xA0):
                    raise ProtocolError(CLOSE_INVALID_DATA,
                                        'invalid UTF-8 in text message')
            if text:
                self._m_parts.append(text)
            if fin:
                text = ''.join(self._m_parts)
                self._end_message()
                return Message(text)
        else:
            if fin and not self._m_parts:
                self._end_message()
                return Message(bytes(chunk))
            if chunk:
                self._m_parts.append(bytes(chunk))
            if fin:
                data = b''.join(self._m_parts)
                self._end_message()
                return Message(data)
        return _NEED_DATA if left else None

    def _end_message(self) -> None:
        self._m_opcode = 0
        self._m_size = 0
        self._m_parts = []
        self._m_decoder = None

    def _control_event(self, opcode: int, payload: bytes) -> Event:
        if opcode == OP_PING:
            return Ping(payload)
        if opcode == OP_PONG:
            return Pong(payload)
        if not payload:
            event = Close(None, '')
        elif len(payload) == 1:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR,
                                'close frame with a 1-byte payload')
        else:
            code = (payload[0] << 8) | payload[1]
            if not is_valid_close_code(code):
                raise ProtocolError(CLOSE_PROTOCOL_ERROR,
                                    f'invalid close code {code}')
            try:
                reason = payload[2:].decode('utf-8')
            except UnicodeDecodeError:
                raise ProtocolError(CLOSE_INVALID_DATA,
                                    'invalid UTF-8 in close reason') from None
            event = Close(code, reason)
        self._close_received = event
        self._discard()                     # anything after a Close is ignored
        self._in_frame = False
        self._end_message()
        return event

    # -- sending -----------------------------------------------------------

    def _frame(self, opcode: int, payload: bytes, fin: bool) -> bytes:
        n = len(payload)
        b0 = opcode | 0x80 if fin else opcode
        mask_bit = 0x80 if self.is_client else 0
        if n < 126:
            header = bytes((b0, mask_bit | n))
        elif n < 65536:
            header = _HDR16.pack(b0, mask_bit | 126, n)
        else:
            header = _HDR64.pack(b0, mask_bit | 127, n)
        if self.is_client:
            key = os.urandom(4)
            return b''.join((header, key, mask(payload, key)))
        return header + payload

    def send(self, data: str | bytes, opcode: int | None = None,
             fin: bool = True) -> bytes:
        """Make one frame carrying a message.

        ``str`` is sent as text, bytes as binary, unless ``opcode`` says otherwise.
        Fragment with ``fin=False`` and continue with ``opcode=OP_CONT``.

        Args:
            data: The message or fragment.
            opcode: ``OP_TEXT``, ``OP_BINARY``, ``OP_CONT``, ``OP_PING`` or ``OP_PONG``.
            fin: Whether this frame ends the message.

        Returns:
            The frame to write.

        Raises:
            ConnectionClosed: After :meth:`close` or EOF.
            ValueError: On misuse (bad opcode or fragment sequence, oversized control
                frame).
        """
        if self._close_sent or self._eof:
            raise ConnectionClosed('the WebSocket connection is closed')
        if isinstance(data, str):
            payload = data.encode('utf-8')
            if opcode is None:
                opcode = OP_TEXT
        else:
            payload = bytes(data)
            if opcode is None:
                opcode = OP_BINARY
        if opcode == OP_TEXT or opcode == OP_BINARY:
            if self._sending_fragmented:
                raise ValueError('a fragmented message is in progress: '
                                 'continue it with opcode=OP_CONT')
            self._sending_fragmented = not fin
        elif opcode == OP_CONT:
            if not self._sending_fragmented:
                raise ValueError('no fragmented message to continue')
            self._sending_fragmented = not fin
        elif opcode == OP_PING or opcode == OP_PONG:
            if not fin or len(payload) > 125:
                raise ValueError('control frames must be final and carry '
                                 'at most 125 bytes')
        elif opcode == OP_CLOSE:
            raise ValueError('use close() to send a Close frame')
        else:
            raise ValueError(f'unknown opcode {opcode!r}')
        return self._frame(opcode, payload, fin)

    def _control(self, opcode: int, data: bytes) -> bytes:
        if self.state == 'closed':
            raise ConnectionClosed('the WebSocket connection is closed')
        payload = bytes(data)
        if len(payload) > 125:
            raise ValueError('control frame payloads are limited to 125 bytes')
        return self._frame(opcode, payload, True)

    def ping(self, data: bytes = b'') -> bytes:
        """Make a Ping frame (allowed while closing, not once closed).

        Args:
            data: The payload (at most 125 bytes).

        Returns:
            The frame to write.

        Raises:
            ConnectionClosed: Once the connection is closed.
            ValueError: If the payload is longer than 125 bytes.
        """
        return self._control(OP_PING, data)

    def pong(self, data: bytes = b'') -> bytes:
        """Make a Pong frame, e.g. ``conn.pong(ping.data)``.

        Args:
            data: The payload (at most 125 bytes).

        Returns:
            The frame to write.

        Raises:
            ConnectionClosed: Once the connection is closed.
            ValueError: If the payload is longer than 125 bytes.
        """
        return self._control(OP_PONG, data)

    def close(self, code: int | None = CLOSE_NORMAL,
              reason: str = '') -> bytes:
        """Make a Close frame and enter the 'closing' state.

        Args:
            code: The close code; ``None`` sends an empty body.
            reason: The close reason (cut to 123 UTF-8 bytes).

        Returns:
            The frame to write; ``b''`` if a Close was already sent or the transport
            hit EOF.

        Raises:
            ValueError: For a code that cannot be sent, or a reason without a code.
        """
        if self._close_sent or self._eof:
            return b''
        if code is None:
            if reason:
                raise ValueError('a close reason requires a close code')
            payload = b''
        else:
            if not is_valid_close_code(code):
                raise ValueError(f'close code {code} cannot be sent')
            raw = reason.encode('utf-8')
            if len(raw) > 123:
                raw = raw[:123].decode('utf-8', 'ignore').encode('utf-8')
            payload = _CLOSE_CODE.pack(code) + raw
        self._close_sent = True
        self._sending_fragmented = False
        return self._frame(OP_CLOSE, payload, True)

    def answer_close(self) -> bytes:
        """Make the Close frame answering the peer's Close, echoing its code.

        Returns:
            The frame to write; ``b''`` when no Close was received or one was already
            sent.
        """
        event = self._close_received
        if event is None or self._close_sent:
            return b''
        return self.close(event.code)
