"""Real clients for the deployment tests: SSE (httpx streaming) and WebSocket
(websockets), both recording what they receive; and server start-up helpers."""
import asyncio
import os
import sys
import time
from pathlib import Path

import httpx
import websockets

from support import LiveServerProcess, free_port

HERE = Path(__file__).resolve().parent
PROBE = 'probe'


class SSEClient:
    """An EventSource-like reader of ``url``: ``events`` is the list of ``(id, data)``
    received, ``pid`` the worker that answered, ``ended`` set when the stream ended."""

    def __init__(self, http, url, last_event_id=None):
        self.http = http
        self.url = url
        self.headers = {'Last-Event-ID': last_event_id} if last_event_id else {}
        self.events = []
        self.pid = None
        self.ended = asyncio.Event()
        self.changed = asyncio.Event()
        self._task = None
        self._stream = None

    async def start(self):
        self._stream = self.http.stream('GET', self.url, headers=self.headers)
        response = await self._stream.__aenter__()
        assert response.status_code == 200, response.status_code
        assert response.headers['content-type'].startswith('text/event-stream')
        pid = response.headers.get('x-worker-pid')
        self.pid = int(pid) if pid else None
        self._task = asyncio.ensure_future(self._read(response))
        return self

    async def _read(self, response):
        event_id, data = None, []
        try:
            async for line in response.aiter_lines():
                if line.startswith('data: '):
                    data.append(line[6:])
                elif line.startswith('id: '):
                    event_id = line[4:]
                elif line == '' and data:
                    self.events.append((event_id, '\n'.join(data)))
                    event_id, data = None, []
                    self.changed.set()
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()
            self.changed.set()

    @property
    def data(self):
        return [d for _, d in self.events if d != PROBE]

    async def close(self):
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._stream is not None:
            await self._stream.__aexit__(None, None, None)


class WSClient:
    """A WebSocket client of ``url``; ``pid`` is asked with ``whoami``."""

    def __init__(self, url, ask_pid=True):
        self.url = url
        self.ask_pid = ask_pid
        self.messages = []
        self.pid = None
        self.changed = asyncio.Event()
        self.ended = asyncio.Event()
        self.close_code = None
        self._ws = None
        self._task = None
        self._pid_reply = None

    async def start(self):
        self._ws = await websockets.connect(self.url, open_timeout=10, max_size=None)
        self._pid_reply = asyncio.get_running_loop().create_future()
        self._task = asyncio.ensure_future(self._read())
        if self.ask_pid:
            await self._ws.send('whoami')
            # the answer proves the session, and so its subscription, is live
            self.pid = await asyncio.wait_for(self._pid_reply, 10)
        return self

    async def _read(self):
        try:
            async for message in self._ws:
                if isinstance(message, str) and message.startswith('pid '):
                    if not self._pid_reply.done():
                        self._pid_reply.set_result(int(message[4:]))
                    continue
                self.messages.append(message)
                self.changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self._ws.close_code
            self.ended.set()
            self.changed.set()

    @property
    def data(self):
        return [m for m in self.messages if m != PROBE]

    async def send(self, text):
        await self._ws.send(text)

    async def close(self):
        await self._ws.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


async def wait_until(predicate, clients, timeout=20.0, what='condition'):
    """Wait (on the clients' change events, no sleeping) until ``predicate()``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError('timed out waiting for %s' % what)
        for client in clients:
            client.changed.clear()
        if predicate():
            return
        waits = [asyncio.ensure_future(c.changed.wait()) for c in clients]
        try:
            await asyncio.wait(waits, timeout=min(left, 0.5),
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()


async def probe_until_subscribed(publish, clients, timeout=20.0):
    """Publish probes until every client received one: from then on, every client's
    subscription is live (a readiness probe, instead of sleeping)."""
    deadline = time.monotonic() + timeout

    def every_client_probed():
        return all(PROBE in [d for _, d in c.events] if isinstance(c, SSEClient)
                   else PROBE in c.messages for c in clients)

    while not every_client_probed():
        assert time.monotonic() < deadline, 'subscriptions not live after %.0fs' % timeout
        await publish(PROBE)
        try:
            await wait_until(every_client_probed, clients, timeout=0.2)
        except AssertionError:
            pass


def start_server(kind, port, env, workers=2):
    """Start the test application under ``kind``; returns the LiveServerProcess."""
    py = sys.executable
    if kind == 'builtin':
        args = [py, '-m', 'microdot', 'run', 'pubsub_app:app', '--host', '127.0.0.1',
                '--port', str(port), '--workers', str(workers), '--no-access-log']
    elif kind == 'uvicorn':
        args = [py, '-m', 'uvicorn', 'pubsub_app:asgi_app', '--host', '127.0.0.1',
                '--port', str(port), '--workers', str(workers), '--no-access-log',
                '--timeout-graceful-shutdown', '5']
    elif kind == 'hypercorn':
        args = [py, '-m', 'hypercorn', 'pubsub_app:asgi_app', '--bind',
                '127.0.0.1:%d' % port, '--workers', str(workers), '--graceful-timeout', '5']
    elif kind in ('gunicorn-gthread', 'gunicorn-sync'):
        args = [py, '-m', 'gunicorn', 'pubsub_app:wsgi_app', '--bind',
                '127.0.0.1:%d' % port, '--workers', str(workers), '--timeout', '120',
                '--graceful-timeout', '5']
        if kind == 'gunicorn-gthread':
            args += ['--worker-class', 'gthread', '--threads', '32']
    else:  # pragma: no cover
        raise ValueError(kind)
    full_env = dict(env)
    full_env['PYTHONPATH'] = os.pathsep.join([str(HERE), str(HERE.parents[1])])
    server = LiveServerProcess(args, port, cwd=str(HERE), env=full_env)
    try:
        server.wait_ready(timeout=30)
        wait_for_workers(server.url, workers)
    except BaseException:
        server.stop()
        raise
    return server


def wait_for_workers(url, workers, timeout=30.0):
    """Ask ``/pid`` over fresh connections, several at once, until ``workers``
    distinct processes answered: every worker has started and serves."""
    seen = set()
    deadline = time.monotonic() + timeout

    async def ask(http):
        res = await http.get(url + '/pid', headers={'Connection': 'close'})
        seen.add(int(res.text))

    async def main():
        async with httpx.AsyncClient(timeout=10) as http:
            while len(seen) < workers:
                assert time.monotonic() < deadline, \
                    'only %d of %d workers answered' % (len(seen), workers)
                await asyncio.gather(*[ask(http) for _ in range(2 * workers)])

    asyncio.run(main())
    return seen


def new_port():
    return free_port()
