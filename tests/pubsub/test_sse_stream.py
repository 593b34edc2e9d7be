"""``PubSub.sse_response`` under the built-in server (memory broker): the events that
queued up while the stream was busy go out in one chunk, in order, each encoded once
for every subscriber; keep-alive comments while the channel is silent; the client
leaving releases the subscription; the application's shutdown ends the stream."""
import asyncio
import socket
import time

from microdot import Microdot
from microdot.pubsub import PubSub
from microdot.pubsub_memory import _bus
from microdot.sse import SSE

from support import live_server

_names = iter(range(10 ** 6))


def app_and_pubsub():
    url = 'memory://sse-stream-%d' % next(_names)
    app = Microdot()
    pubsub = PubSub(app, url, durable={'durable': 100})

    @app.get('/events/<channel>')
    async def events(request, channel):
        return pubsub.sse_response(request, channel, event=request.args.get('event'))

    return app, pubsub, url


class ChunkedReader:
    """A raw HTTP/1.1 client of one streamed response: the head, then each chunk as
    the server framed it."""

    def __init__(self, port, path, headers=''):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=5)
        self.sock.sendall(('GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n' % (path, headers)).encode())
        self.buf = b''
        self.head = self._until(b'\r\n\r\n')

    def _until(self, mark):
        while mark not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError('connection closed; got %r' % self.buf)
            self.buf += data
        part, _, self.buf = self.buf.partition(mark)
        return part

    def _exactly(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError('connection closed; got %r' % self.buf)
            self.buf += data
        part, self.buf = self.buf[:n], self.buf[n:]
        return part

    def chunk(self):
        """The next chunk's data (``b''`` for the last chunk)."""
        size = int(self._until(b'\r\n'), 16)
        data = self._exactly(size)
        assert self._exactly(2) == b'\r\n'
        return data

    def close(self):
        self.sock.close()


def on_loop(server, coro, timeout=10):
    return asyncio.run_coroutine_threadsafe(coro, server.loop).result(timeout)


def wait_until(condition, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'timed out waiting for %s' % what
        time.sleep(0.01)


def test_queued_events_go_out_together_in_order():
    app, pubsub, url = app_and_pubsub()
    with live_server(app) as server:
        ids = [on_loop(server, pubsub.publish('durable', data))
               for data in ('one', {'n': 2}, 'three\nlines\r\nhere')]
        # the retained messages are all queued before the stream first writes
        reader = ChunkedReader(server.port, '/events/durable?event=note',
                               'Last-Event-ID: 0\r\n')
        try:
            assert reader.head.startswith(b'HTTP/1.1 200')
            assert b'content-type: text/event-stream' in reader.head.lower()
            assert reader.chunk() == (
                b'event: note\nid: %s\ndata: one\n\n'
                b'event: note\nid: %s\ndata: {"n":2}\n\n'
                b'event: note\nid: %s\ndata: three\ndata: lines\ndata: here\n\n'
                % tuple(i.encode() for i in ids))
            four = on_loop(server, pubsub.publish('durable', b'four'))
            assert reader.chunk() == b'event: note\nid: %s\ndata: four\n\n' % four.encode()
        finally:
            reader.close()


def test_every_subscriber_gets_the_same_encoding():
    app, pubsub, url = app_and_pubsub()
    with live_server(app) as server:
        readers = [ChunkedReader(server.port, '/events/plain') for _ in range(3)]
        try:
            wait_until(lambda: len(_bus(url).subscribers.get('plain', ())) == 1,
                       'the subscription')
            hub = on_loop(server, _hub(pubsub))
            wait_until(lambda: len(hub.channels['plain'].subscribers) == 3,
                       'three subscribers')
            on_loop(server, pubsub.publish('plain', {'a': [1, 2]}))
            assert [r.chunk() for r in readers] == [b'data: {"a":[1,2]}\n\n'] * 3
        finally:
            for reader in readers:
                reader.close()


async def _hub(pubsub):
    return pubsub.hub()


def test_keepalive_comments_while_silent(monkeypatch):
    monkeypatch.setattr(SSE, 'keepalive_interval', 0.1)
    app, pubsub, url = app_and_pubsub()
    with live_server(app) as server:
        reader = ChunkedReader(server.port, '/events/quiet')
        try:
            started = time.monotonic()
            assert reader.chunk() == b': keep-alive\n\n'
            assert time.monotonic() - started >= 0.05
            on_loop(server, pubsub.publish('quiet', 'news'))
            assert reader.chunk() == b'data: news\n\n'
            assert reader.chunk() == b': keep-alive\n\n'
        finally:
            reader.close()


def test_leaving_client_releases_the_subscription():
    app, pubsub, url = app_and_pubsub()
    with live_server(app) as server:
        reader = ChunkedReader(server.port, '/events/gone')
        wait_until(lambda: _bus(url).subscribers.get('gone'), 'the subscription')
        reader.close()
        # the server notices at its next write
        deadline = time.monotonic() + 10
        while _bus(url).subscribers.get('gone'):
            assert time.monotonic() < deadline, 'the subscription was not released'
            on_loop(server, pubsub.publish('gone', 'anyone?'))
            time.sleep(0.05)


def test_application_shutdown_ends_the_stream():
    app, pubsub, url = app_and_pubsub()
    with live_server(app) as server:
        reader = ChunkedReader(server.port, '/events/bye')
        try:
            wait_until(lambda: _bus(url).subscribers.get('bye'), 'the subscription')
            on_loop(server, pubsub.publish('bye', 'last'))
            assert reader.chunk() == b'data: last\n\n'
            on_loop(server, pubsub.close())
            assert reader.chunk() == b''  # the last chunk: a complete response
        finally:
            reader.close()
