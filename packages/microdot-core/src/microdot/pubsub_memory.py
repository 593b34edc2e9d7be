"""The ``memory`` broker: publish/subscribe within one process, no dependencies.

``PubSub(app)`` (``url='memory://'``) uses it. Every ``PubSub`` of the process with the
same URL shares one bus (``memory://`` and ``memory://other`` are two), whatever the
event loop or thread that publishes or subscribes: a message published on one thread's
loop reaches subscribers on the other loops through ``call_soon_threadsafe``, in
publish order. Durable channels keep their ``retention`` last messages in memory,
numbered like Redis stream ids. Nothing crosses a process boundary: with several
worker processes, use a broker such as Redis (``pip install microdot-redis``).
"""
from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Set, Tuple

from .pubsub_hub import BrokerListener, event_key

__all__ = ['MemoryBroker', 'memory_broker']

MICRODOT_PLUGIN_API = 1


class _Bus:
    """The state shared by the memory brokers of one URL in this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.subscribers: Dict[str, Set['MemoryBroker']] = {}
        self.retained: Dict[str, Deque[Tuple[Tuple[int, int], str, bytes]]] = {}
        self.last = (0, -1)

    def next_id(self) -> Tuple[Tuple[int, int], str]:
        """A new id, greater than every id given before (call with the lock held)."""
        ms = int(time.time() * 1000)
        last_ms, last_seq = self.last
        key = (last_ms, last_seq + 1) if ms <= last_ms else (ms, 0)
        self.last = key
        return key, '%d-%d' % key


_buses: Dict[str, _Bus] = {}
_buses_lock = threading.Lock()


def _forget_buses() -> None:
    """In a forked child: a bus of its own (the parent's subscribers are not here)."""
    global _buses_lock
    _buses_lock = threading.Lock()
    _buses.clear()


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_forget_buses)


def _bus(url: str) -> _Bus:
    with _buses_lock:
        bus = _buses.get(url)
        if bus is None:
            bus = _buses[url] = _Bus()
        return bus


class MemoryBroker:
    """A :class:`~microdot.pubsub_hub.Broker` on an in-process bus, for one event loop.

    Args:
        url: ``memory://`` or ``memory://NAME`` (a separate bus per name).
        listener: Where messages go (the hub).
        timeout: Unused (nothing here waits).
        **options: None are accepted.

    Raises:
        TypeError: Options were given.
    """

    def __init__(self, url: str, listener: BrokerListener, *, timeout: float = 5.0,
                 **options: Any) -> None:
        if options:
            raise TypeError('the memory broker takes no options (got %s)'
                            % ', '.join(sorted(options)))
        self.bus = _bus(url)
        self.listener = listener
        self.loop = asyncio.get_running_loop()
        self.channels: Set[str] = set()

    def deliver(self, current: asyncio.AbstractEventLoop, channel: str,
                event_id: Optional[str], payload: bytes) -> bool:
        """Schedule a message for this broker's loop.

        Called with the bus lock held, so every loop gets the messages in one order.

        Args:
            current: The event loop of the publisher.
            channel: The channel.
            event_id: The message id on a durable channel, else ``None``.
            payload: The encoded message.

        Returns:
            False if this broker's loop is closed (its subscriptions are dropped).
        """
        loop = self.loop
        try:
            if loop is current:  # no wake-up needed: the loop is running this
                loop.call_soon(self.listener.message, channel, event_id, payload)
            else:
                loop.call_soon_threadsafe(self.listener.message, channel, event_id,
                                          payload)
        except RuntimeError:  # closed loop (a thread that ended)
            return False
        return True

    async def subscribe(self, channel: str) -> None:
        """Subscribe: messages published from now on are delivered.

        Args:
            channel: The channel.
        """
        with self.bus.lock:
            self.bus.subscribers.setdefault(channel, set()).add(self)
        self.channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        """Stop the delivery of ``channel``'s messages.

        Args:
            channel: The channel.
        """
        self.channels.discard(channel)
        with self.bus.lock:
            subs = self.bus.subscribers.get(channel)
            if subs is not None:
                subs.discard(self)
                if not subs:
                    del self.bus.subscribers[channel]

    async def publish(self, channel: str, payload: bytes,
                      retention: Optional[int]) -> Optional[str]:
        """Deliver ``payload`` to the channel's subscribers on this process's bus.

        Args:
            channel: The channel.
            payload: The encoded message.
            retention: For a durable channel, how many messages it keeps; ``None``
                otherwise.

        Returns:
            The message's id on a durable channel, else ``None``.
        """
        bus = self.bus
        current = asyncio.get_running_loop()
        event_id: Optional[str] = None
        with bus.lock:
            if retention:
                key, event_id = bus.next_id()
                kept = bus.retained.get(channel)
                if kept is None or kept.maxlen != retention:
                    kept = bus.retained[channel] = deque(kept or (), maxlen=retention)
                kept.append((key, event_id, payload))
            gone = [sub for sub in bus.subscribers.get(channel, ())
                    if not sub.deliver(current, channel, event_id, payload)]
            for sub in gone:
                bus.subscribers[channel].discard(sub)
        return event_id

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
        low = event_key(after) if after is not None else None
        out: List[Tuple[str, bytes]] = []
        with self.bus.lock:
            for key, event_id, payload in reversed(self.bus.retained.get(channel, ())):
                if (low is not None and key <= low) or len(out) >= limit:
                    break
                out.append((event_id, payload))
        out.reverse()
        return out

    async def last_id(self, channel: str) -> Optional[str]:
        """The id of the last retained message of a durable channel.

        Args:
            channel: The channel.

        Returns:
            The id, or ``None`` if none is retained.
        """
        with self.bus.lock:
            kept = self.bus.retained.get(channel)
            return kept[-1][1] if kept else None

    async def close(self) -> None:
        """Unsubscribe from every channel."""
        for channel in list(self.channels):
            await self.unsubscribe(channel)


def memory_broker(url: str, listener: BrokerListener, *, timeout: float = 5.0,
                  **options: Any) -> MemoryBroker:
    """The ``memory`` entry of ``microdot.brokers``: a broker on this process's bus.

    Args:
        url: ``memory://`` or ``memory://NAME`` (a separate bus per name).
        listener: Where messages go (the hub).
        timeout: Unused (nothing here waits).
        **options: None are accepted.

    Returns:
        The broker for the running event loop.
    """
    return MemoryBroker(url, listener, timeout=timeout, **options)
