"""microdot.pubsub with the memory broker: the API, ordering, bounded queues, durable
channels and replay, several event loops in one process, plugin discovery."""
import asyncio
import subprocess
import sys
import threading

import pytest

from microdot.plugins import PluginError, install_hint
from microdot.pubsub import Message, PubSub, PubSubError, SlowSubscriberError
from microdot.pubsub_hub import decode_payload, encode_payload, event_key
from pubsub_checks import publishing_forever

_names = iter(range(10 ** 6))


def bus():
    """A memory bus of the test's own."""
    return 'memory://test-%d' % next(_names)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def take(sub, n, timeout=5):
    return [await sub.get(timeout) for _ in range(n)]


def test_messages_arrive_in_order_with_their_types():
    async def main():
        pubsub = PubSub(None, bus())
        sent = ['a', b'b', {'c': 1}, [2], 3.5, None, False, '\x1e', '']
        async with pubsub.subscribe('ch') as sub:
            for message in sent:
                await pubsub.publish('ch', message)
            got = await take(sub, len(sent))
        await pubsub.close()
        return sent, got

    sent, got = run(main())
    assert [m.data for m in got] == sent
    assert [type(m.data) for m in got] == [type(m) for m in sent]
    assert got[0] == Message('ch', 'a', None)


def test_payload_format():
    assert encode_payload('plain') == b'plain'
    assert encode_payload(b'x') == b'\x1ebx'
    assert encode_payload({'a': 1}) == b'\x1ej{"a":1}'
    assert encode_payload('\x1eodd') == b'\x1es\x1eodd'
    assert decode_payload(b'\xff') == b'\xff'
    with pytest.raises(TypeError, match='str, bytes or JSON-able'):
        encode_payload(object())
    assert event_key('1718000000000-7') == (1718000000000, 7)
    assert event_key('5') == (5, 0)
    for bad in ('', 'x-1', '1-x', '-1', '1-2-3'):
        with pytest.raises(ValueError):
            event_key(bad)


def test_channels_and_buses_are_separate():
    async def main():
        name = bus()
        one, same, other = PubSub(None, name), PubSub(None, name), PubSub(None, bus())
        async with one.subscribe('a') as a, one.subscribe('b') as b, \
                other.subscribe('a') as elsewhere:
            await same.publish('a', 'for a')
            await same.publish('b', 'for b')
            got = (await a.get(5)).data, (await b.get(5)).data
            with pytest.raises(asyncio.TimeoutError):
                await elsewhere.get(0.1)
        for pubsub in (one, same, other):
            await pubsub.close()
        return got

    assert run(main()) == ('for a', 'for b')


def test_one_order_for_every_subscriber_across_threads():
    """Two threads publish at once while subscribers on three other event loops (as a
    gthread worker's threads have) listen: every subscriber sees the same sequence, and
    each publisher's messages in the order it sent them."""
    name = bus()
    results = {}
    subscribed = threading.Barrier(4)
    start = threading.Event()

    def subscriber(index):
        async def main():
            pubsub = PubSub(None, name)
            async with pubsub.subscribe('x') as sub:
                subscribed.wait(10)
                results[index] = [m.data for m in await take(sub, 400)]
        asyncio.run(main())

    def publisher(tag):
        async def main():
            pubsub = PubSub(None, name)
            start.wait(10)
            for i in range(200):
                await pubsub.publish('x', [tag, i])
        asyncio.run(main())

    threads = [threading.Thread(target=subscriber, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=publisher, args=(tag,)) for tag in 'pq']
    for t in threads:
        t.start()
    subscribed.wait(10)
    start.set()
    for t in threads:
        t.join(30)
    assert len(results) == 3
    assert results[0] == results[1] == results[2]
    for tag in 'pq':
        assert [i for t, i in results[0] if t == tag] == list(range(200))


def test_a_slow_subscriber_is_cut_off_while_others_continue(caplog):
    async def main():
        pubsub = PubSub(None, bus(), max_queue=1000)
        received = []
        async with pubsub.subscribe('ch') as fast, pubsub.subscribe('ch') as slow, \
                pubsub.subscribe('ch', max_queue=5) as slower:
            for i in range(1500):
                await pubsub.publish('ch', i)
                if i % 100 == 99:
                    await asyncio.sleep(0)  # deliveries happen on the loop
                    while fast._queue:
                        received.append((await fast.get()).data)
            with pytest.raises(SlowSubscriberError) as exc_info:
                await slow.get(1)
            with pytest.raises(SlowSubscriberError):
                await slower.get(1)
            await pubsub.publish('ch', 'more')
            received.append((await fast.get(1)).data)
        await pubsub.close()
        return str(exc_info.value), received

    message, received = run(main())
    assert "fell 1000 messages behind (max_queue)" in message
    assert received == list(range(1500)) + ['more']
    assert sum('cannot keep up' in r.getMessage() for r in caplog.records) == 2


def test_durable_retention_and_replay():
    async def main():
        pubsub = PubSub(None, bus())
        pubsub.durable('log', retention=3)
        ids = [await pubsub.publish('log', i) for i in range(10)]
        assert await pubsub.publish('other', 'x') is None
        out = {}
        for label, last in (('old', ids[0]), ('recent', ids[8]), ('latest', ids[9]),
                            ('malformed', 'not-an-id'), ('none', None)):
            async with pubsub.subscribe('log', last_event_id=last) as sub:
                new_id = await pubsub.publish('log', label)
                got = []
                while True:
                    message = await sub.get(5)
                    got.append((message.data, message.id))
                    if message.data == label:
                        break
                out[label] = got
                assert sub.last_id == new_id
        await pubsub.close()
        return ids, out

    ids, out = run(main())
    assert len(set(ids)) == 10 and ids == sorted(ids, key=event_key)
    assert out['old'][:3] == [(7, ids[7]), (8, ids[8]), (9, ids[9])]
    assert [d for d, _ in out['old']] == [7, 8, 9, 'old']
    assert [d for d, _ in out['recent']] == [9, 'old', 'recent']
    assert [d for d, _ in out['latest']] == ['old', 'recent', 'latest']
    assert [d for d, _ in out['malformed']] == ['malformed']
    assert [d for d, _ in out['none']] == ['none']


def test_replay_while_publishing_has_no_gap_and_no_duplicate():
    async def main():
        pubsub = PubSub(None, bus(), durable={'feed': 10000})
        first = await pubsub.publish('feed', 0)
        async with publishing_forever(pubsub, 'feed'):
            await asyncio.sleep(0.01)
            async with pubsub.subscribe('feed', last_event_id=first) as sub:
                got = [m.data for m in await take(sub, 500)]
        await pubsub.close()
        return got

    assert run(main()) == list(range(1, 501))


def test_durable_prefixes():
    pubsub = PubSub(None, bus(), durable={'room:*': 10, 'room:vip:*': 50, 'news': 5})
    assert pubsub.retention('room:1') == 10
    assert pubsub.retention('room:vip:1') == 50
    assert pubsub.retention('news') == 5
    assert pubsub.retention('newsroom') is None
    pubsub.durable('room:*', 20)
    assert pubsub.retention('room:1') == 20


def test_close_ends_subscriptions_and_the_pubsub_can_be_used_again():
    async def main():
        pubsub = PubSub(None, bus())
        async with pubsub.subscribe('ch') as sub:
            closing = asyncio.ensure_future(pubsub.close())
            assert [m async for m in sub] == []
            await closing
            with pytest.raises(PubSubError, match='ended'):
                await sub.get(1)
        async with pubsub.subscribe('ch') as sub:
            await pubsub.publish('ch', 'again')
            assert (await sub.get(1)).data == 'again'
        await pubsub.close()

    run(main())


def test_the_application_shutdown_closes_it():
    from microdot import Microdot
    app = Microdot()
    pubsub = PubSub(app, bus())

    async def main():
        async with pubsub.subscribe('ch') as sub:
            await app.run_shutdown()
            assert [m async for m in sub] == []

    run(main())


def test_misuse_is_reported():
    with pytest.raises(ValueError, match="starts with its scheme"):
        PubSub(None, 'localhost:6379')
    with pytest.raises(PluginError, match="no broker named 'nats' is installed"):
        PubSub(None, 'nats://127.0.0.1')
    assert install_hint('brokers', 'redis') == (
        "the 'redis' broker needs microdot-redis: pip install 'microdot-redis'")
    with pytest.raises(TypeError, match='no options'):
        run(PubSub(None, bus(), prefix='x').publish('ch', 'x'))
    pubsub = PubSub(None, bus())
    with pytest.raises(ValueError, match='retention'):
        pubsub.durable('ch', 0)
    with pytest.raises(ValueError, match='channel name'):
        pubsub.subscribe('')
    with pytest.raises(ValueError, match='max_queue'):
        PubSub(None, bus(), max_queue=0)

    async def iterate_unopened():
        async for _ in pubsub.subscribe('ch'):
            pass

    with pytest.raises(RuntimeError, match='async with'):
        run(iterate_unopened())
    with pytest.raises(TypeError, match='JSON-able'):
        run(pubsub.publish('ch', object()))


def test_microdot_plugins_lists_the_brokers():
    out = subprocess.run([sys.executable, '-m', 'microdot', 'plugins'], capture_output=True,
                         text=True, timeout=60).stdout
    blocks, current = {}, None
    for line in out.splitlines():
        if not line.startswith(' '):
            current = blocks.setdefault(line.split(' ')[0], [])
        elif current is not None:
            current.append(line.split())
    assert ['brokers:', 'memory'] in blocks['microdot-core']
    assert ['brokers:', 'redis,', 'rediss,', 'unix'] in blocks['microdot-redis']
