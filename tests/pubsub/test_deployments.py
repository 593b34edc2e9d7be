"""Publish/subscribe across worker processes with Redis, on every deployment: the
built-in server with 4 workers, uvicorn and hypercorn with 2, gunicorn with 2 (gthread
and sync). Clients attached to different workers each receive every message exactly
once, in order. Real servers, real Redis, real clients, all on 127.0.0.1."""
import asyncio
import os
import signal
import socket
import time
import uuid

import httpx
import pytest

from microdot.pubsub import PubSub
from pubsub_clients import (SSEClient, WSClient, new_port, probe_until_subscribed,
                            start_server, wait_until)

pytestmark = pytest.mark.skipif(not hasattr(os, 'fork'),
                                reason='the servers under test fork worker processes')

MESSAGES = 30


def channel_name(kind='chat'):
    return '%s-%s' % (kind, uuid.uuid4().hex[:8])


def run(coro, timeout=90):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def open_clients(make, want_workers, at_least, at_most=32, attempts=1):
    """Open at least ``at_least`` clients, in concurrent bursts (which spread over the
    workers better than one connection after another), until ``want_workers``
    distinct workers serve them or ``at_most`` clients are open. Where workers share
    one listening socket, the kernel may hand a whole run of connections to one of
    them; then the clients are closed and opened again, up to ``attempts`` times."""
    for attempt in range(attempts):
        clients = []
        while len(clients) < at_most:
            burst = max(2, min(at_least - len(clients), at_most - len(clients)))
            clients += await asyncio.gather(*[make().start() for _ in range(burst)])
            if len({c.pid for c in clients}) >= want_workers and len(clients) >= at_least:
                return clients
        if attempt < attempts - 1:
            for c in clients:
                await c.close()
    return clients


async def cross_worker_delivery(server, workers, sse_count, ws_count, publish_over_http,
                                redis_url, spare, attempts):
    channel = channel_name()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        outside = PubSub(None, redis_url)

        async def publish(text):
            if publish_over_http:
                res = await http.post(server.url + '/publish/' + channel, content=text)
                assert res.status_code == 200, res.text
                return int(res.headers['x-worker-pid'])
            await outside.publish(channel, text)
            return None

        sse = await open_clients(lambda: SSEClient(http, server.url + '/events/' + channel),
                                 workers, sse_count, sse_count + spare, attempts)
        ws = await open_clients(lambda: WSClient('ws://127.0.0.1:%d/ws/%s'
                                                 % (server.port, channel)),
                                workers, ws_count, ws_count + spare,
                                attempts) if ws_count else []
        clients = sse + ws
        try:
            await probe_until_subscribed(publish, clients)
            publishers = set()
            for i in range(MESSAGES):
                publishers.add(await publish('m%d' % i))
            expected = ['m%d' % i for i in range(MESSAGES)]
            if ws:
                # Published by that client's worker: one other than the HTTP
                # publishes' when there is one (the kernel may hand every short-lived
                # publishing connection to the same worker), so two workers publish.
                sender = next((c for c in ws if c.pid not in publishers), ws[0])
                await sender.send('from-ws')
                publishers.add(sender.pid)
                expected.append('from-ws')
            await wait_until(lambda: all(len(c.data) >= len(expected) for c in clients),
                             clients, what='every message at every client')
            return ([c.pid for c in sse], [c.pid for c in ws], publishers,
                    [c.data for c in clients], expected)
        finally:
            for c in clients:
                await c.close()
            await outside.close()


# spare: more clients that may be opened until two workers serve them (gunicorn's
# threads are a fixed number; a sync worker holds one stream, so the publisher is the
# test itself, on the same Redis). attempts: how often they may all be opened again
# (not under gunicorn: a thread serving a stream whose client left is free again only
# at the stream's next message, so new attempts would run out of threads)
@pytest.mark.parametrize('kind,workers,sse_count,ws_count,over_http,spare,attempts', [
    ('builtin', 4, 16, 8, True, 16, 3),
    ('uvicorn', 2, 8, 4, True, 16, 3),
    ('hypercorn', 2, 8, 4, True, 16, 3),
    ('gunicorn-gthread', 2, 6, 4, True, 8, 1),
    ('gunicorn-sync', 2, 2, 0, False, 0, 1),
])
def test_every_client_of_every_worker_gets_every_message_once_in_order(
        redis_server, kind, workers, sse_count, ws_count, over_http, spare, attempts):
    server = start_server(kind, new_port(), {'PUBSUB_URL': redis_server.url}, workers)
    try:
        sse_pids, ws_pids, publishers, received, expected = run(cross_worker_delivery(
            server, workers, sse_count, ws_count, over_http, redis_server.url, spare,
            attempts))
    finally:
        server.stop()
    assert len(set(sse_pids)) >= 2, 'the SSE clients all landed on one worker'
    if ws_pids:
        assert len(set(ws_pids)) >= 2, 'the WebSocket clients all landed on one worker'
    if over_http:
        assert len(publishers) >= 2, 'every message was published by one worker'
    for data in received:
        assert data == expected  # each message once, in publish order
    assert 'Traceback' not in server.output, server.output


def test_redis_killed_and_restarted_mid_run(own_redis):
    """With 2 workers serving SSE clients: Redis dies, publishing answers 503 within the
    timeout, Redis comes back (empty), the workers resubscribe by themselves and the
    clients get what follows; a durable channel also gets what was published before
    its subscriptions were back, read from the stream. Nothing twice."""
    env = {'PUBSUB_URL': own_redis.url, 'PUBSUB_TIMEOUT': '1',
           'PUBSUB_RECONNECT_MAX': '0.5'}
    server = start_server('builtin', new_port(), env, workers=2)
    plain, durable = channel_name('plain'), channel_name('durable')

    async def main():
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(
                max_connections=100, max_keepalive_connections=0)) as http:
            async def publish(channel, text):
                return await http.post(server.url + '/publish/' + channel, content=text)

            clients = {}
            for channel in (plain, durable):
                clients[channel] = await open_clients(
                    lambda: SSEClient(http, server.url + '/events/' + channel), 2, 4, 12)
                await probe_until_subscribed(
                    lambda text: publish(channel, text), clients[channel])
            everyone = clients[plain] + clients[durable]
            for channel in (plain, durable):
                assert (await publish(channel, 'before')).status_code == 200
            await wait_until(lambda: all(c.data == ['before'] for c in everyone),
                             everyone, what='the first message')

            own_redis.kill()
            started = time.monotonic()
            res = await publish(plain, 'lost')
            elapsed = time.monotonic() - started
            assert res.status_code == 503 and 'Redis at 127.0.0.1' in res.text, res.text
            assert elapsed < 3.0

            own_redis.start()
            outside = PubSub(None, own_redis.url, durable={'durable-*': 100})
            for i in range(5):  # before the workers are back: only the stream has them
                await outside.publish(durable, 'gap%d' % i)
            pids = {c.pid for c in everyone}
            await asyncio.to_thread(own_redis.wait_numsub, 'microdot:' + plain, len(pids))
            await asyncio.to_thread(own_redis.wait_numsub, 'microdot:' + durable, len(pids))
            for i in range(5):
                for channel in (plain, durable):
                    assert (await publish(channel, 'after%d' % i)).status_code == 200
            await outside.close()
            await wait_until(lambda: all(len(c.data) >= 6 for c in clients[plain]) and
                             all(len(c.data) >= 11 for c in clients[durable]),
                             everyone, what='the messages after the restart')
            result = ([c.data for c in clients[plain]], [c.data for c in clients[durable]],
                      pids)
            for c in everyone:
                await c.close()
            return result

    try:
        plain_got, durable_got, pids = run(main())
    finally:
        server.stop()
    assert len(pids) == 2
    after = ['after%d' % i for i in range(5)]
    for data in plain_got:
        assert data == ['before'] + after
    for data in durable_got:
        assert data == ['before'] + ['gap%d' % i for i in range(5)] + after
    assert 'Lost the Redis subscriber connection' in server.output
    assert 'Reconnected to Redis' in server.output


def test_sse_replay_with_last_event_id(redis_server):
    """An EventSource that reconnects (to any worker) with the id of the last event
    it saw gets every retained message it missed, then live ones, none twice; a
    retention of 100 gives at most the last 100."""
    server = start_server('builtin', new_port(), {'PUBSUB_URL': redis_server.url}, 2)
    channel = channel_name('durable')

    async def main():
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(
                max_connections=50, max_keepalive_connections=0)) as http:
            async def publish(text):
                res = await http.post(server.url + '/publish/' + channel, content=text)
                assert res.status_code == 200
                return res.text

            ids = [await publish('m%d' % i) for i in range(150)]
            url = server.url + '/events/' + channel
            first = await SSEClient(http, url, last_event_id=ids[0]).start()
            await wait_until(lambda: len(first.events) >= 100, [first],
                             what='the retained messages')
            await publish('live')
            await wait_until(lambda: len(first.events) >= 101, [first], what='live')
            seen = list(first.events)
            await first.close()
            missed = [await publish('missed%d' % i) for i in range(3)]
            again = await SSEClient(http, url, last_event_id=seen[-1][0]).start()
            await publish('then')
            await wait_until(lambda: len(again.events) >= 4, [again], what='the replay')
            second = list(again.events)
            await again.close()
            return ids, missed, seen, second

    try:
        ids, missed, seen, second = run(main())
    finally:
        server.stop()
    assert [d for _, d in seen] == ['m%d' % i for i in range(50, 150)] + ['live']
    assert [i for i, _ in seen[:100]] == ids[50:]  # the SSE ids are the stream ids
    assert [d for _, d in second] == ['missed0', 'missed1', 'missed2', 'then']
    assert [i for i, _ in second[:3]] == missed


def test_a_slow_sse_client_is_cut_off_while_the_others_continue(redis_server):
    """A client that stops reading is disconnected once max_queue messages wait for it
    (its stream ends, a warning is logged); the other clients get everything."""
    env = {'PUBSUB_URL': redis_server.url, 'PUBSUB_MAX_QUEUE': '20'}
    server = start_server('builtin', new_port(), env, workers=1)
    channel = channel_name()
    big = 'x' * 32768

    async def main():
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(('127.0.0.1', server.port))
        slow.sendall(('GET /events/%s HTTP/1.1\r\nHost: x\r\n\r\n' % channel).encode())
        outside = PubSub(None, redis_server.url)
        async with httpx.AsyncClient(timeout=30) as http:
            fast = [await SSEClient(http, server.url + '/events/' + channel).start()
                    for _ in range(2)]
            await redis_server_wait(channel)
            await probe_until_subscribed(lambda t: outside.publish(channel, t), fast)
            count = 300
            for i in range(count):
                await outside.publish(channel, '%d %s' % (i, big))
                if i % 20 == 19:  # let the fast ones keep up (they are not the test)
                    await wait_until(lambda: all(len(c.data) > i - 20 for c in fast),
                                     fast, what='the fast clients')
            await wait_until(lambda: all(len(c.data) >= count for c in fast), fast,
                             what='every message at the fast clients')
            got = [[int(d.split(' ')[0]) for d in c.data] for c in fast]
            for c in fast:
                await c.close()
        await outside.close()
        slow.settimeout(10)
        data = b''
        while not data.endswith(b'0\r\n\r\n'):
            chunk = await asyncio.to_thread(slow.recv, 1 << 20)
            if not chunk:
                break
            data += chunk
        slow.close()
        return got, data, count

    async def redis_server_wait(name):
        await asyncio.to_thread(redis_server.wait_numsub, 'microdot:' + name, 1)

    try:
        got, data, count = run(main())
        assert server.live.wait_for('cannot keep up', timeout=10)
    finally:
        server.stop()
    for numbers in got:
        assert numbers == list(range(count))
    assert data.endswith(b'0\r\n\r\n'), 'the slow stream did not end'
    slow_numbers = [int(line[6:].split(b' ')[0]) for line in data.split(b'\n')
                    if line.startswith(b'data: ') and line[6:7].isdigit()]
    assert slow_numbers == list(range(len(slow_numbers)))  # a prefix, in order
    assert len(slow_numbers) < count
    assert server.output.count('cannot keep up') == 1


def test_shutdown_ends_streams_and_closes_redis_connections(redis_server):
    """SIGTERM: the built-in server ends the SSE stream, the shutdown hook closes the
    PubSub, and the worker's Redis connections go away."""
    server = start_server('builtin', new_port(), {'PUBSUB_URL': redis_server.url}, 1)
    channel = channel_name()

    async def main():
        async with httpx.AsyncClient(timeout=30) as http:
            client = await SSEClient(http, server.url + '/events/' + channel).start()
            await asyncio.to_thread(redis_server.wait_numsub, 'microdot:' + channel, 1)
            server.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(client.ended.wait(), 15)
            await client.close()

    try:
        run(main())
        assert server.proc.wait(15) == 0
    finally:
        server.stop()
    assert redis_server.numsub('microdot:' + channel) == 0
    assert 'Traceback' not in server.output, server.output
