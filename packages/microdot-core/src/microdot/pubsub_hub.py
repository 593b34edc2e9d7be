"""The machinery under :mod:`microdot.pubsub`.

Messages, the broker contract, and the per-event-loop hub that fans a broker's
messages out to local subscribers.

One :class:`Hub` serves one :class:`~microdot.pubsub.PubSub` on one event loop: the
built-in server and ASGI servers have one loop per process, a threaded WSGI worker
(gunicorn ``gthread``) one per thread. The hub owns that loop's broker connection,
subscribes each channel once however many local subscribers it has, and hands every
message to each subscriber's bounded queue, in the order the broker delivered them.

For a durable channel, messages carry ids (``<milliseconds>-<sequence>``, as Redis
Streams number them; they sort by time). A subscriber remembers the last id it was
given: when it joins with a ``Last-Event-ID`` or when the broker connection comes back
after an outage, it is first given what the broker retained past that id, while live
messages wait; live messages it already has are then skipped, so nothing arrives twice
and nothing is missed that the broker still holds.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass
from typing import (TYPE_CHECKING, Any, Awaitable, Deque, Dict, List, Optional, Protocol,
                    Set, Tuple, TypeVar, cast)

if TYPE_CHECKING:  # pragma: no cover
    from .pubsub import PubSub

__all__ = ['Broker', 'BrokerFactory', 'BrokerListener', 'Hub', 'Message', 'PubSubError',
           'SlowSubscriberError', 'Subscription', 'decode_payload', 'encode_payload',
           'event_key']

logger = logging.getLogger('microdot.pubsub')

T = TypeVar('T')
#: A parsed event id: ``(milliseconds, sequence)``.
EventKey = Tuple[int, int]


class PubSubError(RuntimeError):
    """Publishing or subscribing failed.

    The broker is unreachable or did not answer within the timeout, or the ``PubSub``
    is closed.
    """


class SlowSubscriberError(PubSubError):
    """A subscriber fell ``max_queue`` messages behind and was disconnected.

    So its backlog could not grow without bound. Other subscribers are not affected.
    """


@dataclass(frozen=True)
class Message:
    """One published message, as a subscriber receives it.

    Attributes:
        channel: The channel it was published on.
        data: What was published: ``str``, ``bytes``, or the decoded JSON value
            (shared by every local subscriber: treat it as read-only).
        id: On a durable channel, its id (``'1718000000000-0'``), usable as an SSE
            event id and as ``last_event_id``; ``None`` on other channels.
    """

    # (``encoded``: what the forwarding helpers made of it, made once for every
    # subscriber of the process, see ``pubsub._encodings``; not a field)
    __slots__ = ('channel', 'data', 'id', 'encoded')
    channel: str
    data: Any
    id: Optional[str]


def event_key(event_id: str) -> EventKey:
    """The sortable form of an event id.

    Args:
        event_id: ``'<milliseconds>-<sequence>'`` (the sequence may be omitted).

    Returns:
        ``(milliseconds, sequence)``.

    Raises:
        ValueError: ``event_id`` is not of that form.
    """
    ms, _, seq = event_id.strip().partition('-')
    if not ms.isdigit() or not (seq.isdigit() or seq == ''):
        raise ValueError('not a message id: %r' % event_id[:64])
    return int(ms), int(seq or 0)


# -- payloads ---------------------------------------------------------------------------

#: A payload made by :func:`encode_payload` for anything but plain text starts with
#: this byte and a type letter; any other payload is text (UTF-8) or else bytes, so that
#: other programs can publish plain text to a channel.
TAG = b'\x1e'
_TAG_TEXT, _TAG_BYTES, _TAG_JSON = b'\x1es', b'\x1eb', b'\x1ej'


def encode_payload(message: Any) -> bytes:
    """The bytes that carry ``message`` through a broker.

    Args:
        message: ``str``, ``bytes`` (``bytearray``, ``memoryview``) or a JSON-able value.

    Returns:
        The payload; :func:`decode_payload` gives the message back.

    Raises:
        TypeError: ``message`` cannot be encoded as JSON.
    """
    if isinstance(message, str):
        data = message.encode('utf-8')
        return _TAG_TEXT + data if data[:1] == TAG else data
    if isinstance(message, (bytes, bytearray, memoryview)):
        return _TAG_BYTES + bytes(cast(bytes, message))
    try:
        return _TAG_JSON + json.dumps(message, separators=(',', ':')).encode('utf-8')
    except (TypeError, ValueError) as exc:
        raise TypeError('a published message is str, bytes or JSON-able, not %s (%s)'
                        % (type(message).__name__, exc)) from None


def decode_payload(payload: bytes) -> Any:
    """The message carried by ``payload`` (see :func:`encode_payload`).

    Args:
        payload: bytes received from a broker.

    Returns:
        ``str``, ``bytes`` or the decoded JSON value.
    """
    if payload[:1] == TAG:
        tag = payload[:2]
        if tag == _TAG_TEXT:
            return payload[2:].decode('utf-8', 'replace')
        if tag == _TAG_BYTES:
            return payload[2:]
        if tag == _TAG_JSON:
            try:
                return json.loads(payload[2:])
            except ValueError:
                return payload
    try:
        return payload.decode('utf-8')
    except UnicodeDecodeError:
        return payload


# -- the broker contract ----------------------------------------------------------------

class BrokerListener(Protocol):
    """What a broker reports to (implemented by :class:`Hub`).

    Called on the broker's event loop.
    """

    def message(self, channel: str, event_id: Optional[str], payload: bytes) -> None:
        """A message arrived on a subscribed channel.

        Args:
            channel: The channel.
            event_id: The message's id on a durable channel, else ``None``.
            payload: The encoded message.
        """

    def restored(self) -> None:
        """The connection came back after an outage.

        Every channel is subscribed again: messages published meanwhile may have been
        missed.
        """


class Broker(Protocol):
    """One connection to a message broker, used from one event loop (plugin contract).

    Every method may raise :class:`PubSubError` (or an ``OSError``); the hub bounds
    each call with the ``PubSub`` timeout. A broker that loses its connection
    reconnects by itself, with back-off, and calls ``listener.restored()`` once its
    channels are subscribed again.
    """

    async def subscribe(self, channel: str) -> None:
        """Subscribe; return once messages published from now on will be delivered.

        Args:
            channel: The channel.
        """

    async def unsubscribe(self, channel: str) -> None:
        """Stop the delivery of ``channel``'s messages.

        Args:
            channel: The channel.
        """

    async def publish(self, channel: str, payload: bytes,
                      retention: Optional[int]) -> Optional[str]:
        """Deliver ``payload`` to every subscriber of ``channel``.

        Args:
            channel: The channel.
            payload: The encoded message.
            retention: On a durable channel, keep the message among the
                ``retention`` last messages of the channel; ``None`` otherwise.

        Returns:
            The message's id on a durable channel, else ``None``.
        """
        ...

    async def history(self, channel: str, after: Optional[str],
                      limit: int) -> List[Tuple[str, bytes]]:
        """The last retained messages of a durable channel.

        Args:
            channel: The channel.
            after: Only messages whose id is greater (``None``: all).
            limit: At most this many, the last ones.

        Returns:
            ``(id, payload)`` pairs, oldest first.
        """
        ...

    async def last_id(self, channel: str) -> Optional[str]:
        """The id of the last retained message of a durable channel, if any.

        Args:
            channel: The channel.

        Returns:
            The id, or ``None``.
        """
        ...

    async def close(self) -> None:
        """Close the connection(s)."""


class BrokerFactory(Protocol):
    """What a ``microdot.brokers`` entry point is: called once per event loop."""

    def __call__(self, url: str, listener: BrokerListener, *, timeout: float,
                 **options: Any) -> Broker:
        """A broker for ``url`` that reports to ``listener``.

        Args:
            url: The broker URL.
            listener: The hub that receives the messages.
            timeout: Seconds to connect, and to wait for an answer.
            **options: The ``PubSub``'s broker options.

        Returns:
            The broker, for the running event loop.
        """
        ...


# -- subscriptions ----------------------------------------------------------------------

class Subscription:
    """A subscription to one channel.

    ``async with pubsub.subscribe('chat') as sub: async for message in sub: ...``.

    Iteration yields :class:`Message` objects in publish order and ends when the
    ``PubSub`` is closed (application shutdown). It raises
    :class:`SlowSubscriberError` once ``max_queue`` messages waited unread.

    Attributes:
        pubsub: The ``PubSub`` it belongs to.
        channel: The channel.
        max_queue: Messages that may wait unread before the subscriber is cut off.
        last_event_id: The id given to start from (durable channels).
        retention: The channel's retention (``None``: not durable).
        closed: Whether the subscription has ended.
        hub: The hub it is attached to while open. This and ``after``, ``held``,
            :meth:`offer`, :meth:`end` and :meth:`catch_up` are the hub's side of the
            subscription, not for applications.
    """

    def __init__(self, pubsub: 'PubSub', channel: str, last_event_id: Optional[str],
                 max_queue: int) -> None:
        self.pubsub = pubsub
        self.channel = channel
        self.max_queue = max_queue
        self.last_event_id = last_event_id
        self.retention = pubsub.retention(channel)
        self._queue: Deque[Message] = deque()
        self._waiter: Optional[asyncio.Future[None]] = None
        self.hub: Optional[Hub] = None
        self._error: Optional[PubSubError] = None
        self.closed = False
        #: key of the last durable message given (or known to precede the subscription)
        self.after: Optional[EventKey] = None
        #: live messages held back while retained ones are fetched (durable channels)
        self.held: Optional[List[Tuple[Message, Optional[EventKey]]]] = None

    @property
    def last_id(self) -> Optional[str]:
        """The id of the last durable message received (``None``: none yet)."""
        return '%d-%d' % self.after if self.after is not None else None

    async def __aenter__(self) -> 'Subscription':
        if self.hub is not None:
            raise RuntimeError('this subscription is already open')
        hub = self.pubsub.hub()
        await hub.attach(self)
        self.hub = hub
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Unsubscribe; iteration ends.

        The broker channel is released when its last local subscriber leaves.
        """
        self.end()
        hub, self.hub = self.hub, None
        if hub is not None:
            await hub.detach(self)

    def __aiter__(self) -> 'Subscription':
        return self

    async def __anext__(self) -> Message:
        queue = self._queue
        while True:
            if queue:
                return queue.popleft()
            if self._error is not None:
                raise self._error
            if self.closed:
                raise StopAsyncIteration
            if self.hub is None:
                raise RuntimeError("iterate a subscription inside 'async with "
                                   "pubsub.subscribe(channel) as sub:'")
            waiter = self._waiter = self.hub.loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    async def wait(self) -> None:
        """Return once a message is queued, the subscription has ended or was interrupted.

        For consumers that take messages in batches with :meth:`take` (see
        :meth:`interrupt`).

        Raises:
            RuntimeError: The subscription is not open.
        """
        if self._queue or self.closed or self._error is not None:
            return
        if self.hub is None:
            raise RuntimeError("wait inside 'async with pubsub.subscribe(channel) as sub:'")
        waiter = self._waiter = self.hub.loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def interrupt(self) -> None:
        """Make a pending :meth:`wait` return now."""
        self._wake()

    def take(self) -> List[Message]:
        """Every queued message, oldest first (empty if none is).

        Returns:
            The messages, removed from the queue.

        Raises:
            SlowSubscriberError: The subscriber was cut off (nothing left to take).
        """
        queue = self._queue
        if queue:
            if len(queue) == 1:
                return [queue.popleft()]
            messages = list(queue)
            queue.clear()
            return messages
        if self._error is not None:
            raise self._error
        return []

    async def get(self, timeout: Optional[float] = None) -> Message:
        """The next message.

        Args:
            timeout: Seconds to wait (``None``: no limit).

        Returns:
            The message.

        Raises:
            asyncio.TimeoutError: Nothing arrived within ``timeout``.
            SlowSubscriberError: The subscriber was cut off.
            PubSubError: The subscription ended (``PubSub`` closed).
        """
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except StopAsyncIteration:
            raise PubSubError('the subscription to %r has ended' % self.channel) from None

    # -- called by the hub --------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def end(self, error: Optional[PubSubError] = None) -> None:
        """End the subscription: iteration stops, or raises ``error``.

        Args:
            error: Raised by the iteration instead of stopping it (the queued
                messages are dropped then).
        """
        if error is not None and self._error is None and not self.closed:
            self._error = error
            self._queue.clear()
        self.closed = True
        self.held = None
        self._wake()

    def offer(self, message: Message, key: Optional[EventKey]) -> None:
        """Queue a live message from the broker (or hold it while catching up).

        Args:
            message: The message.
            key: Its parsed id on a durable channel, else ``None``.
        """
        held = self.held
        if held is not None:
            held.append((message, key))
            if len(held) > self.max_queue:
                self._overflow()
            return
        if key is not None:
            after = self.after
            if after is not None and key <= after:
                return  # already given by a replay
            self.after = key
        self._put(message)

    def _put(self, message: Message) -> None:
        if len(self._queue) >= self.max_queue:
            self._overflow()
            return
        self._queue.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _overflow(self) -> None:
        if self.closed:
            return
        logger.warning('Subscriber to %r disconnected: %d messages waited unread '
                       '(max_queue); it cannot keep up', self.channel, self.max_queue)
        self.end(SlowSubscriberError(
            'this subscriber to %r fell %d messages behind (max_queue) and was '
            'disconnected; consume faster or raise max_queue' % (self.channel,
                                                                 self.max_queue)))
        hub = self.hub
        if hub is not None:
            hub.forget(self)

    def catch_up(self, items: List[Tuple[str, bytes]], fresh: bool) -> None:
        """Give retained messages past ``after``, then the held live ones.

        What was given already is skipped.

        Args:
            items: Retained ``(id, payload)`` pairs, oldest first.
            fresh: Give every held message: a new subscription without an id, whose
                baseline was read after it subscribed.
        """
        held, self.held = self.held or [], None
        for event_id, payload in items:
            try:
                key = event_key(event_id)
            except ValueError:
                continue
            if self.after is None or key > self.after:
                self.after = key
                self._put(Message(self.channel, decode_payload(payload), event_id))
        for message, live_key in held:
            if live_key is not None:
                if not fresh and self.after is not None and live_key <= self.after:
                    continue
                if self.after is None or live_key > self.after:
                    self.after = live_key
            self._put(message)


# -- the hub ----------------------------------------------------------------------------

class _Channel:
    """A channel's local subscribers and its subscription state at the broker."""

    __slots__ = ('name', 'subscribers', 'active', 'lock')

    def __init__(self, name: str) -> None:
        self.name = name
        self.subscribers: List[Subscription] = []
        self.active = False  # subscribed at the broker
        self.lock = asyncio.Lock()  # orders subscribe / unsubscribe / resync


class Hub:
    """One ``PubSub``'s broker connection and subscribers on one event loop.

    Args:
        pubsub: The ``PubSub``.
        loop: The event loop.
    """

    def __init__(self, pubsub: 'PubSub', loop: asyncio.AbstractEventLoop) -> None:
        self.pubsub = pubsub
        self.loop = loop
        self.timeout = pubsub.timeout
        self.channels: Dict[str, _Channel] = {}
        self.closed = False
        self._tasks: Set['asyncio.Task[Any]'] = set()
        self.broker: Broker = pubsub.factory(pubsub.url, self, timeout=pubsub.timeout,
                                             **pubsub.options)

    # -- broker calls -------------------------------------------------------------------

    async def call(self, what: str, aw: Awaitable[T]) -> T:
        """Await a broker call, bounded by the timeout.

        Args:
            what: What the call does, for the error message.
            aw: The call.

        Returns:
            Its result.

        Raises:
            PubSubError: The call failed or timed out.
        """
        try:
            return await asyncio.wait_for(aw, self.timeout)
        except PubSubError:
            raise
        except asyncio.TimeoutError:
            raise PubSubError('%s: the broker (%s) did not answer within %gs'
                              % (what, self.pubsub.safe_url, self.timeout)) from None
        except (OSError, ValueError, RuntimeError) as exc:
            raise PubSubError('%s: %s' % (what, exc)) from exc

    async def publish(self, channel: str, payload: bytes) -> Optional[str]:
        """Publish through the broker (see ``PubSub.publish``).

        Args:
            channel: The channel.
            payload: The encoded message.

        Returns:
            The message's id on a durable channel, else ``None``.

        Raises:
            PubSubError: The ``PubSub`` is closed, or the broker failed.
        """
        if self.closed:
            raise PubSubError('cannot publish to %r: this PubSub is closed' % channel)
        return await self.call('publishing to %r' % channel, self.broker.publish(
            channel, payload, self.pubsub.retention(channel)))

    # -- BrokerListener -----------------------------------------------------------------

    def message(self, channel: str, event_id: Optional[str], payload: bytes) -> None:
        """Hand a broker message to the channel's local subscribers.

        Args:
            channel: The channel.
            event_id: The message's id on a durable channel, else ``None``.
            payload: The encoded message.
        """
        ch = self.channels.get(channel)
        if ch is None or not ch.subscribers:
            return
        key: Optional[EventKey] = None
        if event_id is not None:
            try:
                key = event_key(event_id)
            except ValueError:
                event_id = None
        message = Message(channel, decode_payload(payload), event_id)
        for sub in ch.subscribers[:] if len(ch.subscribers) > 1 else ch.subscribers:
            sub.offer(message, key)

    def restored(self) -> None:
        """After an outage: give the subscribers of durable channels what they missed."""
        for ch in list(self.channels.values()):
            if ch.subscribers and self.pubsub.retention(ch.name):
                self.spawn(self._resync(ch))

    # -- subscribers --------------------------------------------------------------------

    async def attach(self, sub: Subscription) -> None:
        """Add a subscriber; return once it is subscribed.

        On a durable channel it is given the retained messages past its
        ``last_event_id`` first.

        Args:
            sub: The subscription.

        Raises:
            PubSubError: The ``PubSub`` is closed, or the broker failed.
        """
        if self.closed:
            raise PubSubError('cannot subscribe to %r: this PubSub is closed' % sub.channel)
        ch = self.channels.get(sub.channel)
        if ch is None:
            ch = self.channels[sub.channel] = _Channel(sub.channel)
        sub.hub = self
        durable = sub.retention is not None
        if durable:
            sub.held = []
        ch.subscribers.append(sub)
        try:
            async with ch.lock:
                if not ch.active:
                    await self.call('subscribing to %r' % ch.name,
                                    self.broker.subscribe(ch.name))
                    ch.active = True
            if durable:
                await self.call('reading the messages retained on %r' % ch.name,
                                self._replay(sub))
        except BaseException:
            sub.hub = None
            self.forget(sub)
            raise

    async def _replay(self, sub: Subscription) -> None:
        assert sub.retention is not None
        after: Optional[EventKey] = None
        if sub.last_event_id is not None:
            try:
                after = event_key(sub.last_event_id)
            except ValueError:
                logger.debug('Ignoring the malformed last event id %r',
                             sub.last_event_id[:64])
        if after is not None:
            items = await self.broker.history(sub.channel, '%d-%d' % after, sub.retention)
            sub.after = after
            sub.catch_up(items, fresh=False)
            return
        last = await self.broker.last_id(sub.channel)
        if last is not None:
            sub.after = event_key(last)
        sub.catch_up([], fresh=True)

    async def _resync(self, ch: _Channel) -> None:
        retention = self.pubsub.retention(ch.name)
        subs = [s for s in ch.subscribers if s.held is None and not s.closed]
        if not subs or not retention:
            return
        for sub in subs:
            sub.held = []
        items: List[Tuple[str, bytes]] = []
        try:
            afters = [s.after for s in subs]
            low: Optional[EventKey] = None if any(a is None for a in afters) else min(
                a for a in afters if a is not None)
            items = await self.call('reading the messages retained on %r' % ch.name,
                                    self.broker.history(
                                        ch.name, '%d-%d' % low if low else None, retention))
        except PubSubError as exc:
            logger.warning('Could not read the messages missed on %r: %s', ch.name, exc)
        finally:
            for sub in subs:
                if not sub.closed:
                    sub.catch_up(items, fresh=False)

    def forget(self, sub: Subscription) -> None:
        """Remove a subscriber at once; the broker channel is released later.

        Args:
            sub: The subscription.
        """
        ch = self.channels.get(sub.channel)
        if ch is None:
            return
        try:
            ch.subscribers.remove(sub)
        except ValueError:
            return
        if not ch.subscribers:
            self.spawn(self._release(ch))

    async def detach(self, sub: Subscription) -> None:
        """Remove a subscriber, releasing the broker channel if it was the last one.

        Args:
            sub: The subscription.
        """
        ch = self.channels.get(sub.channel)
        if ch is None or sub not in ch.subscribers:
            return
        ch.subscribers.remove(sub)
        if not ch.subscribers:
            task = self.spawn(self._release(ch))
            await asyncio.wait({task}, timeout=self.timeout)

    async def _release(self, ch: _Channel) -> None:
        async with ch.lock:
            if ch.subscribers or self.channels.get(ch.name) is not ch:
                return
            if ch.active and not self.closed:
                ch.active = False
                try:
                    await self.call('unsubscribing from %r' % ch.name,
                                    self.broker.unsubscribe(ch.name))
                except PubSubError as exc:
                    logger.debug('%s', exc)
            if not ch.subscribers:
                del self.channels[ch.name]

    def spawn(self, coro: Awaitable[T]) -> 'asyncio.Task[T]':
        """Run ``coro`` in a task the hub keeps until it is done.

        Args:
            coro: The coroutine.

        Returns:
            The task.
        """
        task: 'asyncio.Task[T]' = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- shutdown -----------------------------------------------------------------------

    def end_subscriptions(self) -> None:
        """End every subscription (their iteration stops); no new ones are accepted."""
        self.closed = True
        for ch in list(self.channels.values()):
            for sub in ch.subscribers:
                sub.end()
            ch.subscribers.clear()
        self.channels.clear()

    async def close(self) -> None:
        """End the subscriptions and close the broker connection."""
        self.end_subscriptions()
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self.timeout)
        try:
            await asyncio.wait_for(self.broker.close(), self.timeout)
        except Exception as exc:  # the process is going away: note it and go on
            logger.debug('Closing the broker connection failed: %s', exc)
