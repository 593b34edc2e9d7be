"""Server-Sent Events, compatible with Microdot 2.x.

::

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
from typing import (Any, AsyncIterator, Awaitable, Callable, Concatenate, Coroutine, Deque,
                    Dict, Optional, ParamSpec, Protocol, Tuple, Union, cast, overload)

from .helpers import wraps
from .requests import Request
from .responses import dumps as _dumps

__all__ = ['SSE', 'sse_response', 'with_sse']

logger = logging.getLogger('microdot.sse')

_LINE_BREAK = re.compile(rb'\r\n|\r|\n')
_FORBIDDEN = ('\r', '\n', '\0')
_KEEPALIVE = b': keep-alive\n\n'
_DEFAULT: Any = object()

EventFunction = Callable[..., Awaitable[Any]]

_P = ParamSpec('_P')
#: An SSE handler: ``async def f(request, sse, *args, **kwargs)``.
SSEHandler = Callable[Concatenate[Request, 'SSE', _P], Awaitable[object]]
#: What an SSE route answers: the event stream, 200 and the stream's headers.
SSEResponse = Tuple[AsyncIterator[bytes], int, Dict[str, str]]
#: What :func:`with_sse` makes of a handler: an ``async`` route handler without ``sse``.
SSERoute = Callable[Concatenate[Request, _P], Coroutine[Any, Any, SSEResponse]]


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
    """The event stream of one client, as given to ``with_sse`` handlers.

    Args:
        keepalive_interval: Seconds of silence before a keep-alive comment is sent
            (``None`` or 0: never); the class attribute when not given.
    """

    #: Seconds of silence before a keep-alive comment is sent (``None`` or 0: never).
    keepalive_interval: Optional[float] = 15.0
    #: Events that may wait to be sent before :meth:`send` blocks (backpressure).
    max_pending: int = 64

    def __init__(self, keepalive_interval: Optional[float] = _DEFAULT) -> None:
        if keepalive_interval is not _DEFAULT:
            self.keepalive_interval = keepalive_interval
        self.queue: Deque[bytes] = deque()
        # the response body waiting for an event, and send() waiting for room (both
        # used by the body, in this module)
        self.consumer: Optional[asyncio.Future[Any]] = None
        self.producer: Optional[asyncio.Future[Any]] = None

    @staticmethod
    def format(data: Any, event: Optional[str] = None, event_id: Optional[str] = None,
               retry: Optional[float] = None, comment: bool = False) -> bytes:
        """Encode one event (or comment) in the ``text/event-stream`` format.

        Args:
            data: The data: ``dict`` and ``list`` as JSON, bytes as they are, anything
                else as its ``str()``; split into one ``data:`` line per line.
            event: The event name.
            event_id: The event id.
            retry: The client's reconnection delay, in seconds.
            comment: Make ``data`` a comment (``: text`` lines) instead of an event.

        Returns:
            The encoded event, ending with its blank line.

        Raises:
            ValueError: If ``event`` or ``event_id`` holds a line break or NUL, or
                ``retry`` is not a non-negative number.
        """
        if isinstance(data, (dict, list)):
            payload = _dumps(cast(Any, data))
        elif isinstance(data, (bytes, bytearray, memoryview)):
            payload = bytes(cast(Any, data))
        else:
            payload = str(data).encode('utf-8')
        if comment:
            return _prefixed_lines(b': ', payload) + b'\n'
        parts: list[bytes] = []  # fields in Microdot's order: retry, event, id, then data
        if retry is not None:
            number = cast(object, retry)
            if isinstance(number, bool) or not isinstance(number, (int, float)) or retry < 0:
                raise ValueError('SSE retry must be a non-negative number of seconds')
            parts.append(b'retry: %d\n' % int(retry * 1000))
        if event is not None:
            parts.append(b'event: ' + _field_value(event, 'event name') + b'\n')
        if event_id is not None:
            parts.append(b'id: ' + _field_value(event_id, 'event id') + b'\n')
        parts.append(_prefixed_lines(b'data: ', payload))
        parts.append(b'\n')
        return b''.join(parts)

    async def send(self, data: Any,
                   event: Optional[str] = None, event_id: Optional[str] = None,
                   retry: Optional[float] = None, comment: bool = False) -> None:
        """Queue an event for the client.

        Waits while :attr:`max_pending` events are queued (backpressure).

        Args:
            data: The data: ``dict`` and ``list`` are sent as JSON, bytes as they are,
                anything else as its ``str()``.
            event: The event name.
            event_id: The event id.
            retry: The client's reconnection delay, in seconds.
            comment: Send ``data`` as a comment (``: text`` lines) instead of an event.

        Raises:
            ValueError: If ``event`` or ``event_id`` holds a line break or NUL, or
                ``retry`` is not a non-negative number.
        """
        chunk = self.format(data, event=event, event_id=event_id, retry=retry,
                            comment=comment)
        while len(self.queue) >= self.max_pending:
            self.producer = asyncio.get_running_loop().create_future()
            try:
                await self.producer
            finally:
                self.producer = None
        self.queue.append(chunk)
        _wake(self.consumer, True)


def _wake(waiter: Optional[asyncio.Future[Any]], value: Any = None) -> None:
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
        self.task: Optional[asyncio.Future[None]] = None
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
            _wake(self.sse.consumer, True)

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
                _wake(sse.producer)
                return chunk
            if self.task.done():
                error, self.error = self.error, None
                if error is not None:
                    raise error
                raise StopAsyncIteration
            waiter = sse.consumer = loop.create_future()
            interval = sse.keepalive_interval
            handle = loop.call_later(interval, _wake, waiter, False) if interval else None
            try:
                woken = await waiter
            finally:
                sse.consumer = None
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


def _stream_response(request: Request, event_function: EventFunction, args: Any,
                     kwargs: Any, keepalive: Optional[float] = _DEFAULT) -> SSEResponse:
    sse = SSE(keepalive)

    async def run() -> None:
        await event_function(request, sse, *args, **kwargs)

    return _EventStream(sse, run), 200, {
        'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache',
        'X-Accel-Buffering': 'no'}


def sse_response(request: Request, event_function: EventFunction, *args: Any,
                 **kwargs: Any) -> SSEResponse:
    """Make the answer of an SSE route, as Microdot's ``sse_response`` does.

    The handler returns it; its body streams the events of
    ``await event_function(request, sse, *args, **kwargs)``.

    Args:
        request: The request being answered.
        event_function: ``async def f(request, sse, *args, **kwargs)``; it sends
            events with ``await sse.send(...)`` and the stream ends when it returns.
        *args: More positional arguments for ``event_function``.
        **kwargs: More keyword arguments for ``event_function``.

    Returns:
        ``(body, 200, headers)``: the event stream and its headers.
    """
    return _stream_response(request, event_function, args, kwargs)


class _SSEDecorator(Protocol):
    """What ``with_sse(...)`` returns when given options."""

    def __call__(self, f: SSEHandler[_P], /) -> SSERoute[_P]: ...


@overload
def with_sse(f: SSEHandler[_P], /) -> SSERoute[_P]: ...


@overload
def with_sse(f: None = None, /, *, keepalive: Optional[float] = _DEFAULT) -> _SSEDecorator: ...


def with_sse(f: Optional[SSEHandler[...]] = None, *, keepalive: Optional[float] = _DEFAULT
             ) -> Union[SSERoute[...], _SSEDecorator]:
    """Make a route an SSE endpoint; the handler gets ``(request, sse)``.

    Use bare (``@with_sse``) or as ``@with_sse(keepalive=seconds)`` to override
    ``SSE.keepalive_interval`` for the route (``None``: no keep-alive comments),
    below the route decorator.

    Args:
        f: The handler: ``async def f(request, sse, *args, **kwargs)`` (given when
            used bare).
        keepalive: Seconds of silence before a keep-alive comment.

    Returns:
        The route handler (used bare), or the decorator that makes it.
    """
    def decorator(handler: SSEHandler[_P]) -> SSERoute[_P]:
        @wraps(handler)
        async def sse_handler(request: Request, *args: _P.args, **kwargs: _P.kwargs
                              ) -> SSEResponse:
            return _stream_response(request, handler, args, kwargs, keepalive)
        # (mypy does not match functools.wraps' result with a Concatenate callable)
        return cast('SSERoute[_P]', sse_handler)

    if f is not None:
        return decorator(f)
    return decorator
