"""The Redis broker (microdot-redis) against a real redis-server, in-process: delivery,
types, durable channels on streams, replay without duplicates, outages."""
import asyncio
import threading
import time
import uuid

import pytest

from microdot.pubsub import PubSub, PubSubError, SlowSubscriberError
from pubsub_checks import publishing_forever


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def prefix():
    """A Redis name prefix of the test's own (the session's Redis is shared)."""
    return 'test-%s:' % uuid.uuid4().hex[:8]


async def take(sub, n, timeout=10):
    return [await sub.get(timeout) for _ in range(n)]


def test_publish_subscribe_in_order_with_types(redis_server):
    async def main():
        pubsub = PubSub(None, redis_server.url, prefix=prefix())
        sent = ['text', b'\x00\xffbytes', {'a': [1, 2]}, [1, 'x'], 3, None, True,
                '\x1estarts with the tag byte', '']
        async with pubsub.subscribe('chat') as sub:
            for message in sent:
                assert await pubsub.publish('chat', message) is None  # not durable
            got = await take(sub, len(sent))
        await pubsub.close()
        return got

    got = run(main())
    assert [m.data for m in got] == ['text', b'\x00\xffbytes', {'a': [1, 2]}, [1, 'x'], 3,
                                     None, True, '\x1estarts with the tag byte', '']
    assert [type(m.data) for m in got][:2] == [str, bytes]
    assert all(m.channel == 'chat' and m.id is None for m in got)


def test_other_redis_clients_publish_plain_text(redis_server):
    """The wire format: a plain PUBLISH from any Redis client arrives as text."""
    name = prefix()

    async def main():
        pubsub = PubSub(None, redis_server.url, prefix=name)
        async with pubsub.subscribe('news') as sub:
            with redis_server.client() as c:
                c.publish(name + 'news', 'héllo'.encode())
                c.publish(name + 'news', b'\xff\xfe')  # not UTF-8: bytes
            got = await take(sub, 2)
        await pubsub.close()
        return got

    assert [m.data for m in run(main())] == ['héllo', b'\xff\xfe']


def test_every_subscriber_of_every_process_and_loop(redis_server):
    """Two PubSubs (as two processes would) and a second event loop in a thread (as
    a gthread worker has): each subscriber receives every message once, in order."""
    name = prefix()
    got_in_thread = []
    ready = threading.Event()

    def other_loop():
        async def main():
            other = PubSub(None, redis_server.url, prefix=name)
            async with other.subscribe('room') as sub:
                ready.set()
                got_in_thread.extend(m.data for m in await take(sub, 50))
            await other.close()
        asyncio.run(main())

    thread = threading.Thread(target=other_loop)
    thread.start()
    assert ready.wait(10)

    async def main():
        pubsub = PubSub(None, redis_server.url, prefix=name)
        async with pubsub.subscribe('room') as a, pubsub.subscribe('room') as b:
            redis_server.wait_numsub(name + 'room', 2)  # one connection per loop
            for i in range(50):
                await pubsub.publish('room', i)
            got = [[m.data for m in await take(sub, 50)] for sub in (a, b)]
        await pubsub.close()
        return got

    got = run(main())
    thread.join(30)
    assert got == [list(range(50))] * 2
    assert got_in_thread == list(range(50))


def test_durable_channel_is_a_stream_with_retention(redis_server):
    name = prefix()

    async def main():
        pubsub = PubSub(None, redis_server.url, prefix=name, durable={'log': 5})
        ids = [await pubsub.publish('log', 'm%d' % i) for i in range(300)]
        async with pubsub.subscribe('log', last_event_id=ids[0]) as sub:
            replayed = await take(sub, 5)
            await pubsub.publish('log', 'live')
            live = await sub.get(5)
        async with pubsub.subscribe('log', last_event_id=ids[297]) as sub:
            recent = await take(sub, 3)
        async with pubsub.subscribe('log') as sub:  # no id: live messages only
            await pubsub.publish('log', 'next')
            fresh = await sub.get(5)
        await pubsub.close()
        return ids, replayed, live, recent, fresh

    ids, replayed, live, recent, fresh = run(main())
    with redis_server.client() as c:
        stream = c.xrange(name + 'log')
        length = c.xlen(name + 'log')
    # the stream ids are the message ids; Redis trims lazily (MAXLEN ~), replay exactly
    assert [i.decode() for i, _ in stream[-3:]][:1] == [ids[-1]]  # ids[-1], live, next
    assert 5 <= length < 300
    assert [m.data for m in replayed] == ['m295', 'm296', 'm297', 'm298', 'm299']
    assert [m.id for m in replayed] == ids[295:]
    assert live.data == 'live' and live.id > ids[-1]
    assert [m.data for m in recent] == ['m298', 'm299', 'live']
    assert fresh.data == 'next'


def test_replay_while_publishing_has_no_gap_and_no_duplicate(redis_server):
    """A subscriber joining with a Last-Event-ID while messages keep coming gets every
    message after that id exactly once: retained ones, then live ones."""
    name = prefix()

    async def main():
        pubsub = PubSub(None, redis_server.url, prefix=name, durable={'feed': 1000})
        publisher = PubSub(None, redis_server.url, prefix=name, durable={'feed': 1000})
        first = await publisher.publish('feed', 0)
        async with publishing_forever(publisher, 'feed'):
            await asyncio.sleep(0.05)
            results = []
            for _ in range(3):
                async with pubsub.subscribe('feed', last_event_id=first) as sub:
                    got = await take(sub, 200)
                    results.append([m.data for m in got])
        await pubsub.close()
        await publisher.close()
        return results

    for numbers in run(main()):
        assert numbers == list(range(1, 201))


def test_slow_subscriber_is_cut_off_while_others_continue(redis_server):
    async def main():
        pubsub = PubSub(None, redis_server.url, prefix=prefix())
        async with pubsub.subscribe('fast') as fast, \
                pubsub.subscribe('fast', max_queue=10) as slow:
            for i in range(100):
                await pubsub.publish('fast', i)
            got = [m.data for m in await take(fast, 100)]
            with pytest.raises(SlowSubscriberError, match='max_queue'):
                await slow.get(5)
            await pubsub.publish('fast', 'after')
            after = await fast.get(5)
        await pubsub.close()
        return got, after

    got, after = run(main())
    assert got == list(range(100)) and after.data == 'after'


def test_publish_and_subscribe_fail_within_the_timeout_while_redis_is_down(own_redis):
    async def main():
        pubsub = PubSub(None, own_redis.url, timeout=1.0)
        await pubsub.publish('x', 'up')
        own_redis.kill()
        timings = []
        for attempt in (lambda: pubsub.publish('x', 'down'),
                        lambda: pubsub.subscribe('x').__aenter__()):
            start = time.monotonic()
            with pytest.raises(PubSubError, match='127.0.0.1:%d' % own_redis.port):
                await attempt()
            timings.append(time.monotonic() - start)
        await pubsub.close()
        return timings

    for elapsed in run(main()):
        assert elapsed < 2.5


def test_subscribers_resume_after_redis_restarts(own_redis):
    """Redis killed and started again (empty, as persistence is off): subscribers
    reconnect by themselves and receive what is published afterwards, once."""
    async def main():
        pubsub = PubSub(None, own_redis.url, timeout=1.0, reconnect_max=0.5,
                        durable={'d': 100})
        async with pubsub.subscribe('p') as plain, pubsub.subscribe('d') as durable:
            await pubsub.publish('p', 'before')
            await pubsub.publish('d', 'before')
            assert (await plain.get(5)).data == 'before'
            assert (await durable.get(5)).data == 'before'
            own_redis.kill()
            with pytest.raises(PubSubError):
                await pubsub.publish('p', 'lost')
            own_redis.start()
            await asyncio.to_thread(own_redis.wait_numsub, 'microdot:p', 1)
            await asyncio.to_thread(own_redis.wait_numsub, 'microdot:d', 1)
            for i in range(5):
                await pubsub.publish('p', i)
                await pubsub.publish('d', i)
            got = ([m.data for m in await take(plain, 5)],
                   [m.data for m in await take(durable, 5)])
            with pytest.raises(asyncio.TimeoutError):
                await durable.get(0.3)  # nothing twice
        await pubsub.close()
        return got

    assert run(main()) == (list(range(5)), list(range(5)))


def test_durable_subscriber_catches_up_after_its_connection_is_cut(redis_server):
    """Messages published while the subscriber connection is down (CLIENT KILL: a
    network cut) are read back from the stream when it reconnects: every message once,
    in order."""
    name = prefix()

    async def main():
        pubsub = PubSub(None, redis_server.url, prefix=name, reconnect_max=0.5,
                        durable={'orders': 1000})
        publisher = PubSub(None, redis_server.url, prefix=name, durable={'orders': 1000})
        async with pubsub.subscribe('orders') as sub:
            await publisher.publish('orders', -1)
            assert (await sub.get(5)).data == -1
            with redis_server.client() as c:
                assert c.client_kill_filter(_type='pubsub') >= 1
            for i in range(30):
                await publisher.publish('orders', i)
            got = [m.data for m in await take(sub, 30)]
            with pytest.raises(asyncio.TimeoutError):
                await sub.get(0.3)
        await pubsub.close()
        await publisher.close()
        return got

    assert run(main()) == list(range(30))


def test_unix_socket_url(own_redis):
    async def main():
        pubsub = PubSub(None, 'unix://%s' % own_redis.unix_socket)
        async with pubsub.subscribe('u') as sub:
            await pubsub.publish('u', 'over a unix socket')
            got = await sub.get(5)
        await pubsub.close()
        return got

    assert run(main()).data == 'over a unix socket'


def test_leaving_and_closing_release_the_redis_connections(redis_server):
    name = prefix()

    async def main():
        pubsub = PubSub(None, redis_server.url, prefix=name)
        async with pubsub.subscribe('c'):
            assert redis_server.numsub(name + 'c') == 1
        assert redis_server.numsub(name + 'c') == 0
        async with pubsub.subscribe('c') as sub:
            closing = asyncio.ensure_future(pubsub.close())
            assert [m async for m in sub] == []  # iteration ends at close
            await closing
        with redis_server.client() as c:
            names = [client.get('name') for client in c.client_list()]
        return names

    run(main())
    with redis_server.client() as c:
        assert c.pubsub_numsub(name + 'c') == [((name + 'c').encode(), 0)]


def test_rediss_url_over_tls(tmp_path):
    """``rediss://``: TLS to a redis-server started with a test certificate."""
    import shutil
    import subprocess

    from pubsub_redis import RedisServer
    openssl = shutil.which('openssl')
    if openssl is None:
        pytest.skip('the openssl command is needed to make a test certificate')
    cert, key = tmp_path / 'cert.pem', tmp_path / 'key.pem'
    subprocess.run([openssl, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
                    '-keyout', str(key), '-out', str(cert), '-subj', '/CN=127.0.0.1',
                    '-addext', 'subjectAltName=IP:127.0.0.1'], check=True,
                   capture_output=True, timeout=60)
    server = RedisServer(tmp_path)
    server.extra_args = ['--port', '0', '--tls-port', str(server.port),
                         '--tls-cert-file', str(cert), '--tls-key-file', str(key),
                         '--tls-ca-cert-file', str(cert), '--tls-auth-clients', 'no']
    server.start(probe=False)

    async def main():
        pubsub = PubSub(None, 'rediss://127.0.0.1:%d/0' % server.port,
                        ssl_ca_certs=str(cert), durable={'secure': 10})
        async with pubsub.subscribe('secure') as sub:
            event_id = await pubsub.publish('secure', 'over TLS')
            got = await sub.get(5)
        await pubsub.close()
        return event_id, got

    try:
        event_id, got = run(main())
    finally:
        server.stop()
    assert got.data == 'over TLS' and got.id == event_id
