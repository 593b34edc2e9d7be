"""microdot-asgi under real Granian processes (``--interface asgi``) on 127.0.0.1:
the seed's examples verbatim, ``microdot run --server granian`` with streaming, SSE,
WebSocket and lifespan hooks, and ``--workers 2``."""
import signal

import pytest

from granian_checks import (check_example_page, check_seed_hello, granian_app_server,
                            serve_example)
from serving_checks import (APPS, check_echo, check_hello, check_sse, check_stream,
                            check_streamed_as_produced, granian_cmd, hook_pids,
                            interrupt_group, wait_for_hooks, worker_pids)
from support import LiveServerProcess, ServerProcess, free_port


def test_seed_hello_example_runs_verbatim():
    check_seed_hello('asgi')


def test_seed_echo_example_runs_verbatim():
    with serve_example('asgi', 'echo_asgi:app') as server:
        check_example_page(server.url)
        check_echo('ws://127.0.0.1:%d' % server.port)


@pytest.fixture
def events(tmp_path):
    return str(tmp_path / 'events.txt')


def test_microdot_run_granian_serves_everything_and_runs_the_lifespan_hooks(events):
    server = granian_app_server('asgi', events=events, cls=LiveServerProcess)
    port = server.port
    try:
        server.wait_ready()
        assert len(wait_for_hooks(events, 'startup', 1)) == 1  # lifespan.startup
        check_hello(server.url)
        check_stream(server.url, n=4)
        check_streamed_as_produced(server.url)
        check_sse(server.url)
        check_echo('ws://127.0.0.1:%d' % port)
        import httpx
        assert httpx.get(server.url + '/pid', timeout=10).json()['class'] == 'microdot.asgi'
        assert hook_pids(events, 'shutdown') == []
        assert server.stop(signal.SIGTERM) == 0, server.output
    finally:
        server.stop()
    assert 'Traceback' not in server.output, server.output
    # lifespan.shutdown ran in the worker that started
    assert hook_pids(events, 'shutdown') == hook_pids(events, 'startup')


def test_microdot_run_granian_two_workers(events):
    server = granian_app_server('plain', '--workers', '2', events=events)
    try:
        server.wait_ready()
        started = wait_for_hooks(events, 'startup', 2)
        assert len(set(started)) == 2, started  # one lifespan per worker
        pids = worker_pids(server.url, 2)
        assert pids == set(started), (pids, started)
        assert server.proc.pid not in pids  # the workers are not the main process
        check_echo('ws://127.0.0.1:%d' % server.port)
        assert server.stop(signal.SIGTERM) == 0, server.output
    finally:
        server.stop()
    assert sorted(hook_pids(events, 'shutdown')) == sorted(started)


def test_ctrl_c_stops_granian_asgi(events):
    """SIGINT to the whole process group, as a terminal's Ctrl+C: a clean stop."""
    port = free_port()
    server = ServerProcess(granian_cmd('asgi', port, 'granian_app:app', '--workers', '2'), port,
                           cwd=APPS, env={'MICRODOT_TEST_EVENTS': events,
                                          'MICRODOT_TEST_FLAVOR': 'asgi'})
    try:
        server.wait_ready()
        assert len(wait_for_hooks(events, 'startup', 2)) == 2
        check_hello(server.url)
        assert interrupt_group(server) == 0
    finally:
        server.stop()
    assert len(hook_pids(events, 'shutdown')) == 2


def test_microdot_run_granian_threads_need_the_wsgi_interface():
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, '-m', 'microdot', 'run', 'granian_app:app',
                           '--server', 'granian', '--interface', 'asgi', '--threads', '4',
                           '--port', str(free_port())],
                          cwd=APPS, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == ("microdot: error: --threads applies to Granian's WSGI interface "
                           "only: add --interface wsgi (interface='wsgi')\n")
