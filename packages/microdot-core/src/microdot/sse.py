"""Server-Sent Events, compatible with Microdot 2.x::

    @app.route('/events')
    @with_sse                            # or @with_sse(keepalive=5)
    async def events(request, sse):
        await sse.send('hello')                     # data: hello
        await sse.send({'n': 1}, event='update')    # JSON data, named event

The event function runs in its own task while the response streams; it is cancelled
(its ``finally`` blocks run) when the client goes away, the stream is closed or the
built-in server shuts down (then what it queued is sent and the stream ends). Data
is split on every line break into several ``data:`` lines, so it can never inject
other fields. While idle, a comment line is sent every ``SSE.keepalive_interval``
seconds so that proxies and clients keep the connection open. An exception raised by
the event function is raised by the response body once the events queued before it
are sent, as in Microdot: the test client call raises it; a server logs it and ends
the stream short.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from typing import Any, Awaitable, Callable, Deque, Dict, Optional, Tuple, Union

from .helpers import wraps
from .responses import _dumps

__all__ = ['SSE', 'sse_response', 'with_sse']

logger = logging.getLogger('microdot.sse')

_LINE_BREAK = re.compile(rb'\r\n|\r|\n')
_FORBIDDEN = ('\r', '\n', '\0')
_KEEPALIVE = b': keep-alive\n\n'
_DEFAULT: Any = object()

EventFunction = Callable[..., Awaitable[Any]]


def _field_value(value: Any, name: str) -> bytes:
    text = value if isinstance(value, str) else str(value)
    if any(c in text for c in _FORBIDDEN):
        raise ValueError('SSE %s may not contain CR, LF or NUL characters: %r'
                         % (name, text))
    return text.encode('utf-8')


def _prefixed_lines(prefix: bytes, data: bytes) -> bytes:
    """``prefix + line + LF`` for every line of ``data`` (split on CRLF, LF and CR)."""
    return b''.join(prefix + line + b'\n' for line in _LINE_BREAK.split(data))


class SSE:
    """The event stream of one client, as given to ``with_sse`` handlers."""

    #: Seconds of silence before a keep-alive comment is sent (``None`` or 0: never).
    keepalive_interval: Optional[float] = 15.0
    #: Events that may wait to be sent before :meth:`send` blocks (backpressure).
    max_pending: int = 64

    def __init__(self, keepalive_interval: Any = _DEFAULT) -> None:
        if keepalive_interval is not _DEFAULT:
            self.keepalive_interval = keepalive_interval
        self.queue: Deque[bytes] = deque()
        self._consumer: Optional[asyncio.Future] = None
        self._producer: Optional[asyncio.Future] = None

    @staticmethod
    def format(data: Any, event: Optional[str] = None, event_id: Optional[str] = None,
               retry: Optional[float] = None, comment: bool = False) -> bytes:
        """Encode one event (or comment) in the ``text/event-stream`` format."""
        if isinstance(data, (dict, list)):
            payload = _dumps(data)
        elif isinstance(data, (bytes, bytearray, memoryview)):
            payload = bytes(data)
        else:
            payload = str(data).encode('utf-8')
        if comment:
            return _prefixed_lines(b': ', payload) + b'\n'
        parts = []  # fields in Microdot's order: retry, event, id, then data
        if retry is not None:
            if isinstance(retry, bool) or not isinstance(retry, (int, float)) or retry < 0:
                raise ValueError('SSE retry must be a non-negative number of seconds')
            parts.append(b'retry: %d\n' % int(retry * 1000))
        if event is not None:
            parts.append(b'event: ' + _field_value(event, 'event name') + b'\n')
        if event_id is not None:
            parts.append(b'id: ' + _field_value(event_id, 'event id') + b'\n')
        parts.append(_prefixed_lines(b'data: ', payload))
        parts.append(b'\n')
        return b''.join(parts)

    async def send(self, data: Union[str, bytes, Dict[str, Any], list, Any],
                   event: Optional[str] = None, event_id: Optional[str] = None,
                   retry: Optional[float] = None, comment: bool = False) -> None:
        """Queue an event for the client: ``dict``/``list`` data is sent as JSON,
        ``retry`` is in seconds, ``comment=True`` sends ``: text`` lines instead."""
        chunk = self.format(data, event=event, event_id=event_id, retry=retry,
                            comment=comment)
        while len(self.queue) >= self.max_pending:
            self._producer = asyncio.get_running_loop().create_future()
            try:
                await self._producer
            finally:
                self._producer = None
        self.queue.append(chunk)
        _wake(self._consumer, True)


def _wake(waiter: Optional[asyncio.Future], value: Any = None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(value)


class _EventStream:
    """The response body: runs the event function in a task and yields its events.

    An exception raised by the event function is raised again by the body, after the
    events queued before it, as Microdot does: the test client call raises it, and a
    server logs it and cuts the stream short.
    """

    def __init__(self, sse: SSE, run: Callable[[], Awaitable[Any]]) -> None:
        self.sse = sse
        self.run = run
        self.task: Optional[asyncio.Task] = None
        self.closed = False
        self.error: Optional[BaseException] = None

    def __aiter__(self) -> '_EventStream':
        return self

    async def _main(self) -> None:
        try:
            await self.run()
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            self.error = exc
        finally:
            _wake(self.sse._consumer, True)

    async def __anext__(self) -> bytes:
        sse = self.sse
        if self.task is None:
            if self.closed:
                raise StopAsyncIteration
            self.task = asyncio.ensure_future(self._main())
        loop = asyncio.get_running_loop()
        while True:
            if sse.queue:
                chunk = sse.queue.popleft()
                _wake(sse._producer)
                return chunk
            if self.task.done():
                error, self.error = self.error, None
                if error is not None:
                    raise error
                raise StopAsyncIteration
            waiter = sse._consumer = loop.create_future()
            interval = sse.keepalive_interval
            handle = loop.call_later(interval, _wake, waiter, False) if interval else None
            try:
                woken = await waiter
            finally:
                sse._consumer = None
                if handle is not None:
                    handle.cancel()
            if not woken and not sse.queue:
                return _KEEPALIVE

    def on_server_shutdown(self) -> None:
        """The built-in server is shutting down: stop the event function, send what
        it queued and end the stream, so the client reconnects (to another server)
        instead of holding the shutdown up."""
        self.closed = True
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def aclose(self) -> None:
        """Stop the event function (client gone or response abandoned)."""
        self.closed = True
        task = self.task
        if task is not None and not task.done():
            task.cancel()
            try:
                await asyncio.wait({task}, timeout=5)
            except asyncio.CancelledError:  # pragma: no cover - cancelled again
                pass
        error, self.error = self.error, None
        if error is not None:  # failed after the client left: nobody else will see it
            logger.error('Unhandled exception in SSE event function', exc_info=error)


def _stream_response(request: Any, event_function: EventFunction, args: Any,
                     kwargs: Any, keepalive: Any = _DEFAULT
                     ) -> Tuple[Any, int, Dict[str, str]]:
    sse = SSE(keepalive)

    async def run() -> None:
        await event_function(request, sse, *args, **kwargs)

    return _EventStream(sse, run), 200, {
        'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache',
        'X-Accel-Buffering': 'no'}


def sse_response(request: Any, event_function: EventFunction, *args: Any,
                 **kwargs: Any) -> Tuple[Any, int, Dict[str, str]]:
    """The answer for an SSE route, as Microdot's: a ``(body, 200, headers)`` tuple that
    a handler returns, whose body streams the events of
    ``await event_function(request, sse, *args, **kwargs)``.

    :param request: the request being answered.
    :param event_function: ``async def f(request, sse, *args, **kwargs)``; it sends
        events with ``await sse.send(...)`` and the stream ends when it returns.
    """
    return _stream_response(request, event_function, args, kwargs)


def with_sse(f: Optional[EventFunction] = None, *, keepalive: Any = _DEFAULT) -> Any:
    """Decorator making a route an SSE endpoint; the handler gets ``(request, sse)``.

    Use bare (``@with_sse``) or with ``@with_sse(keepalive=seconds)`` (``None``: no
    keep-alive comments) to override ``SSE.keepalive_interval`` for the route.
    """
    def decorator(handler: EventFunction) -> Callable[..., Any]:
        @wraps(handler)
        async def sse_handler(request: Any, *args: Any, **kwargs: Any
                              ) -> Tuple[Any, int, Dict[str, str]]:
            return _stream_response(request, handler, args, kwargs, keepalive)
        return sse_handler

    if f is not None:
        return decorator(f)
    return decorator
