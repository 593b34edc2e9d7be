"""microdot-wsgi under real gunicorn (sync and gthread) and waitress processes."""
import hashlib
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from support import ROOT, ServerProcess, free_port, serve

APPS = str(ROOT / 'tests' / 'apps')


def gunicorn(port, target='wsgi_app:app', *extra):
    return [sys.executable, '-m', 'gunicorn', '--bind', '127.0.0.1:%d' % port,
            '--log-level', 'warning', '--graceful-timeout', '5', *extra, target]


def test_seed_example_runs_verbatim():
    port = free_port()
    with serve(gunicorn(port, 'hello_wsgi:app'), port, cwd=str(ROOT / 'examples')) as server:
        res = httpx.get(server.url + '/', timeout=10)
        assert res.status_code == 200 and res.text == 'Hello, World!'


@pytest.mark.parametrize('worker', [
    ['--worker-class', 'sync', '--workers', '2'],
    ['--worker-class', 'gthread', '--threads', '8'],
], ids=['sync', 'gthread'])
def test_hundreds_of_concurrent_requests(worker):
    port = free_port()
    limits = httpx.Limits(max_connections=32)
    with serve(gunicorn(port, 'wsgi_app:app', *worker), port, cwd=APPS) as server, \
            httpx.Client(timeout=30, limits=limits) as client:
        def fetch(i):
            kind = 'async' if i % 2 else 'sync'
            res = client.get('%s/%s/%d' % (server.url, kind, i))
            return res.status_code, res.json()['n']

        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(fetch, range(400)))
    assert results == [(200, i) for i in range(400)]


def test_gthread_upload_stream_and_hooks(tmp_path):
    events = tmp_path / 'events.txt'
    port = free_port()
    server = ServerProcess(gunicorn(port, 'wsgi_app:app', '--worker-class', 'gthread',
                                    '--threads', '4', '--workers', '2'),
                           port, cwd=APPS, env={'MICRODOT_TEST_EVENTS': str(events)})
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            payload = os.urandom(3 * 1024 * 1024)
            res = client.post('/upload', content=payload)
            assert res.json() == {'size': len(payload),
                                  'sha256': hashlib.sha256(payload).hexdigest()}
            with client.stream('GET', '/stream') as res:
                assert 'content-length' not in res.headers
                body = b''.join(res.iter_bytes())
            assert body == b'chunk 0\nchunk 1\nchunk 2\n'
            for i in range(20):
                client.get('/sync/%d' % i)
        assert server.stop(signal.SIGTERM) == 0
    finally:
        server.stop()
    lines = events.read_text().splitlines()
    starts = [line for line in lines if line.startswith('startup')]
    stops = [line for line in lines if line.startswith('shutdown')]
    assert 1 <= len(starts) <= 2 and len(set(starts)) == len(starts)  # once per worker
    assert sorted(s.split()[1] for s in stops) == sorted(s.split()[1] for s in starts)


def test_microdot_run_with_gunicorn_workers_and_threads():
    port = free_port()
    cmd = [sys.executable, '-m', 'microdot', 'run', 'wsgi_app:app', '--server', 'gunicorn',
           '--workers', '2', '--threads', '8', '--port', str(port)]
    with serve(cmd, port, cwd=APPS) as server:
        res = httpx.get(server.url + '/async/7', timeout=10)
        assert res.json()['n'] == 7


def test_microdot_run_plain_app_with_waitress_and_wsgiref():
    for name in ('waitress', 'wsgiref'):
        port = free_port()
        cmd = [sys.executable, '-m', 'microdot', 'run', 'examples.hello:app', '--server',
               name, '--port', str(port)]
        with serve(cmd, port) as server:
            res = httpx.get(server.url + '/', timeout=10)
            assert res.text == 'Hello, World!', name


def test_waitress_threads_concurrent_async_requests():
    port = free_port()
    cmd = [sys.executable, '-m', 'waitress', '--listen', '127.0.0.1:%d' % port,
           '--threads', '8', 'wsgi_app:app']
    with serve(cmd, port, cwd=APPS) as server, httpx.Client(timeout=30) as client:
        def fetch(i):
            res = client.get('%s/async/%d' % (server.url, i))
            return res.status_code, res.json()['n']

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(fetch, range(200)))
    assert results == [(200, i) for i in range(200)]
