"""What the pub/sub broker tests share (tests/pubsub/test_memory.py,
tests/pubsub/test_redis_broker.py)."""
import asyncio
from contextlib import asynccontextmanager


@asynccontextmanager
async def publishing_forever(publisher, channel):
    """Publish 1, 2, 3... on ``channel`` with ``publisher`` (a ``PubSub``), giving the
    loop a turn after each, until the block ends; then wait for the last publish."""
    stop = asyncio.Event()

    async def publish_forever():
        i = 1
        while not stop.is_set():
            await publisher.publish(channel, i)
            i += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(publish_forever())
    try:
        yield
    finally:
        stop.set()
        await task
