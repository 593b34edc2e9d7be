"""Publish/subscribe for Microdot applications, across workers and machines.

::

    from microdot import Microdot
    from microdot.pubsub import PubSub
    from microdot.websocket import with_websocket

    app = Microdot()
    pubsub = PubSub(app, 'redis://127.0.0.1:6379/0')   # default 'memory://': one process
    pubsub.durable('chat', retention=1000)             # opt-in: replay with Last-Event-ID

    @app.post('/say')
    async def say(request):
        await pubsub.publish('chat', request.json)     # str, bytes or JSON-able
        return '', 204

    @app.route('/events')
    async def events(request):
        return pubsub.sse_response(request, 'chat')    # Server-Sent Events

    @app.route('/ws')
    @with_websocket
    async def ws(request, ws):
        await pubsub.forward_to_websocket(ws, 'chat', on_receive=lambda m: pubsub.publish('chat', m))

    # or by hand:
    async with pubsub.subscribe('chat') as sub:
        async for message in sub:                       # Message(channel, data, id)
            ...

The backend is chosen by the URL scheme among the ``microdot.brokers`` entry points:
``memory`` (this package: one process, the default), ``redis``/``rediss``/``unix``
(``pip install microdot-redis``). Semantics (see ``docs/pubsub.md``): each subscriber
gets a channel's messages in publish order; it has a bounded queue (``max_queue``,
default 1,000) and is disconnected with :class:`SlowSubscriberError` when it falls
that far behind; ``publish`` raises :class:`PubSubError` when the broker is unreachable
(never waiting longer than ``timeout``); subscribers survive broker outages (the broker
reconnects with back-off). Durable channels keep their last ``retention`` messages:
a subscriber that gives the id of the last message it saw receives what it missed,
then live messages, without duplicates. The application's shutdown closes every
subscription and broker connection.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import weakref
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, Union
from urllib.parse import urlsplit

from . import plugins
from .pubsub_hub import (Broker, BrokerFactory, BrokerListener, Hub, Message,
                         PubSubError, SlowSubscriberError, Subscription, encode_payload)

__all__ = ['PubSub', 'Subscription', 'Message', 'PubSubError', 'SlowSubscriberError',
           'Broker', 'BrokerFactory', 'BrokerListener']

logger = logging.getLogger('microdot.pubsub')

#: What ``on_receive`` of :meth:`PubSub.forward_to_websocket` is given and returns.
Receiver = Callable[[Union[str, bytes]], Awaitable[Any]]


def _safe_url(url: str) -> str:
    """``url`` with its password hidden (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition('@')
    user = parts.username or ''
    return parts._replace(netloc='%s:***@%s' % (user, netloc[2])).geturl()


def _encodings(message: Message) -> Dict[Any, Any]:
    """What the helpers made of ``message`` so far: made once per process (every local
    subscriber gets the same ``Message``), not once per subscriber."""
    cache: Optional[Dict[Any, Any]] = getattr(message, 'encoded', None)
    if cache is None:
        cache = {}
        object.__setattr__(message, 'encoded', cache)
    return cache


def _message_text(message: Message) -> Union[str, bytes]:
    """A message's data as SSE or WebSocket data: text or bytes as they are, anything
    else as JSON text (made once per process)."""
    data = message.data
    if isinstance(data, (str, bytes)):
        return data
    cache = _encodings(message)
    text: Optional[str] = cache.get('text')
    if text is None:
        text = cache['text'] = json.dumps(data, separators=(',', ':'))
    return text


def _sse_event(message: Message, event: Optional[str]) -> bytes:
    """``message`` as an SSE event (made once per process)."""
    cache = _encodings(message)
    encoded: Optional[bytes] = cache.get(('sse', event))
    if encoded is None:
        from .sse import SSE
        encoded = cache[('sse', event)] = SSE.format(_message_text(message), event=event,
                                                     event_id=message.id)
    return encoded


class _SSEStream:
    """The body of :meth:`PubSub.sse_response`: the response reads the subscription
    itself (no task in between), and the events that queued up since its last write go
    out in one chunk. Keep-alive comments follow ``SSE.keepalive_interval``; the
    stream ends when the subscription does (shutdown, or a subscriber too slow)."""

    def __init__(self, pubsub: 'PubSub', channel: str, last_event_id: Optional[str],
                 event: Optional[str]) -> None:
        from .sse import SSE
        self.sub = pubsub.subscribe(channel, last_event_id=last_event_id)
        self.event = event
        self.keepalive: Optional[float] = SSE.keepalive_interval
        self.ping = SSE.format('keep-alive', comment=True)
        self.state = 0  # 0: not subscribed yet, 1: streaming, 2: ended
        self.sent_at = 0.0
        self.timer: Optional[asyncio.TimerHandle] = None
        self.loop: Optional[asyncio.AbstractEventLoop] = None

    def __aiter__(self) -> '_SSEStream':
        return self

    async def _open(self) -> None:
        if self.state == 2:
            await self.aclose()
            raise StopAsyncIteration
        self.state = 1
        await self.sub.__aenter__()
        self.loop = loop = asyncio.get_running_loop()
        self.sent_at = loop.time()
        if self.keepalive:
            self.timer = loop.call_at(self.sent_at + self.keepalive, self._tick)

    async def __anext__(self) -> bytes:
        sub = self.sub
        if self.state != 1:
            await self._open()
        await sub.wait()
        try:
            messages = sub.take()
        except SlowSubscriberError:
            messages = []
        if messages:
            assert self.loop is not None
            self.sent_at = self.loop.time()
            event = self.event
            if len(messages) == 1:
                return _sse_event(messages[0], event)
            return b''.join([_sse_event(m, event) for m in messages])
        if sub.closed or self.state == 2:
            await self.aclose()
            raise StopAsyncIteration
        return self.ping  # (woken by the keep-alive timer)

    def _tick(self) -> None:
        """The keep-alive timer: wake the stream if it has been silent for the whole
        interval, else look again when it will have been."""
        assert self.loop is not None and self.keepalive
        due = self.sent_at + self.keepalive
        if self.loop.time() >= due - 0.001:
            self.sent_at = self.loop.time()
            due = self.sent_at + self.keepalive
            self.sub.interrupt()
        self.timer = self.loop.call_at(due, self._tick)

    def on_server_shutdown(self) -> None:
        """The built-in server is shutting down: send what is queued and end."""
        self.state = 2
        self.sub.interrupt()

    async def aclose(self) -> None:
        """Unsubscribe (the client left or the stream ended)."""
        self.state = 2
        timer, self.timer = self.timer, None
        if timer is not None:
            timer.cancel()
        if self.sub.hub is not None:
            await self.sub.close()


class PubSub:
    """Publish/subscribe on a broker chosen by URL.

    Args:
        app: The application whose shutdown closes this ``PubSub`` (``None``: call
            :meth:`close` yourself).
        url: ``memory://`` (default; one process), ``redis://HOST:PORT/DB``,
            ``rediss://...`` or ``unix:///path/redis.sock`` (with microdot-redis).
        max_queue: Messages a subscriber may leave unread before it is disconnected
            with :class:`SlowSubscriberError`.
        timeout: Seconds a broker operation (publish, subscribe, replay) may take
            before it fails with :class:`PubSubError`.
        durable: Durable channels and their retention (``{'chat': 1000}``); see
            :meth:`durable`.
        **options: Passed to the broker (e.g. ``prefix`` for Redis).

    Raises:
        microdot.plugins.PluginError: No broker handles the URL's scheme (the message
            names the distribution to install).
        ValueError: ``url`` has no scheme, or a number is out of range.
    """

    def __init__(self, app: Any = None, url: str = 'memory://', *, max_queue: int = 1000,
                 timeout: float = 5.0, durable: Optional[Dict[str, int]] = None,
                 **options: Any) -> None:
        scheme = urlsplit(url).scheme.lower()
        if not scheme or '://' not in url:
            raise ValueError("a broker URL starts with its scheme, such as 'memory://' or "
                             "'redis://127.0.0.1:6379/0' (got %r)" % _safe_url(url))
        if max_queue < 1:
            raise ValueError('max_queue must be at least 1')
        if timeout <= 0:
            raise ValueError('timeout must be a positive number of seconds')
        self.url = url
        self.safe_url = _safe_url(url)
        self.max_queue = max_queue
        self.timeout = timeout
        self.options = options
        self.factory: BrokerFactory = plugins.get_broker(scheme)
        self._exact: Dict[str, int] = {}
        self._prefixes: List[Tuple[str, int]] = []
        for channel, retention in (durable or {}).items():
            self.durable(channel, retention)
        self._hubs: Dict[asyncio.AbstractEventLoop, Hub] = {}
        self._lock = threading.Lock()
        _instances.add(self)
        if app is not None:
            app.on_shutdown(self.close)

    def __repr__(self) -> str:
        return '<PubSub %s>' % self.safe_url

    # -- configuration ------------------------------------------------------------------

    def durable(self, channel: str, retention: int = 1000) -> None:
        """Make a channel durable, so a subscriber can receive what it missed.

        Its ``retention`` last messages are kept (Redis: a stream) and get ids.
        Configure the same durable channels in every process that publishes or
        subscribes to them.

        Args:
            channel: A channel name, or a prefix ending with ``*`` (``'room:*'``).
            retention: How many of the last messages to keep (at least 1).

        Raises:
            ValueError: ``retention`` is below 1.
        """
        if type(retention) is not int or retention < 1:
            raise ValueError('retention must be a whole number of messages, at least 1')
        if channel.endswith('*'):
            prefix = channel[:-1]
            self._prefixes = [(p, r) for p, r in self._prefixes if p != prefix]
            self._prefixes.append((prefix, retention))
            self._prefixes.sort(key=lambda item: -len(item[0]))  # longest prefix wins
        else:
            self._exact[channel] = retention

    def retention(self, channel: str) -> Optional[int]:
        """How many messages ``channel`` retains (``None``: it is not durable).

        Args:
            channel: The channel name.

        Returns:
            The retention, or ``None``.
        """
        retention = self._exact.get(channel)
        if retention is None and self._prefixes:
            for prefix, value in self._prefixes:
                if channel.startswith(prefix):
                    return value
        return retention

    # -- publish and subscribe ----------------------------------------------------------

    def hub(self) -> Hub:
        """The hub of the running event loop.

        Returns:
            The hub, created on first use.
        """
        loop = asyncio.get_running_loop()
        hub = self._hubs.get(loop)
        if hub is None or hub.closed:
            with self._lock:
                hub = self._hubs.get(loop)
                if hub is None or hub.closed:
                    for other in [lp for lp in self._hubs if lp.is_closed()]:
                        del self._hubs[other]
                    hub = self._hubs[loop] = Hub(self, loop)
        return hub

    async def publish(self, channel: str, message: Any) -> Optional[str]:
        """Send ``message`` to every subscriber of ``channel``.

        Subscribers in every process that uses the same broker receive it.

        Args:
            channel: The channel name.
            message: ``str``, ``bytes`` or a JSON-able value; subscribers receive the
                same type back.

        Returns:
            The message id on a durable channel, else ``None``.

        Raises:
            PubSubError: The broker is unreachable or did not answer within
                ``timeout`` seconds (the message may or may not have been sent).
            TypeError: ``message`` is not str, bytes or JSON-able.
        """
        _check_channel(channel)
        return await self.hub().publish(channel, encode_payload(message))

    def subscribe(self, channel: str, *, last_event_id: Optional[str] = None,
                  max_queue: Optional[int] = None) -> Subscription:
        """A subscription to ``channel``, to use as ``async with ... as sub``.

        Entering it returns once the subscription is active at the broker (messages
        published from then on are received) and raises :class:`PubSubError` if the
        broker cannot be reached within ``timeout``.

        Args:
            channel: The channel name.
            last_event_id: On a durable channel, the id of the last message already
                seen (e.g. an SSE ``Last-Event-ID``): the retained messages after it
                come first. Ignored if malformed or on other channels.
            max_queue: Overrides the ``PubSub``'s ``max_queue`` for this subscriber.

        Returns:
            The :class:`Subscription` (an async context manager and async iterator
            of :class:`Message`).

        Raises:
            ValueError: ``max_queue`` is below 1.
        """
        _check_channel(channel)
        size = self.max_queue if max_queue is None else max_queue
        if size < 1:
            raise ValueError('max_queue must be at least 1')
        return Subscription(self, channel, last_event_id, size)

    # -- helpers ------------------------------------------------------------------------

    async def forward_to_sse(self, sse: Any, channel: str, *,
                             last_event_id: Optional[str] = None,
                             event: Optional[str] = None) -> None:
        """Send every message of ``channel`` as an event of ``sse``.

        ``sse`` is the ``SSE`` object of a ``with_sse`` handler; this returns when the
        client leaves or the application shuts down.

        On a durable channel each event carries the message id, so a reconnecting
        ``EventSource`` sends it back as ``Last-Event-ID``. A subscriber that falls
        ``max_queue`` messages behind is disconnected (the stream ends, a warning is
        logged): the client reconnects and, on a durable channel, catches up.

        Args:
            sse: The ``microdot.sse.SSE`` of the response.
            channel: The channel name.
            last_event_id: The id of the last message the client has (durable
                channels), usually ``request.headers.get('Last-Event-ID')``.
            event: The SSE event name to give every event (``None``: ``message``).

        Raises:
            PubSubError: The subscription could not be made.
        """
        try:
            async with self.subscribe(channel, last_event_id=last_event_id) as sub:
                async for message in sub:
                    await sse.send(_message_text(message), event=event,
                                   event_id=message.id)
        except SlowSubscriberError:
            return

    def sse_response(self, request: Any, channel: str, *, event: Optional[str] = None,
                     last_event_id: Optional[str] = None
                     ) -> Tuple[Any, int, Dict[str, str]]:
        """The answer of an SSE route that streams ``channel``.

        See :meth:`forward_to_sse`; on a durable channel it replays from the
        request's ``Last-Event-ID`` header.

        Args:
            request: The request being answered.
            channel: The channel name.
            event: The SSE event name to give every event.
            last_event_id: Where to start when the request has no ``Last-Event-ID``
                (a new client): ``'0'`` gives it every retained message first;
                ``None``, only what is published from now on.

        Returns:
            What the handler returns: ``return pubsub.sse_response(request, 'chat')``.
        """
        last_event_id = request.headers.get('Last-Event-ID') or last_event_id
        _check_channel(channel)
        return _SSEStream(self, channel, last_event_id, event), 200, {
            'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache',
            'X-Accel-Buffering': 'no'}

    async def forward_to_websocket(self, ws: Any, channel: str, *,
                                   on_receive: Optional[Receiver] = None,
                                   last_event_id: Optional[str] = None) -> None:
        """Send every message of ``channel`` to the WebSocket ``ws``.

        Text for str and JSON, binary for bytes, while reading what the client sends,
        until the client closes the connection or the application shuts down.

        A subscriber that falls ``max_queue`` messages behind is closed with code
        1013 (try again later); at shutdown the connection is closed with 1001.

        Args:
            ws: The ``microdot.websocket.WebSocket`` of a ``with_websocket`` handler.
            channel: The channel name.
            on_receive: ``async def f(data)`` called with each message from the
                client, in order (e.g. ``lambda m: pubsub.publish('chat', m)``);
                ``None``: client messages are read and dropped.
            last_event_id: On a durable channel, the id of the last message the client
                has: it receives what it missed first.

        Raises:
            PubSubError: The subscription could not be made.
        """
        from .websocket import WebSocketError
        from .ws_protocol import CLOSE_GOING_AWAY, CLOSE_TRY_AGAIN_LATER

        async with self.subscribe(channel, last_event_id=last_event_id) as sub:
            async def send_all() -> None:
                async for message in sub:
                    await ws.send(_message_text(message))

            async def receive_all() -> None:
                while True:
                    data = await ws.receive()
                    if on_receive is not None:
                        await on_receive(data)

            sender = asyncio.ensure_future(send_all())
            receiver = asyncio.ensure_future(receive_all())
            try:
                await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sender, receiver):
                    task.cancel()
                await asyncio.wait({sender, receiver})
            if not receiver.cancelled():
                error = receiver.exception()
                if error is not None and not isinstance(error, WebSocketError):
                    raise error
                if error is not None:
                    return  # the client left
            if not sender.cancelled():
                error = sender.exception()
                if isinstance(error, SlowSubscriberError):
                    await ws.close(CLOSE_TRY_AGAIN_LATER, 'too slow: try again later')
                elif error is None:
                    await ws.close(CLOSE_GOING_AWAY, 'server shutting down')
                elif not isinstance(error, WebSocketError):
                    raise error

    # -- shutdown -----------------------------------------------------------------------

    async def close(self) -> None:
        """End every subscription and close the broker connections.

        Iteration stops; WebSocket and SSE helpers end their sessions. Registered as
        a shutdown hook of the application given to the constructor.

        The ``PubSub`` stays usable: a later call opens new connections. Hubs of
        event loops that are not running (an idle WSGI thread's) are left to the
        process exit.
        """
        with self._lock:
            hubs = list(self._hubs.items())
            self._hubs.clear()
        current = asyncio.get_running_loop()
        waits: List[Awaitable[Any]] = []
        for loop, hub in hubs:
            if loop is current:
                waits.append(hub.close())
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(hub.close(), loop)
                waits.append(asyncio.wait_for(asyncio.wrap_future(future), self.timeout))
            else:
                hub.closed = True
        for aw in waits:
            try:
                await aw
            except Exception as exc:  # going away anyway
                logger.debug('Closing a broker connection failed: %s', exc)

    def _forked(self) -> None:
        """In a forked child (a worker process): forget the parent's connections."""
        self._hubs = {}
        self._lock = threading.Lock()


def _check_channel(channel: Any) -> None:
    if not isinstance(channel, str) or not channel:
        raise ValueError('a channel name is a non-empty str, not %r' % (channel,))


#: Every PubSub of the process, to reset in forked children.
_instances: 'weakref.WeakSet[PubSub]' = weakref.WeakSet()


def _after_fork() -> None:
    for pubsub in list(_instances):
        pubsub._forked()  # pyright: ignore[reportPrivateUsage]


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_after_fork)
