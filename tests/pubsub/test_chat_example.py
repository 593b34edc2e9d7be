"""examples/chat: the chat room over WebSocket and SSE with Redis and 4 workers, run
as its README says (``microdot run examples.chat.app:app --workers 4``)."""
import asyncio
import json
import os
import sys

import httpx
import pytest

from pubsub_clients import SSEClient, WSClient, wait_until
from support import ROOT, LiveServerProcess, free_port

pytestmark = pytest.mark.skipif(not hasattr(os, 'fork'), reason='workers need os.fork')


def test_chat_room_across_four_workers(own_redis):
    port = free_port()
    server = LiveServerProcess(
        [sys.executable, '-m', 'microdot', 'run', 'examples.chat.app:app', '--workers', '4',
         '--port', str(port), '--no-access-log'], port, cwd=str(ROOT),
        env={'REDIS_URL': own_redis.url})

    async def main():
        base = 'http://127.0.0.1:%d' % port
        async with httpx.AsyncClient(timeout=30) as http:
            page = await http.get(base + '/')
            assert page.status_code == 200 and 'Microdot chat' in page.text
            assert (await http.post(base + '/messages', json={'text': 'no name'})
                    ).status_code == 400
            assert (await http.post(base + '/messages', json={'name': 'ann', 'text': 'one'})
                    ).status_code == 204
            sse = await SSEClient(http, base + '/events').start()
            ws = await WSClient('ws://127.0.0.1:%d/ws?last=0' % port, ask_pid=False).start()
            clients = [sse, ws]

            def texts(client):
                return [json.loads(d)['text'] for d in client.data]

            await wait_until(lambda: all(texts(c) == ['one'] for c in clients), clients,
                             what='the retained message')
            await ws.send(json.dumps({'name': 'bob', 'text': 'two'}))
            await wait_until(lambda: all(len(texts(c)) == 2 for c in clients), clients,
                             what='the WebSocket message')
            assert (await http.post(base + '/messages', json={'name': 'ann', 'text': 'three'})
                    ).status_code == 204
            await wait_until(lambda: all(len(texts(c)) == 3 for c in clients), clients,
                             what='the posted message')
            newcomer = await SSEClient(http, base + '/events').start()
            again = await SSEClient(http, base + '/events',
                                    last_event_id=sse.events[0][0]).start()
            await wait_until(lambda: len(newcomer.data) == 3 and len(again.data) == 2,
                             [newcomer, again], what='the replays')
            result = ([texts(c) for c in clients + [newcomer]], texts(again),
                      json.loads(ws.data[1]))
            for c in clients + [newcomer, again]:
                await c.close()
            return result

    try:
        server.wait_ready(timeout=30, line='4 workers')
        everyone, again, second = asyncio.run(asyncio.wait_for(main(), 60))
    finally:
        server.stop()
    for texts in everyone:
        assert texts == ['one', 'two', 'three']
    assert again == ['two', 'three']
    assert second == {'name': 'bob', 'text': 'two'}
    assert 'Traceback' not in server.output, server.output
