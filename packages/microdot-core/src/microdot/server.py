"""The built-in asyncio HTTP/1.1 server.

One ``asyncio.Protocol`` per connection feeds the sans-I/O parser in ``http11``;
a task per connection runs requests one after another (keep-alive, pipelining).
Every wait is bounded: request head, idle keep-alive and body reads have deadlines,
and shutdown lets in-flight requests finish within a grace period.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from email.utils import formatdate
from typing import Any, Callable, Dict, Optional, Set, Tuple

from . import http11
from .exceptions import HTTPException
from .requests import Request
from .responses import Response, close_body, internal_error, plain_type_field

logger = logging.getLogger('microdot.server')
access_logger = logging.getLogger('microdot.access')

DEFAULTS = {
    #: seconds to receive a complete request head (from connection or last response)
    'head_timeout': 10.0,
    #: seconds an idle keep-alive connection is kept open
    'keep_alive_timeout': 5.0,
    #: seconds a body read may wait for the next bytes
    'body_timeout': 30.0,
    #: seconds in-flight requests get to finish after shutdown is asked for
    'shutdown_timeout': 10.0,
    #: simultaneous connections; more are answered 503 and closed
    'max_connections': 1000,
    #: total bytes of a request head (431 beyond)
    'max_header_bytes': 16 * 1024,
    #: header fields per request (431 beyond)
    'max_headers': 100,
    #: log one line per request to the ``microdot.access`` logger
    'access_log': False,
}

_HIGH_WATER = 256 * 1024

_date_cache: list = [0, '', b'']


def http_date() -> str:
    """The current time as an HTTP date, recomputed at most once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        date = formatdate(now, usegmt=True)
        _date_cache[:] = [now, date, date.encode('ascii')]  # one step: threads may read
    return _date_cache[1]


def _date_bytes() -> bytes:
    """:func:`http_date` as bytes (from the same cache)."""
    http_date()
    return _date_cache[2]


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


class _Timeout(Exception):
    pass


class Server:
    """Serves one application; see :data:`DEFAULTS` for the options."""

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
        self.connections: Set['HTTPConnection'] = set()
        self.stopping = False
        self._servers: list = []
        self._stop_event: Optional[asyncio.Event] = None
        self._sweeper: Optional[asyncio.TimerHandle] = None
        self.sockets: list = []

    def parser(self) -> http11.RequestParser:
        max_line = self.app.max_readline or Request.max_readline
        return http11.RequestParser(max_request_line=max_line, max_header_line=max_line,
                                    max_header_bytes=self.max_header_bytes,
                                    max_headers=self.max_headers)

    async def start(self, host: str = '0.0.0.0', port: int = 5000, ssl: Any = None,
                    sock: Optional[socket.socket] = None) -> None:
        """Run the startup hooks, then listen (``host`` may be IPv4 or IPv6)."""
        loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        await self.app.run_startup()

        def factory() -> HTTPConnection:
            return HTTPConnection(self)

        if sock is not None:
            server = await loop.create_server(factory, sock=sock, ssl=ssl, backlog=1024)
        else:
            server = await loop.create_server(factory, host=host or None, port=port, ssl=ssl,
                                              backlog=1024, reuse_address=True)
        self._servers.append(server)
        self.sockets = list(server.sockets)
        self._tick = min(1.0, min(self.head_timeout, self.keep_alive_timeout,
                                  self.body_timeout) / 4)
        self._sweeper = loop.call_later(self._tick, self._sweep)
        for s in self.sockets:
            name = s.getsockname()
            logger.info('Serving on %s://%s:%d', 'https' if ssl else 'http',
                        ('[%s]' % name[0]) if s.family == socket.AF_INET6 else name[0],
                        name[1])

    def _sweep(self) -> None:
        """Enforce the connections' deadlines; runs every ``_tick`` seconds."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for conn in list(self.connections):
            conn.expire(now)
        self._sweeper = loop.call_later(self._tick, self._sweep)

    async def serve(self, host: str = '0.0.0.0', port: int = 5000, ssl: Any = None,
                    sock: Optional[socket.socket] = None) -> None:
        """Serve until :meth:`shutdown`; returns once connections drain and the
        shutdown hooks ran."""
        await self.start(host, port, ssl=ssl, sock=sock)
        try:
            assert self._stop_event is not None
            await self._stop_event.wait()
        finally:
            await self.stop()

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
        self.shutdown()
        for server in self._servers:
            await server.wait_closed() if not self.connections else None
        deadline = time.monotonic() + self.shutdown_timeout
        while self.connections and time.monotonic() < deadline:
            tasks = [c.task for c in self.connections if c.task is not None]
            if not tasks:
                break
            await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.connections):
            logger.warning('Closing a connection still busy after %.1fs of shutdown',
                           self.shutdown_timeout)
            conn.abort()
        try:
            await self.app.run_shutdown()
        except Exception:
            logger.exception('Shutdown hook failed')


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
        self.conn._take_raw()  # bytes the client pipelined after its request stay readable
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
    """One client connection: parsing, request loop, writing, deadlines."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.app = server.app
        self.loop = asyncio.get_event_loop()
        self.parser = server.parser()
        self.transport: Optional[asyncio.Transport] = None
        self.task: Optional[asyncio.Task] = None
        self.client_addr: Any = None
        self.scheme = 'http'
        self.lost = False
        self.idle = True
        self.streaming = False
        self.upgraded = False
        self._waiter: Optional[asyncio.Future] = None
        self._drain_waiter: Optional[asyncio.Future] = None
        self._write_paused = False
        self._read_paused = False
        self._raw = bytearray()
        self._raw_eof = False
        self.deadline: Optional[float] = None
        self.sock = (_SockReader(self), _SockWriter(self))

    # -- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
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
        if len(self.server.connections) >= self.server.max_connections or \
                self.server.stopping:
            logger.warning('Refusing connection from %s: %d connections open',
                           self.client_addr, len(self.server.connections))
            self._write_error(503, 'Service Unavailable', 'Too many connections')
            transport.close()
            return
        self.server.connections.add(self)
        self.task = self.loop.create_task(self._run())

    def data_received(self, data: bytes) -> None:
        if self.upgraded:
            self._raw += data
            if len(self._raw) > _HIGH_WATER and not self._read_paused:
                self._read_paused = True  # raw_read resumes once the handler catches up
                self.transport.pause_reading()  # type: ignore[union-attr]
        else:
            self.parser.feed(data)
            if self.parser.buffered > _HIGH_WATER and not self._read_paused:
                self._read_paused = True
                self.transport.pause_reading()  # type: ignore[union-attr]
        self._wake()

    def eof_received(self) -> bool:
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
        self.lost = True
        self._raw_eof = True
        self.server.connections.discard(self)
        self._wake()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(ConnectionResetError('connection lost'))
        if self.task is not None and self.streaming and not self.task.done():
            self.task.cancel()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

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
            self.transport.resume_reading()  # type: ignore[union-attr]
        self._waiter = waiter = self.loop.create_future()
        self.deadline = self.loop.time() + timeout
        try:
            await waiter
        finally:
            self._waiter = None
            self.deadline = None

    def expire(self, now: float) -> None:
        """Called by the server's sweep: fail the current wait if its deadline passed."""
        deadline = self.deadline
        if deadline is not None and deadline <= now:
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(_Timeout())

    async def drain(self) -> None:
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
        """Have ``callback()`` called once when the server shuts down, or at once if
        it already is."""
        if self.server.stopping:
            callback()
        else:
            self.on_shutdown = callback

    def shutdown(self) -> None:
        """Server is stopping: close now if idle, else after the current response;
        a connection with an :attr:`on_shutdown` callback is told through it."""
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
        if self.transport is not None:
            self.transport.abort()
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self.server.connections.discard(self)

    def _write_error(self, status: int, reason: Optional[str], text: str) -> None:
        body = (text + '\n').encode()
        head = http11.serialize_response_head(status, reason, [
            ('Content-Type', 'text/plain; charset=UTF-8'),
            ('Content-Length', str(len(body))), ('Connection', 'close'),
            ('Date', http_date())])
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(head + body)

    # -- the request loop -----------------------------------------------------------

    async def _next_event(self, timeout: float) -> Any:
        parser = self.parser
        while True:
            event = parser.next_event()
            if event is not http11.NEED_DATA:
                return event
            await self._wait(timeout)

    async def _receive(self) -> bytes:
        """Body bytes for ``BodyStream``; b'' at the end of the body."""
        if self.expect_continue:
            self.expect_continue = False
            self.transport.write(b'HTTP/1.1 100 Continue\r\n\r\n')  # type: ignore[union-attr]
        try:
            event = await self._next_event(self.server.body_timeout)
        except _Timeout:
            self.keep_alive = False
            raise HTTPException(408, 'Request Timeout') from None
        if isinstance(event, http11.Data):
            return event.data
        return b''

    async def _run(self) -> None:
        server = self.server
        app = self.app
        try:
            while True:
                self.idle = True
                try:
                    event = self.parser.next_event()
                    if event is http11.NEED_DATA:
                        # deadlines count from the end of the last response
                        start = self.loop.time()
                        while event is http11.NEED_DATA:
                            remaining = (server.keep_alive_timeout if self.parser.at_start
                                         else server.head_timeout) - \
                                (self.loop.time() - start)
                            if remaining <= 0:
                                raise _Timeout()
                            await self._wait(remaining)
                            event = self.parser.next_event()
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
                                        sock=self.sock,
                                        scheme=self.scheme)
                if req.content_length > req.max_content_length:
                    self.expect_continue = False  # refuse before the client sends it
                if req._stream is not None:
                    try:
                        await req._read_body()
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
                event = self.parser.next_event()
                if not (isinstance(event, http11.EndOfMessage) or event is http11.PAUSED):
                    if not await self._finish_body():
                        return
                self.parser.start_next_request()
        except http11.ProtocolError as exc:
            if not self.lost:
                self._write_error(exc.status_code, None, exc.reason)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:  # pragma: no cover - a bug in the server itself
            logger.exception('Unexpected error on connection from %s', self.client_addr)
            if not self.lost and self.idle is False:
                self._write_error(500, None, 'Internal server error')
        finally:
            self.server.connections.discard(self)
            if self.transport is not None:
                self.transport.close()

    async def _finish_body(self) -> bool:
        """Skip what the handler left unread of the request body (bounded)."""
        budget = 64 * 1024
        while True:
            event = self.parser.next_event()
            if isinstance(event, http11.EndOfMessage) or event is http11.PAUSED:
                return True
            if isinstance(event, http11.Data):
                budget -= len(event.data)
                if budget < 0:
                    return False
                continue
            try:
                await self._wait(self.server.body_timeout)
            except _Timeout:
                return False

    async def _send(self, req: Request, res: Response) -> None:
        """Write ``res`` with HTTP/1.1 framing (chunked when the length is unknown)."""
        transport = self.transport
        assert transport is not None
        ctype = plain_type_field(res)
        if ctype is not None and res.reason is None and self.keep_alive and \
                not self.server.stopping and req.http_version == '1.1' and \
                req.method != 'HEAD':
            # the common case, in one step, with a head cached per status and type
            head = _plain_head(res.status_code, ctype[1])
            body = res.body
            transport.write(b'%s%d%s%s\r\n\r\n%s' % (head[0], len(body), head[1],
                                                      _date_bytes(), body))
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
            self.transport.resume_reading()  # type: ignore[union-attr]
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def raw_read(self, n: int = -1) -> bytes:
        self._take_raw()
        while not self._raw and not self._raw_eof:
            await self._wait_raw()
        if n is None or n < 0:
            n = len(self._raw)
        data = bytes(self._raw[:n])
        del self._raw[:n]
        return data

    async def raw_readline(self) -> bytes:
        self._take_raw()
        while b'\n' not in self._raw and not self._raw_eof:
            await self._wait_raw()
        i = self._raw.find(b'\n')
        n = len(self._raw) if i < 0 else i + 1
        data = bytes(self._raw[:n])
        del self._raw[:n]
        return data


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed (unless MICRODOT_LOOP=asyncio)."""
    if os.environ.get('MICRODOT_LOOP', 'auto') != 'asyncio':
        try:
            import uvloop
            return uvloop.new_event_loop()
        except ImportError:
            pass
    return asyncio.new_event_loop()


def run_app(app: Any, host: str = '0.0.0.0', port: int = 5000, debug: bool = False,
            ssl: Any = None, sock: Optional[socket.socket] = None, **options: Any) -> None:
    """Serve ``app`` until it is shut down, SIGINT or SIGTERM (a second signal aborts)."""
    app.debug = debug
    server = Server(app, **options)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        app.server = server
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if signals == 1:
                logger.info('Shutting down (in-flight requests may finish)')
                server.shutdown()
            else:
                logger.warning('Second signal: aborting open connections')
                for conn in list(server.connections):
                    conn.abort()

        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, on_signal)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
                pass
        try:
            await server.serve(host, port, ssl=ssl, sock=sock)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            app.server = None

    loop = _new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


class BuiltinServer:
    """The ``builtin`` entry of the ``microdot.servers`` group."""

    MICRODOT_PLUGIN_API = 1
    name = 'builtin'
    #: CLI options (besides host and port) this server accepts
    options: frozenset = frozenset()

    def run(self, app: Any, host: str = '127.0.0.1', port: int = 5000, **options: Any) -> None:
        if isinstance(app, str):
            from .cli import load_app
            app = load_app(app)
        run_app(app, host=host, port=port, **options)


builtin_server = BuiltinServer()
