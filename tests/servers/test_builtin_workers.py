"""The built-in server's worker processes (issue #14): ``microdot run --workers N`` and
``app.run(workers=N)``. Real processes on loopback: every worker serves, a dead worker
is replaced, SIGTERM loses no request in flight, hooks run in each worker."""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time

import httpx
import pytest

from support import LiveServerProcess, free_port, recv_all

pytestmark = pytest.mark.skipif(not hasattr(os, 'fork'),
                                reason='worker processes need os.fork (POSIX)')

APP = '''
import asyncio, os, sys, time
from microdot import Microdot

app = Microdot()
HOOKS = os.environ.get('HOOKS_FILE')


def note(text):
    if HOOKS:
        with open(HOOKS, 'a') as f:
            f.write('%s %d\\n' % (text, os.getpid()))


@app.on_startup
def started():
    note('startup')


@app.on_shutdown
def stopped():
    note('shutdown')


@app.route('/')
async def index(request):
    return '%d %d' % (os.getpid(), os.getppid())


@app.route('/busy')
async def busy(request):
    time.sleep(0.05)  # holds this worker's loop, so that others accept meanwhile
    return '%d' % os.getpid()


@app.route('/slow')
async def slow(request):
    note('request')
    await asyncio.sleep(float(request.args.get('seconds', 1.0)))
    return 'finished %d' % os.getpid()


@app.route('/stop')
async def stop(request):
    app.shutdown()
    return 'stopping'
'''

MICRODOT = [sys.executable, '-m', 'microdot']


@pytest.fixture
def app_dir(tmp_path):
    (tmp_path / 'wapp.py').write_text(APP)
    return tmp_path


def start(app_dir, *args, env=None, line='Serving'):
    port = free_port()
    server = LiveServerProcess(MICRODOT + ['run', 'wapp:app', '--port', str(port),
                                           '--no-access-log'] + list(args),
                               port, cwd=str(app_dir), env=env)
    try:
        server.wait_ready(line=line)
    except BaseException:
        server.stop()
        raise
    return server


def worker_pids(url, want, timeout=15.0, verify=True):
    """Request /busy concurrently until ``want`` distinct pids answered."""
    seen = set()
    errors = []
    deadline = time.monotonic() + timeout

    def client():
        with httpx.Client(verify=verify, timeout=10) as c:
            while len(seen) < want and time.monotonic() < deadline:
                try:
                    res = c.get(url + '/busy', headers={'Connection': 'close'})
                    seen.add(int(res.text))
                except httpx.HTTPError as exc:  # pragma: no cover - reported below
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=client) for _ in range(2 * want)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 10)
    assert not errors, errors
    return seen


@pytest.mark.parametrize('workers', [2, 4])
def test_every_worker_serves(app_dir, workers):
    server = start(app_dir, '--workers', str(workers))
    try:
        assert server.live.wait_for('(%d workers, built-in server)' % workers)
        pids = worker_pids(server.url, workers)
        assert len(pids) == workers
        assert server.proc.pid not in pids  # the supervisor serves nothing
        pid, ppid = map(int, httpx.get(server.url + '/', timeout=10).text.split())
        assert ppid == server.proc.pid and pid in pids
    finally:
        assert server.stop() == 0, server.output
    for pid in pids:  # all workers are gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def listening_sockets(port):
    """How many sockets listen on 127.0.0.1:``port`` (from /proc/net/tcp)."""
    count = 0
    with open('/proc/net/tcp') as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state == '0A' and int(local.split(':')[1], 16) == port:  # 0A: LISTEN
                count += 1
    return count


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='SO_REUSEPORT spreads connections on Linux only; elsewhere '
                           'the workers share one socket')
def test_each_worker_listens_on_its_own_socket_on_linux(app_dir):
    server = start(app_dir, '--workers', '3', '--host', '127.0.0.1')
    try:
        assert len(worker_pids(server.url, 3)) == 3
        assert listening_sockets(server.port) == 3  # one per worker, none in the parent
        # the port stays reserved for this server: a second one is refused, it does
        # not join the SO_REUSEPORT group
        proc = subprocess.run(MICRODOT + ['run', 'wapp:app', '--port', str(server.port),
                                          '--host', '127.0.0.1', '--workers', '2'],
                              cwd=str(app_dir), capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1
        assert ('port %d is in use; pick another with --port' % server.port) in proc.stderr
        assert listening_sockets(server.port) == 3
    finally:
        assert server.stop() == 0, server.output
    assert listening_sockets(server.port) == 0


def test_workers_auto_is_one_per_cpu(app_dir):
    server = start(app_dir, '--workers', 'auto')
    try:
        cpus = os.cpu_count() or 1
        assert server.live.wait_for('(%d worker%s, built-in server)'
                                    % (cpus, '' if cpus == 1 else 's'))
    finally:
        assert server.stop() == 0, server.output


def test_a_killed_worker_is_replaced_and_service_continues(app_dir):
    server = start(app_dir, '--workers', '2')
    try:
        first = worker_pids(server.url, 2)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 15
        current = set()
        while time.monotonic() < deadline and not (current - first):
            # the other worker keeps answering meanwhile
            current = worker_pids(server.url, 2, timeout=2)
            assert current, 'no worker answered'
        assert current - first, 'the killed worker was not replaced'
        assert victim not in current
        assert server.live.wait_for('was killed by SIGKILL')
    finally:
        assert server.stop() == 0, server.output
    assert 'restarting it in' in server.output


def test_sigterm_with_requests_in_flight_loses_none(app_dir, tmp_path):
    hooks = tmp_path / 'hooks.txt'
    server = start(app_dir, '--workers', '2', env={'HOOKS_FILE': str(hooks)})
    socks = []
    try:
        deadline = time.monotonic() + 10
        while hooks.read_text().count('startup') < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        for _ in range(6):
            s = socket.create_connection(('127.0.0.1', server.port), timeout=10)
            s.sendall(b'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
            socks.append(s)
        while hooks.read_text().count('request') < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hooks.read_text().count('request') == 6
        server.proc.send_signal(signal.SIGTERM)
        answers = []
        for s in socks:
            answers.append(recv_all(s, timeout=15))
        assert server.proc.wait(15) == 0
    finally:
        for s in socks:
            s.close()
        server.stop()
    for data in answers:
        assert data.startswith(b'HTTP/1.1 200 ')
        assert b'finished ' in data
    text = hooks.read_text().split('\n')
    startups = {line.split()[1] for line in text if line.startswith('startup')}
    shutdowns = {line.split()[1] for line in text if line.startswith('shutdown')}
    assert len(startups) == 2 and shutdowns == startups  # hooks ran in each worker
    with pytest.raises(OSError):  # nobody listens any more
        socket.create_connection(('127.0.0.1', server.port), timeout=2)


def test_app_shutdown_in_a_worker_stops_the_whole_server(app_dir):
    server = start(app_dir, '--workers', '2')
    try:
        assert httpx.get(server.url + '/stop', timeout=10).text == 'stopping'
        assert server.proc.wait(15) == 0
    finally:
        server.stop()
    assert 'stopping the server' in server.output


def test_workers_that_cannot_start_end_with_an_error(tmp_path):
    (tmp_path / 'wapp.py').write_text(textwrap.dedent('''
        from microdot import Microdot
        app = Microdot()

        @app.on_startup
        def fail():
            raise RuntimeError('database unreachable')
    '''))
    port = free_port()
    proc = subprocess.run(MICRODOT + ['run', 'wapp:app', '--port', str(port),
                                      '--workers', '2'],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert 'database unreachable' in proc.stderr  # each failure is logged
    assert proc.stderr.rstrip().splitlines()[-1].startswith(
        'microdot: error: no worker could start: the last one exited with status 1 '
        'before serving')


def test_a_target_that_is_not_an_app_is_one_error_with_workers(app_dir):
    proc = subprocess.run(MICRODOT + ['run', 'wapp:index', '--port', str(free_port()),
                                      '--workers', '3'],
                          cwd=str(app_dir), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2  # as without workers
    assert proc.stderr.count('wapp:index is a function, not a Microdot application') == 1
    assert 'Traceback' not in proc.stderr and 'restarting' not in proc.stderr


def make_tls(tmp_path):
    openssl = shutil.which('openssl')
    if openssl is None:
        pytest.skip('the openssl command is needed to make a test certificate')
    cert, key = tmp_path / 'cert.pem', tmp_path / 'key.pem'
    subprocess.run([openssl, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
                    '-subj', '/CN=localhost', '-keyout', str(key), '-out', str(cert)],
                   check=True, capture_output=True, timeout=60)
    client = ssl.create_default_context(cafile=str(cert))
    client.check_hostname = False
    return cert, key, client


def test_app_run_with_workers_and_tls(app_dir, tmp_path):
    cert, key, client = make_tls(tmp_path)
    (app_dir / 'serve.py').write_text(textwrap.dedent('''
        import ssl, sys
        from wapp import app
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        app.run(host='127.0.0.1', port=int(sys.argv[1]), ssl=ctx, workers=2)
    '''))
    port = free_port()
    server = LiveServerProcess([sys.executable, 'serve.py', str(port), str(cert), str(key)],
                               port, cwd=str(app_dir))
    try:
        server.wait_ready(line='Serving')
        assert 'on https://127.0.0.1:%d (2 workers, built-in server)' % port \
            in server.live.text
        url = 'https://127.0.0.1:%d' % port
        assert len(worker_pids(url, 2, verify=client)) == 2
    finally:
        assert server.stop() == 0, server.output


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_process_group_stops_gracefully(app_dir, tmp_path, sig):
    """A terminal's Ctrl-C (SIGINT) reaches every process: the workers leave it to the
    supervisor, whose single SIGTERM lets the request in flight finish. A SIGTERM to
    the group (systemd's default KillMode, ``kill -TERM -PGID``) reaches the workers
    twice, from the signaller and from the supervisor: still a graceful stop."""
    hooks = tmp_path / 'hooks.txt'
    server = start(app_dir, '--workers', '2', env={'HOOKS_FILE': str(hooks)})
    try:
        s = socket.create_connection(('127.0.0.1', server.port), timeout=10)
        s.sendall(b'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
        deadline = time.monotonic() + 10
        while 'request' not in (hooks.read_text() if hooks.exists() else '') \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(server.proc.pid, sig)
        data = recv_all(s, timeout=15)
        s.close()
        assert server.proc.wait(15) == 0
    finally:
        server.stop()
    assert data.startswith(b'HTTP/1.1 200 ') and b'finished' in data
    assert 'Second signal' not in server.output


def test_a_second_signal_to_the_supervisor_aborts(app_dir, tmp_path):
    """The supervisor forwards a second signal as SIGQUIT: open connections are cut
    instead of waiting for the request in flight (a 60 s handler, longer than
    ``shutdown_timeout``: only the abort ends the workers in time)."""
    hooks = tmp_path / 'hooks.txt'
    server = start(app_dir, '--workers', '2', env={'HOOKS_FILE': str(hooks)})
    try:
        s = socket.create_connection(('127.0.0.1', server.port), timeout=10)
        s.sendall(b'GET /slow?seconds=60 HTTP/1.1\r\nHost: x\r\n\r\n')
        deadline = time.monotonic() + 10
        while 'request' not in (hooks.read_text() if hooks.exists() else '') \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        server.proc.send_signal(signal.SIGTERM)
        # the second signal once the first was handled (two pending ones merge)
        assert server.live.wait_for('Stopping 2 worker(s)'), server.live.text
        server.proc.send_signal(signal.SIGTERM)
        # a graceful stop would hold the connection for shutdown_timeout (10 s)
        data = recv_all(s, timeout=8)
        s.close()
        assert server.proc.wait(15) == 0
    finally:
        server.stop()
    assert b'finished' not in data  # cut, not answered
    assert 'aborting open connections' in server.output


def test_workers_stop_when_the_supervisor_is_killed(app_dir):
    server = start(app_dir, '--workers', '2')
    try:
        pids = worker_pids(server.url, 2)
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
        deadline = time.monotonic() + 10
        alive = set(pids)
        while alive and time.monotonic() < deadline:
            for pid in list(alive):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    alive.discard(pid)
            time.sleep(0.05)
        assert not alive, 'orphaned workers kept running'
    finally:
        server.stop()
    assert 'The supervising process is gone' in server.output


def test_restart_back_off_doubles_and_resets():
    from microdot import supervisor
    sup = supervisor.Supervisor(None, None, 2, False, None, 'x', ('http', 'h', 1), {})
    worker = sup.workers[0]
    delays = []
    for _ in range(8):
        worker.pid, worker.ready, worker.started = 1, True, time.monotonic()
        before = time.monotonic()
        sup._exited(worker, 1 << 8)  # exit status 1, soon after starting
        delays.append(round(worker.restart_at - before, 1))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    worker.pid, worker.started = 1, time.monotonic() - supervisor.STABLE_AFTER - 1
    before = time.monotonic()
    sup._exited(worker, signal.SIGKILL)  # killed after serving a while: at once
    assert worker.restart_at - before < 0.1 and worker.backoff == supervisor.BACKOFF_MIN
    assert sup.gave_up is None  # workers did serve: never give up


def test_supervisor_gives_up_when_no_worker_ever_started():
    from microdot import supervisor
    sup = supervisor.Supervisor(None, None, 2, False, None, 'x', ('http', 'h', 1), {})
    for worker in sup.workers:
        worker.pid = 1
        sup._exited(worker, 1 << 8)
    assert sup.gave_up is None  # each may retry once
    sup.workers[0].pid = 1
    sup._exited(sup.workers[0], 1 << 8)
    assert sup.gave_up.startswith('no worker could start: the last one exited with '
                                  'status 1 before serving')
