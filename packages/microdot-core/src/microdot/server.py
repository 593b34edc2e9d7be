"""The built-in asyncio HTTP/1.1 server.

One ``asyncio.Protocol`` per connection feeds the sans-I/O parser in ``http11``;
a task per connection runs requests one after another (keep-alive, pipelining).
Every wait is bounded: request head, idle keep-alive, body reads (each, and all of a
body together) and writes to a client that does not read have deadlines, checked by
one periodic sweep; shutdown lets in-flight requests finish within a grace period.
No client can take every connection slot: one address gets at most a share of them,
idle keep-alive connections make room for new clients, and a refusal is a complete
503.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import time
from email.utils import formatdate
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple, Union, cast

from . import http11
from .exceptions import HTTPException
from .requests import Request
from .responses import Response, close_body, internal_error, one_step_type_field

logger = logging.getLogger('microdot.server')
access_logger = logging.getLogger('microdot.access')

#: The server options (keyword arguments of ``run()`` and ``start_server()``) and
#: their defaults.
DEFAULTS = {
    #: seconds to receive a complete request head (from connection or last response)
    'head_timeout': 10.0,
    #: seconds an idle keep-alive connection is kept open
    'keep_alive_timeout': 5.0,
    #: seconds a body read may wait for the next bytes
    'body_timeout': 30.0,
    #: bytes/s a request body must average once body_timeout is used up: reading a
    #: body may take body_timeout + size / body_min_rate seconds of waiting in all
    #: (408 beyond); 0 or None leaves only the per-read body_timeout
    'body_min_rate': 1024,
    #: seconds a response may wait for a client that reads none of it; the
    #: connection is then aborted and a streamed body closed
    'write_timeout': 30.0,
    #: seconds in-flight requests get to finish after shutdown is asked for
    'shutdown_timeout': 10.0,
    #: simultaneous connections; idle keep-alive connections are closed (oldest
    #: first) to make room, then more are answered 503 and closed
    'max_connections': 1000,
    #: connections one client address (an IPv6 /64) may hold: a count, or a fraction
    #: (below 1) of max_connections; 0 or None for no per-client limit
    'max_connections_per_client': 0.25,
    #: total bytes of a request head (431 beyond)
    'max_header_bytes': 16 * 1024,
    #: header fields per request (431 beyond)
    'max_headers': 100,
    #: log one line per request to the ``microdot.access`` logger
    'access_log': False,
}

_HIGH_WATER = 256 * 1024
#: seconds a refused connection is kept open to read what the client sends, so that
#: closing it sends a FIN after the 503 rather than a reset that could discard it
_LINGER = 2.0
#: refusals are logged at most once per this many seconds (with a count)
_REFUSAL_LOG_INTERVAL = 5.0
#: Retry-After of a 503 refusal, in seconds
_RETRY_AFTER = '2'
#: seconds a connection must have waited for a request before it may be closed to
#: make room (a new connection's request may be on its way)
_MIN_IDLE = 1.0

#: ``[second, date text, date bytes]`` of the last :func:`http_date` call.
_date_cache: List[Any] = [0, '', b'']


def http_date() -> str:
    """The current time as an HTTP date, recomputed at most once a second.

    Returns:
        The date, such as ``'Sun, 06 Nov 1994 08:49:37 GMT'``.
    """
    now = int(time.time())
    if _date_cache[0] != now:
        date = formatdate(now, usegmt=True)
        _date_cache[:] = [now, date, date.encode('ascii')]  # one step: threads may read
    return _date_cache[1]  # type: ignore[no-any-return]


#: (status, content type) -> the head's text before the length and before the date
_PLAIN_HEADS: Dict[Tuple[int, str], Tuple[bytes, bytes]] = {}


def _plain_head(status: int, ctype: str) -> Tuple[bytes, bytes]:
    """The keep-alive HTTP/1.1 head of a plain response (see ``plain_type_field``) in
    two parts: before the length, and before the date."""
    key = (status, ctype)
    head = _PLAIN_HEADS.get(key)
    if head is None:
        status_line = http11.serialize_response_head(status, None, [])[:-2]
        head = (status_line + b'Content-Length: ',
                b'\r\nContent-Type: ' + ctype.encode('latin-1') + b'\r\nDate: ')
        if len(_PLAIN_HEADS) < 256:
            _PLAIN_HEADS[key] = head
    return head


def _field_lines(res: Response) -> Optional[bytes]:
    """The header lines of the fields of ``res`` checked when they were set (see
    ``microdot.responses.one_step_type_field``); ``None`` if one is not latin-1 (the
    full path sends it as UTF-8)."""
    fields = res._fields  # pyright: ignore[reportPrivateUsage]
    text = ''.join([name + ': ' + value + '\r\n' for name, value in fields.items()]) \
        if fields else ''
    cookies = res._cookies  # pyright: ignore[reportPrivateUsage]
    if cookies is not None:
        text += ''.join(['Set-Cookie: ' + value + '\r\n' for value in cookies])
    try:
        return text.encode('latin-1')
    except UnicodeEncodeError:
        return None


def _backlog(transport: Any) -> int:
    """Bytes the transport still holds for the client (0 once it cannot tell: Python
    3.10's TLS transport raises AttributeError after its connection is gone)."""
    try:
        return int(transport.get_write_buffer_size())
    except AttributeError:
        return 0


class _MalformedRequest:
    """Stands for the request in :meth:`HTTPConnection._send` when answering a
    request head that could not be parsed (never HEAD)."""

    method = 'GET'
    http_version = '1.1'
    path = url = '-'


_MALFORMED: Any = _MalformedRequest()


class _Timeout(Exception):
    pass


class Server:
    """Serves one application; see :data:`DEFAULTS` for the options.

    Args:
        app: The application.
        **options: Server options, each named in :data:`DEFAULTS` (the others keep
            their default).

    Raises:
        TypeError: An option that is not one of :data:`DEFAULTS`.
    """

    # the options (see DEFAULTS), set on each instance
    head_timeout: float
    keep_alive_timeout: float
    body_timeout: float
    body_min_rate: Optional[float]
    write_timeout: float
    shutdown_timeout: float
    max_connections: int
    max_connections_per_client: Union[int, float, None]
    max_header_bytes: int
    max_headers: int
    access_log: bool

    def __init__(self, app: Any, **options: Any) -> None:
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise TypeError('unknown server option(s): %s (known: %s)'
                            % (', '.join(sorted(unknown)), ', '.join(sorted(DEFAULTS))))
        self.app = app
        self.options = dict(DEFAULTS, **options)
        for name, value in self.options.items():
            setattr(self, name, value)
        self.access_log = bool(self.access_log or getattr(app, 'access_log', False))
        self.per_client = _per_client_limit(self.max_connections_per_client,
                                            self.max_connections)
        self.connections: Set['HTTPConnection'] = set()
        #: connections per client key (only when per_client is set)
        self._clients: Dict[Any, Set['HTTPConnection']] = {}
        #: refused connections kept open a moment (see ``_LINGER``), oldest first
        self._lingering: Dict['HTTPConnection', None] = {}
        #: idle connections found by the last scan, oldest first (see _reclaim)
        self._idle_queue: Deque['HTTPConnection'] = deque()
        self._idle_scan_empty_at = -1.0
        self._refusals: Dict[str, int] = {}
        self._refusal_log_at = 0.0
        self.stopping = False
        self._servers: List[asyncio.AbstractServer] = []
        self._stop_event: Optional[asyncio.Event] = None
        self._drained: Optional[asyncio.Future[None]] = None
        self._stopped: Optional[asyncio.Future[None]] = None
        self._sweeper: Optional[asyncio.TimerHandle] = None
        self.sockets: List[socket.socket] = []

    def parser(self) -> http11.RequestParser:
        """A request parser with this server's and the application's limits.

        Returns:
            A new parser, for one connection.
        """
        max_line = self.app.max_readline or Request.max_readline
        return http11.RequestParser(max_request_line=max_line, max_header_line=max_line,
                                    max_header_bytes=self.max_header_bytes,
                                    max_headers=self.max_headers)

    async def start(self, host: str = '0.0.0.0', port: int = 5000, ssl: Any = None,
                    sock: Optional[socket.socket] = None,
                    start_serving: bool = True) -> None:
        """Run the startup hooks, then listen.

        Args:
            host: The address to listen on, IPv4 or IPv6 (``''``: every address).
            port: The port to listen on.
            ssl: An ``ssl.SSLContext`` for HTTPS.
            sock: An already bound listening socket to serve instead of
                ``host``/``port``.
            start_serving: With ``False`` the socket is bound but accepts no
                connection until :meth:`start_serving` or :meth:`serve_forever` is
                called.
        """
        loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        await self.app.run_startup()

        def factory() -> HTTPConnection:
            return HTTPConnection(self)

        if sock is not None:
            server = await loop.create_server(factory, sock=sock, ssl=ssl, backlog=1024,
                                              start_serving=start_serving)
        else:
            server = await loop.create_server(factory, host=host or None, port=port, ssl=ssl,
                                              backlog=1024, reuse_address=True,
                                              start_serving=start_serving)
        self._servers.append(server)
        self.sockets = list(server.sockets)
        self._tick = min(1.0, min(self.head_timeout, self.keep_alive_timeout,
                                  self.body_timeout, self.write_timeout) / 4)
        self._sweeper = loop.call_later(self._tick, self._sweep)
        for s in self.sockets:
            name = s.getsockname()
            logger.info('%s on %s://%s:%d', 'Serving' if start_serving else 'Listening',
                        'https' if ssl else 'http',
                        ('[%s]' % name[0]) if s.family == socket.AF_INET6 else name[0],
                        name[1])

    def _sweep(self) -> None:
        """Enforce the connections' deadlines; runs every ``_tick`` seconds."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for conn in list(self.connections):
            conn.expire(now)
        if self._lingering:
            for conn in list(self._lingering):
                if conn.linger_deadline <= now and conn.transport is not None:
                    conn.transport.abort()  # its input was read: still no reset
        if self._refusals and now >= self._refusal_log_at:
            self._log_refusals(now)
        self._sweeper = loop.call_later(self._tick, self._sweep)

    # -- admission ------------------------------------------------------------------

    def admit(self, conn: 'HTTPConnection') -> Optional[str]:
        """Count ``conn`` in, or refuse it.

        When a limit is reached, idle connections are closed (oldest first) to make
        room.

        Args:
            conn: The new connection.

        Returns:
            ``None`` if it is admitted, else why it is refused.
        """
        if self.stopping:
            return 'shutting down'
        key = conn.client_key
        if key is not None:
            group = self._clients.get(key)
            if group is not None and len(group) >= self.per_client and \
                    not self._reclaim(group):
                return 'max_connections_per_client (%d) reached' % self.per_client
        if len(self.connections) >= self.max_connections and not self._reclaim(None):
            return 'max_connections (%d) reached' % self.max_connections
        self.connections.add(conn)
        if key is not None:
            group = self._clients.get(key)
            if group is None:
                group = self._clients[key] = set()
            group.add(conn)
        return None

    def forget(self, conn: 'HTTPConnection') -> None:
        """``conn`` no longer counts against the limits (idempotent).

        Args:
            conn: The connection.
        """
        if conn in self.connections:
            self.connections.remove(conn)
            key = conn.client_key
            if key is not None:
                group = self._clients.get(key)
                if group is not None:
                    group.discard(conn)
                    if not group:
                        del self._clients[key]
            if self._drained is not None and not self.connections and \
                    not self._drained.done():
                self._drained.set_result(None)

    def _reclaim(self, group: Optional[Set['HTTPConnection']]) -> bool:
        """Close the oldest idle connection (of ``group``, or of all); False if none."""
        now = asyncio.get_running_loop().time()
        if group is not None:
            oldest = None
            for conn in group:
                if conn.reclaimable(now) and (oldest is None or
                                           conn.idle_since < oldest.idle_since):
                    oldest = conn
            if oldest is None:
                return False
            oldest.close_idle()
            return True
        queue = self._idle_queue
        for rescan in (False, True):
            if rescan:
                if now - self._idle_scan_empty_at < 0.1:
                    return False  # none a moment ago: do not rescan per refusal
                idle = [c for c in self.connections if c.reclaimable(now)]
                if not idle:
                    self._idle_scan_empty_at = now
                    return False
                idle.sort(key=lambda c: c.idle_since)
                queue.extend(idle)
            while queue:
                conn = queue.popleft()
                if conn.reclaimable(now) and conn in self.connections:
                    conn.close_idle()
                    return True
        return False  # pragma: no cover - the rescan found one

    def refused(self, why: str) -> None:
        """Count a refusal; the log gets one line every few seconds.

        Args:
            why: Why the connection was refused.
        """
        self._refusals[why] = self._refusals.get(why, 0) + 1
        now = asyncio.get_running_loop().time()
        if now >= self._refusal_log_at:
            self._log_refusals(now)

    def _log_refusals(self, now: float) -> None:
        total = sum(self._refusals.values())
        logger.warning('Refused %d connection%s with 503 (%s); %d open',
                       total, '' if total == 1 else 's',
                       ', '.join('%s: %d' % item for item in self._refusals.items()),
                       len(self.connections))
        self._refusals = {}
        self._refusal_log_at = now + _REFUSAL_LOG_INTERVAL

    # -- running and stopping ---------------------------------------------------------

    async def serve(self, host: str = '0.0.0.0', port: int = 5000, ssl: Any = None,
                    sock: Optional[socket.socket] = None) -> None:
        """Serve until :meth:`shutdown`.

        It returns once the connections drained and the shutdown hooks ran.

        Args:
            host: The address to listen on.
            port: The port to listen on.
            ssl: An ``ssl.SSLContext`` for HTTPS.
            sock: An already bound listening socket to serve instead.
        """
        await self.start(host, port, ssl=ssl, sock=sock)
        await self.serve_forever()

    def is_serving(self) -> bool:
        """Whether connections are being accepted (as ``asyncio.Server``).

        Returns:
            ``True`` while serving and not shutting down.
        """
        return not self.stopping and any(s.is_serving() for s in self._servers)

    async def start_serving(self) -> None:
        """Accept connections, for a server started with ``start_serving=False``."""
        if self.stopping:
            return
        for server in self._servers:
            await server.start_serving()

    async def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown`, then stop.

        After ``app.shutdown()`` (or :meth:`close`), in-flight requests finish and
        the shutdown hooks run before this returns.
        """
        await self.start_serving()
        try:
            assert self._stop_event is not None
            await self._stop_event.wait()
        finally:
            await self.stop()

    def close(self) -> None:
        """Start a graceful shutdown (``asyncio.Server.close()``'s counterpart)."""
        self.shutdown()

    async def wait_closed(self) -> None:
        """Wait until the server stopped: connections closed, shutdown hooks run."""
        if not self.stopping:
            assert self._stop_event is not None
            await self._stop_event.wait()
        await self.stop()  # joins serve_forever's stop, or stops if nobody serves

    async def __aenter__(self) -> 'Server':
        """Enter an ``async with`` block.

        Returns:
            The server.
        """
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        """Shut down and wait until stopped, leaving an ``async with`` block.

        Args:
            *exc_info: The exception leaving the block, if any.
        """
        self.close()
        await self.wait_closed()

    def shutdown(self) -> None:
        """Stop accepting connections and let in-flight requests finish."""
        if self.stopping:
            return
        self.stopping = True
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn.shutdown()
        if self._stop_event is not None:
            self._stop_event.set()

    async def stop(self) -> None:
        """Shut down, let the connections close, and run the shutdown hooks.

        Connections still open after ``shutdown_timeout`` seconds are aborted. The
        stop happens once, whoever calls this.
        """
        if self._stopped is not None:
            await asyncio.shield(self._stopped)
            return
        loop = asyncio.get_running_loop()
        self._stopped = loop.create_future()
        try:
            await self._stop()
        finally:
            self._stopped.set_result(None)

    async def _stop(self) -> None:
        self.shutdown()
        for conn in list(self._lingering):
            conn.abort()  # refused ones: they have their 503
        for server in self._servers:
            await server.wait_closed() if not self.connections else None
        if self.connections:
            self._drained = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._drained), self.shutdown_timeout)
            except asyncio.TimeoutError:
                pass
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.connections:
            logger.warning('Closing %d connection(s) still busy after %.1fs of shutdown',
                           len(self.connections), self.shutdown_timeout)
        for conn in list(self.connections) + list(self._lingering):
            conn.abort()
        if self._refusals:
            self._log_refusals(0.0)
        try:
            await self.app.run_shutdown()
        except Exception:
            logger.exception('Shutdown hook failed')
        if getattr(self.app, 'server', None) is self:
            self.app.server = None


def _per_client_limit(value: Union[int, float, None], max_connections: int) -> int:
    """``max_connections_per_client`` as a count (0: no limit)."""
    if not value:
        return 0
    if isinstance(value, float) and value < 1:
        return max(1, int(max_connections * value))
    return int(value)


def _client_key(peer: Any, family: int) -> Any:
    """What the per-client limit counts by: the IPv4 address, or an IPv6 /64 (one
    host usually has a whole /64); None when there is no address (Unix sockets)."""
    if not peer or not isinstance(peer, tuple):
        return None
    host = cast(str, peer[0])
    if family == socket.AF_INET6:
        if host.startswith('::ffff:') and '.' in host:
            return host[7:]  # an IPv4 client on a dual-stack socket
        try:
            return socket.inet_pton(socket.AF_INET6, host.partition('%')[0])[:8]
        except OSError:  # pragma: no cover
            return host
    return host


class _SockReader:
    """Raw reads from a connection after a protocol switch (e.g. WebSocket)."""

    def __init__(self, conn: 'HTTPConnection') -> None:
        self.conn = conn

    async def read(self, n: int = -1) -> bytes:
        return await self.conn.raw_read(n)

    async def readexactly(self, n: int) -> bytes:
        data = b''
        while len(data) < n:
            chunk = await self.conn.raw_read(n - len(data))
            if not chunk:
                raise asyncio.IncompleteReadError(data, n)
            data += chunk
        return data

    async def readline(self) -> bytes:
        return await self.conn.raw_readline()


class _SockWriter:
    """Raw writes to a connection (``awrite``/``aclose`` as Microdot's streams)."""

    def __init__(self, conn: 'HTTPConnection') -> None:
        self.conn = conn

    def write(self, data: bytes) -> None:
        self.conn._take_raw()  # bytes the client pipelined after its request stay readable  # pyright: ignore[reportPrivateUsage]
        if self.conn.transport is not None and not self.conn.transport.is_closing():
            self.conn.transport.write(data)

    async def drain(self) -> None:
        await self.conn.drain()

    async def awrite(self, data: bytes) -> None:
        self.write(data)
        await self.conn.drain()

    def close(self) -> None:
        if self.conn.transport is not None:
            self.conn.transport.close()

    async def aclose(self) -> None:
        self.close()

    async def wait_closed(self) -> None:
        pass

    def on_shutdown(self, callback: Callable[[], None]) -> None:
        """Have ``callback()`` called once when the server shuts down (at once if it
        already is), so a protocol can close its session cleanly."""
        self.conn.notify_shutdown(callback)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.conn.transport.get_extra_info(name, default) \
            if self.conn.transport is not None else default


class HTTPConnection(asyncio.Protocol):
    """One client connection: parsing, request loop, writing, deadlines.

    Args:
        server: The server the connection came to.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.app = server.app
        self.loop = asyncio.get_event_loop()
        self.parser = server.parser()
        self.transport: Optional[asyncio.Transport] = None
        self.task: Optional[asyncio.Task[None]] = None
        self.client_addr: Any = None
        self.scheme = 'http'
        self.lost = False
        self.idle = True
        self.streaming = False
        self.upgraded = False
        self._waiter: Optional[asyncio.Future[None]] = None
        self._drain_waiter: Optional[asyncio.Future[None]] = None
        self._write_paused = False
        self._read_paused = False
        self._raw = bytearray()
        self._raw_eof = False
        self.deadline: Optional[float] = None
        self.keep_alive = False
        self.expect_continue = False
        #: loop time since which the connection waits for a request (see reclaimable)
        self.idle_since = 0.0
        #: body bytes received, and seconds spent waiting for them, for body_min_rate
        self._body_got = 0
        self._body_waited = 0.0
        #: while output waits for the client (writing paused, or a close with output
        #: pending): when the connection is aborted unless the client reads some of
        #: it; _write_mark is the output pending when the client last read
        self.write_deadline: Optional[float] = None
        self._write_mark = 0
        self._closing = False
        #: what the per-client limit counts by (None: not counted per client)
        self.client_key: Any = None
        self.sock = (_SockReader(self), _SockWriter(self))

    # CPython 3.11 keeps attribute access fast for up to 30 instance attribute names
    # per class, first come first served: the ones above are all set here, so that
    # these of refused connections only (and their data_received / eof_received) come
    # after them.
    linger_deadline = 0.0

    # -- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit the new connection and start its request loop, or refuse it (503).

        Args:
            transport: The connection's transport.
        """
        self.transport = transport  # type: ignore[assignment]  # pyright: ignore[reportAttributeAccessIssue]
        peer = transport.get_extra_info('peername')
        self.client_addr = tuple(peer[:2]) if peer else None
        if transport.get_extra_info('sslcontext') is not None:
            self.scheme = 'https'
        sock = transport.get_extra_info('socket')
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # pragma: no cover
                pass
        server = self.server
        if server.per_client and peer:
            self.client_key = _client_key(peer, sock.family if sock is not None else 0)
        why = server.admit(self)
        if why is not None:
            self._refuse(why)
            return
        self.task = self.loop.create_task(self._run())

    def _refuse(self, why: str) -> None:
        """Answer a complete 503 and close without a reset: the input is read and
        dropped until the client closes, for at most ``_LINGER`` seconds."""
        server = self.server
        lingering = server._lingering  # pyright: ignore[reportPrivateUsage]
        server.refused(why)
        self._write_error(503, None, 'Server shutting down' if server.stopping
                          else 'Too many connections', (('Retry-After', _RETRY_AFTER),))
        transport = self.transport
        assert transport is not None
        if len(lingering) >= max(64, server.max_connections):
            # bounded: the one refused longest ago goes (it had its 503 and its input
            # was read, so closing it sends no reset)
            oldest = next(iter(lingering))
            del lingering[oldest]
            if oldest.transport is not None:
                oldest.transport.abort()
        self.data_received = self._drop  # type: ignore[method-assign]
        self.eof_received = self._eof_when_refused  # type: ignore[method-assign]
        self.linger_deadline = self.loop.time() + _LINGER
        lingering[self] = None
        if transport.can_write_eof():
            transport.write_eof()

    def _drop(self, data: bytes) -> None:
        pass

    def _eof_when_refused(self) -> bool:
        return False  # the client read the 503 and closed: close too

    def data_received(self, data: bytes) -> None:
        """Feed received bytes to the parser (or the raw buffer after an upgrade).

        Args:
            data: The bytes.
        """
        if self.upgraded:
            self._raw += data
            if len(self._raw) > _HIGH_WATER and not self._read_paused:
                self._read_paused = True  # raw_read resumes once the handler catches up
                self.transport.pause_reading()  # type: ignore[union-attr]  # pyright: ignore[reportOptionalMemberAccess]
        elif self.parser.feed(data) > _HIGH_WATER and not self._read_paused:
            self._read_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]  # pyright: ignore[reportOptionalMemberAccess]
        waiter = self._waiter  # (_wake, inline: once per request)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def eof_received(self) -> bool:
        """The client closed its side: end of the input.

        Returns:
            Whether to keep the transport open (to answer a half-closed request).
        """
        if self.upgraded:
            self._raw_eof = True
        else:
            self.parser.feed(b'')
            if self.streaming and self.task is not None and not self.task.done():
                # a client that stops sending while a body streams to it (SSE, a
                # download) has gone: stop the generator now, not at the next write
                self.task.cancel()
        self._wake()
        # keep the transport open to answer a half-closed request; asyncio's TLS
        # transport cannot (it closes, warning on every connection if asked to)
        return self.scheme != 'https'

    def connection_lost(self, exc: Optional[Exception]) -> None:
        """The connection is gone: stop waiting for it, and stop a streamed response.

        Args:
            exc: The error that ended it, or ``None`` for a normal close.
        """
        self.lost = True
        self._raw_eof = True
        if self.task is None or self.task.done():
            self.server.forget(self)  # else the request loop does, when it ends
        self.server._lingering.pop(self, None)  # pyright: ignore[reportPrivateUsage]
        self._wake()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(ConnectionResetError('connection lost'))
        if self.task is not None and self.streaming and not self.task.done():
            self.task.cancel()

    def pause_writing(self) -> None:
        """The transport's buffer is full: writers wait, and the write deadline runs."""
        self._write_paused = True
        self._arm_write_deadline()

    def resume_writing(self) -> None:
        """The transport's buffer drained: writers may go on."""
        self._write_paused = False
        if self._closing:
            self._arm_write_deadline()  # for the rest of the output
        else:
            self.write_deadline = None
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def _arm_write_deadline(self) -> None:
        self.write_deadline = self.loop.time() + self.server.write_timeout
        self._write_mark = _backlog(self.transport) \
            if self.transport is not None else 0

    # -- helpers --------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, timeout: float) -> None:
        """Wait for more input, at most ``timeout`` seconds (checked by the server's
        deadline sweep rather than a timer per wait, which is cheaper)."""
        if self.lost:
            raise ConnectionResetError('connection lost')
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]  # pyright: ignore[reportOptionalMemberAccess]
        self._waiter = waiter = self.loop.create_future()
        self.deadline = self.loop.time() + timeout
        try:
            await waiter
        finally:
            self._waiter = None
            self.deadline = None

    def expire(self, now: float) -> None:
        """Enforce the deadlines; called by the server's periodic sweep.

        The current wait fails if its deadline passed; the connection is aborted if
        the client read none of its output in ``write_timeout`` seconds.

        Args:
            now: The event loop's time.
        """
        deadline = self.deadline
        if deadline is not None and deadline <= now:
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(_Timeout())
        deadline = self.write_deadline
        if deadline is not None and self.transport is not None:
            pending = _backlog(self.transport)
            if pending < self._write_mark:  # the client read some since: a new period
                self._write_mark = pending
                self.write_deadline = now + self.server.write_timeout
            elif deadline <= now:
                logger.debug('Aborting the connection from %s: it read nothing for %.1fs',
                             self.client_addr, self.server.write_timeout)
                self.write_deadline = None
                self.transport.abort()  # connection_lost stops the response and body

    def reclaimable(self, now: float) -> bool:
        """Whether the connection may be closed to make room for another.

        Args:
            now: The event loop's time.

        Returns:
            ``True`` if it has waited for a request (first or next) for a second and
            owes the client nothing.
        """
        return self.idle and self._waiter is not None and self.parser.at_start and \
            now - self.idle_since >= _MIN_IDLE and \
            not self.upgraded and not self._write_paused and not self._closing and \
            self.transport is not None and not _backlog(self.transport)

    def close_idle(self) -> None:
        """Close an idle connection (see :meth:`reclaimable`) to make room."""
        self.server.forget(self)
        assert self.transport is not None
        self.transport.close()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def drain(self) -> None:
        """Wait until the client reads enough of the output for writing to go on.

        Raises:
            ConnectionResetError: The connection is gone.
        """
        if self.lost:
            raise ConnectionResetError('connection lost')
        if self._write_paused:
            self._drain_waiter = self.loop.create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None

    #: Called once when the server starts shutting down, instead of the usual close:
    #: set (see :meth:`notify_shutdown`) by a protocol running after an upgrade (the
    #: WebSocket transport) or by an endless body while it streams (an SSE stream).
    on_shutdown: Optional[Callable[[], None]] = None

    def notify_shutdown(self, callback: Callable[[], None]) -> None:
        """Have ``callback()`` called once when the server shuts down.

        Args:
            callback: Called at once if the server is shutting down already.
        """
        if self.server.stopping:
            callback()
        else:
            self.on_shutdown = callback

    def shutdown(self) -> None:
        """The server is stopping: close now if idle, else after the current response.

        A connection with an :attr:`on_shutdown` callback is told through it instead.
        """
        callback = self.on_shutdown
        if callback is not None:
            self.on_shutdown = None
            callback()
            return
        if self.idle and self.parser.at_start and self.transport is not None:
            self.transport.close()
            if self.task is not None and not self.task.done():
                self.task.cancel()

    def abort(self) -> None:
        """Close the connection at once, dropping what is not sent."""
        if self.transport is not None:
            self.transport.abort()
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self.server.forget(self)

    def _write_error(self, status: int, reason: Optional[str], text: str,
                     extra: Tuple[Tuple[str, str], ...] = ()) -> None:
        body = (text + '\n').encode()
        head = http11.serialize_response_head(status, reason, [
            ('Content-Type', 'text/plain; charset=UTF-8'),
            ('Content-Length', str(len(body))), ('Connection', 'close'),
            *extra, ('Date', http_date())])
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(head + body)

    async def _answer_malformed(self, exc: http11.ProtocolError) -> None:
        """Answer a request head that breaks HTTP/1.1 with 400 as Microdot does: the
        application's ``errorhandler(400)`` and ``after_error_request`` hooks make the
        answer, with ``None`` for the request (default body ``Bad request``). What was
        wrong is logged; the connection closes after the answer.

        :param exc: the parser's error (its ``reason`` goes to the log only).
        """
        logger.info('Malformed request from %s: %s', self.client_addr, exc.reason)
        self.keep_alive = False
        try:
            res = await self.app.dispatch_request(None)
            await self._send(_MALFORMED, res)
        except (ConnectionError, asyncio.CancelledError):
            pass

    # -- the request loop -----------------------------------------------------------

    async def _receive(self) -> bytes:
        """Body bytes for ``BodyStream``; b'' at the end of the body."""
        if self.expect_continue:
            self.expect_continue = False
            self.transport.write(b'HTTP/1.1 100 Continue\r\n\r\n')  # type: ignore[union-attr]  # pyright: ignore[reportOptionalMemberAccess]
        try:
            event = await self._next_body_event()
        except _Timeout:
            self.keep_alive = False
            raise HTTPException(408, 'Request Timeout') from None
        if isinstance(event, http11.Data):
            return event.data
        return b''

    async def _next_body_event(self) -> Any:
        """The parser's next body event, waiting for the client at most body_timeout
        at a time, and in all body_timeout + (bytes so far) / body_min_rate (raises
        _Timeout): a body trickling in a byte at a time cannot hold a connection."""
        parser = self.parser
        event = parser.next_event()
        while event is http11.NEED_DATA:
            server = self.server
            timeout = server.body_timeout
            if server.body_min_rate:
                budget = timeout + self._body_got / server.body_min_rate - self._body_waited
                if budget < timeout:
                    if budget <= 0:
                        raise _Timeout()
                    timeout = budget
            start = self.loop.time()
            try:
                await self._wait(timeout)
            finally:
                self._body_waited += self.loop.time() - start
            event = parser.next_event()
        if isinstance(event, http11.Data):
            self._body_got += len(event.data)
        return event

    async def _run(self) -> None:
        server = self.server
        app = self.app
        try:
            parser = self.parser
            loop = self.loop
            step = 0  # what parser.next_request() said after the last request
            while True:
                self.idle = True
                try:
                    # (1: nothing buffered, so no need to ask the parser)
                    event = http11.NEED_DATA if step == 1 else parser.next_event()
                    if event is http11.NEED_DATA:
                        # deadlines count from the end of the last response
                        now = start = self.idle_since = loop.time()
                        while event is http11.NEED_DATA:
                            remaining = (server.keep_alive_timeout if parser.at_start
                                         else server.head_timeout) - (now - start)
                            if remaining <= 0:
                                raise _Timeout()
                            # self._wait(remaining), inline (once per request)
                            if self.lost:
                                raise ConnectionResetError('connection lost')
                            if self._read_paused:
                                self._read_paused = False
                                self.transport.resume_reading()  # type: ignore[union-attr]  # pyright: ignore[reportOptionalMemberAccess]
                            self._waiter = waiter = loop.create_future()
                            self.deadline = now + remaining
                            try:
                                await waiter
                            finally:
                                self._waiter = None
                                self.deadline = None
                            event = parser.next_event()
                            if event is http11.NEED_DATA:
                                now = loop.time()
                except _Timeout:
                    if not self.parser.at_start:
                        self._write_error(408, None, 'Request Timeout')
                    return
                if not isinstance(event, http11.RequestHead):
                    return  # clean close between requests
                self.idle = False
                head = event
                self.keep_alive = head.keep_alive and not server.stopping
                self.expect_continue = head.expect_continue
                req = Request.from_head(app, head, self.client_addr, self._receive,
                                        self.sock, self.scheme)
                if req.content_length > req.max_content_length:
                    self.expect_continue = False  # refuse before the client sends it
                if req._stream is not None:  # a body: its deadlines count from here  # pyright: ignore[reportPrivateUsage]
                    self._body_got = 0
                    self._body_waited = 0.0
                    try:
                        await req._read_body()  # pyright: ignore[reportPrivateUsage]
                    except HTTPException as exc:
                        self._write_error(exc.status_code, None, exc.reason)
                        return
                if req.content_length > req.max_content_length:
                    # answered 413 without reading the whole body: the connection ends
                    self.keep_alive = False
                res = await app.dispatch_request(req)
                if res is Response.already_handled or self.upgraded:
                    return
                if self.expect_continue and req.content_length:
                    self.keep_alive = False  # body never read: cannot reuse the connection
                await self._send(req, res)
                if server.access_log:
                    access_logger.info('%s - "%s %s HTTP/%s" %d', self.client_addr[0]
                                       if self.client_addr else '-', req.method, req.url,
                                       req.http_version, res.status_code)
                if not self.keep_alive or self.lost or server.stopping:
                    return  # (a response begun before the shutdown ends the connection)
                step = parser.next_request()
                if not step:  # the request had a body
                    event = parser.next_event()
                    if not (isinstance(event, http11.EndOfMessage) or
                            event is http11.PAUSED):
                        if not await self._finish_body():
                            return
                    parser.start_next_request()
        except http11.ProtocolError as exc:
            if not self.lost:
                if exc.status_code == 400 and self.idle:
                    await self._answer_malformed(exc)
                else:
                    self._write_error(exc.status_code, None, exc.reason)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:  # pragma: no cover - a bug in the server itself
            logger.exception('Unexpected error on connection from %s', self.client_addr)
            if not self.lost and self.idle is False:
                self._write_error(500, None, 'Internal server error')
        finally:
            transport = self.transport
            if transport is not None:
                if _backlog(transport) and not transport.is_closing():
                    # the rest is sent while the client reads, for write_timeout
                    # without progress at most; the connection counts until then
                    self._closing = True
                    if self.write_deadline is None:
                        self._arm_write_deadline()
                else:
                    server.forget(self)
                transport.close()
            else:  # pragma: no cover
                server.forget(self)

    async def _finish_body(self) -> bool:
        """Skip what the handler left unread of the request body (bounded in size,
        and in time as body reads are)."""
        budget = 64 * 1024
        while True:
            try:
                event = await self._next_body_event()
            except _Timeout:
                return False
            if isinstance(event, http11.EndOfMessage) or event is http11.PAUSED:
                return True
            if isinstance(event, http11.Data):
                budget -= len(event.data)
                if budget < 0:
                    return False

    async def _send(self, req: Request, res: Response) -> None:
        """Write ``res`` with HTTP/1.1 framing (chunked when the length is unknown)."""
        transport = self.transport
        assert transport is not None
        ctype = one_step_type_field(res)
        if ctype is not None and res.reason is None and self.keep_alive and \
                not self.server.stopping and req.http_version == '1.1' and \
                req.method != 'HEAD':
            # the common case, in one step, with a head cached per status and type
            # (and the date's bytes from http_date()'s cache, inline); the fields
            # checked when they were set follow
            lines = (b'' if res._fields is None and res._cookies is None  # pyright: ignore[reportPrivateUsage]
                     else _field_lines(res))
            if lines is not None:
                parts = _PLAIN_HEADS.get((res.status_code, ctype[1])) or \
                    _plain_head(res.status_code, ctype[1])
                date = _date_cache
                if date[0] != int(time.time()):
                    http_date()
                body = res.body
                transport.write(b'%s%d%s%s\r\n%s\r\n%s' % (
                    parts[0], len(body), parts[1], date[2], lines, body))
                if self._write_paused:
                    await self.drain()
                return
        http10 = req.http_version == '1.0'
        try:
            res.complete()
            headers = res.header_items()
        except Exception:
            logger.exception('Invalid response for %s %s', req.method, req.path)
            res = internal_error()
            headers = res.header_items()
        status = res.status_code
        body = res.body
        no_body = req.method == 'HEAD' or status in (204, 304) or 100 <= status < 200
        streaming = not isinstance(body, bytes)
        if status in (204, 304) or 100 <= status < 200:
            headers = [h for h in headers if h[0].lower() not in
                       ('content-length', 'transfer-encoding')]
        chunked = False
        if self.server.stopping:
            self.keep_alive = False
        if streaming and not no_body and 'Content-Length' not in res.headers:
            if http10:
                self.keep_alive = False
            else:
                chunked = True
                headers.append(('Transfer-Encoding', 'chunked'))
        if not self.keep_alive:
            headers.append(('Connection', 'close'))
        elif http10:
            headers.append(('Connection', 'keep-alive'))
        headers.append(('Date', http_date()))
        try:
            head = http11.serialize_response_head(status, res.reason, headers,
                                                  version='1.0' if http10 else '1.1')
        except ValueError:
            logger.exception('Invalid response header for %s %s', req.method, req.path)
            close_body(body)
            self.keep_alive = False
            self._write_error(500, None, 'Internal server error')
            return
        if no_body:
            close_body(body)
            transport.write(head)
            return
        if not streaming:
            transport.write(head + body)
            if self._write_paused:
                await self.drain()
            return
        transport.write(head)
        self.streaming = True
        end_stream = getattr(body, 'on_server_shutdown', None)
        if end_stream is not None:
            self.notify_shutdown(end_stream)
        iterator = res.body_iter()
        try:
            async for chunk in iterator:
                if self.lost:
                    break
                transport.write(http11.encode_chunk(chunk) if chunked else chunk)
                if self._write_paused:
                    await self.drain()
                else:
                    # let the loop see the client leave (EOF, reset) even when the
                    # body never suspends (a sync generator): it cancels this task
                    await asyncio.sleep(0)
            else:
                if chunked:
                    transport.write(http11.LAST_CHUNK)
                return
        except (asyncio.CancelledError, ConnectionError):
            pass
        except Exception:
            logger.exception('Error while streaming the response to %s %s',
                             req.method, req.path)
        finally:
            self.streaming = False
            self.on_shutdown = None
            await iterator.aclose()
        # the body was cut short: the client must not take it as complete
        self.keep_alive = False
        transport.abort()

    # -- raw access after a protocol switch -----------------------------------------

    def _take_raw(self) -> None:
        if not self.upgraded:
            self.upgraded = True
            self._raw += self.parser.take_buffered()

    async def _wait_raw(self) -> None:
        """Wait for more bytes after a protocol switch (no deadline: the protocol
        handler, e.g. the WebSocket, has its own)."""
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]  # pyright: ignore[reportOptionalMemberAccess]
        self._waiter = waiter = self.loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    async def raw_read(self, n: Optional[int] = -1) -> bytes:
        """Read bytes after a protocol switch (the WebSocket's reader).

        Args:
            n: The most bytes to return (``-1`` or ``None``: all that is buffered).

        Returns:
            At least one byte, or ``b''`` once the client closed.
        """
        self._take_raw()
        while not self._raw and not self._raw_eof:
            await self._wait_raw()
        if n is None or n < 0:
            n = len(self._raw)
        data = bytes(self._raw[:n])
        del self._raw[:n]
        return data

    async def raw_readline(self) -> bytes:
        """Read a line after a protocol switch.

        Returns:
            The line, with its ``\\n``; what is left once the client closed.
        """
        self._take_raw()
        while b'\n' not in self._raw and not self._raw_eof:
            await self._wait_raw()
        i = self._raw.find(b'\n')
        n = len(self._raw) if i < 0 else i + 1
        data = bytes(self._raw[:n])
        del self._raw[:n]
        return data


def uvloop_chosen() -> bool:
    """Whether the server runs on uvloop.

    Returns:
        ``True`` if uvloop is installed and not refused with ``MICRODOT_LOOP=asyncio``.
    """
    if os.environ.get('MICRODOT_LOOP', 'auto') == 'asyncio':
        return False
    try:
        import uvloop  # noqa: F401  # pyright: ignore[reportUnusedImport]
    except ImportError:
        return False
    return True


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed (unless MICRODOT_LOOP=asyncio)."""
    if uvloop_chosen():
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class _QuietStart(logging.Filter):
    """Drops :meth:`Server.start`'s per-socket ``Serving on`` line while ``run()``
    announces the application with its own line (see :mod:`microdot.console`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != '%s on %s://%s:%d'


def serve_socket(app: Any, sock: Optional[socket.socket], ssl: Any = None,
                 signals: Tuple[int, ...] = (signal.SIGINT, signal.SIGTERM),
                 on_ready: Optional[Callable[[Server], None]] = None,
                 parent: Optional[int] = None, host: Optional[str] = None, port: int = 0,
                 on_stopping: Optional[Callable[[], None]] = None,
                 abort_signal: Optional[int] = None, **options: Any) -> None:
    """Serve ``app`` in this process, in a new event loop, until it is stopped.

    It serves until ``app.shutdown()`` or one of ``signals``; a second one aborts
    open connections.

    Args:
        app: The application.
        sock: The bound listening socket; ``None``: bind ``host``:``port`` after the
            startup hooks (every address of a name).
        ssl: An ``ssl.SSLContext`` for HTTPS.
        signals: The signals that stop the server.
        on_ready: Called with the server once the startup hooks ran and connections
            are about to be accepted.
        parent: The pid of a supervising process: when it is gone, the server shuts
            down (a worker never outlives its supervisor).
        host: The address to bind when ``sock`` is ``None``.
        port: The port to bind when ``sock`` is ``None``.
        on_stopping: Called (within half a second, with ``parent``) when the server
            stops for another reason than a signal: ``app.shutdown()``.
        abort_signal: The only signal that aborts open connections; a repeated one
            of ``signals`` then changes nothing (a worker may get SIGTERM both from
            its supervisor and from whoever signalled the whole process group).
        **options: The options of :class:`Server`.
    """
    server = Server(app, **options)
    quiet = _QuietStart()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        app.server = server
        received = 0
        watch: Optional[asyncio.TimerHandle] = None

        def on_signal() -> None:
            nonlocal received
            received += 1
            if received == 1:
                logger.info('Shutting down (in-flight requests may finish)')
                server.shutdown()
            elif abort_signal is None:
                on_abort()

        def on_abort() -> None:
            logger.warning('Second signal: aborting open connections')
            server.shutdown()
            for conn in list(server.connections):
                conn.abort()

        def check_parent() -> None:
            nonlocal watch
            if os.getppid() != parent:
                logger.warning('The supervising process is gone: shutting down')
                server.shutdown()
            elif server.stopping and not received and on_stopping is not None:
                on_stopping()  # app.shutdown(): once
            else:
                watch = loop.call_later(0.5, check_parent)

        installed: List[int] = []
        handlers = [(sig, on_signal) for sig in signals]
        if abort_signal is not None:
            handlers.append((abort_signal, on_abort))
        for sig, handler in handlers:
            try:
                loop.add_signal_handler(sig, handler)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
                pass
        try:
            try:
                await server.start(host or '', port, sock=sock, ssl=ssl,
                                   start_serving=False)
            except OSError as exc:
                if sock is None and exc.errno == errno.EADDRINUSE:
                    from .listener import PortInUse
                    raise PortInUse(host or '', port) from None
                raise
            if on_ready is not None:
                on_ready(server)
            if parent is not None:
                watch = loop.call_later(0.5, check_parent)
            await server.serve_forever()
        finally:
            if watch is not None:
                watch.cancel()
            for sig in installed:
                loop.remove_signal_handler(sig)
            app.server = None

    logger.addFilter(quiet)
    loop = _new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        logger.removeFilter(quiet)
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


def cpu_workers(workers: Union[int, str, None]) -> int:
    """The number of worker processes ``workers`` asks for.

    Args:
        workers: ``None`` means 1 (no supervisor); ``0`` or ``'auto'`` one per CPU.

    Returns:
        The number of processes.

    Raises:
        ValueError: ``workers`` is negative or not a number.
    """
    if workers is None:
        return 1
    if workers == 'auto' or workers == 0:
        return max(1, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError('workers must be a positive number, 0 or "auto" (one per CPU), '
                         'not %r' % (workers,))
    return workers


def serve_app(app: Any, host: Optional[str] = '0.0.0.0', port: int = 5000,
              debug: bool = False, ssl: Any = None, sock: Optional[socket.socket] = None,
              workers: Union[int, str, None] = None, reload: bool = False,
              name: Optional[str] = None, **options: Any) -> None:
    """Run the built-in server; return once it stopped.

    One process, ``workers`` supervised processes, or a reloading development
    server. The socket is bound here, once (see :mod:`microdot.listener`).

    Args:
        app: The application, or a ``MODULE:APP`` string (imported where it is
            served: by each worker, or by the reloaded process).
        host: The address to listen on.
        port: The port to listen on.
        debug: Set the application's ``debug`` and turn the access log on (unless
            ``access_log`` is given).
        ssl: An ``ssl.SSLContext`` for HTTPS.
        sock: An already bound listening socket to serve instead.
        workers: The number of worker processes (see :func:`cpu_workers`).
        reload: Restart when the code changes (see :mod:`microdot.reload`).
        name: What the start-up line calls the application.
        **options: The options of :class:`Server`.

    Raises:
        microdot.listener.ServeError: The server cannot run (one-line message).
        ValueError: Contradicting arguments (``reload`` with ``workers``).
        TypeError: An unknown option.
    """
    from . import console, listener, reload as reloader
    count = cpu_workers(workers)
    if reload and workers is not None and count != 1:
        raise ValueError('reload and workers cannot be used together: the reloader runs '
                         'one process; drop workers while developing')
    if debug and 'access_log' not in options:
        options['access_log'] = True  # Microdot's debug mode printed every request
    unknown = set(options) - set(DEFAULTS)
    if unknown:  # before binding or starting any process
        raise TypeError('unknown server option(s): %s (known: %s)'
                        % (', '.join(sorted(unknown)), ', '.join(sorted(DEFAULTS))))
    signals: Tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
    inherited = reloader.inherited_socket()
    if inherited is not None:  # this process is the one the reloader restarts
        sock, reload, signals = inherited, False, (signal.SIGTERM,)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the reloader forwards it
    scheme = 'https' if ssl else 'http'
    if name is None:
        name = app if isinstance(app, str) else console.describe_app(app)
    if sock is None and count == 1 and not reload and listener.several_addresses(host, port):
        # one process listens on every address of a name (localhost: 127.0.0.1 and
        # ::1), as asyncio.start_server does, binding after the startup hooks
        app = _load(app, debug)

        def bound(server: Server) -> None:
            console.announce(name or 'app', scheme, host or '',
                             server.sockets[0].getsockname()[1], 1)

        serve_socket(app, None, ssl=ssl, signals=signals, on_ready=bound, host=host,
                     port=port, **options)
        return
    own_socket = sock is None
    if sock is None:
        sock = listener.bind(host, port)
    shown_host, shown_port = console.shown_address(sock, host)
    if reload:
        if os.name == 'nt':  # pragma: no cover - the socket is handed down by fd
            raise listener.ServeError('reload needs a POSIX system (Linux, macOS)')
        reloader.run_reloader(sock, reloader.app_folders(app),
                              float(options.get('shutdown_timeout',
                                                DEFAULTS['shutdown_timeout'])))
        return
    if count > 1:
        from .supervisor import run_workers
        # a socket the caller handed over is shared as it is: it cannot be re-bound
        run_workers(app, sock, count, debug=debug, ssl=ssl, name=name,
                    address=(scheme, shown_host, shown_port), options=options,
                    reuse_port=None if own_socket else False)
        return
    app = _load(app, debug)

    def ready(server: Server) -> None:
        console.announce(name or 'app', scheme, shown_host, shown_port, 1)

    serve_socket(app, sock, ssl=ssl, signals=signals, on_ready=ready, **options)


def _load(app: Any, debug: bool) -> Any:
    """The application ``app`` names (``MODULE:APP``) or is, with ``debug`` set."""
    if isinstance(app, str):
        from .cli import load_app
        app = load_app(app)
    app.debug = debug
    return app


def run_app(app: Any, host: str = '0.0.0.0', port: int = 5000, debug: bool = False,
            ssl: Any = None, sock: Optional[socket.socket] = None,
            workers: Union[int, str, None] = None, reload: bool = False,
            **options: Any) -> None:
    """Serve ``app`` until it is shut down, SIGINT or SIGTERM (a second signal aborts).

    Args:
        app: The application, or a ``MODULE:APP`` string.
        host: The address to listen on.
        port: The port to listen on.
        debug: Debug mode (see :func:`serve_app`).
        ssl: An ``ssl.SSLContext`` for HTTPS.
        sock: An already bound listening socket to serve instead.
        workers: The number of worker processes, as in :func:`serve_app`.
        reload: Restart when the code changes, as in :func:`serve_app`.
        **options: The options of :class:`Server`.
    """
    serve_app(app, host=host, port=port, debug=debug, ssl=ssl, sock=sock,
              workers=workers, reload=reload, **options)


class BuiltinServer:
    """The ``builtin`` entry of the ``microdot.servers`` group."""

    MICRODOT_PLUGIN_API = 1
    name = 'builtin'
    #: CLI options (besides host and port) this server accepts
    options: 'frozenset[str]' = frozenset({'workers', 'reload', 'access_log'})

    def run(self, app: Any, host: str = '127.0.0.1', port: int = 5000,
            workers: Union[int, str, None] = None, reload: bool = False,
            **options: Any) -> None:
        """Serve ``app`` (an application or ``MODULE:APP``); see :func:`serve_app`.

        Args:
            app: The application, or a ``MODULE:APP`` string.
            host: The address to listen on.
            port: The port to listen on.
            workers: The number of worker processes.
            reload: Restart when the code changes.
            **options: The options of :class:`Server`, and ``debug``.
        """
        serve_app(app, host=host, port=port, workers=workers, reload=reload, **options)


builtin_server = BuiltinServer()
