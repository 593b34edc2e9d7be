"""``app.shutdown()`` under real gunicorn (sync and gthread workers, one or two) stops
the whole server: gunicorn's arbiter, not only the worker (which gunicorn would replace).

As in tests/asgi/test_asgi_shutdown_servers.py, the server runs under a process-group
leader standing in for the shell that started it (tests/apps/group_wrapper.py): the
request that asks for the shutdown gets its full answer (1 MiB), then the arbiter
exits with all its workers and the wrapper lives on.
"""
import signal
import sys

import httpx
import pytest

from apps.group_wrapper import APPS, WrappedServer, env_for
from support import free_port, wait_for_port

BODY = b'The server is shutting down...\n' * 33825  # shutdown_app's answer


@pytest.mark.parametrize('worker,workers,path', [
    ('sync', 1, '/shutdown'),
    ('sync', 2, '/shutdown'),
    ('sync', 2, '/shutdown-async'),
    ('gthread', 2, '/shutdown'),
])
def test_shutdown_stops_gunicorn_after_answering(worker, workers, path, tmp_path):
    port = free_port()
    events = tmp_path / 'events.txt'
    threads = ['--threads', '4'] if worker == 'gthread' else []
    command = [sys.executable, '-m', 'gunicorn', '--bind', '127.0.0.1:%d' % port,
               '--worker-class', worker, '--workers', str(workers), *threads,
               '--graceful-timeout', '10', 'shutdown_app:wsgi_app']
    server = WrappedServer(command, APPS, env_for(events), tmp_path / 'server.log')
    try:
        wait_for_port('127.0.0.1', port)
        with httpx.Client(timeout=10) as client:  # every worker started its app
            pids = set()
            for _ in range(200):
                pids.add(client.get('http://127.0.0.1:%d/' % port,
                                    headers={'Connection': 'close'}).text)
                if len(pids) == workers:
                    break
        res = httpx.get('http://127.0.0.1:%d%s' % (port, path), timeout=10)
        assert res.status_code == 200, server.log()
        assert res.content == BODY, (len(res.content), server.log())
        assert int(server.expect('exited ', 30)) == 0, server.log()
        # the process-group leader (the "shell") was not signalled, and no worker
        # was left behind (or replaced: a new worker would keep the server up)
        assert server.proc.poll() is None, server.log()
        assert not server.wait_group_empty(10), server.log()
    finally:
        wrapper_code = server.close()
    assert wrapper_code == 0, server.log()
    log = server.log()
    assert 'Traceback' not in log and 'Booting worker' in log, log
    assert log.count('Booting worker') == workers, log  # none replaced
    seen = open(events).read().splitlines()
    assert sorted(e for e in seen if e.startswith('shutdown hook ')) == \
        sorted('shutdown hook %s' % pid.split()[1] for pid in pids), seen


@pytest.mark.parametrize('name', ['waitress', 'wsgiref'])
def test_shutdown_stops_a_single_process_server_after_answering(name, tmp_path):
    """waitress (which exits on SIGTERM without a handler) and ``microdot run --server
    wsgiref`` (which stops gracefully on it): the process stops, after the answer."""
    port = free_port()
    if name == 'waitress':
        command = [sys.executable, '-m', 'waitress', '--listen', '127.0.0.1:%d' % port,
                   'shutdown_app:wsgi_app']
    else:
        command = [sys.executable, '-m', 'microdot', 'run', 'shutdown_app:wsgi_app',
                   '--server', 'wsgiref', '--port', str(port)]
    server = WrappedServer(command, APPS, env_for(tmp_path / 'events.txt'),
                           tmp_path / 'server.log')
    try:
        wait_for_port('127.0.0.1', port)
        res = httpx.get('http://127.0.0.1:%d/shutdown' % port, timeout=10)
        assert res.status_code == 200, server.log()
        assert res.content == BODY, (len(res.content), server.log())
        code = int(server.expect('exited ', 30))
        assert code == (-signal.SIGTERM if name == 'waitress' else 0), server.log()
        assert server.proc.poll() is None, server.log()
    finally:
        wrapper_code = server.close()
    assert wrapper_code == 0, server.log()
