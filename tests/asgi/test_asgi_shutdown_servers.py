"""``app.shutdown()`` under real uvicorn, Hypercorn and Granian (when installed)
processes stops the whole server.

Each server runs under tests/apps/group_wrapper.py, a process-group leader standing in
for the shell or supervisor that started it. A request to a route that calls
``app.shutdown()`` gets its full answer (1 MiB); then the server's main process exits
by itself, with all its workers, and the wrapper, in the same process group, lives on.
"""
import importlib.util
import signal
import sys

import httpx
import pytest

from apps.group_wrapper import APPS, WrappedServer, env_for
from support import ServerProcess, free_port, wait_for_port

BODY = b'The server is shutting down...\n' * 33825  # shutdown_app's answer


HAVE_GRANIAN = importlib.util.find_spec('granian') is not None
NEEDS_GRANIAN = pytest.mark.skipif(not HAVE_GRANIAN, reason='granian is not installed')


def asgi_cmd(name, port, workers):
    if name == 'granian':
        return [sys.executable, '-m', 'granian', '--interface', 'asgi', '--host',
                '127.0.0.1', '--port', str(port), '--workers', str(workers),
                'shutdown_app:asgi_app']
    if name.startswith('uvicorn'):
        extra = ['--workers', str(workers)] if workers > 1 else []
        if name == 'uvicorn-reload':
            extra = ['--reload', '--reload-dir', APPS]
        return [sys.executable, '-m', 'uvicorn', '--host', '127.0.0.1', '--port', str(port),
                *extra, 'shutdown_app:asgi_app']
    return [sys.executable, '-m', 'hypercorn', '--bind', '127.0.0.1:%d' % port,
            '--workers', str(workers), 'shutdown_app:asgi_app']


def check_shutdown(command, port, tmp_path, path, workers):
    """Serve under the wrapper, ask for the shutdown, and check what follows."""
    events = tmp_path / 'events.txt'
    server = WrappedServer(command, APPS, env_for(events), tmp_path / 'server.log')
    try:
        wait_for_port('127.0.0.1', port)
        if workers > 1:  # every worker is up (each answers with its pid)
            pids = set()
            with httpx.Client(timeout=10) as client:
                for _ in range(200):
                    pids.add(client.get('http://127.0.0.1:%d/' % port,
                                        headers={'Connection': 'close'}).text)
                    if len(pids) == workers:
                        break
        res = httpx.get('http://127.0.0.1:%d%s' % (port, path), timeout=10)
        assert res.status_code == 200, server.log()
        assert res.content == BODY, (len(res.content), server.log())
        code = int(server.expect('exited ', 30))
        # uvicorn re-raises the SIGTERM it handled once it has shut down
        assert code in (0, -signal.SIGTERM), server.log()
        # the process-group leader (the "shell") was not signalled
        assert server.proc.poll() is None, server.log()
        # and no worker is left behind
        assert not server.wait_group_empty(10), server.log()
    finally:
        wrapper_code = server.close()
    assert wrapper_code == 0, server.log()
    log = server.log()
    assert 'Traceback' not in log, log
    return open(events).read().splitlines() if events.exists() else []


@pytest.mark.parametrize('name,workers,path', [
    ('uvicorn', 1, '/shutdown'),
    ('uvicorn', 1, '/shutdown-async'),
    ('uvicorn', 2, '/shutdown'),
    ('uvicorn-reload', 1, '/shutdown'),
    ('hypercorn', 1, '/shutdown'),
    ('hypercorn', 2, '/shutdown-async'),
    pytest.param('granian', 1, '/shutdown', marks=NEEDS_GRANIAN),
    pytest.param('granian', 2, '/shutdown-async', marks=NEEDS_GRANIAN),
])
def test_shutdown_stops_the_whole_server_after_answering(name, workers, path, tmp_path):
    port = free_port()
    seen = check_shutdown(asgi_cmd(name, port, workers), port, tmp_path, path, workers)
    # every worker ran its lifespan shutdown: the server stopped gracefully. Except:
    # Hypercorn 0.18's main process terminates the remaining workers as soon as one has
    # exited, and its workers do not handle SIGTERM (they wait for a shared event), so
    # a slower worker dies without its shutdown; Granian, under load, has been seen to
    # stop a worker without it too. There at least one must have run.
    hooks = len([e for e in seen if e.startswith('shutdown hook ')])
    assert hooks == workers or (name in ('granian', 'hypercorn') and hooks >= 1), seen


@pytest.mark.parametrize('name', ['uvicorn', 'hypercorn'])
def test_failing_shutdown_hook_is_reported_to_the_server(name, tmp_path):
    """The server hears of the failure (``lifespan.shutdown.failed`` with the error) and
    logs it; the other hooks still ran first."""
    port = free_port()
    events = tmp_path / 'events.txt'
    server = ServerProcess(asgi_cmd(name, port, 1), port, cwd=APPS,
                           env={'MICRODOT_TEST_EVENTS': str(events),
                                'MICRODOT_TEST_FAIL_SHUTDOWN': '1'})
    try:
        server.wait_ready()
    finally:
        server.stop()
    assert "RuntimeError('database still busy')" in server.output, server.output
    if name == 'uvicorn':
        assert 'Application shutdown failed' in server.output, server.output
    else:
        assert 'LifespanFailureError' in server.output, server.output
