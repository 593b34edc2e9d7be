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
import signal
from typing import Any, Awaitable, Callable, Dict, List, Optional

from microdot import *  # noqa: F401,F403  (re-exported, as Microdot's asgi module does)
from microdot import __all__ as _core_all
from microdot import Microdot as BaseMicrodot
from microdot.requests import Request, headers_from_list
from microdot.responses import Response, close_body
from microdot.streams import BodyStream

MICRODOT_PLUGIN_API = 1

__all__ = list(_core_all) + ['asgi_adapter', 'ASGIAdapter']

logger = logging.getLogger('microdot.asgi')

Scope = Dict[str, Any]
Receive = Callable[[], Awaitable[Dict[str, Any]]]
Send = Callable[[Dict[str, Any]], Awaitable[None]]


class _Disconnected(Exception):
    """The client went away (``http.disconnect``)."""


class ASGIAdapter:
    """An ASGI 3 callable serving a ``microdot.Microdot`` application."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope['type']
        if kind == 'http':
            await self.http(scope, receive, send)
        elif kind == 'websocket':
            await self.websocket(scope, receive, send)
        elif kind == 'lifespan':
            await self.lifespan(scope, receive, send)
        else:
            raise ValueError('microdot.asgi does not handle ASGI scope type %r' % kind)

    # -- requests -------------------------------------------------------------------

    def make_request(self, scope: Scope, stream: Any) -> Request:
        """Translate an ASGI scope into a ``Request`` (latin-1 headers, root_path)."""
        root_path = scope.get('root_path', '') or ''
        raw_path = scope.get('raw_path')
        if raw_path:
            path = raw_path.decode('latin-1')
            if root_path and path.startswith(root_path):
                path = path[len(root_path):]
        else:
            from urllib.parse import quote
            path = scope['path']
            if root_path and path.startswith(root_path):
                path = path[len(root_path):]
            path = quote(path, safe="/:@!$&'()*+,;=~")
        path = path or '/'
        query = scope.get('query_string', b'')
        url = path + '?' + query.decode('latin-1') if query else path
        headers = headers_from_list((name.decode('latin-1'), value.decode('latin-1'))
                                    for name, value in scope.get('headers', ()))
        client = scope.get('client')
        req = Request(self.app, tuple(client) if client else None,
                      scope.get('method', 'GET'), url, scope.get('http_version', '1.1'),
                      headers, stream=stream, scheme=scope.get('scheme', 'http'))
        req.root_path = root_path.rstrip('/')
        req.asgi_scope = scope
        return req

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        disconnected = False

        async def receive_body() -> bytes:
            nonlocal disconnected, more
            if not more:
                return b''
            message = await receive()
            if message['type'] == 'http.disconnect':
                disconnected = True
                more = False
                raise _Disconnected()
            more = message.get('more_body', False)
            return message.get('body', b'')

        more = True
        req = self.make_request(scope, None)
        req._stream = BodyStream(receive_body, limit=req.max_content_length)
        try:
            await req._read_body()
        except _Disconnected:
            return
        res = await self.app.dispatch_request(req)
        if res is Response.already_handled:
            return
        await self.send_response(req, res, receive, send, lambda: more and not disconnected)

    async def send_response(self, req: Request, res: Response, receive: Receive,
                            send: Send, body_pending: Callable[[], bool]) -> None:
        """Send ``res``; a streamed body stops as soon as the client disconnects."""
        try:
            res.complete()
            headers = [(name.lower().encode('latin-1'), value.encode('latin-1'))
                       for name, value in res.header_items()
                       if _check_header(name, value)]
        except (ValueError, UnicodeEncodeError):
            logger.exception('Invalid response header for %s %s', req.method, req.path)
            close_body(res.body)
            res = Response('Internal server error', 500)
            res.complete()
            headers = [(n.lower().encode(), v.encode()) for n, v in res.header_items()]
        status = res.status_code
        body = res.body
        no_body = req.method == 'HEAD' or status in (204, 304) or status < 200
        await send({'type': 'http.response.start', 'status': status, 'headers': headers})
        if no_body:
            close_body(body)
            await send({'type': 'http.response.body', 'body': b''})
            return
        if isinstance(body, bytes):
            await send({'type': 'http.response.body', 'body': body})
            return
        await self._stream_body(res, receive, send, body_pending)

    async def _stream_body(self, res: Response, receive: Receive, send: Send,
                           body_pending: Callable[[], bool]) -> None:
        iterator = res.body_iter()

        async def pump() -> None:
            try:
                async for chunk in iterator:
                    await send({'type': 'http.response.body', 'body': chunk,
                                'more_body': True})
                await send({'type': 'http.response.body', 'body': b''})
            finally:
                await iterator.aclose()

        async def watch() -> None:
            while True:
                message = await receive()
                if message['type'] == 'http.disconnect':
                    return

        pump_task = asyncio.ensure_future(pump())
        watch_task = asyncio.ensure_future(watch())
        try:
            done, _ = await asyncio.wait({pump_task, watch_task},
                                         return_when=asyncio.FIRST_COMPLETED)
            if watch_task in done and not pump_task.done():
                pump_task.cancel()  # the client is gone: stop the generator now
            try:
                await pump_task
            except (asyncio.CancelledError, OSError):
                pass
            except Exception:
                logger.exception('Error while streaming a response')
        finally:
            watch_task.cancel()
            if not pump_task.done():
                pump_task.cancel()

    # -- websocket ------------------------------------------------------------------

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        from microdot.websocket_asgi import serve_websocket  # type: ignore  # noqa
        await serve_websocket(self, scope, receive, send)

    # -- lifespan -------------------------------------------------------------------

    async def lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the application's startup and shutdown hooks on the server's signals."""
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
                try:
                    await self.app.run_shutdown(scope)
                except Exception as exc:
                    logger.exception('Shutdown hook failed')
                    await send({'type': 'lifespan.shutdown.failed', 'message': repr(exc)})
                    return
                await send({'type': 'lifespan.shutdown.complete'})
                return


def _check_header(name: str, value: str) -> bool:
    if '\r' in value or '\n' in value or '\0' in value or not name or \
            any(c in name for c in ' \t\r\n:\0'):
        raise ValueError('invalid response header %r: %r' % (name, value))
    return True


def asgi_adapter(app: Any) -> ASGIAdapter:
    """Wrap a plain ``microdot.Microdot`` application as an ASGI 3 callable."""
    if isinstance(app, Microdot):
        return app._asgi
    return ASGIAdapter(app)


class Microdot(BaseMicrodot):
    """A Microdot application that is also an ASGI 3 callable.

    ``lifespan_startup`` and ``lifespan_shutdown`` run when the server sends the ASGI
    lifespan events (async or sync callables, taking the scope or nothing), after and
    before the hooks registered with ``on_startup`` / ``on_shutdown``.
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
        self._asgi = ASGIAdapter(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)

    def shutdown(self) -> None:
        """Stop serving: the built-in server if running, else ask this process's ASGI
        server to exit (SIGTERM to this process only, never the process group)."""
        if self.server is not None:
            super().shutdown()
        else:
            os.kill(os.getpid(), signal.SIGTERM)


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
    options: frozenset = frozenset({'workers', 'reload'})


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
            from hypercorn.asyncio import serve
            _asyncio.run(serve(asgi_adapter(app), config))  # type: ignore[arg-type]
            return
        os.environ[_APP_ENV] = app
        config.application_path = 'asgi:microdot.asgi:_cli_app()'
        hypercorn_run(config)


uvicorn_server = UvicornServer()
hypercorn_server = HypercornServer()
