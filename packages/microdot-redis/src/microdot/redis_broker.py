"""The Redis broker of :mod:`microdot.pubsub` (``redis://``, ``rediss://``, ``unix://``).

``PubSub(app, 'redis://127.0.0.1:6379/0')`` delivers messages between every process
and machine that uses the same Redis (or Valkey) server, on the asyncio client of
redis-py. Per event loop it keeps one subscriber connection and a small pool for
commands.

- Plain channels use ``PUBLISH``/``SUBSCRIBE`` on the Redis channel ``prefix +
  channel`` (``prefix`` defaults to ``'microdot:'``). A payload is the message as
  UTF-8 text, or ``0x1E`` and a type letter (``s`` text, ``b`` bytes, ``j`` JSON) and
  the data, so any Redis client can publish text: ``PUBLISH microdot:chat hello``.
- A durable channel is also a stream of the same name: one Lua script ``XADD``\\s the
  message (``MAXLEN ~ retention``) and publishes ``0x1F id 0x1F payload``, so live
  messages and the stream agree on ids and order. Replay reads the stream with
  ``XREVRANGE`` (at most ``retention`` messages, even though Redis trims lazily).
- The subscriber connection is watched (``PING`` after ``ping_interval`` seconds of
  silence, dropped after ``timeout`` more); when it breaks it is re-established with
  back-off (0.1 s doubling up to ``reconnect_max``), every channel is subscribed again
  and the hub catches durable subscribers up from the streams.
- Commands (publish, replay) fail fast with :class:`~microdot.pubsub.PubSubError` while
  Redis is unreachable; they are not retried, so a message is never published twice.
"""
from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Dict, List, Optional, Set, Tuple, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from microdot.pubsub import BrokerListener, PubSubError

__all__ = ['RedisBroker', 'redis_broker']

MICRODOT_PLUGIN_API = 1

logger = logging.getLogger('microdot.pubsub.redis')

#: First delay before reconnecting, doubled after each failure.
RECONNECT_MIN = 0.1

_DURABLE_MARK = b'\x1f'

# XADD and PUBLISH in one step: subscribers see messages in stream-id order.
_PUBLISH_DURABLE = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'd', ARGV[2])
redis.call('PUBLISH', KEYS[1], '\\31' .. id .. '\\31' .. ARGV[2])
return id
"""

_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
#: (untyped in some redis-py versions)
_no_backoff: Any = NoBackoff


def _text(value: Any) -> str:
    return value.decode('utf-8', 'replace') if isinstance(value, bytes) else str(value)


class RedisBroker:
    """A :class:`~microdot.pubsub.Broker` on a Redis server, for one event loop.

    Args:
        url: A redis-py URL: ``redis://[[user]:password@]host[:port][/db]``,
            ``rediss://...`` (TLS), ``unix:///path/to/redis.sock[?db=N]``.
        listener: The hub that receives the messages.
        timeout: Seconds to connect, and to wait for a command's answer.
        prefix: Prepended to channel names to make Redis channel and stream names.
        ping_interval: Seconds of silence on the subscriber connection before it is
            checked with ``PING``.
        reconnect_max: Longest delay between two reconnection attempts, in seconds.
        **options: Passed to ``redis.asyncio.ConnectionPool.from_url``.
    """

    def __init__(self, url: str, listener: BrokerListener, *, timeout: float = 5.0,
                 prefix: str = 'microdot:', ping_interval: float = 15.0,
                 reconnect_max: float = 5.0, **options: Any) -> None:
        self.listener = listener
        self.timeout = timeout
        self.prefix = prefix
        self.ping_interval = ping_interval
        self.reconnect_max = reconnect_max
        options.setdefault('socket_connect_timeout', timeout)
        options.setdefault('socket_timeout', timeout)
        options.setdefault('retry', Retry(_no_backoff(), 0))  # commands are not retried
        options['decode_responses'] = False  # payloads are bytes
        options['protocol'] = 2  # pub/sub messages as replies (RESP3 makes them pushes)
        self.pool: Any = aioredis.ConnectionPool.from_url(url, **options)  # pyright: ignore[reportUnknownMemberType]
        self.client: Any = aioredis.Redis(connection_pool=self.pool)
        self.script: Any = self.client.register_script(_PUBLISH_DURABLE)
        self.where = self._describe()
        #: channels wanted -> future resolved once Redis confirmed the subscription
        self.channels: Dict[str, 'asyncio.Future[None]'] = {}
        #: SUBSCRIBE commands sent and not confirmed yet, per channel
        self.outstanding: Dict[str, int] = {}
        self.conn: Any = None
        self.reader: Optional['asyncio.Task[None]'] = None
        self.closed = False
        self.loop = asyncio.get_running_loop()
        self.last_received = 0.0
        self.restoring: Optional[Set[str]] = None

    def _describe(self) -> str:
        kwargs = self.pool.connection_kwargs
        if 'path' in kwargs:
            return 'unix:%s' % kwargs['path']
        return '%s:%s' % (kwargs.get('host', 'localhost'), kwargs.get('port', 6379))

    def _error(self, what: str, exc: BaseException) -> PubSubError:
        detail = str(exc) or type(exc).__name__
        return PubSubError('%s: Redis at %s: %s' % (what, self.where, detail))

    # -- commands -------------------------------------------------------------------

    async def publish(self, channel: str, payload: bytes,
                      retention: Optional[int]) -> Optional[str]:
        """Publish ``payload`` on ``channel`` (see :meth:`microdot.pubsub.Broker.publish`).

        A durable channel's message goes to its Redis stream and to the subscribers
        in one step (a script).

        Args:
            channel: The channel.
            payload: The encoded message.
            retention: For a durable channel, how many messages its stream keeps
                (about: trimmed with ``MAXLEN ~``); ``None`` otherwise.

        Returns:
            The message's stream id on a durable channel, else ``None``.

        Raises:
            microdot.pubsub.PubSubError: Redis is unreachable or failed.
        """
        name = self.prefix + channel
        try:
            if retention:
                event_id = await self.script(keys=[name], args=[retention, payload])
                return _text(event_id)
            await self.client.publish(name, payload)
            return None
        except _ERRORS as exc:
            raise self._error('publishing to %r' % channel, exc) from exc

    async def history(self, channel: str, after: Optional[str],
                      limit: int) -> List[Tuple[str, bytes]]:
        """The last retained messages of a durable channel, from its Redis stream.

        Args:
            channel: The channel.
            after: Only messages whose id is greater (``None``: all).
            limit: At most this many, the last ones.

        Returns:
            ``(id, payload)`` pairs, oldest first.

        Raises:
            microdot.pubsub.PubSubError: Redis is unreachable or failed.
        """
        try:
            if after is None:
                rows = await self.client.xrevrange(self.prefix + channel, '+', '-',
                                                   count=limit)
            else:  # inclusive range (any Redis version), the message itself dropped
                rows = await self.client.xrevrange(self.prefix + channel, '+', after,
                                                   count=limit + 1)
        except _ERRORS as exc:
            raise self._error('reading the stream of %r' % channel, exc) from exc
        out: List[Tuple[str, bytes]] = []
        for event_id, fields in rows:
            event_id = _text(event_id)
            if event_id != after:
                out.append((event_id, fields.get(b'd', b'')))
        out.reverse()
        return out[-limit:]

    async def last_id(self, channel: str) -> Optional[str]:
        """The id of the last message of a durable channel's Redis stream.

        Args:
            channel: The channel.

        Returns:
            The id, or ``None`` when the stream is empty.

        Raises:
            microdot.pubsub.PubSubError: Redis is unreachable or failed.
        """
        try:
            rows = await self.client.xrevrange(self.prefix + channel, '+', '-', count=1)
        except _ERRORS as exc:
            raise self._error('reading the stream of %r' % channel, exc) from exc
        return _text(rows[0][0]) if rows else None

    # -- subscriptions --------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        """Subscribe; return once Redis confirmed it.

        Messages published from then on are delivered. The subscriber connection is
        opened on the first subscription.

        Args:
            channel: The channel.
        """
        waiter = self.loop.create_future()
        self.channels[channel] = waiter
        if self.reader is None or self.reader.done():
            self.reader = asyncio.ensure_future(self._run())
        elif self.conn is not None:
            await self._send(self.conn, 'SUBSCRIBE', [channel])
        await asyncio.shield(waiter)

    async def unsubscribe(self, channel: str) -> None:
        """Stop the delivery of ``channel``'s messages.

        The subscriber connection is closed when no channel is left.

        Args:
            channel: The channel.
        """
        waiter = self.channels.pop(channel, None)
        if waiter is not None and not waiter.done():
            waiter.cancel()
        if not self.channels:
            # nothing left to listen to: drop the connection rather than leave a task
            # pending on a loop that may not run again (an idle WSGI thread's)
            await self._stop_reader()
        elif self.conn is not None:
            await self._send(self.conn, 'UNSUBSCRIBE', [channel])

    async def _stop_reader(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None and not reader.done():
            reader.cancel()
            await asyncio.wait({reader})

    async def _send(self, conn: Any, command: str, channels: List[str]) -> None:
        """Send (UN)SUBSCRIBE; a failure is the reader's to notice and repair."""
        if command == 'SUBSCRIBE':
            for channel in channels:
                self.outstanding[channel] = self.outstanding.get(channel, 0) + 1
        try:
            await conn.send_command(command, *[self.prefix + c for c in channels],
                                    check_health=False)
        except _ERRORS as exc:
            logger.debug('%s failed (the connection will be re-established): %s',
                         command, exc)

    async def _run(self) -> None:
        """Keep a subscriber connection up, for as long as the broker is open."""
        delay = RECONNECT_MIN
        down_since: Optional[float] = None
        while not self.closed:
            conn = self.pool.connection_class(
                **dict(self.pool.connection_kwargs, socket_timeout=None))
            try:
                await conn.connect()
                # from here on subscribe() sends its own SUBSCRIBE: no await between
                self.conn = conn
                self.outstanding.clear()
                channels = list(self.channels)
                self.restoring = set(channels) if down_since is not None else None
                if channels:
                    await self._send(conn, 'SUBSCRIBE', channels)
                if down_since is not None:
                    logger.info('Reconnected to Redis at %s after %.1fs', self.where,
                                self.loop.time() - down_since)
                    if not channels:
                        self.listener.restored()
                down_since = None
                delay = RECONNECT_MIN
                await self._listen(conn)
            except asyncio.CancelledError:
                raise
            except _ERRORS as exc:
                if self.closed:
                    break
                if down_since is None:
                    down_since = self.loop.time()
                    logger.warning('Lost the Redis subscriber connection to %s (%s); '
                                   'reconnecting', self.where, exc or type(exc).__name__)
                else:
                    logger.debug('Reconnecting to Redis at %s failed: %s', self.where, exc)
            finally:
                if self.conn is conn:
                    self.conn = None
                if not self.loop.is_closed():  # (closed: the coroutine is being dropped)
                    try:
                        await conn.disconnect()
                    except Exception:  # pragma: no cover - already broken
                        pass
            if self.closed:
                break
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.reconnect_max)

    async def _listen(self, conn: Any) -> None:
        """Read messages (in a task) and check a silent connection with PING."""
        self.last_received = self.loop.time()
        reading = asyncio.ensure_future(self._read(conn))
        try:
            while True:
                done, _ = await asyncio.wait({reading}, timeout=self.ping_interval)
                if done:
                    break
                if self.loop.time() - self.last_received < self.ping_interval:
                    continue
                sent = self.loop.time()
                await conn.send_command('PING', check_health=False)
                done, _ = await asyncio.wait({reading}, timeout=self.timeout)
                if done:
                    break
                if self.last_received < sent:
                    raise ConnectionError('no answer to PING within %gs' % self.timeout)
        finally:
            if not reading.done() and not self.loop.is_closed():
                reading.cancel()
                await asyncio.wait({reading})
        reading.result()

    async def _read(self, conn: Any) -> None:
        listener = self.listener
        prefix_len = len(self.prefix)
        while True:
            response = await conn.read_response()
            self.last_received = self.loop.time()
            if not isinstance(response, list):
                continue  # +PONG outside subscribed mode
            reply = cast(List[Any], response)  # type: ignore[redundant-cast]  # (pyright: not Unknown)
            if len(reply) < 3:
                continue
            kind = reply[0]
            if kind == b'message':
                channel = _text(reply[1])[prefix_len:]
                payload = reply[2]
                event_id: Optional[str] = None
                if payload[:1] == _DURABLE_MARK:
                    mark = payload.find(_DURABLE_MARK, 1)
                    if mark > 0:
                        event_id = payload[1:mark].decode('ascii', 'replace')
                        payload = payload[mark + 1:]
                listener.message(channel, event_id, payload)
            elif kind == b'subscribe':
                self._confirmed(_text(reply[1])[prefix_len:])

    def _confirmed(self, channel: str) -> None:
        left = self.outstanding.get(channel, 1) - 1
        if left > 0:
            self.outstanding[channel] = left
            return
        self.outstanding.pop(channel, None)
        waiter = self.channels.get(channel)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        restoring = self.restoring
        if restoring is not None:
            restoring.discard(channel)
            if not restoring:
                self.restoring = None
                self.listener.restored()

    # -- shutdown -------------------------------------------------------------------

    async def close(self) -> None:
        """End every subscription and close the connections to Redis."""
        self.closed = True
        for waiter in self.channels.values():
            if not waiter.done():
                waiter.cancel()
        self.channels.clear()
        await self._stop_reader()
        close = getattr(self.client, 'aclose', None) or self.client.close
        await close()
        await self.pool.disconnect()


def redis_broker(url: str, listener: BrokerListener, *, timeout: float = 5.0,
                 **options: Any) -> RedisBroker:
    """The ``redis``, ``rediss`` and ``unix`` entries of ``microdot.brokers``.

    Args:
        url: The Redis URL.
        listener: Where messages go (the hub).
        timeout: Seconds to connect and to wait for an answer.
        **options: See :class:`RedisBroker`.

    Returns:
        The broker for the running event loop.
    """
    return RedisBroker(url, listener, timeout=timeout, **options)
