"""ASGI 3 support for Microdot: deploy under uvicorn, hypercorn or any ASGI server.

``from microdot.asgi import Microdot`` gives an application class that is itself an
ASGI callable (``uvicorn app:app``). Any plain ``microdot.Microdot`` application can be
wrapped with :func:`asgi_adapter` too (registered as the ``asgi`` entry of the
``microdot.adapters`` group). Requests go through the same protocol-neutral dispatch as
the built-in server; this module only translates ASGI messages.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import (TYPE_CHECKING, Any, Callable, Dict, FrozenSet, List, Optional, Sequence,
                    Set, Tuple, Union)
from urllib.parse import quote

import microdot as _microdot
if TYPE_CHECKING:
    # what the star import re-exports, spelled out for type checkers: ``Microdot`` is
    # this module's own class, below (tests/core/test_checker_reexports.py keeps the list
    # equal to ``microdot.__all__``)
    from microdot import (AsyncBytesIO as AsyncBytesIO, HTTPException as HTTPException,
                          MultiDict as MultiDict, NoCaseDict as NoCaseDict,
                          Request as Request, Response as Response, URLPattern as URLPattern,
                          __version__ as __version__, abort as abort,
                          iscoroutine as iscoroutine, redirect as redirect,
                          send_file as send_file, urldecode as urldecode,
                          urlencode as urlencode)
else:
    from microdot import *  # noqa: F401,F403  (re-exported, as Microdot's asgi module does)
from microdot import Microdot as BaseMicrodot
from microdot.http11 import check_fields
from microdot.requests import Request, headers_from_raw
from microdot.responses import Response, close_body, internal_error, one_step_type_field
from microdot.streams import BodyStream
from microdot.shutdown import (SENT as _SENT, SERVING as _SERVING, ServerShutdown,
                               current_request as _current_request,
                               stop_server_on_shutdown)
from microdot.typedefs import ASGIMessage, ASGIReceive, ASGIScope, ASGISend
# Microdot 2.x's asgi module offers these too (``from microdot.asgi import with_websocket``)
from microdot.websocket import WebSocket, WebSocketError, websocket_upgrade, with_websocket
from microdot.ws_protocol import is_valid_close_code

MICRODOT_PLUGIN_API = 1

__all__ = ['asgi_adapter', 'ASGIAdapter', 'ASGIWebSocketTransport', 'WebSocket',
           'websocket_upgrade', 'with_websocket']
__all__ += _microdot.__all__  # the core's names, re-exported

logger = logging.getLogger('microdot.asgi')


class _Disconnected(Exception):
    """The client went away (``http.disconnect``)."""


#: What an ASGI server without WebSocket support lacks, by the server's module.
_WEBSOCKET_MISSING = {
    'uvicorn': "uvicorn has no WebSocket implementation: pip install 'microdot-asgi[uvicorn]' "
               "(it brings websockets), and do not start it with --ws none",
    'granian': 'Granian was started with --no-ws: start it without',
}
_warned_no_websocket: List[bool] = []


def no_websocket_support(request: Request, subprotocols: Sequence[str]) -> Any:
    """The ``websocket_transport`` of requests that came as an ``http`` scope.

    The server handed a WebSocket handshake over as a plain HTTP request, because it
    has no WebSocket support (uvicorn without a WebSocket library, ``--ws none``): it
    is refused with ``501`` and a message naming what is missing.

    Args:
        request: The request.
        subprotocols: The subprotocols the route accepts.

    Returns:
        Never: it always raises.

    Raises:
        microdot.ws_protocol.HandshakeError: Always (501).
    """
    from microdot.ws_protocol import HandshakeError
    server = next((name for name in _WEBSOCKET_MISSING if name in sys.modules), None)
    missing = _WEBSOCKET_MISSING[server] if server else \
        'this ASGI server has no WebSocket support enabled'
    if not _warned_no_websocket:
        _warned_no_websocket.append(True)
        logger.warning('WebSocket request for %s refused with 501: the server handed it '
                       'over as plain HTTP; %s', request.path, missing)
    raise HandshakeError(501, 'WebSocket is not available: the server handed the '
                              'handshake over as a plain HTTP request; %s' % missing)


class ASGIRequest(Request):
    """A ``Request`` made by :class:`ASGIAdapter`.

    A WebSocket handshake that arrives as an ``http`` scope is refused by
    :func:`no_websocket_support`.
    """

    websocket_transport = staticmethod(no_websocket_support)
    #: The ASGI connection scope the request came from.
    asgi_scope: ASGIScope


class ASGIAdapter:
    """An ASGI 3 callable serving a ``microdot.Microdot`` application.

    Args:
        app: The application.
    """

    #: Seconds the lifespan shutdown waits for cancelled streams and WebSocket sessions
    #: to finish their cleanup (``finally`` blocks) before the shutdown hooks run.
    cleanup_timeout: float = 5.0

    def __init__(self, app: Any) -> None:
        self.app = app
        #: Tasks streaming a response body or serving a WebSocket session.
        self.open_tasks: Set['asyncio.Task[Any]'] = set()

    async def __call__(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        """The ASGI callable: serve one connection scope.

        It serves ``http`` scopes itself (one coroutine per request, the common
        case), the others through :meth:`other`.

        Args:
            scope: The connection scope.
            receive: The server's ``receive``.
            send: The server's ``send``.
        """
        if scope['type'] != 'http':
            await self.other(scope, receive, send)
            return
        state = [_SERVING]  # see _current_request
        _current_request.set(state)  # this task's context (and its threads') only
        req = self.make_request(scope)
        if req._body is None:  # a body to read  # pyright: ignore[reportPrivateUsage]
            more = True

            async def receive_body() -> bytes:
                nonlocal more
                if not more:
                    return b''
                message = await receive()
                if message['type'] == 'http.disconnect':
                    more = False
                    raise _Disconnected()
                more = message.get('more_body', False)
                return message.get('body', b'')  # type: ignore[no-any-return]

            req._stream = BodyStream(receive_body,  # pyright: ignore[reportPrivateUsage]
                                     limit=req.max_content_length)
            try:
                await req._read_body()  # pyright: ignore[reportPrivateUsage]
            except _Disconnected:
                if state[0]:  # app.shutdown() was called: nothing more to send
                    _server_shutdown.fire()
                state[0] = _SENT
                return
        res = await self.app.dispatch_request(req)
        if res is not _already_handled:
            ctype = one_step_type_field(res)
            headers: Optional[List[Tuple[bytes, bytes]]] = None
            body = res.body
            if ctype is not None:  # the common case, in one step
                headers = [
                    (b'content-type', _CTYPES.get(ctype[1]) or _ctype_bytes(ctype[1])),
                    (b'content-length', b'%d' % len(body))]
                if res._fields is not None or res._cookies is not None:
                    headers = _checked_fields(res, headers)
            if headers is not None:
                await send({'type': 'http.response.start', 'status': res.status_code,
                            'headers': headers})
                await send({'type': 'http.response.body', 'body': body})
            else:
                await self.send_response(req, res, receive, send)
        if state[0]:  # app.shutdown() was called for this request: now it is sent
            _server_shutdown.fire()
        state[0] = _SENT

    #: Serve an ``http`` scope (what the ASGI callable does with one).
    http = __call__

    async def other(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        """Serve a ``websocket`` or ``lifespan`` scope.

        Args:
            scope: The connection scope.
            receive: The server's ``receive``.
            send: The server's ``send``.

        Raises:
            ValueError: Another scope type.
        """
        kind = scope['type']
        if kind == 'websocket':
            await self.websocket(scope, receive, send)
        elif kind == 'lifespan':
            await self.lifespan(scope, receive, send)
        else:
            raise ValueError('microdot.asgi does not handle ASGI scope type %r' % kind)

    # -- requests -------------------------------------------------------------------

    def make_request(self, scope: ASGIScope, stream: Any = None) -> ASGIRequest:
        """Translate an ASGI scope into a ``Request``.

        Headers are latin-1 decoded, ``root_path`` applies, and the header dict is
        only built if the application reads it. An HTTP/1.x GET or HEAD request
        without framing fields gets its (empty) body; other requests' bodies are
        left to read.

        Args:
            scope: The connection scope.
            stream: An async reader over the body, if it is known already.

        Returns:
            The request.
        """
        root_path = scope.get('root_path')
        raw_path = scope.get('raw_path')
        if raw_path:
            path = raw_path.decode('latin-1')
            if root_path and path.startswith(root_path):
                path = path[len(root_path):]
        else:
            path = scope['path']
            if root_path and path.startswith(root_path):
                path = path[len(root_path):]
            path = quote(path, safe="/:@!$&'()*+,;=~")
        query = scope.get('query_string')
        if query:
            url = (path or '/') + '?' + query.decode('latin-1')
        else:
            url = path or '/'
        client = scope.get('client')
        if client is not None and type(client) is not tuple:
            client = tuple(client)
        # (positional arguments: this runs for every request)
        req = ASGIRequest(self.app, client, scope.get('method', 'GET'), url,
                      scope.get('http_version', '1.1'), None, None, stream, None, '', None,
                      scope.get('scheme'))
        headers = scope.get('headers') or ()
        req.header_source = (headers_from_raw, headers)
        chunked = False
        for name, value in headers:  # the framing fields only
            size = len(name)
            if size == 14 and name.lower() == b'content-length':
                req.content_length = int(value) if value.isdigit() else 0
            elif size == 17 and name.lower() == b'transfer-encoding':
                chunked = True
        if not (req.content_length or chunked or req.method not in ('GET', 'HEAD')
                or req.http_version[0] in '23'):
            req._body = b''  # an HTTP/1.x GET or HEAD without framing headers has no body  # pyright: ignore[reportPrivateUsage]
        if root_path:
            req.root_path = root_path.rstrip('/')
        req.asgi_scope = scope
        return req

    async def send_response(self, req: Request, res: Response, receive: ASGIReceive,
                            send: ASGISend) -> None:
        """Send ``res``; a streamed body stops as soon as the client disconnects.

        Args:
            req: The request.
            res: The response.
            receive: The server's ``receive`` (to notice a disconnection).
            send: The server's ``send``.
        """
        try:
            res.complete()
            items = res.header_items()
            check_fields(items)
            headers = [(_wire_name(name), value.encode('latin-1')) for name, value in items]
        except (ValueError, UnicodeEncodeError):
            logger.exception('Invalid response header for %s %s', req.method, req.path)
            close_body(res.body)
            res = internal_error()
            headers = [(n.lower().encode(), v.encode()) for n, v in res.header_items()]
        status = res.status_code
        body = res.body
        await send({'type': 'http.response.start', 'status': status, 'headers': headers})
        if req.method == 'HEAD' or status in (204, 304) or status < 200:
            close_body(body)
            await send({'type': 'http.response.body', 'body': b''})
        elif type(body) is bytes:
            await send({'type': 'http.response.body', 'body': body})
        else:
            await self._stream_body(res, receive, send)

    async def _stream_body(self, res: Response, receive: ASGIReceive, send: ASGISend) -> None:
        iterator = res.body_iter()

        async def pump() -> None:
            try:
                async for chunk in iterator:
                    await send({'type': 'http.response.body', 'body': chunk,
                                'more_body': True})
                    # servers' send() rarely suspends, nor does a sync generator:
                    # let the loop see the client leave (and the watcher report it)
                    await asyncio.sleep(0)
                await send({'type': 'http.response.body', 'body': b''})
            finally:
                await iterator.aclose()

        async def watch() -> None:
            while True:
                message = await receive()
                if message['type'] == 'http.disconnect':
                    return

        pump_task = asyncio.ensure_future(pump())
        pump_task.add_done_callback(_report_stream_error)
        self.open_tasks.add(pump_task)
        pump_task.add_done_callback(self.open_tasks.discard)
        watch_task = asyncio.ensure_future(watch())
        try:
            await asyncio.wait({pump_task, watch_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch_task.cancel()
            if not pump_task.done():
                # the client left, or the server cancelled this task (e.g. uvicorn's
                # --timeout-graceful-shutdown): stop the body, and let its cleanup
                # finish before this task ends; a cancellation still propagates
                pump_task.cancel()
                await asyncio.wait({pump_task})

    # -- websocket ------------------------------------------------------------------

    async def websocket(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        """Serve a ``websocket`` scope through the normal dispatch.

        ``with_websocket`` routes accept it; a route that does not accept gets an HTTP
        denial (see :meth:`deny`).

        Args:
            scope: The connection scope.
            receive: The server's ``receive``.
            send: The server's ``send``.
        """
        message = await receive()
        if message['type'] != 'websocket.connect':
            return  # the client left before the handshake completed
        req = self.make_request(scope, None)
        req._body = b''  # pyright: ignore[reportPrivateUsage]
        req.scheme = 'https' if scope.get('scheme') in ('wss', 'https') else 'http'
        offered = scope.get('subprotocols')
        if offered and 'Sec-WebSocket-Protocol' not in req.headers:
            req.headers['Sec-WebSocket-Protocol'] = ', '.join(offered)
        transport = ASGIWebSocketTransport(receive, send)

        def factory(request: Request, subprotocols: List[str]) -> ASGIWebSocketTransport:
            return transport

        req.websocket_transport = factory  # type: ignore[assignment]  # pyright: ignore[reportAttributeAccessIssue]
        task = asyncio.current_task()
        assert task is not None  # (an ASGI server runs each connection in a task)
        self.open_tasks.add(task)
        try:
            res = await self.app.dispatch_request(req)
        finally:
            self.open_tasks.discard(task)
        if transport.accepted:
            if res is not Response.already_handled:
                # e.g. a handler that raised after websocket_upgrade(): end the session
                close_body(res.body)
                if not transport.closed:
                    logger.warning('WebSocket handler for %s ended with an HTTP %d answer; '
                                   'closing the connection', req.path, res.status_code)
                    await transport.close(1011, 'internal error')
            elif not transport.closed:
                await transport.close()
            return
        if transport.closed:
            return
        if res is Response.already_handled:
            await self._deny_with_close(500, send)
            return
        await self.deny(req, res, scope, receive, send)

    async def deny(self, req: Request, res: Response, scope: ASGIScope, receive: ASGIReceive,
                   send: ASGISend) -> None:
        """Answer a WebSocket handshake that no handler accepted with ``res``.

        As HTTP when the server has the ``websocket.http.response`` extension, else
        with a close (code 1008), which servers answer ``403 Forbidden``.

        Args:
            req: The handshake's request.
            res: The answer.
            scope: The connection scope.
            receive: The server's ``receive``.
            send: The server's ``send``.
        """
        if res.status_code < 200:  # 101 would tell the client the upgrade succeeded
            logger.error('Cannot refuse a WebSocket on %s with status %d',
                         req.path, res.status_code)
            close_body(res.body)
            res = internal_error()
        logger.info('WebSocket on %s refused with %d', req.path, res.status_code)
        if 'websocket.http.response' not in (scope.get('extensions') or {}):
            close_body(res.body)
            await self._deny_with_close(res.status_code, send)
            return

        async def http_send(message: ASGIMessage) -> None:
            await send(dict(message, type='websocket.' + message['type']))

        async def http_receive() -> ASGIMessage:
            message = await receive()
            if message['type'] == 'websocket.disconnect':
                return {'type': 'http.disconnect'}
            return message

        await self.send_response(req, res, http_receive, http_send)

    async def _deny_with_close(self, status: int, send: ASGISend) -> None:
        """Refuse without the denial extension: servers answer ``403 Forbidden``."""
        await send({'type': 'websocket.close', 'code': 1008,
                    'reason': 'HTTP %d' % status})

    # -- lifespan -------------------------------------------------------------------

    async def lifespan(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        """Run the application's startup and shutdown hooks on the server's signals.

        Args:
            scope: The ``lifespan`` scope (hooks that take an argument receive it).
            receive: The server's ``receive``.
            send: The server's ``send``.
        """
        while True:
            message = await receive()
            if message['type'] == 'lifespan.startup':
                try:
                    await self.app.run_startup(scope)
                except Exception as exc:
                    logger.exception('Startup hook failed')
                    await send({'type': 'lifespan.startup.failed', 'message': repr(exc)})
                    return
                await send({'type': 'lifespan.startup.complete'})
            elif message['type'] == 'lifespan.shutdown':
                if self.open_tasks:
                    # a server that gave up waiting cancels them, then shuts down
                    # without waiting for them: their cleanup comes first
                    await asyncio.wait(set(self.open_tasks), timeout=self.cleanup_timeout)
                try:
                    await self.app.run_shutdown(scope)
                except Exception as exc:
                    logger.exception('Shutdown hook failed')
                    await send({'type': 'lifespan.shutdown.failed', 'message': repr(exc)})
                    return
                await send({'type': 'lifespan.shutdown.complete'})
                return


def server_master_pid() -> int:
    """The process to signal to stop the whole ASGI server this process serves for.

    - a worker of gunicorn (``-k uvicorn.workers.UvicornWorker``): gunicorn's arbiter,
      this worker's parent;
    - a worker process that uvicorn (``--workers``, ``--reload``), Hypercorn (any
      run from its command line: it always serves from worker processes) or Granian
      started with ``multiprocessing``: that parent, the server's main process;
    - otherwise (a single-process uvicorn, ``hypercorn.asyncio.serve()``, an unknown
      server): this process.

    Never the process group: it can hold the shell or supervisor that started the
    server.
    """
    ppid = os.getppid()
    if ppid > 1:
        if os.environ.get('SERVER_SOFTWARE', '').startswith('gunicorn/') and \
                'gunicorn.workers.base' in sys.modules:
            return ppid
        import multiprocessing
        parent = multiprocessing.parent_process()
        if parent is not None and parent.pid == ppid:
            target = getattr(multiprocessing.current_process(), '_target', None)
            module = getattr(target, '__module__', None) or ''
            if module.split('.', 1)[0] in _SERVER_PACKAGES:
                return ppid
    return os.getpid()


#: Servers whose worker processes (``multiprocessing`` children running one of their
#: functions) are stopped through their parent.
_SERVER_PACKAGES = frozenset(('uvicorn', 'hypercorn', 'granian'))


class _ServerShutdown(ServerShutdown):
    """``app.shutdown()`` stops the server's main process (:func:`server_master_pid`)."""

    logger = logger

    def master_pid(self) -> int:
        return server_master_pid()


_server_shutdown = _ServerShutdown()


def _report_stream_error(task: 'asyncio.Task[Any]') -> None:
    """Log what ended a streamed body other than the client leaving (OSError) or the
    stream being stopped (cancellation)."""
    if not task.cancelled():
        exc = task.exception()
        if exc is not None and not isinstance(exc, OSError):
            logger.error('Error while streaming a response', exc_info=exc)


def _closed_error(code: Optional[int], reason: str) -> WebSocketError:
    """The error ``receive()``/``send()`` raise once the connection is closed."""
    text = 'WebSocket connection closed (%s%s)' % (code, ': ' + reason if reason else '')
    return WebSocketError(text, code, reason)


def _too_big(data: Union[str, bytes], limit: Optional[int]) -> bool:
    """Whether ``data`` is over ``limit`` bytes (text counted as UTF-8)."""
    if limit is None or len(data) <= limit // 4:
        return False
    if isinstance(data, str):
        return len(data) > limit or len(data.encode('utf-8', 'surrogatepass')) > limit
    return len(data) > limit


def _cut_reason(reason: str) -> str:
    """A close reason that fits a Close frame (123 bytes of UTF-8)."""
    raw = reason.encode('utf-8')
    return raw[:123].decode('utf-8', 'ignore') if len(raw) > 123 else reason


class ASGIWebSocketTransport:
    """The WebSocket transport (see ``microdot.websocket``) over ASGI ``websocket.*`` events.

    The server does the framing, pings and closing handshake.

    Args:
        receive: The server's ``receive``.
        send: The server's ``send``.
    """

    def __init__(self, receive: ASGIReceive, send: ASGISend) -> None:
        self._receive = receive
        self._send = send
        #: Largest message accepted (``None``: no limit); set by ``websocket_upgrade``.
        self.max_message_size: Optional[int] = None
        self.accepted = False
        self.closed = False
        self.close_code: Optional[int] = None
        self.close_reason = ''

    def _mark_closed(self, code: Optional[int], reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.close_code = code
            self.close_reason = reason

    async def accept(self, subprotocol: Optional[str] = None,
                     headers: Sequence[Tuple[str, str]] = ()) -> None:
        """Send ``websocket.accept`` (the server adds ``Sec-WebSocket-Protocol``).

        Args:
            subprotocol: The subprotocol chosen, if any.
            headers: More response headers for the handshake.

        Raises:
            RuntimeError: The WebSocket was already accepted or closed.
            microdot.websocket.WebSocketError: The connection is gone.
        """
        if self.accepted or self.closed:
            raise RuntimeError('this WebSocket was already accepted or closed')
        message: Dict[str, Any] = {
            'type': 'websocket.accept', 'subprotocol': subprotocol,
            'headers': [(name.lower().encode('latin-1'), value.encode('latin-1'))
                        for name, value in headers if _check_header(name, value)
                        and name.lower() != 'sec-websocket-protocol']}
        try:
            await self._send(message)
        except Exception as exc:
            self._mark_closed(1006, 'connection lost')
            raise _closed_error(1006, 'connection lost') from exc
        self.accepted = True

    async def receive(self) -> Union[str, bytes]:
        """Wait for the next message.

        Returns:
            The message: ``text`` as str, ``bytes`` as bytes, whichever is set.

        Raises:
            microdot.websocket.WebSocketError: The connection is closed (or the
                message was too big: it is closed with 1009).
        """
        while True:
            if self.closed:
                raise _closed_error(self.close_code, self.close_reason)
            message = await self._receive()
            kind = message['type']
            if kind == 'websocket.disconnect':
                self._mark_closed(message.get('code') or 1005, message.get('reason') or '')
                raise _closed_error(self.close_code, self.close_reason)
            if kind != 'websocket.receive' or self.closed:
                continue
            data = message.get('bytes')
            if data is None:
                data = message.get('text')
                if data is None:
                    continue
            elif not isinstance(data, bytes):
                data = bytes(data)
            if _too_big(data, self.max_message_size):
                await self.close(1009, 'message too big')
                raise _closed_error(1009, 'message too big')
            return data

    async def send(self, data: Union[str, bytes]) -> None:
        """Send ``websocket.send``: text for str, binary for bytes.

        Args:
            data: The message.

        Raises:
            microdot.websocket.WebSocketError: The connection is closed.
        """
        if self.closed:
            raise _closed_error(self.close_code, self.close_reason)
        if isinstance(data, str):
            message: Dict[str, Any] = {'type': 'websocket.send', 'text': data}
        else:
            message = {'type': 'websocket.send', 'bytes': bytes(data)}
        try:
            await self._send(message)
        except Exception as exc:  # the server's "client disconnected" error
            self._mark_closed(1006, 'connection lost')
            raise _closed_error(1006, 'connection lost') from exc

    async def close(self, code: int = 1000, reason: str = '') -> None:
        """Send ``websocket.close`` once (before ``accept``, servers answer 403).

        Args:
            code: The close code.
            reason: The close reason (cut to fit a Close frame).

        Raises:
            ValueError: A close code that cannot be sent.
        """
        if self.closed:
            return
        if not is_valid_close_code(code):
            raise ValueError('close code %d cannot be sent' % code)
        reason = _cut_reason(reason or '')
        self._mark_closed(code, reason)
        try:
            await self._send({'type': 'websocket.close', 'code': code, 'reason': reason})
        except Exception:  # already gone: nothing left to close
            logger.debug('WebSocket already closed by the server', exc_info=True)


def _check_header(name: str, value: str) -> bool:
    """Refuse (ValueError) a header that could inject lines; True otherwise."""
    check_fields([(name, value)])
    return True


_WIRE_NAMES: Dict[str, bytes] = {}
#: ``Response.already_handled``, read per request without a class attribute lookup.
_already_handled = Response.already_handled
#: Content-Type values of plain responses, encoded (see ``ASGIAdapter.__call__``).
_CTYPES: Dict[str, bytes] = {}


def _checked_fields(res: Response, tail: List[Tuple[bytes, bytes]]
                    ) -> Optional[List[Tuple[bytes, bytes]]]:
    """The fields of ``res`` checked when they were set (see
    ``microdot.responses.one_step_type_field``) as ASGI headers, then ``tail``; ``None``
    if a value is not latin-1 (``send_response`` refuses it)."""
    pairs = _FIELD_PAIRS
    headers: List[Tuple[bytes, bytes]] = []
    append = headers.append
    try:
        fields = res._fields  # pyright: ignore[reportPrivateUsage]
        if fields:
            for field in fields.items():
                append(pairs.get(field) or _field_pair(field))
        cookies = res._cookies  # pyright: ignore[reportPrivateUsage]
        if cookies is not None:
            for value in cookies:
                append((b'set-cookie', value.encode('latin-1')))
    except UnicodeEncodeError:
        return None
    headers += tail
    return headers


#: ``(name, value)`` -> the field as ASGI sends it (most responses give the same few).
_FIELD_PAIRS: Dict[Tuple[str, str], Tuple[bytes, bytes]] = {}


def _field_pair(field: Tuple[str, str]) -> Tuple[bytes, bytes]:
    """``field`` as an ASGI header (``UnicodeEncodeError`` if not latin-1), cached."""
    name, value = field
    pair = (_wire_name(name), value.encode('latin-1'))
    if len(_FIELD_PAIRS) >= 1024:  # (values that vary: start again)
        _FIELD_PAIRS.clear()
    _FIELD_PAIRS[field] = pair
    return pair


def _ctype_bytes(value: str) -> bytes:
    """``value`` encoded as latin-1 (``plain_type_field`` checked it can be), cached."""
    encoded = value.encode('latin-1')
    if len(_CTYPES) < 64:
        _CTYPES[value] = encoded
    return encoded


def _wire_name(name: str) -> bytes:
    """A header name as ASGI wants it (lower-case bytes), cached."""
    try:
        return _WIRE_NAMES[name]
    except KeyError:
        value = name.lower().encode('latin-1')
        if len(_WIRE_NAMES) < 1024:
            _WIRE_NAMES[name] = value
        return value


def asgi_adapter(app: Any) -> ASGIAdapter:
    """Wrap a plain ``microdot.Microdot`` application as an ASGI 3 callable.

    The application's ``shutdown()`` then stops this server as well (as it does for
    ``microdot.asgi.Microdot``), whenever the built-in server is not running it.

    Args:
        app: The application (a ``microdot.asgi.Microdot`` is its own adapter).

    Returns:
        The ASGI callable serving ``app``.
    """
    if isinstance(app, Microdot):
        return app._asgi  # pyright: ignore[reportPrivateUsage]
    stop_server_on_shutdown(app, _server_shutdown, 'stops_asgi_server')
    return ASGIAdapter(app)


class Microdot(BaseMicrodot, ASGIAdapter):
    """A Microdot application that is also an ASGI 3 callable.

    It is its own :class:`ASGIAdapter`: a request costs one coroutine less.

    Args:
        lifespan_startup: Runs when the server sends the ASGI lifespan startup event,
            after the hooks registered with ``on_startup`` (async or sync, taking the
            scope or nothing).
        lifespan_shutdown: Runs on the lifespan shutdown event, before the hooks
            registered with ``on_shutdown``.
    """

    def __init__(self, lifespan_startup: Optional[Callable[..., Any]] = None,
                 lifespan_shutdown: Optional[Callable[..., Any]] = None) -> None:
        super().__init__()
        self.lifespan_startup = lifespan_startup
        self.lifespan_shutdown = lifespan_shutdown
        if lifespan_startup is not None:
            self.startup_handlers.append(lifespan_startup)
        if lifespan_shutdown is not None:
            self.shutdown_handlers.insert(0, lifespan_shutdown)
        ASGIAdapter.__init__(self, self)
        self._asgi = self

    # an ASGI callable only (the core's class also takes WSGI calls)
    __call__ = ASGIAdapter.__call__  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]

    def shutdown(self) -> None:
        """Stop serving: the built-in server if running, else the whole ASGI server.

        The server's main process gets SIGTERM (see :func:`server_master_pid`; never
        the process group), so it stops gracefully, all its workers with it. Called
        while a request is served, the signal goes once that request's response is
        sent (or after ``_ServerShutdown.grace`` seconds if it never completes).
        """
        if self.server is not None:
            super().shutdown()
        else:
            _server_shutdown.request()


# -- servers (entry points of the microdot.servers group) -------------------------------

_APP_ENV = 'MICRODOT_ASGI_APP'


def _cli_app() -> ASGIAdapter:
    """Factory used by the server runners: loads the app named in MICRODOT_ASGI_APP."""
    from microdot.cli import load_app
    return asgi_adapter(load_app(os.environ[_APP_ENV]))


def _missing(server: str) -> ImportError:
    return ImportError("the '%s' server needs microdot-asgi[%s]: pip install "
                       "'microdot-asgi[%s]'" % (server, server, server))


class _Runner:
    MICRODOT_PLUGIN_API = 1
    options: FrozenSet[str] = frozenset({'workers', 'reload'})


class UvicornServer(_Runner):
    """Runs an application with uvicorn (``--server uvicorn``)."""

    name = 'uvicorn'

    def run(self, app: Any, host: str = '127.0.0.1', port: int = 5000,
            workers: Optional[int] = None, reload: bool = False, **options: Any) -> None:
        try:
            import uvicorn
        except ImportError:
            raise _missing('uvicorn') from None
        if isinstance(app, str):
            os.environ[_APP_ENV] = app
            uvicorn.run('microdot.asgi:_cli_app', factory=True, host=host, port=port,
                        workers=workers, reload=reload, **options)
        else:
            if workers and workers > 1 or reload:
                raise ValueError('workers and reload need the application as an import '
                                 'string ("module:app"), e.g. microdot run module:app '
                                 '--server uvicorn --workers 2')
            uvicorn.run(asgi_adapter(app), host=host, port=port, **options)


class HypercornServer(_Runner):
    """Runs an application with hypercorn (``--server hypercorn``)."""

    name = 'hypercorn'

    def run(self, app: Any, host: str = '127.0.0.1', port: int = 5000,
            workers: Optional[int] = None, reload: bool = False, **options: Any) -> None:
        try:
            from hypercorn.config import Config
            from hypercorn.run import run as hypercorn_run
        except ImportError:
            raise _missing('hypercorn') from None
        config = Config()
        config.bind = ['[%s]:%d' % (host, port) if ':' in host else '%s:%d' % (host, port)]
        config.use_reloader = reload
        if workers:
            config.workers = workers
        for key, value in options.items():
            setattr(config, key, value)
        if not isinstance(app, str):
            if (workers and workers > 1) or reload:
                raise ValueError('workers and reload need the application as an import '
                                 'string ("module:app")')
            import asyncio as _asyncio
            from hypercorn.asyncio import serve  # pyright: ignore[reportUnknownVariableType]
            _asyncio.run(serve(asgi_adapter(app), config))
            return
        os.environ[_APP_ENV] = app
        config.application_path = 'asgi:microdot.asgi:_cli_app()'
        hypercorn_run(config)


class GranianServer(_Runner):
    """Runs an application with Granian (``--server granian``): its ASGI interface,
    lifespan included (``pip install 'microdot-asgi[granian]'``), or with
    ``interface='wsgi'`` microdot-wsgi's runner of its WSGI interface.

    microdot-asgi and microdot-wsgi both register ``granian``; whichever one the
    registry hands out, ASGI is the default when microdot-asgi is installed.
    """

    name = 'granian'
    options: 'frozenset[str]' = frozenset({'workers', 'reload', 'threads', 'interface'})

    def run(self, app: Any, host: str = '127.0.0.1', port: int = 5000,
            workers: Union[int, str, None] = None, reload: bool = False,
            interface: Optional[str] = None, **options: Any) -> None:
        """Serve ``app`` (``MODULE:APP``, or an application object with one worker
        where processes are forked) until SIGINT/SIGTERM.

        Args:
            app: the application or its import string.
            host: address to bind.
            port: port to bind.
            workers: worker processes (``0`` or ``'auto'``: one per CPU).
            reload: restart on code changes (needs ``granian[reload]``).
            interface: ``'asgi'`` (the default) or ``'wsgi'``.
            **options: other ``granian.Granian`` arguments (``threads``: WSGI only).

        Raises:
            ImportError: Granian, or for ``'wsgi'`` microdot-wsgi, is not installed
                (the message names the extra to install).
            ValueError: an application object with several workers or ``reload``.
            microdot.listener.ServeError: ``threads`` without ``interface='wsgi'``.
        """
        if interface == 'wsgi':
            try:
                from microdot.wsgi_granian import granian_server
            except ImportError:
                raise ImportError("the 'granian' server's WSGI interface needs "
                                  "microdot-wsgi[granian]: pip install "
                                  "'microdot-wsgi[granian]'") from None
            granian_server.run(app, host=host, port=port, workers=workers, reload=reload,
                               interface='wsgi', **options)
            return
        if interface not in (None, 'asgi'):
            raise ValueError("interface must be 'asgi' or 'wsgi', not %r" % (interface,))
        if options.get('threads'):
            from microdot.listener import ServeError
            error = ServeError("--threads applies to Granian's WSGI interface only: add "
                               "--interface wsgi (interface='wsgi')")
            error.exit_status = 2  # a usage error, as microdot run reports them
            raise error
        options.pop('threads', None)
        try:
            from granian.constants import Interfaces
            from granian.server import Server
        except ImportError:
            raise _missing('granian') from None
        count = (os.cpu_count() or 1) if workers in (0, 'auto') else int(workers or 1)
        settings = dict(options, address=host, port=port, interface=Interfaces.ASGI,
                        workers=count, reload=reload)
        if isinstance(app, str):
            os.environ[_APP_ENV] = app
            # our loader, not Granian's: it imports MODULE from the current directory
            # as ``microdot run`` does (Granian prefixes the packages around it)
            Server('microdot.asgi:_cli_app', **settings).serve(target_loader=_cli_app,
                                                                wrap_loader=False)
            return
        import multiprocessing
        if count > 1 or reload or multiprocessing.get_start_method() != 'fork':
            raise ValueError('Granian serves from worker processes: give the application '
                             'as an import string ("module:app"), e.g. microdot run '
                             'module:app --server granian')
        application = asgi_adapter(app)
        Server('microdot', **settings).serve(target_loader=lambda: application,
                                             wrap_loader=False)


uvicorn_server = UvicornServer()
hypercorn_server = HypercornServer()
granian_server = GranianServer()
