"""WebSocket and ``app.shutdown()`` for Microdot applications running inside uWSGI.

:mod:`microdot.wsgi` uses this module when the WSGI environ says uWSGI serves the
request (``environ['uwsgi.version']``); it needs the ``uwsgi`` module, which only
exists inside a uWSGI process.

WebSocket: uWSGI completes the opening handshake through its own response machinery
(``start_response('101 Switching Protocols', ...)`` and an empty ``write``, so its
request log, ``--add-header`` and response routes see the answer), and the session
then runs on the connection's socket (``uwsgi.connection_fd()``) through the same
codec, :class:`~microdot.websocket.FramedTransport`, as under gunicorn and the
built-in server: close codes and reasons, ping/pong, fragmentation, UTF-8 checks and
``max_message_length`` behave the same on every server. uWSGI's own frame API
(``uwsgi.websocket_recv``/``websocket_send``) is not used for the session: it hands
text and binary messages alike over as bytes, answers pings with an empty pong,
answers a Close with a bare Close (no code), ignores reserved bits and opcodes, checks
its size limit (``--websockets-max-size``) per frame instead of per message, and keeps
a fragmented message's parts in one buffer per process, shared by the worker's
threads. As with that API, the session pings the client every
``--websockets-ping-freq`` seconds (30 by default, 0: never), which keeps uWSGI's HTTP
router (``--http-timeout``, 60 s) and proxies from cutting a quiet session; unlike it,
a missing pong does not end the session.

Under uWSGI's HTTP router (``--http``) the router must be told to pass WebSocket
connections through (``--http-websockets``), else the client's frames never reach the
worker; the handshake is then refused with ``501`` saying so. A worker that
terminates TLS itself (``--https-socket``) cannot hand its socket over either (use
the ``--https`` router or a proxy in front). Each open WebSocket occupies one worker
thread (``--threads``) for as long as it lasts.
"""
from __future__ import annotations

import asyncio
import importlib
import logging
import os
import socket
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from microdot import ws_protocol as wsp
from microdot.requests import Request
from microdot.websocket import FramedTransport, WebSocketError
from microdot.wsgi import SocketStream, SocketTakeover

__all__ = ['UwsgiTakeover', 'UwsgiTransport', 'websocket_problem', 'ping_interval',
           'master_pid', 'load_application', 'APP_VARIABLE', 'SUPERVISOR_VARIABLE']

logger = logging.getLogger('microdot.wsgi')

#: Environment variable naming the application (``module:app``) that
#: ``microdot run --server uwsgi`` has uWSGI load (see :func:`load_application`).
APP_VARIABLE = 'MICRODOT_UWSGI_APP'
#: Environment variable holding the pid of the ``microdot run --server uwsgi``
#: process supervising uWSGI, whose SIGTERM stops it gracefully.
SUPERVISOR_VARIABLE = 'MICRODOT_UWSGI_SUPERVISOR'
#: Seconds between two pings when ``--websockets-ping-freq`` is not given (uWSGI's
#: own default).
DEFAULT_PING_INTERVAL = 30

Headers = List[Tuple[str, str]]


def _uwsgi() -> Any:
    """The ``uwsgi`` module of the running uWSGI process (it exists only there)."""
    return importlib.import_module('uwsgi')


def _option(name: str) -> Any:
    """A uWSGI option as given on its command line (``None`` if absent)."""
    return getattr(_uwsgi(), 'opt', {}).get(name)


def websocket_problem(environ: Dict[str, Any]) -> Optional[str]:
    """Why this uWSGI instance cannot carry a WebSocket for the request.

    Args:
        environ: The request's WSGI environment.

    Returns:
        The reason (a router that does not pass WebSockets through, or TLS
        terminated in the worker), or ``None`` if it can.
    """
    if _option('https-socket') is not None and environ.get('wsgi.url_scheme') == 'https':
        return ('uWSGI terminates TLS in the worker (--https-socket), so the connection '
                'cannot be handed over; put the --https router or a proxy in front')
    if (_option('http') is not None or _option('https') is not None) and \
            not _option('http-websockets'):
        return ("uWSGI's HTTP router does not pass WebSocket connections through "
                "unless started with --http-websockets")
    return None


class UwsgiTransport(FramedTransport):
    """A :class:`~microdot.websocket.FramedTransport` whose ``101`` answer uWSGI sends.

    It pings the client every ``ping_interval`` seconds while the session lasts, as
    uWSGI's own WebSocket API does, so that uWSGI's HTTP router (``--http-timeout``)
    and proxies do not take a quiet session for a dead one (see the module
    documentation).

    Args:
        stream: The connection's socket stream.
        send_head: Sends the ``101`` answer with the given headers through uWSGI.
        accept_key: The handshake's ``Sec-WebSocket-Accept`` value.
        ping_interval: Seconds between two pings (``None`` or 0: no pings).
    """

    def __init__(self, stream: SocketStream, send_head: Callable[[Headers], None],
                 accept_key: str, ping_interval: Optional[float] = None) -> None:
        super().__init__(stream, stream, accept_key=accept_key)
        self._send_head = send_head
        #: Seconds between two pings (``None`` or 0: no pings).
        self.ping_interval = ping_interval
        self._pinger: 'Optional[asyncio.Task[None]]' = None

    async def accept(self, subprotocol: Optional[str] = None,
                     headers: Sequence[Tuple[str, str]] = ()) -> None:
        """Have uWSGI send ``101 Switching Protocols``, then start the pings.

        Args:
            subprotocol: The subprotocol chosen, if any.
            headers: More response headers for the handshake.
        """
        assert self.accept_key is not None
        self._send_head(wsp.handshake_response_headers(self.accept_key, subprotocol)
                        + list(headers))
        if self.ping_interval:
            self._pinger = asyncio.ensure_future(self._ping_every(self.ping_interval))

    async def _ping_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if self.closed or self.conn.close_sent:
                return
            try:
                await self.ping(b'')
            except WebSocketError:
                return

    def stop_pinging(self) -> None:
        """Stop the pings (called once the session is over, outside the event loop)."""
        pinger, self._pinger = self._pinger, None
        if pinger is not None and not pinger.done():
            pinger.cancel()
            loop = pinger.get_loop()
            if not loop.is_running() and not loop.is_closed():
                loop.run_until_complete(asyncio.wait({pinger}))


def ping_interval() -> Optional[float]:
    """Seconds between the pings of a session: uWSGI's ``--websockets-ping-freq``.

    Returns:
        The interval (30 unless set), or ``None`` when it is 0: no pings.
    """
    value = _option('websockets-ping-freq')
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value.strip().isdigit():
        return float(value) or None
    return float(DEFAULT_PING_INTERVAL)


class UwsgiTakeover(SocketTakeover):
    """The ``request.websocket_transport`` factory of WebSocket sessions under uWSGI.

    The session runs on the socket of the uWSGI request (``uwsgi.connection_fd()``).

    Args:
        environ: The request's WSGI environment.
        start_response: The server's ``start_response``.
    """

    def __init__(self, environ: Dict[str, Any], start_response: Callable[..., Any]) -> None:
        super().__init__(environ, start_response)
        self._sock: Optional[socket.socket] = None

    def __call__(self, request: Request, subprotocols: Optional[List[str]] = None
                 ) -> FramedTransport:
        """Validate the handshake and prepare the session.

        The answer goes out in ``accept()``.

        Args:
            request: The handshake's request.
            subprotocols: The subprotocols the route accepts.

        Returns:
            The session's transport.

        Raises:
            microdot.ws_protocol.HandshakeError: An invalid handshake, or ``501``
                where uWSGI cannot carry the session.
        """
        accept, _ = wsp.check_handshake(request.method, request.http_version,
                                        request.headers.get, subprotocols or ())
        problem = websocket_problem(self.environ)
        if problem is not None:
            logger.warning('WebSocket request for %s refused with 501: %s', request.path,
                           problem)
            raise wsp.HandshakeError(501, 'WebSocket is not available: %s' % problem)
        # a socket object of our own (a duplicate descriptor) for the session; uWSGI
        # keeps, and closes, its own descriptor of the connection
        sock = self._sock = socket.socket(fileno=os.dup(_uwsgi().connection_fd()))
        self._timeout = sock.gettimeout()
        self.stream = SocketStream(sock)
        self.transport = UwsgiTransport(self.stream, self._send_head, accept,
                                        ping_interval())
        return self.transport

    def _send_head(self, headers: Headers) -> None:
        """Send the ``101`` answer through uWSGI, then switch the socket to
        non-blocking for the session."""
        write = self.start_response('101 Switching Protocols', headers)
        self.claimed = True  # from here on the connection is the session's
        write(b'')  # uWSGI sends the head at the first write
        assert self._sock is not None
        self._sock.setblocking(False)

    def release(self, code: int = wsp.CLOSE_NORMAL) -> None:
        """End the session and drop our descriptor of the connection.

        See :meth:`microdot.wsgi.SocketTakeover.release`.

        Args:
            code: The close code of a last Close frame, if the session is still open.
        """
        try:
            if isinstance(self.transport, UwsgiTransport):
                self.transport.stop_pinging()
            super().release(code)
        finally:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def master_pid() -> int:
    """The process whose SIGTERM stops this uWSGI instance.

    Returns:
        The ``microdot run --server uwsgi`` process supervising it (a graceful stop),
        else uWSGI's master (which stops on SIGTERM only when started with
        ``--die-on-term``), else this process.
    """
    supervisor = os.environ.get(SUPERVISOR_VARIABLE, '')
    if supervisor.isdigit():
        try:
            os.kill(int(supervisor), 0)
        except OSError:
            pass
        else:
            return int(supervisor)
    uwsgi = _uwsgi()
    master = uwsgi.masterpid() if hasattr(uwsgi, 'masterpid') else 0
    if not master:
        return os.getpid()
    if not _option('die-on-term'):
        logger.warning('uWSGI was started without --die-on-term: its master takes '
                       'SIGTERM as "reload", not "stop"')
    return int(master)


def load_application() -> Any:
    """The WSGI callable for the application named by :data:`APP_VARIABLE`.

    What ``microdot run --server uwsgi`` has uWSGI serve.

    Returns:
        The WSGI callable.

    Raises:
        RuntimeError: The variable is not set.
    """
    target = os.environ.get(APP_VARIABLE)
    if not target:
        raise RuntimeError('%s is not set: it names the application (MODULE:APP) for '
                           'uWSGI to serve; or run uWSGI on your module directly, e.g. '
                           'uwsgi --module app:app' % APP_VARIABLE)
    from microdot.wsgi import _as_wsgi  # pyright: ignore[reportPrivateUsage]
    return _as_wsgi(target)
