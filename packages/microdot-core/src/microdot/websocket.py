"""WebSocket support (RFC 6455), compatible with Microdot 2.x.

Application API::

    @app.route('/echo')
    @with_websocket                       # or @with_websocket(subprotocols=['chat'])
    async def echo(request, ws):
        while True:
            await ws.send(await ws.receive())

``ws.receive()`` returns ``str`` (text) or ``bytes`` (binary) messages and raises
:class:`WebSocketError` (with ``.code`` and ``.reason``) once the connection is closed.
When the handler returns, the connection is closed with 1000; when it raises, the
exception is logged and the connection is closed with 1011. A client closing the
connection is not an error. Bad handshakes get an HTTP 400 (or 426 with
``Sec-WebSocket-Version: 13``) answer.

Message size limit, most specific first: ``with_websocket(max_message_length=...)`` /
``websocket_upgrade(..., max_message_length=...)``, the application attribute
``app.websocket_max_message_length``, then the class attribute
``WebSocket.max_message_length``. As in Microdot, the default ``-1`` means "use the
request's ``max_body_length``" (16 KiB unless changed) and ``0`` means "no limit".
Larger messages close the connection with 1009.

Transport contract (for servers and adapters)
---------------------------------------------
The :class:`WebSocket` object talks to a *transport*. A server or adapter that cannot
hand out a raw ``(reader, writer)`` pair in ``request.sock`` sets
``request.websocket_transport`` to a factory::

    request.websocket_transport = factory      # factory(request, subprotocols)

``factory(request, subprotocols: list[str])`` returns (or returns an awaitable of) an
object with these methods (see :class:`WebSocketTransport`):

* ``async accept(subprotocol: str | None, headers: list[tuple[str, str]]) -> None``:
  complete the handshake (``subprotocol`` was chosen by :func:`websocket_upgrade` from
  the request's ``Sec-WebSocket-Protocol`` header, client preference order first).
* ``async receive() -> str | bytes``: the next data message; control frames met on the
  way are handled by the transport (pings answered). Raises :class:`WebSocketError`
  (``code``, ``reason``) once the connection is closed, by the peer (its close code;
  1006 when it dropped without a Close) or because of a protocol error (the close
  code sent, e.g. 1002, 1007, 1009).
* ``async send(data: str | bytes) -> None``: send a text (str) or binary (bytes)
  message; raises :class:`WebSocketError` once the connection is closed.
* ``async close(code: int = 1000, reason: str = '') -> None``: start or finish the
  closing handshake and release the connection; calling it again does nothing.

Optional members: ``async ping(data: bytes)`` and ``async pong(data: bytes)`` (else
``WebSocket.send(..., opcode=PING/PONG)`` is a no-op), and a writable
``max_message_size: int | None`` attribute that :func:`websocket_upgrade` assigns
before ``accept()``; a transport without it gets each message checked after the fact
(then closed with 1009). The factory may refuse the handshake by raising
:class:`~microdot.ws_protocol.HandshakeError` or ``HTTPException``: the client gets a
normal HTTP answer.

After a WebSocket session, dispatch returns ``Response.already_handled``: the adapter
sends nothing more. When ``accept()`` was never called (a refused handshake, a 404, an
``abort(401)`` before the upgrade) dispatch returns an ordinary ``Response``, which
the adapter must deliver as the HTTP answer to the upgrade request.

Without ``request.websocket_transport``, :func:`framed_transport` validates the
HTTP/1.1 handshake and builds a :class:`FramedTransport` over ``request.sock`` (the
built-in server's raw reader/writer, or the test client's), which writes the
``101 Switching Protocols`` head itself. Adapters with a raw socket (e.g. gunicorn)
can reuse it: ``functools.partial(framed_transport, reader=r, writer=w)``.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from typing import (Any, Awaitable, Callable, Concatenate, Coroutine, Deque, List, Optional,
                    ParamSpec, Protocol, Sequence, Tuple, Type, Union, cast, overload,
                    runtime_checkable)

from . import ws_protocol as wsp
from .exceptions import HTTPException
from .helpers import wraps
from .http11 import serialize_response_head
from .requests import Request
from .responses import Response

__all__ = ['WebSocket', 'WebSocketError', 'WebSocketTransport', 'FramedTransport',
           'framed_transport', 'websocket_upgrade', 'websocket_wrapper',
           'with_websocket', 'select_subprotocol', 'message_size_limit']

logger = logging.getLogger('microdot.websocket')

Data = Union[str, bytes]
Headers = List[Tuple[str, str]]

_P = ParamSpec('_P')
#: A WebSocket handler: ``f(request, ws, *args, **kwargs)``, ``def`` or ``async def``.
WebSocketHandler = Callable[Concatenate[Request, 'WebSocket', _P], object]
#: What :func:`with_websocket` makes of it: an ``async`` route handler without ``ws``.
WebSocketRoute = Callable[Concatenate[Request, _P], Coroutine[Any, Any, Response]]


class WebSocketError(Exception):
    """The WebSocket connection is closed (or failed); ``code`` and ``reason`` say why.

    ``code`` is the close code received from (or, on a protocol error, sent to) the
    peer: 1005 for a Close without a code, 1006 for a connection dropped without one.

    Args:
        message: The exception's message.
        code: The close code.
        reason: The close reason.
    """

    def __init__(self, message: str = 'WebSocket connection closed',
                 code: Optional[int] = None, reason: str = '') -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class _HandshakeRefused(HTTPException):
    """A refused opening handshake, answered as a normal HTTP error.

    A 400 is raised into the application's error path, so its body is the ``abort()``
    default (``400 error``) and its error handlers and hooks run, as in Microdot; what
    was wrong (``detail``) goes to the log. The refusals Microdot never makes (426 with
    ``Sec-WebSocket-Version``, 501 where the server has no socket to give) are answered
    directly, with ``detail`` as the body.
    """

    def __init__(self, status_code: int, detail: str, headers: Sequence[Tuple[str, str]] = ()
                 ) -> None:
        super().__init__(status_code)
        self.detail = detail
        self.headers = list(headers)

    def response(self) -> Response:
        """The answer to send: ``detail`` as a plain-text body, with the headers."""
        return Response(self.detail + '\n', self.status_code, dict(self.headers))


@runtime_checkable
class WebSocketTransport(Protocol):
    """What a server or adapter provides to carry WebSocket messages (see the module doc)."""

    async def accept(self, subprotocol: Optional[str], headers: Headers) -> None:
        """Complete the opening handshake.

        Args:
            subprotocol: The subprotocol selected, or ``None``.
            headers: More headers for the handshake answer.
        """
        ...

    async def receive(self) -> Data:
        """Wait for the next data message.

        Returns:
            The message: ``str`` for text, ``bytes`` for binary.

        Raises:
            WebSocketError: Once the connection is closed.
        """
        ...

    async def send(self, data: Data) -> None:
        """Send a text (``str``) or binary (``bytes``) message.

        Args:
            data: The message.

        Raises:
            WebSocketError: Once the connection is closed.
        """
        ...

    async def close(self, code: int = 1000, reason: str = '') -> None:
        """Close the connection; calling it again does nothing.

        Args:
            code: The close code.
            reason: The close reason.
        """
        ...


def _closed_error(code: Optional[int], reason: str) -> WebSocketError:
    text = 'WebSocket connection closed (%s%s)' % (code, ': ' + reason if reason else '')
    return WebSocketError(text, code, reason)


class FramedTransport:
    """RFC 6455 framing over an async ``(reader, writer)`` pair, via ``ws_protocol``.

    Frames are processed in order while the application is in :meth:`receive` (or
    :meth:`close`): pings are answered, the peer's Close is echoed, and protocol
    errors close the connection with their code (1002, 1007, 1009). :meth:`send` may
    run concurrently with :meth:`receive` from another task.

    Args:
        reader: Has ``async read(n)`` (``b''`` at the end).
        writer: Has ``async awrite(data)`` (or ``write(data)`` plus ``async
            drain()``) and, optionally, ``aclose()`` or ``close()``.
        accept_key: The ``Sec-WebSocket-Accept`` value for :meth:`accept` (``None``
            when the handshake is answered elsewhere).
        max_message_size: The largest message accepted, in bytes (``None``: no
            limit); a larger one closes the connection with 1009.
        close_timeout: Seconds :meth:`close` waits for the peer's Close frame.
    """

    #: Bytes asked from the reader per read.
    read_size = 65536

    def __init__(self, reader: Any, writer: Any, accept_key: Optional[str] = None,
                 max_message_size: Optional[int] = 1 << 20,
                 close_timeout: float = 5.0) -> None:
        self.reader = reader
        self.writer = writer
        self.accept_key = accept_key
        self.close_timeout = close_timeout
        self.conn = wsp.WebSocketConnection(is_client=False,
                                            max_message_size=max_message_size)
        self.close_code: Optional[int] = None
        self.close_reason = ''
        self._pending: Deque[Any] = deque()
        self._read_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()
        self._finished = asyncio.Event()
        self._done = False
        self._closing: Optional[asyncio.Future[None]] = None

    @property
    def max_message_size(self) -> Optional[int]:
        """Largest message accepted (``None``: no limit); larger ones close with 1009."""
        return self.conn.max_message_size

    @max_message_size.setter
    def max_message_size(self, value: Optional[int]) -> None:
        self.conn.max_message_size = value

    @property
    def closed(self) -> bool:
        """True once the connection has been released."""
        return self._done

    # -- writing --------------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        async with self._write_lock:
            try:
                awrite = getattr(self.writer, 'awrite', None)
                if awrite is not None:
                    await awrite(data)
                else:
                    self.writer.write(data)
                    await self.writer.drain()
            except (OSError, EOFError) as exc:
                await self._finish(wsp.CLOSE_ABNORMAL, 'connection lost')
                raise _closed_error(wsp.CLOSE_ABNORMAL, 'connection lost') from exc

    async def _finish(self, code: Optional[int], reason: str) -> None:
        """Release the connection once; the first code recorded is kept."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        if self._done:
            return
        self._done = True
        self._finished.set()
        try:
            aclose = getattr(self.writer, 'aclose', None)
            if aclose is not None:
                await aclose()
            else:
                close = getattr(self.writer, 'close', None)
                if close is not None:
                    close()
        except Exception:  # pragma: no cover - already gone
            pass

    # -- transport API ----------------------------------------------------------------

    async def accept(self, subprotocol: Optional[str] = None,
                     headers: Sequence[Tuple[str, str]] = ()) -> None:
        """Write the ``101 Switching Protocols`` answer.

        Args:
            subprotocol: The subprotocol selected, or ``None``.
            headers: More headers for the answer.

        Raises:
            RuntimeError: If the transport was made without ``accept_key``.
        """
        if self.accept_key is None:
            raise RuntimeError('FramedTransport.accept() needs the accept_key')
        head = serialize_response_head(
            101, None, wsp.handshake_response_headers(self.accept_key, subprotocol)
            + list(headers))
        await self._write(head)
        register = getattr(self.writer, 'on_shutdown', None)
        if register is not None:  # the built-in server: 1001 when it shuts down
            register(self._going_away)

    def _going_away(self) -> None:
        """The server is shutting down: start the closing handshake with 1001, which
        ends the handler's ``receive()`` (and later ``send()``) with WebSocketError."""
        if not self._done and self._closing is None:
            self._closing = asyncio.ensure_future(
                self.close(wsp.CLOSE_GOING_AWAY, 'server shutting down'))

    async def _next_event(self) -> Any:
        """The next decoded event (or ProtocolError), reading as needed."""
        pending = self._pending
        while not pending:
            try:
                pending.extend(self.conn.events())
            except wsp.ProtocolError as exc:
                pending.append(exc)
            if pending:
                break
            try:
                data = await self.reader.read(self.read_size)
            except (OSError, EOFError, asyncio.IncompleteReadError):
                data = b''
            self.conn.receive_data(data or b'')
        return pending.popleft()

    async def _handle(self, event: Any) -> Optional[Data]:
        """Act on one event; returns a message, None, or raises WebSocketError."""
        conn = self.conn
        if isinstance(event, wsp.Message):
            return event.data
        if isinstance(event, wsp.Ping):
            if not conn.close_sent:
                await self._write(conn.pong(event.data))
            return None
        if isinstance(event, wsp.Pong):
            return None
        if isinstance(event, wsp.Close):
            if event.code == wsp.CLOSE_ABNORMAL:
                await self._finish(wsp.CLOSE_ABNORMAL, 'connection lost')
            else:
                try:
                    await self._write(conn.answer_close())
                except WebSocketError:
                    pass
                code = wsp.CLOSE_NO_STATUS if event.code is None else event.code
                await self._finish(code, event.reason)
            raise _closed_error(self.close_code, self.close_reason)
        if isinstance(event, wsp.ProtocolError):
            logger.info('Closing WebSocket: %s', event)
            try:
                await self._write(conn.close(event.code, event.reason))
            except WebSocketError:
                pass
            await self._finish(event.code, event.reason)
            raise _closed_error(self.close_code, self.close_reason)
        return None  # pragma: no cover

    async def receive(self) -> Data:
        """Wait for the next text or binary message.

        Returns:
            The message: ``str`` for text, ``bytes`` for binary.

        Raises:
            WebSocketError: Once the connection is closed.
        """
        while True:
            if self._done:
                raise _closed_error(self.close_code, self.close_reason)
            async with self._read_lock:
                if self._done:
                    raise _closed_error(self.close_code, self.close_reason)
                data = await self._handle(await self._next_event())
            if data is not None:
                return data

    async def send(self, data: Data, opcode: Optional[int] = None) -> None:
        """Send one message: ``str`` as text, ``bytes`` as binary, unless ``opcode`` says.

        Args:
            data: The message.
            opcode: The frame opcode (``ws_protocol.OP_*``) to use instead.

        Raises:
            WebSocketError: Once the connection is closed.
        """
        if self._done or self.conn.close_sent:
            raise _closed_error(self.close_code or wsp.CLOSE_NORMAL, self.close_reason)
        try:
            frame = self.conn.send(data, opcode)
        except wsp.ConnectionClosed:
            raise _closed_error(self.close_code or wsp.CLOSE_NORMAL, self.close_reason) \
                from None
        await self._write(frame)

    async def ping(self, data: bytes = b'') -> None:
        """Send a Ping frame.

        Args:
            data: The payload (at most 125 bytes).

        Raises:
            WebSocketError: Once the connection is closed.
        """
        await self.send(data, wsp.OP_PING)

    async def pong(self, data: bytes = b'') -> None:
        """Send an unsolicited Pong frame.

        Args:
            data: The payload (at most 125 bytes).

        Raises:
            WebSocketError: Once the connection is closed.
        """
        await self.send(data, wsp.OP_PONG)

    async def close(self, code: int = 1000, reason: str = '') -> None:
        """Send a Close frame, wait (bounded) for the peer's, then release the connection.

        Args:
            code: The close code.
            reason: The close reason.
        """
        if self._done:
            return
        if not self.conn.close_sent:
            try:
                await self._write(self.conn.close(code, reason))
            except WebSocketError:
                return
        try:
            await asyncio.wait_for(self._await_close(), self.close_timeout)
        except asyncio.TimeoutError:
            logger.debug('No Close frame from the peer within %.1fs', self.close_timeout)
        await self._finish(code, reason)

    async def _await_close(self) -> None:
        """Read (discarding messages) until the peer's Close or EOF."""
        if self._read_lock.locked():  # another task is receiving: it will see the Close
            await self._finished.wait()
            return
        async with self._read_lock:
            while not self._done:
                try:
                    await self._handle(await self._next_event())
                except WebSocketError:
                    return


def select_subprotocol(offered: Optional[str], supported: Optional[Sequence[str]]
                       ) -> Optional[str]:
    """Choose the subprotocol of a connection.

    Args:
        offered: The request's ``Sec-WebSocket-Protocol`` value (client preference
            order).
        supported: The subprotocols the application supports.

    Returns:
        The first offered subprotocol that is supported, or ``None``.
    """
    if not offered or not supported:
        return None
    for item in offered.split(','):
        item = item.strip()
        if item and item in supported:
            return item
    return None


def message_size_limit(request: Request, override: Optional[int] = None,
                       cls: Optional[Type['WebSocket']] = None) -> Optional[int]:
    """Work out the largest message a WebSocket on this request accepts.

    Most specific first: ``override``, the application attribute
    ``websocket_max_message_length``, then ``cls.max_message_length``; ``-1`` means
    the request's ``max_body_length`` and ``0`` no limit.

    Args:
        request: The upgrade request.
        override: The limit given to the decorator or to :func:`websocket_upgrade`.
        cls: The WebSocket class whose default applies (:class:`WebSocket`).

    Returns:
        The limit in bytes, or ``None`` for no limit.
    """
    value = override
    if value is None:
        value = getattr(getattr(request, 'app', None), 'websocket_max_message_length', None)
    if value is None:
        value = (cls or WebSocket).max_message_length
    if value == -1:
        value = getattr(request, 'max_body_length', None)
    if value is None or value <= 0:
        return None
    return int(value)


def framed_transport(request: Request, subprotocols: Optional[Sequence[str]] = None,
                     reader: Any = None, writer: Any = None) -> FramedTransport:
    """Validate an HTTP/1.1 opening handshake and make its :class:`FramedTransport`.

    Args:
        request: The upgrade request.
        subprotocols: The subprotocols the application supports.
        reader: The connection's reader (default: ``request.sock[0]``).
        writer: The connection's writer (default: ``request.sock[1]``).

    Returns:
        The transport, ready for :meth:`FramedTransport.accept`.

    Raises:
        HandshakeError: If the handshake is not valid (from ``ws_protocol``).
        RuntimeError: If the server provides no socket for the connection.
    """
    accept, _ = wsp.check_handshake(request.method, request.http_version,
                                    request.headers.get, subprotocols or ())
    if reader is None or writer is None:
        sock = getattr(request, 'sock', None)
        if not sock:
            raise RuntimeError('this server provides no socket for WebSocket connections')
        reader = reader or sock[0]
        writer = writer or sock[1]
    return FramedTransport(reader, writer, accept_key=accept)


class WebSocket:
    """A WebSocket connection, as given to ``with_websocket`` handlers.

    Args:
        request: The upgrade request.
        transport: The transport that carries the messages (set by
            :meth:`handshake`).
    """

    CONT = wsp.OP_CONT
    TEXT = wsp.OP_TEXT
    BINARY = wsp.OP_BINARY
    CLOSE = wsp.OP_CLOSE
    PING = wsp.OP_PING
    PONG = wsp.OP_PONG

    #: Largest message accepted by :meth:`receive`, in bytes (``-1``, the default as in
    #: Microdot: the request's ``max_body_length``; ``0``: no limit).
    #: ``app.websocket_max_message_length`` overrides it per application.
    max_message_length: int = -1
    #: Seconds :meth:`close` waits for the client's Close frame.
    close_timeout: float = 5.0

    def __init__(self, request: Request, transport: Any = None) -> None:
        self.request = request
        self.transport = transport
        self.closed = False
        self.subprotocol: Optional[str] = None
        self._limit: Optional[int] = None
        self._check_size = False

    async def handshake(self, subprotocols: Optional[Sequence[str]] = None,
                        max_message_length: Optional[int] = None) -> None:
        """Accept the connection (answering ``101``).

        Args:
            subprotocols: The subprotocols the application supports; the first one the
                client offers is selected (``ws.subprotocol``).
            max_message_length: The largest message accepted (see
                :func:`message_size_limit`).

        Raises:
            HTTPException: If the handshake is refused (400, or 426 for another
                WebSocket version).
        """
        request = self.request
        subprotocols = list(subprotocols or ())
        limit = message_size_limit(request, max_message_length, type(self))
        try:
            factory = getattr(request, 'websocket_transport', None)
            if factory is not None:
                transport = factory(request, subprotocols)
                if inspect.isawaitable(transport):
                    transport = await transport
            else:
                transport = framed_transport(request, subprotocols)
        except wsp.HandshakeError as exc:
            raise _HandshakeRefused(exc.status_code, exc.reason, exc.headers) from None
        if isinstance(transport, FramedTransport):
            transport.close_timeout = self.close_timeout
        if hasattr(transport, 'max_message_size'):
            transport.max_message_size = limit
        else:
            self._check_size = limit is not None
        self._limit = limit
        self.subprotocol = select_subprotocol(
            request.headers.get('Sec-WebSocket-Protocol'), subprotocols)
        self.transport = transport
        await transport.accept(self.subprotocol, [])

    async def receive(self) -> Data:
        """Wait for the next message.

        A message larger than the limit closes the connection with 1009.

        Returns:
            The message: ``str`` for text, ``bytes`` for binary.

        Raises:
            WebSocketError: Once the connection is closed.
        """
        try:
            data: Data = await self.transport.receive()
        except WebSocketError:
            self.closed = True
            raise
        if self._check_size and self._limit is not None and len(data) > self._limit // 4:
            size = len(data.encode()) if isinstance(data, str) else len(data)
            if size > self._limit:
                await self.close(wsp.CLOSE_TOO_BIG, 'message too big')
                raise WebSocketError('message too big', wsp.CLOSE_TOO_BIG, 'message too big')
        return data

    async def send(self, data: Union[Data, bytearray, memoryview],
                   opcode: Optional[int] = None) -> None:
        """Send a message: ``str`` as text, ``bytes`` as binary, unless ``opcode`` says.

        Args:
            data: The message (``bytearray`` and ``memoryview`` are sent as bytes).
            opcode: :attr:`TEXT` or :attr:`BINARY` to force the message type;
                :attr:`PING`, :attr:`PONG` or :attr:`CLOSE` to send that frame instead.

        Raises:
            TypeError: If ``data`` is not ``str`` or bytes.
            ValueError: For another opcode.
            WebSocketError: Once the connection is closed.
        """
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        elif not isinstance(data, (str, bytes)):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError('WebSocket messages are str or bytes, not %s'
                            % type(data).__name__)
        if opcode == self.CLOSE:
            await self.close()
            return
        if opcode in (self.PING, self.PONG):
            payload = data.encode() if isinstance(data, str) else data
            method = getattr(self.transport, 'ping' if opcode == self.PING else 'pong', None)
            if method is not None:
                await self._guard(method(payload))
            return
        if opcode == self.TEXT and isinstance(data, bytes):
            data = data.decode('utf-8')
        elif opcode == self.BINARY and isinstance(data, str):
            data = data.encode('utf-8')
        elif opcode not in (None, self.TEXT, self.BINARY):
            raise ValueError('unsupported opcode %r' % opcode)
        await self._guard(self.transport.send(data))

    async def ping(self, data: bytes = b'') -> None:
        """Send a ping (the client answers with a pong).

        Args:
            data: The payload (at most 125 bytes).

        Raises:
            WebSocketError: Once the connection is closed.
        """
        await self.send(data, self.PING)

    async def _guard(self, aw: Awaitable[Any]) -> None:
        try:
            await aw
        except WebSocketError:
            self.closed = True
            raise

    async def close(self, code: int = 1000, reason: str = '') -> None:
        """Close the connection (does nothing if it is closed already).

        Args:
            code: The close code.
            reason: The close reason.
        """
        if self.closed or self.transport is None:
            self.closed = True
            return
        self.closed = True
        try:
            await self.transport.close(code, reason)
        except WebSocketError:
            pass


async def websocket_upgrade(request: Request, subprotocols: Optional[Sequence[str]] = None,
                            max_message_length: Optional[int] = None) -> WebSocket:
    """Accept a WebSocket on a request and return it.

    For handlers that check something first (and answer with an HTTP error instead);
    the route then answers nothing more once the WebSocket closes.

    Args:
        request: The upgrade request.
        subprotocols: The subprotocols the application supports.
        max_message_length: The largest message accepted (see
            :func:`message_size_limit`).

    Returns:
        The open WebSocket.

    Raises:
        HTTPException: If the handshake is not valid (400, or 426).
    """
    ws = WebSocket(request)
    await ws.handshake(subprotocols, max_message_length)

    async def _handled(request: Request, response: Response) -> Response:
        if not ws.closed:
            await ws.close()
        return Response.already_handled

    request.after_request(_handled)
    return ws


def websocket_wrapper(f: WebSocketHandler[_P],
                      upgrade_function: Callable[[Request], Awaitable[WebSocket]]
                      ) -> WebSocketRoute[_P]:
    """Run a WebSocket handler on a socket and close it cleanly.

    The connection comes from ``upgrade_function(request)``; it is closed with 1000
    when the handler returns and 1011 when it raises (the exception is logged).

    Args:
        f: The handler: ``f(request, ws, *args, **kwargs)``, ``def`` or
            ``async def``.
        upgrade_function: Accepts the connection and returns the
            :class:`WebSocket`.

    Returns:
        An ``async`` route handler taking the request and ``f``'s other arguments.
    """
    @wraps(f)
    async def wrapper(request: Request, *args: _P.args, **kwargs: _P.kwargs) -> Response:
        try:
            ws = await upgrade_function(request)
        except _HandshakeRefused as exc:
            logger.info('Refused WebSocket handshake for %s: %s', request.path, exc.detail)
            if exc.status_code == 400:
                raise  # the application's error handlers and hooks answer, as in Microdot
            return exc.response()
        code, reason = wsp.CLOSE_NORMAL, ''
        try:
            result = f(request, ws, *args, **kwargs)
            if inspect.isawaitable(result):
                await result
        except WebSocketError:
            pass  # the client went away, or broke the protocol: already closed
        except asyncio.CancelledError:
            code, reason = wsp.CLOSE_GOING_AWAY, ''
            raise
        except Exception:
            logger.exception('Unhandled exception in WebSocket handler for %s',
                             request.path)
            code, reason = wsp.CLOSE_INTERNAL_ERROR, 'internal error'
        finally:
            try:
                await ws.close(code, reason)
            except Exception:  # pragma: no cover - the connection is gone
                pass
        return Response.already_handled
    # (mypy does not match functools.wraps' result with a Concatenate callable)
    return cast('WebSocketRoute[_P]', wrapper)


class _WebSocketDecorator(Protocol):
    """What ``with_websocket(...)`` returns when given options."""

    def __call__(self, f: WebSocketHandler[_P], /) -> WebSocketRoute[_P]: ...


@overload
def with_websocket(f: WebSocketHandler[_P], /) -> WebSocketRoute[_P]: ...


@overload
def with_websocket(f: None = None, /, *, subprotocols: Optional[Sequence[str]] = None,
                   max_message_length: Optional[int] = None) -> _WebSocketDecorator: ...


def with_websocket(f: Optional[WebSocketHandler[...]] = None, *,
                   subprotocols: Optional[Sequence[str]] = None,
                   max_message_length: Optional[int] = None
                   ) -> Union[WebSocketRoute[...], _WebSocketDecorator]:
    """Make a route a WebSocket endpoint; the handler gets ``(request, ws)``.

    Use bare (``@with_websocket``) or with options
    (``@with_websocket(subprotocols=['chat'], max_message_length=65536)``), below
    the route decorator.

    Args:
        f: The handler: ``f(request, ws, *args, **kwargs)``, ``def`` or
            ``async def`` (given when used bare).
        subprotocols: The subprotocols the application supports.
        max_message_length: The largest message accepted (see
            :func:`message_size_limit`).

    Returns:
        The route handler (used bare), or the decorator that makes it.
    """
    def decorator(handler: WebSocketHandler[_P]) -> WebSocketRoute[_P]:
        async def upgrade(request: Request) -> WebSocket:
            ws = WebSocket(request)
            await ws.handshake(subprotocols, max_message_length)
            return ws
        return websocket_wrapper(handler, upgrade)

    if f is not None:
        return decorator(f)
    return decorator
