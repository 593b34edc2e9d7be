"""microdot-asgi under real uvicorn and hypercorn processes on 127.0.0.1."""
import hashlib
import os
import signal
import sys
import time

import httpx
import pytest

from support import ROOT, ServerProcess, free_port, serve, wait_for_line

APPS = str(ROOT / 'tests' / 'apps')


def server_cmd(name, port, target='asgi_app:app', extra=()):
    if name == 'uvicorn':
        return [sys.executable, '-m', 'uvicorn', '--app-dir', APPS, '--host', '127.0.0.1',
                '--port', str(port), '--log-level', 'warning', *extra, target]
    return [sys.executable, '-m', 'hypercorn', '--bind', '127.0.0.1:%d' % port,
            '--log-level', 'warning', *extra, target]


SERVERS = ['uvicorn', 'hypercorn']


@pytest.mark.parametrize('name', SERVERS)
def test_seed_example_runs_verbatim(name):
    port = free_port()
    cmd = server_cmd(name, port, target='hello_asgi:app')
    with serve(cmd, port, cwd=str(ROOT / 'examples')) as server:
        res = httpx.get(server.url + '/', timeout=10)
        assert res.status_code == 200 and res.text == 'Hello, World!'
        assert res.headers['content-type'] == 'text/plain; charset=UTF-8'


@pytest.mark.parametrize('name', SERVERS)
def test_streaming_large_upload_and_lifespan(name, tmp_path):
    events = tmp_path / 'events.txt'
    port = free_port()
    server = ServerProcess(server_cmd(name, port), port, cwd=APPS,
                           env={'MICRODOT_TEST_EVENTS': str(events)})
    try:
        server.wait_ready()
        assert wait_for_line(events, 'startup')
        with httpx.Client(base_url=server.url, timeout=20) as client:
            # streaming: chunks arrive as they are produced
            with client.stream('GET', '/stream?n=3') as res:
                chunks = [c for c in res.iter_text() if c]
            assert ''.join(chunks) == 'chunk 0\nchunk 1\nchunk 2\n'
            # large upload, chunked (no Content-Length) and with a length
            payload = os.urandom(5 * 1024 * 1024)

            def gen():
                for i in range(0, len(payload), 100000):
                    yield payload[i:i + 100000]

            for content in (payload, gen()):
                res = client.post('/upload', content=content)
                assert res.status_code == 200
                assert res.json() == {'size': len(payload),
                                      'sha256': hashlib.sha256(payload).hexdigest()}
        # a client that goes away stops the generator
        with httpx.Client(base_url=server.url, timeout=20) as client:
            with client.stream('GET', '/forever') as res:
                next(res.iter_bytes())
                assert wait_for_line(events, 'forever started')
        assert wait_for_line(events, 'forever closed'), open(events).read()
        # uvicorn re-raises the signal after its graceful shutdown
        assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    finally:
        server.stop()
    assert wait_for_line(events, 'shutdown')


def test_microdot_run_with_uvicorn_two_workers(tmp_path):
    port = free_port()
    events = tmp_path / 'events.txt'
    cmd = [sys.executable, '-m', 'microdot', 'run', 'asgi_app:app', '--server', 'uvicorn',
           '--workers', '2', '--port', str(port)]
    with serve(cmd, port, cwd=APPS, env={'MICRODOT_TEST_EVENTS': str(events)}) as server:
        for _ in range(4):
            res = httpx.get(server.url + '/', timeout=10)
            assert res.text == 'Hello, World!'
        deadline = time.monotonic() + 10
        while open(events).read().count('startup') < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert open(events).read().count('startup') == 2  # one per worker


def test_microdot_run_plain_app_with_hypercorn():
    port = free_port()
    cmd = [sys.executable, '-m', 'microdot', 'run', 'examples.hello:app', '--server',
           'hypercorn', '--port', str(port)]
    with serve(cmd, port) as server:
        res = httpx.get(server.url + '/', timeout=10)
        assert res.text == 'Hello, World!'
