"""``microdot run MODULE:APP --server uwsgi`` (microdot.wsgi_uwsgi_server) with real
uWSGI processes: workers and threads, the plain ``microdot.Microdot`` application
(tests/apps/uwsgi_plain_app.py), graceful stop on SIGTERM/SIGINT bounded in time,
graceful reload on SIGHUP with the new code served, ``app.shutdown()``, the seed's
examples, and the errors users see.
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from microdot.cli import main
from microdot.wsgi_uwsgi_server import UwsgiServer
from support import ROOT, LiveServerProcess, free_port, serve, wait_for_line

APPS = str(ROOT / 'tests' / 'apps')
EXAMPLES = str(ROOT / 'examples')


def run_cmd(port, target='uwsgi_plain_app:app', *extra):
    return [sys.executable, '-m', 'microdot', 'run', target, '--server', 'uwsgi',
            '--port', str(port), *extra]


def start(tmp_path, *extra, target='uwsgi_plain_app:app', env=None):
    """``microdot run --server uwsgi`` for ``target``, listening; its output is read
    while it runs (``server.live``)."""
    port = free_port()
    full_env = {'MICRODOT_TEST_DIR': str(tmp_path),
                'MICRODOT_TEST_EVENTS': str(tmp_path / 'events.txt')}
    full_env.update(env or {})
    server = LiveServerProcess(run_cmd(port, target, *extra), port, cwd=APPS, env=full_env)
    try:
        server.wait_ready(line='spawned uWSGI worker')
    except BaseException:
        server.stop()
        raise
    return server


class Held:
    """A ``/hold`` request in progress in a thread; ``release()`` lets it answer."""

    def __init__(self, server, tmp_path, name='h'):
        self.path = tmp_path / name
        self.result = {}
        self.thread = threading.Thread(target=self._get, args=(server.url, name))
        self.thread.start()
        assert wait_for_line(str(self.path) + '.held', '', 10), 'the request did not start'

    def _get(self, url, name):
        try:
            res = httpx.get(url + '/hold', params={'name': name}, timeout=30)
            self.result['answer'] = (res.status_code, res.text)
        except httpx.HTTPError as exc:
            self.result['error'] = exc

    def release(self, timeout=30):
        open(str(self.path) + '.release', 'w').close()
        self.thread.join(timeout)
        assert not self.thread.is_alive()
        return self.result.get('answer', self.result.get('error'))


def wait_exit(server, timeout):
    """The exit status once the process ended within ``timeout`` seconds."""
    try:
        return server.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError('still running after %ss:\n%s' % (timeout, server.live.text))


def port_closed(port):
    with socket.socket() as s:
        return s.connect_ex(('127.0.0.1', port)) != 0


# -- serving -----------------------------------------------------------------------------

def test_plain_app_workers_distinct_pids_and_hooks(tmp_path):
    """A plain ``microdot.Microdot`` app; ``--workers 2``: while one single-threaded
    worker holds a request, the other answers; each worker ran its startup hook once
    and runs its shutdown hook when stopped."""
    server = start(tmp_path, '--workers', '2')
    try:
        held = Held(server, tmp_path)
        pids = {httpx.get(server.url + '/info', timeout=10).json()['pid']
                for _ in range(5)}
        assert held.release() == (200, 'released none')
        assert len(pids) == 1
        for _ in range(40):  # until both workers answered
            pids.add(httpx.get(server.url + '/info', timeout=10).json()['pid'])
            if len(pids) == 2:
                break
        assert len(pids) == 2
        assert server.stop(signal.SIGTERM) == 0
    finally:
        server.stop()
    events = (tmp_path / 'events.txt').read_text().split('\n')
    starts = sorted(int(e.split()[1]) for e in events if e.startswith('startup'))
    stops = sorted(int(e.split()[1]) for e in events if e.startswith('shutdown'))
    assert starts == stops == sorted(pids), server.output


def test_threads_and_websocket(tmp_path):
    server = start(tmp_path, '--threads', '4', target='wsgi_ws_app:app')
    try:
        with ws_connect('ws://127.0.0.1:%d/whoami' % server.port) as one, \
                ws_connect('ws://127.0.0.1:%d/whoami' % server.port) as two:
            owners = [one.recv().split(), two.recv().split()]
            assert owners[0][0] == owners[1][0] and owners[0][1] != owners[1][1]
            with httpx.Client(timeout=10) as http:  # the router keeps the connection
                assert [http.get(server.url + '/').text for _ in range(5)] == \
                    ['Hello, World!'] * 5
            one.send('still here')
            assert one.recv() == 'still here'
    finally:
        server.stop()


@pytest.mark.parametrize('target,extra', [('hello_wsgi:app', []),
                                          ('echo_wsgi:app', ['--threads', '8'])])
def test_seed_examples(target, extra):
    port = free_port()
    with serve(run_cmd(port, target, *extra), port, cwd=EXAMPLES) as srv:
        page = httpx.get(srv.url + '/', timeout=10)
        assert page.status_code == 200
        if target == 'hello_wsgi:app':
            assert page.text == 'Hello, World!'
        else:
            with ws_connect('ws://127.0.0.1:%d/echo' % port) as ws:
                ws.send('hello example')
                assert ws.recv() == 'hello example'


def test_streamed_body_arrives_as_produced(tmp_path):
    server = start(tmp_path)
    try:
        with httpx.stream('GET', server.url + '/forever', timeout=10) as res:
            assert res.headers['transfer-encoding'] == 'chunked'
            lines = res.iter_lines()
            assert [next(lines) for _ in range(3)] == ['tick'] * 3
    finally:
        server.stop()


# -- stopping and reloading ---------------------------------------------------------------

@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT], ids=['TERM', 'INT'])
def test_stop_lets_the_request_in_progress_finish(sig, tmp_path):
    server = start(tmp_path)
    try:
        held = Held(server, tmp_path)
        server.proc.send_signal(sig)
        assert server.live.wait_for('graceful shutdown triggered'), server.live.text
        assert server.proc.poll() is None  # waiting for the request
        assert held.release() == (200, 'released none')
        assert wait_exit(server, 15) == 0
        assert port_closed(server.port)
    finally:
        server.stop()
    assert 'Traceback' not in server.output


def test_stop_is_bounded_in_time(tmp_path):
    """A request that never ends is stopped after UWSGI_WORKER_RELOAD_MERCY seconds."""
    server = start(tmp_path, env={'UWSGI_WORKER_RELOAD_MERCY': '2'})
    try:
        with httpx.stream('GET', server.url + '/forever', timeout=10) as res:
            lines = res.iter_lines()  # (kept: a dropped iterator closes the connection)
            assert next(lines) == 'tick'
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            assert wait_exit(server, 15) == 0
            took = time.monotonic() - started
            assert 1.5 < took < 8, (took, server.live.text)
            with pytest.raises(httpx.HTTPError):  # the answer was cut off
                list(lines)
        assert port_closed(server.port)
    finally:
        server.stop()
    assert 'Requests still in progress after 2s: stopping them' in server.output


def test_second_signal_stops_at_once(tmp_path):
    server = start(tmp_path)  # 30 s to finish requests
    try:
        held = Held(server, tmp_path)
        server.proc.send_signal(signal.SIGINT)
        assert server.live.wait_for('graceful shutdown triggered'), server.live.text
        started = time.monotonic()
        server.proc.send_signal(signal.SIGINT)
        assert wait_exit(server, 10) == 0
        assert time.monotonic() - started < 7
        assert isinstance(held.release(), httpx.HTTPError)  # cut off
    finally:
        server.stop()


def test_sighup_reloads_the_new_code_while_serving(tmp_path):
    """SIGHUP: the workers are replaced one by one; the request in progress completes
    with the old code, every request in between is answered, then the new code
    answers."""
    version = tmp_path / 'version.txt'
    version.write_text('v1')
    server = start(tmp_path, '--workers', '2', '--threads', '2',
                   env={'MICRODOT_TEST_VERSION': str(version)})
    try:
        with httpx.Client(timeout=10) as http:
            assert http.get(server.url + '/version').text.startswith('v1 ')
            held = Held(server, tmp_path)
            version.write_text('v2')
            server.proc.send_signal(signal.SIGHUP)
            assert server.live.wait_for('chain reload starting'), server.live.text
            answers = [http.get(server.url + '/version') for _ in range(5)]
            assert held.release() == (200, 'released v1')
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                res = http.get(server.url + '/version')
                answers.append(res)
                if len(answers) > 10 and all(a.text.startswith('v2 ')
                                             for a in answers[-10:]):
                    break
            assert all(a.status_code == 200 for a in answers)
            assert all(a.text.startswith('v2 ') for a in answers[-10:]), \
                [a.text for a in answers]
        assert server.live.wait_for('chain reloading complete'), server.live.text
        assert server.proc.poll() is None
    finally:
        assert server.stop() == 0
    assert 'Traceback' not in server.output


def test_app_shutdown_stops_the_whole_server(tmp_path):
    """``app.shutdown()`` from a route (a plain app): the full answer, then this
    command and every uWSGI process end, gracefully: each worker that started ran its
    shutdown hooks."""
    server = start(tmp_path, '--workers', '2')
    try:
        pids = {httpx.get(server.url + '/info', timeout=10).json()['pid']
                for _ in range(4)}
        res = httpx.get(server.url + '/shutdown', timeout=10)
        assert res.status_code == 200 and res.text == 'bye ' * 100000
        assert wait_exit(server, 20) == 0
        assert port_closed(server.port)
        with pytest.raises(ProcessLookupError):  # uWSGI's process group is gone
            os.killpg(int(server.live.text.split('spawned uWSGI master process (pid: ')[1]
                          .split(')')[0]), 0)
    finally:
        server.stop()
    events = (tmp_path / 'events.txt').read_text().split('\n')
    starts = sorted(e.split()[1] for e in events if e.startswith('startup'))
    stops = sorted(e.split()[1] for e in events if e.startswith('shutdown'))
    assert starts == stops and len(starts) >= len(pids), server.output


# -- errors and options --------------------------------------------------------------------

def test_missing_uwsgi_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, 'executable', str(tmp_path / 'python'))
    monkeypatch.setenv('PATH', str(tmp_path))
    assert main(['run', 'uwsgi_plain_app:app', '--server', 'uwsgi']) == 2
    assert capsys.readouterr().err == (
        "microdot: error: the 'uwsgi' server needs microdot-wsgi[uwsgi]: "
        "pip install 'microdot-wsgi[uwsgi]'\n")
    assert not UwsgiServer().installed()


def test_port_in_use():
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(run_cmd(port), cwd=APPS, capture_output=True, text=True,
                              timeout=30, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 1
    assert proc.stderr.endswith('microdot: error: port %d is in use; pick another with '
                                '--port\n' % port), proc.stderr


def test_command_line(monkeypatch):
    monkeypatch.delenv('UWSGI_WORKER_RELOAD_MERCY', raising=False)
    server = UwsgiServer()
    cmd = server.command('::1', 8000, '/run/fifo', workers='auto', threads=4, reload=True,
                         access_log=False)
    assert os.path.basename(cmd[0]) == 'uwsgi'
    flags = ' '.join(cmd[1:])
    for part in ('--http [::1]:8000 --http-websockets', '--master-fifo /run/fifo',
                 '--processes %d' % (os.cpu_count() or 1), '--threads 4', '--die-on-term',
                 '--py-autoreload 1', '--disable-logging', '--lazy-apps',
                 '--worker-reload-mercy 30'):
        assert part in flags
    plain = ' '.join(server.command('127.0.0.1', 80, 'f'))
    assert '--processes 1' in plain and '--threads' not in plain
    assert '--py-autoreload' not in plain and '--disable-logging' not in plain
    monkeypatch.setenv('UWSGI_WORKER_RELOAD_MERCY', '7')
    assert server.mercy() == 7 and '--worker-reload-mercy' not in server.command('h', 1, 'f')


def test_plugins_lists_the_uwsgi_server():
    proc = subprocess.run([sys.executable, '-m', 'microdot', 'plugins'], capture_output=True,
                          text=True, timeout=30)
    wsgi_lines = proc.stdout.split('microdot-wsgi ')[1].splitlines()
    servers = [line for line in wsgi_lines if line.strip().startswith('servers:')][0]
    assert 'uwsgi' in servers and 'uwsgi (not installed' not in servers


def test_concurrent_requests_across_workers_and_threads(tmp_path):
    server = start(tmp_path, '--workers', '2', '--threads', '4')
    try:
        with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=16)) as http:
            def fetch(i):
                return http.get(server.url + '/info').status_code

            with ThreadPoolExecutor(16) as pool:
                assert list(pool.map(fetch, range(300))) == [200] * 300
    finally:
        assert server.stop() == 0
