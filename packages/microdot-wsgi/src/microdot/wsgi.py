"""WSGI support for Microdot: deploy under gunicorn, waitress or any WSGI server.

``from microdot.wsgi import Microdot`` gives an application class that is itself a WSGI
callable (``gunicorn app:app``); :func:`wsgi_adapter` wraps any plain
``microdot.Microdot`` application (the ``wsgi`` entry of ``microdot.adapters``).

Threading: each server thread gets its own event loop, never shared, so threaded
workers (gunicorn ``gthread``, waitress) are safe. A request is driven synchronously
in the server's thread: ``def`` handlers and hooks run inline, and the dispatch moves
onto the thread's event loop only when it reaches an ``async def`` handler or hook.

WebSocket: under gunicorn's ``sync`` and ``gthread`` workers the adapter takes over
the connection's socket (``environ['gunicorn.socket']``) for the session, which runs
on the thread's event loop and occupies that worker thread until it ends. Under
uWSGI the session runs on the request's connection the same way
(:mod:`microdot.wsgi_uwsgi`). Servers that expose no socket (waitress, wsgiref)
answer WebSocket handshakes with ``501``.
SSE and other streamed bodies go to the server chunk by chunk, as they are produced.
"""
from __future__ import annotations

import asyncio
import atexit
import errno
import logging
import os
import select
import signal
import socket
import ssl
import sys
import threading
import types
from typing import (TYPE_CHECKING, Any, Callable, Dict, FrozenSet, Iterable, Iterator, List,
                    Optional, Tuple)
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
    from microdot import *  # noqa: F401,F403  (re-exported, as Microdot's wsgi module does)
from microdot import Microdot as BaseMicrodot
from microdot.app import SWITCH_TO_LOOP
from microdot.http11 import check_fields, reason_phrase
from microdot.requests import Request
from microdot.structures import NoCaseDict
from microdot.responses import (Response, _LimitedReader,  # pyright: ignore[reportPrivateUsage]
                                close_body, internal_error,
                                one_step_type_field)
from microdot.streams import BodyStream
from microdot.shutdown import (SENT as _SENT, SERVING as _SERVING, ServerShutdown,
                               current_request as _current_request,
                               stop_server_on_shutdown)
from microdot import ws_protocol as wsp
from microdot.typedefs import StartResponse, WSGIEnviron
# Microdot 2.x's wsgi module offers these too (``from microdot.wsgi import with_websocket``)
from microdot.websocket import (FramedTransport, WebSocket, websocket_upgrade,  # noqa: F401
                                with_websocket)

MICRODOT_PLUGIN_API = 1

__all__ = ['wsgi_adapter', 'WSGIAdapter', 'WebSocket', 'websocket_upgrade', 'with_websocket']
__all__ += _microdot.__all__  # the core's names, re-exported

logger = logging.getLogger('microdot.wsgi')

#: Hop-by-hop headers an application must not set (PEP 3333); the server frames.
HOP_BY_HOP = frozenset(('connection', 'keep-alive', 'proxy-authenticate',
                        'proxy-authorization', 'te', 'trailer', 'trailers',
                        'transfer-encoding', 'upgrade'))
_SAFE_PATH = "/:@!$&'()*+,;=~"


@types.coroutine
def _resume(coro: Any) -> Any:
    """Continue ``coro`` (stopped at SWITCH_TO_LOOP) inside a real event-loop task."""
    return (yield from coro)  # pyright: ignore[reportUnknownVariableType]


class _LoopHolder:
    """Owns one thread's event loop; dropped with the thread's local data, it closes
    the loop, so threads that come and go do not leak loops."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        loop = self.loop
        if not loop.is_closed() and not loop.is_running():
            loop.close()


class WSGIRequest(Request):
    """A ``Request`` made by :class:`WSGIAdapter`.

    It is served in the server's thread: ``def`` handlers and hooks run inline, and
    the dispatch moves onto the thread's event loop at its first ``async def`` one.
    """

    inline_sync = True
    on_loop = False
    #: The WSGI environment the request came from.
    environ: WSGIEnviron


#: ``SERVER_PROTOCOL`` -> ``Request.http_version``, for the usual ones.
_VERSIONS: Dict[Optional[str], str] = {'HTTP/1.1': '1.1', 'HTTP/1.0': '1.0', 'HTTP/2': '2',
                                       'HTTP/2.0': '2.0'}


class WSGIAdapter:
    """A WSGI callable serving a ``microdot.Microdot`` application.

    Args:
        app: The application.
    """

    #: The process whose shutdown hooks ran (they run once per process).
    _stopped_pid: Optional[int] = None

    def __init__(self, app: Any) -> None:
        self.app = app
        self._local = threading.local()
        self._started_pid: Optional[int] = None
        #: True once this process ran the startup hooks; reset in forked children
        self._started = False
        if hasattr(os, 'register_at_fork'):
            os.register_at_fork(after_in_child=self._forked)
        self._start_lock = threading.Lock()

    # -- per-thread event loop ------------------------------------------------------

    def loop(self) -> asyncio.AbstractEventLoop:
        """This thread's own event loop.

        Returns:
            The loop, created on first use and closed when the thread ends.
        """
        holder = getattr(self._local, 'holder', None)
        if holder is None or holder.loop.is_closed():
            holder = self._local.holder = _LoopHolder()
        return holder.loop

    def drive(self, coro: Any) -> Any:
        """Run a dispatch coroutine.

        It runs synchronously while it needs no event loop, then on this thread's
        loop from the first ``async def`` callable on.

        Args:
            coro: The coroutine.

        Returns:
            Its result.
        """
        try:
            value = coro.send(None)
        except StopIteration as exc:
            return exc.value
        return self._on_loop(coro, value)

    def _on_loop(self, coro: Any, value: Any) -> Any:
        """Continue ``coro``, which awaited ``value`` (``SWITCH_TO_LOOP``), on this
        thread's event loop; its result."""
        if value is not SWITCH_TO_LOOP:  # pragma: no cover - defensive
            coro.throw(RuntimeError('dispatch awaited %r outside an event loop' % (value,)))

        async def on_loop() -> Any:
            return await _resume(coro)

        return self.loop().run_until_complete(on_loop())

    #: :meth:`drive`'s former name (``microdot.wsgi.Microdot.run`` is the application's
    #: own ``run()``, which serves it on the built-in server).
    run = drive

    # -- lifecycle ------------------------------------------------------------------

    def _ensure_started(self) -> None:
        """Run the startup hooks once per process (each gunicorn worker), before its
        first request; the shutdown hooks run when the process exits."""
        pid = os.getpid()
        if self._started_pid == pid:
            return
        with self._start_lock:
            if self._started_pid == pid:
                return
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self.app.run_startup())
            finally:
                loop.close()
            self._started_pid = pid
            self._started = True
            atexit.register(self._run_shutdown, pid)
            import multiprocessing
            if multiprocessing.parent_process() is not None:
                # a multiprocessing worker (Granian's) ends with os._exit(), which
                # skips atexit: multiprocessing's own finalizers run there
                from multiprocessing.util import Finalize
                Finalize(self, self._run_shutdown, args=(pid,), exitpriority=10)

    def _forked(self) -> None:
        self._started = False

    def _run_shutdown(self, pid: int) -> None:
        if os.getpid() != pid or self._stopped_pid == pid:
            return
        self._stopped_pid = pid
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.app.run_shutdown())
        except Exception:
            logger.exception('Shutdown hook failed')
        finally:
            loop.close()

    # -- requests -------------------------------------------------------------------

    def make_request(self, environ: WSGIEnviron) -> Request:
        """Translate a WSGI environ into a ``Request``.

        Args:
            environ: The WSGI environment.

        Returns:
            The request; its headers are only built if the application reads them.
        """
        path = environ.get('PATH_INFO') or '/'
        # PEP 3333 strings are latin-1 decoded bytes: back to bytes, quoted, so the
        # request decodes them once, as UTF-8, the same as on every other server
        if not path.isascii() or '%' in path or '?' in path or '#' in path or ' ' in path:
            path = quote(path.encode('latin-1'), safe=_SAFE_PATH)
        query = environ.get('QUERY_STRING')
        url = path + '?' + query if query else path
        addr = environ.get('REMOTE_ADDR')
        client: Optional[Tuple[str, int]] = None
        if addr:
            port = environ.get('REMOTE_PORT')
            client = (addr, int(port) if port and port.isdigit() else 0)
        protocol = environ.get('SERVER_PROTOCOL')
        # (positional arguments: this runs for every request)
        req = WSGIRequest(self.app, client, environ.get('REQUEST_METHOD', 'GET'), url,
                          _VERSIONS.get(protocol) or
                          (protocol or 'HTTP/1.1').partition('/')[2] or '1.1',
                          None, None, None, None, '', None, environ.get('wsgi.url_scheme'))
        req.header_source = (headers_from_environ, environ)  # built if the app reads it
        req.environ = environ
        script_name = environ.get('SCRIPT_NAME')
        if script_name:
            req.root_path = script_name.rstrip('/')
        clen = environ.get('CONTENT_LENGTH')
        declared = int(clen) if clen and clen.isdigit() else None
        # a body without Content-Length is read to its end only when the server says
        # it ends the input (wsgi.input_terminated) and the request is chunked
        if declared or (declared is None and 'HTTP_TRANSFER_ENCODING' in environ
                        and environ.get('wsgi.input_terminated')):
            if declared:
                req.content_length = declared
            stream = environ.get('wsgi.input')
            if stream is not None:
                remaining = [declared]

                async def receive() -> bytes:
                    left = remaining[0]
                    if left is None:
                        return stream.read(65536)  # type: ignore[no-any-return]
                    if left <= 0:
                        return b''
                    data = stream.read(min(65536, left))
                    remaining[0] = left - len(data) if data else 0
                    return data  # type: ignore[no-any-return]

                req._stream = BodyStream(receive, limit=req.max_content_length  # pyright: ignore[reportPrivateUsage]
                                         if declared is None else declared)
                return req
        req._body = b''  # pyright: ignore[reportPrivateUsage]
        return req

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse
                 ) -> Iterable[bytes]:
        """The WSGI callable: serve one request.

        The startup hooks run before the first request of each process.

        Args:
            environ: The WSGI environment.
            start_response: The server's ``start_response``.

        Returns:
            The response body, as an iterable of bytes.
        """
        if not self._started:
            self._ensure_started()
        clen = environ.get('CONTENT_LENGTH')
        if clen and not clen.isdigit():
            start_response('400 Bad Request', [('Content-Type', 'text/plain; charset=UTF-8'),
                                               ('Content-Length', '11')])
            return [b'Bad request']
        state = [_SERVING]  # see _current_request
        _current_request.set(state)  # this thread's context, and its loop's tasks
        req = self.make_request(environ)
        if 'HTTP_UPGRADE' in environ:
            body = self._upgrade(req, environ, start_response)
        else:
            if req._stream is not None:  # pyright: ignore[reportPrivateUsage]
                self.drive(req._read_body())  # pyright: ignore[reportPrivateUsage]
            coro = self.app.dispatch_request(req)
            try:  # (drive(coro), inline: this runs for every request)
                value = coro.send(None)
            except StopIteration as exc:
                res = exc.value
            else:
                res = self._on_loop(coro, value)
            ctype = one_step_type_field(res)
            status_line = _STATUS_LINES.get(res.status_code) \
                if ctype is not None and res.reason is None else None
            if ctype is not None and status_line is not None:
                # the common case, in one step
                headers = [ctype, ('Content-Length', str(len(res.body)))]
                if res._fields is not None or res._cookies is not None:
                    headers = _checked_fields(res) + headers
                start_response(status_line, headers)
                body = [res.body]
            else:
                body = self.respond(req, res, environ, start_response)
        if state[0]:  # app.shutdown() was called for this request
            body = _ThenShutdown(body)
        state[0] = _SENT
        return body

    def _upgrade(self, req: Request, environ: WSGIEnviron,
                 start_response: StartResponse) -> Iterable[bytes]:
        """Dispatch a request that asks for a protocol upgrade: a WebSocket route
        takes the connection over (see :class:`SocketTakeover`)."""
        if 'uwsgi.version' in environ:
            from microdot.wsgi_uwsgi import UwsgiTakeover
            takeover: SocketTakeover = UwsgiTakeover(environ, start_response)
        else:
            takeover = SocketTakeover(environ, start_response)
        req.websocket_transport = takeover  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
        try:
            if req._stream is not None:  # pyright: ignore[reportPrivateUsage]
                self.drive(req._read_body())  # pyright: ignore[reportPrivateUsage]
            res = self.drive(self.app.dispatch_request(req))
        except BaseException:
            if takeover.claimed:  # e.g. gunicorn's worker timeout (SystemExit)
                takeover.release(wsp.CLOSE_GOING_AWAY)
            raise
        if not takeover.claimed:
            return self.respond(req, res, environ, start_response)
        takeover.release(wsp.CLOSE_INTERNAL_ERROR if res.status_code >= 500
                         else wsp.CLOSE_NORMAL)
        close_body(res.body)
        return []  # the 101 head and the frames went out on the socket directly

    def respond(self, req: Request, res: Response, environ: WSGIEnviron,
                start_response: StartResponse) -> Iterable[bytes]:
        """Start the WSGI response and return its body iterable.

        Args:
            req: The request.
            res: The response to send.
            environ: The WSGI environment.
            start_response: The server's ``start_response``.

        Returns:
            The body: a list for a body in memory, the server's file wrapper for a
            file, else an iterable streaming it.
        """
        try:
            res.complete()
            headers = [(name, value) for name, value in res.header_items()
                       if name.lower() not in HOP_BY_HOP]
            check_fields(headers)
        except (ValueError, TypeError):
            logger.exception('Invalid response header for %s %s', req.method, req.path)
            close_body(res.body)
            res = internal_error()
            headers = res.header_items()
        status = res.status_code
        start_response('%d %s' % (status, res.reason_phrase()), headers)
        body = res.body
        if req.method == 'HEAD' or status in (204, 304) or status < 200:
            close_body(body)
            return []
        if isinstance(body, bytes):
            return [body]
        wrapper = environ.get('wsgi.file_wrapper')
        if wrapper is not None and res.file_info is not None and \
                not isinstance(body, _LimitedReader) and hasattr(body, 'fileno'):
            return wrapper(body, res.send_file_buffer_size)  # type: ignore[no-any-return]
        sock = environ.get('gunicorn.socket')
        if sock is not None and not req.http_version.startswith('1'):
            sock = None  # HTTP/2: the socket carries other streams too
        return _BodyIterable(self, res, sock)


#: Status lines of the statuses that have a body (the one-step path of ``respond``).
_STATUS_LINES = {status: '%d %s' % (status, reason_phrase(status))
                 for status in (200, 201, 202, 203, 206, 207, 400, 401, 403, 404, 405,
                                409, 410, 413, 415, 422, 429, 500, 502, 503)}


def _checked_fields(res: Response) -> List[Tuple[str, str]]:
    """The fields of ``res`` checked when they were set (see
    ``microdot.responses.one_step_type_field``), as WSGI headers."""
    fields = res._fields  # pyright: ignore[reportPrivateUsage]
    headers = list(fields.items()) if fields else []
    cookies = res._cookies  # pyright: ignore[reportPrivateUsage]
    if cookies is not None:
        headers += [('Set-Cookie', value) for value in cookies]
    return headers


def headers_from_environ(environ: WSGIEnviron) -> NoCaseDict[str]:
    """The request headers of a WSGI environ (``HTTP_*``, ``CONTENT_TYPE``/``_LENGTH``).

    Args:
        environ: The WSGI environment.

    Returns:
        The headers, with case-insensitive names.
    """
    headers: NoCaseDict[str] = NoCaseDict()
    keymap = headers.keymap
    names = _HEADER_NAMES
    for key, value in environ.items():  # environ keys are unique: no repeats
        name = names.get(key)
        if name is None:
            name = _header_name(key)
        if name:
            keymap[name[1]] = name[0]
            dict.__setitem__(headers, name[0], value)  # pyright: ignore[reportUnknownMemberType]
    ctype = environ.get('CONTENT_TYPE')
    if ctype:
        keymap['content-type'] = 'Content-Type'
        dict.__setitem__(headers, 'Content-Type', ctype)  # pyright: ignore[reportUnknownMemberType]
    clen = environ.get('CONTENT_LENGTH')
    if clen:
        keymap['content-length'] = 'Content-Length'
        dict.__setitem__(headers, 'Content-Length', clen)  # pyright: ignore[reportUnknownMemberType]
    return headers


#: environ key -> (header name, lower-case name), or () for keys that are not headers
_HEADER_NAMES: Dict[str, Tuple[str, ...]] = {}


def _header_name(key: str) -> Tuple[str, ...]:
    """The header name for an environ key (``HTTP_X_FOO`` -> ``X-Foo``), or ()."""
    name: Tuple[str, ...] = ()
    if key.startswith('HTTP_'):
        text = key[5:].replace('_', '-').title()
        name = (text, text.lower())
    if len(_HEADER_NAMES) < 2048:
        _HEADER_NAMES[key] = name
    return name


#: poll() event for "the peer closed its end", even with data left unread (Linux).
_POLLRDHUP: int = getattr(select, 'POLLRDHUP', 0)
#: Seconds between two hang-up checks of a socket with unread data.
_HANGUP_POLL = 0.25


def _hung_up(fd: int) -> bool:
    """Whether the peer of socket ``fd`` closed or reset the connection, even if data
    it sent before is still unread (``POLLRDHUP``; False where it is unknown)."""
    if not _POLLRDHUP:  # pragma: no cover - not Linux
        return False
    poller = select.poll()
    poller.register(fd, _POLLRDHUP)
    return any(events & (_POLLRDHUP | select.POLLHUP | select.POLLERR)
               for _, events in poller.poll(0))


class _BodyIterable:
    """A streamed response body; ``close()`` stops the application's generator.

    Under gunicorn (``environ['gunicorn.socket']``, HTTP/1.x) it also watches the
    client's socket while it waits for the next chunk: a client that closes or resets
    the connection stops the body at once, even while the body is idle between
    chunks (a failed write already stops it: gunicorn then calls ``close()``), and
    the response ends with ``ECONNRESET``, which gunicorn takes quietly.
    """

    def __init__(self, adapter: WSGIAdapter, res: Response,
                 sock: Optional[socket.socket] = None) -> None:
        self.adapter = adapter
        self.body = res.body
        self.iterator = res.body_iter()
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        #: The client's socket, while it is watched (``None``: not watched).
        self.sock = sock
        self.fd = -1
        if sock is not None:
            try:
                self.fd = sock.fileno()
            except OSError:  # pragma: no cover - closed already
                self.sock = None
        #: Set when the client was seen leaving.
        self.gone = False
        #: The client sent data the server has not read: watched with ``_hung_up``.
        self.unread = False
        self.check_timer: Optional[asyncio.TimerHandle] = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        loop = self.loop
        if loop is None:
            loop = self.loop = self.adapter.loop()
        if self.sock is None:
            try:
                return loop.run_until_complete(self.iterator.__anext__())
            except StopAsyncIteration:
                raise StopIteration from None
        if self.gone:
            raise ConnectionResetError(errno.ECONNRESET, 'the client went away')
        task = asyncio.ensure_future(self.iterator.__anext__(), loop=loop)
        fd = self.fd
        if self.unread:
            self.check_timer = loop.call_later(_HANGUP_POLL, self._check_hangup, task)
        else:
            loop.add_reader(fd, self._client_readable, task)
        try:
            return loop.run_until_complete(task)
        except StopAsyncIteration:
            raise StopIteration from None
        except asyncio.CancelledError:
            if self.gone:  # the body ran its cleanup; gunicorn drops the connection
                raise ConnectionResetError(errno.ECONNRESET, 'the client went away'
                                           ) from None
            raise
        except BaseException:
            # e.g. gunicorn's worker timeout (SystemExit) while the body waited: stop it
            # here, or close() would find it still running
            if not task.done():
                task.cancel()
                loop.run_until_complete(asyncio.wait({task}))
            raise
        finally:
            loop.remove_reader(fd)
            if self.check_timer is not None:
                self.check_timer.cancel()
                self.check_timer = None

    def _client_readable(self, task: 'asyncio.Future[bytes]') -> None:
        """The client's socket is readable while a chunk is awaited: stop the body if
        the client closed or reset the connection. Data from the client (a pipelined
        request, a TLS alert) is left for the server; from then on the socket is
        checked for a hang-up every ``_HANGUP_POLL`` seconds instead (where the system
        can tell, see ``_hung_up``), or no longer watched."""
        sock = self.sock
        if sock is None:  # pragma: no cover - no longer watched
            return
        try:
            if type(sock) is socket.socket:
                data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            else:  # TLS: look at the TCP stream under it
                with socket.socket(sock.family, sock.type, sock.proto,
                                   fileno=os.dup(self.fd)) as raw:
                    data = raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset
            data = b''
        assert self.loop is not None
        self.loop.remove_reader(self.fd)
        if not data:
            self._stop(task)
        elif _POLLRDHUP:
            self.unread = True
            self._check_hangup(task)
        else:
            self.sock = None

    def _check_hangup(self, task: 'asyncio.Future[bytes]') -> None:
        """With unread data on the socket: stop the body if the client has hung up
        since, else check again in ``_HANGUP_POLL`` seconds."""
        self.check_timer = None
        if _hung_up(self.fd):
            self._stop(task)
        elif not task.done():
            assert self.loop is not None
            self.check_timer = self.loop.call_later(_HANGUP_POLL, self._check_hangup, task)

    def _stop(self, task: 'asyncio.Future[bytes]') -> None:
        """The client went away: cancel the wait for the next chunk."""
        self.gone = True
        task.cancel()

    def close(self) -> None:
        loop = self.loop or self.adapter.loop()
        try:
            loop.run_until_complete(self.iterator.aclose())
        except Exception:  # pragma: no cover - logged, the response is over anyway
            logger.exception('Error while closing a response body')


def server_master_pid() -> int:
    """The process to signal to stop the whole WSGI server this process serves for:
    gunicorn's arbiter (this worker's parent) in a gunicorn worker, under uWSGI the
    process :func:`microdot.wsgi_uwsgi.master_pid` names, else this process (waitress,
    wsgiref and other single-process servers). Never the process group: it
    can hold the shell or supervisor that started the server."""
    if 'uwsgi' in sys.modules:  # inside uWSGI
        from microdot.wsgi_uwsgi import master_pid
        return master_pid()
    ppid = os.getppid()
    if ppid > 1 and os.environ.get('SERVER_SOFTWARE', '').startswith('gunicorn/') and \
            'gunicorn.workers.base' in sys.modules:
        return ppid
    return os.getpid()


class _ServerShutdown(ServerShutdown):
    """``app.shutdown()`` stops the server's main process (:func:`server_master_pid`)."""

    logger = logger

    def master_pid(self) -> int:
        return server_master_pid()


_server_shutdown = _ServerShutdown()


class _ThenShutdown:
    """The body of the response to the request that called ``app.shutdown()``: the
    server calls ``close()`` once it has written the body, and the signal goes then."""

    def __init__(self, body: Iterable[bytes]) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, 'close', None)
            if close is not None:
                close()
        finally:
            _server_shutdown.fire()


# -- WebSocket over a socket taken from the server ---------------------------------------

_READ_BLOCKED = (BlockingIOError, InterruptedError, ssl.SSLWantReadError)
_WRITE_BLOCKED = (BlockingIOError, InterruptedError, ssl.SSLWantWriteError)
#: What the gunicorn response object (``start_response.__self__``) must offer.
_GUNICORN_RESPONSE_API = ('headers_sent', 'chunked', 'force_close')


def _wake_up(waiter: 'asyncio.Future[None]') -> None:
    """Reader/writer callback: the socket is ready."""
    if not waiter.done():
        waiter.set_result(None)


class SocketStream:
    """Async reader/writer for :class:`FramedTransport` over a non-blocking server socket
    (plain or TLS), waiting on the thread's loop so one task can send while another reads."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.closed = False
        #: True while a write is under way (a frame may be half sent).
        self.writing = False
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    async def _ready(self, writable: bool) -> None:
        """Wait until the socket is readable (or writable)."""
        loop = self._loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        if writable:
            loop.add_writer(self.fd, _wake_up, waiter)
        else:
            loop.add_reader(self.fd, _wake_up, waiter)
        try:
            await waiter
        finally:
            if writable:
                loop.remove_writer(self.fd)
            else:
                loop.remove_reader(self.fd)

    async def read(self, n: Optional[int] = -1) -> bytes:
        """Read up to ``n`` bytes.

        Args:
            n: The most bytes to read (64 KiB when ``n`` < 0 or ``None``).

        Returns:
            The bytes; ``b''`` at the end of the stream.
        """
        size = n if n is not None and n >= 0 else 65536
        while True:
            try:
                return self.sock.recv(size)
            except _READ_BLOCKED:
                await self._ready(False)
            except ssl.SSLWantWriteError:  # TLS renegotiation
                await self._ready(True)

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; raises ``asyncio.IncompleteReadError`` at end of stream."""
        data = b''
        while len(data) < n:
            chunk = await self.read(n - len(data))
            if not chunk:
                raise asyncio.IncompleteReadError(data, n)
            data += chunk
        return data

    async def awrite(self, data: bytes) -> None:
        """Send all of ``data``."""
        if self.closed:
            raise BrokenPipeError('the WebSocket connection is closed')
        view = memoryview(data)
        self.writing = True
        try:
            while view:
                try:
                    sent = self.sock.send(view)
                except _WRITE_BLOCKED:
                    await self._ready(True)
                    continue
                except ssl.SSLWantReadError:  # TLS renegotiation
                    await self._ready(False)
                    continue
                view = view[sent:]
        finally:
            self.writing = False

    def send_now(self, data: bytes) -> None:
        """Best-effort send without waiting (a last Close frame); errors are ignored."""
        if self.closed or self.writing:
            return
        try:
            self.sock.send(data)
        except OSError:
            pass

    async def aclose(self) -> None:
        """End the session: half-close, so the server's FIN goes first (RFC 6455
        section 7.1.1); the server drains and closes the socket after the request."""
        self.close()

    def close(self) -> None:
        """Half-close once (see :meth:`aclose`)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:  # already gone
            pass

    def detach(self) -> None:
        """Forget the socket in the event loop (waits abandoned by an interrupted
        session), so a later socket reusing the descriptor is not confused with it."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self.fd)
            loop.remove_writer(self.fd)


class SocketTakeover:
    """``request.websocket_transport`` factory running a WebSocket on gunicorn's
    ``environ['gunicorn.socket']``; servers without one get ``501`` (see README)."""

    def __init__(self, environ: Dict[str, Any], start_response: Callable[..., Any]) -> None:
        self.environ = environ
        self.start_response = start_response
        self.claimed = False
        self.stream: Optional[SocketStream] = None
        self.transport: Optional[FramedTransport] = None
        self._timeout: Optional[float] = None

    def _gunicorn_response(self) -> Any:
        """gunicorn's response object, if this is gunicorn and it can be taken over."""
        response = getattr(self.start_response, '__self__', None)
        if all(hasattr(response, name) for name in _GUNICORN_RESPONSE_API):
            return response
        return None

    def __call__(self, request: Request, subprotocols: Optional[List[str]] = None
                 ) -> FramedTransport:
        """Validate the handshake, then claim the connection: gunicorn's response is
        marked sent (we write the 101), unframed and closing, so it adds nothing."""
        accept, chosen = wsp.check_handshake(request.method, request.http_version,
                                             request.headers.get, subprotocols or ())
        sock = self.environ.get('gunicorn.socket')
        response = self._gunicorn_response() if sock is not None else None
        if response is None:
            server = self.environ.get('SERVER_SOFTWARE') or 'this WSGI server'
            logger.warning('WebSocket request for %s refused with 501: %s exposes no '
                           'socket to take over; serve WebSocket routes with gunicorn '
                           '(sync or gthread workers), uWSGI or an ASGI server',
                           request.path, server)
            raise wsp.HandshakeError(
                501, 'WebSocket is not available on %s: this WSGI server exposes no '
                'socket that can be taken over; run the application with gunicorn '
                '(sync or gthread workers), uWSGI (--http-websockets) or under an ASGI '
                'server such as uvicorn' % server)
        self.start_response('101 Switching Protocols',
                            wsp.handshake_response_headers(accept, chosen))
        response.headers_sent = True  # FramedTransport.accept() writes the head
        response.chunked = False      # WebSocket frames follow, not an HTTP body
        response.force_close()        # never back to HTTP keep-alive
        assert sock is not None  # (there is a gunicorn response only with a socket)
        self.claimed = True
        self._timeout = sock.gettimeout()
        sock.setblocking(False)
        self.stream = SocketStream(sock)
        self.transport = FramedTransport(self.stream, self.stream, accept_key=accept)
        return self.transport

    def release(self, code: int = wsp.CLOSE_NORMAL) -> None:
        """Give the socket back (blocking again); a session left open (worker timeout,
        failed ``websocket_upgrade`` handler) gets a last Close ``code`` if safe."""
        stream, transport = self.stream, self.transport
        if stream is None or transport is None:
            return
        if not transport.closed:
            reason = 'server going away' if code == wsp.CLOSE_GOING_AWAY else ''
            try:
                frame = transport.conn.close(code, reason)
            except Exception:  # pragma: no cover - codec state already closed
                frame = b''
            if frame:
                stream.send_now(frame)
            stream.close()
            stream.detach()
        try:
            stream.sock.settimeout(self._timeout)
        except OSError:  # pragma: no cover - closed already
            pass


def wsgi_adapter(app: Any) -> WSGIAdapter:
    """Wrap a plain ``microdot.Microdot`` application as a WSGI callable.

    The application's ``shutdown()`` then stops this server as well (as it does for
    ``microdot.wsgi.Microdot``), whenever the built-in server is not running it.

    Args:
        app: The application (a ``microdot.wsgi.Microdot`` is returned its own
            adapter).

    Returns:
        The WSGI callable serving ``app``.
    """
    if isinstance(app, Microdot):
        return app._wsgi  # pyright: ignore[reportPrivateUsage]
    stop_server_on_shutdown(app, _server_shutdown, 'stops_wsgi_server')
    return WSGIAdapter(app)


class Microdot(BaseMicrodot, WSGIAdapter):
    """A Microdot application that is also a WSGI callable.

    It is its own :class:`WSGIAdapter`: a request costs one call less. Its ``run()`` is
    the application's (the built-in server); the adapter's is :meth:`WSGIAdapter.drive`.
    """

    def __init__(self) -> None:
        super().__init__()
        WSGIAdapter.__init__(self, self)
        self._wsgi = self

    run = BaseMicrodot.run  # type: ignore[assignment]  # (WSGIAdapter.run is drive)
    # a WSGI callable only (the core's class also takes ASGI calls)
    __call__ = WSGIAdapter.__call__  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]

    def shutdown(self) -> None:
        """Stop serving: the built-in server if running, else the whole WSGI server.

        Under gunicorn the arbiter gets SIGTERM, so gunicorn stops gracefully with all
        its workers; elsewhere this process does (see :func:`server_master_pid`; never
        the process group). Called while a request is dispatched, the signal goes once
        the server has sent that request's response (or after
        ``_ServerShutdown.grace`` seconds if it never finishes).
        """
        if self.server is not None:
            super().shutdown()
        else:
            _server_shutdown.request()


# -- servers (entry points of the microdot.servers group) -------------------------------

def _missing(server: str) -> ImportError:
    return ImportError("the '%s' server needs microdot-wsgi[%s]: pip install "
                       "'microdot-wsgi[%s]'" % (server, server, server))


def _as_wsgi(app: Any) -> Any:
    if isinstance(app, str):
        from microdot.cli import load_app
        app = load_app(app)
    return app if isinstance(app, Microdot) else wsgi_adapter(app)


class GunicornServer:
    """Runs an application with gunicorn (``--server gunicorn``)."""

    MICRODOT_PLUGIN_API = 1
    name = 'gunicorn'
    options: FrozenSet[str] = frozenset({'workers', 'threads', 'worker_class', 'reload'})

    def run(self, app: Any, host: str = '127.0.0.1', port: int = 5000, **options: Any) -> None:
        try:
            from gunicorn.app.base import BaseApplication
        except ImportError:
            raise _missing('gunicorn') from None
        bind = '[%s]:%d' % (host, port) if ':' in host else '%s:%d' % (host, port)
        settings = dict(options, bind=bind)
        target = app

        class _Application(BaseApplication):  # type: ignore[misc]
            def load_config(self) -> None:
                for key, value in settings.items():
                    if value is not None:
                        self.cfg.set(key.lower(), value)

            def load(self) -> Any:
                return _as_wsgi(target)

        _Application().run()


class WsgirefServer:
    """The standard library's single-threaded development server (``--server wsgiref``)."""

    MICRODOT_PLUGIN_API = 1
    name = 'wsgiref'
    options: FrozenSet[str] = frozenset()

    def run(self, app: Any, host: str = '127.0.0.1', port: int = 5000, **options: Any) -> None:
        from wsgiref.simple_server import make_server
        httpd = make_server(host, port, _as_wsgi(app))
        signal.signal(signal.SIGTERM, lambda *a: threading.Thread(  # pyright: ignore[reportUnknownArgumentType, reportUnknownLambdaType]
            target=httpd.shutdown, daemon=True).start())
        logger.info('Serving on http://%s:%d (wsgiref, for development only)', host, port)
        try:
            httpd.serve_forever()
        finally:
            httpd.server_close()


class WaitressServer:
    """Runs an application with waitress (``--server waitress``)."""

    MICRODOT_PLUGIN_API = 1
    name = 'waitress'
    options: FrozenSet[str] = frozenset({'threads'})

    def run(self, app: Any, host: str = '127.0.0.1', port: int = 5000, **options: Any) -> None:
        try:
            import waitress
        except ImportError:
            raise _missing('waitress') from None
        waitress.serve(_as_wsgi(app), host=host, port=port, **options)


gunicorn_server = GunicornServer()
wsgiref_server = WsgirefServer()
waitress_server = WaitressServer()

if 'granian' in sys.modules:  # a Granian worker: make it stop on the first signal
    from microdot import wsgi_granian  # noqa: E402,F401  (see its documentation)  # pyright: ignore[reportUnusedImport]
