"""A real ``redis-server`` process for the publish/subscribe tests (see conftest.py)."""
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from support import free_port, wait_for_port


def redis_server_binary():
    """The path of ``redis-server``; skips (fails in CI) when it is not installed."""
    path = shutil.which('redis-server') or (
        '/usr/bin/redis-server' if os.path.exists('/usr/bin/redis-server') else None)
    if path is None:
        message = ('redis-server is not installed (Debian: apt-get install redis-server; '
                   '.ci/run installs it)')
        if os.environ.get('CI'):
            pytest.fail(message)
        pytest.skip(message)
    return path


class RedisServer:
    """A ``redis-server`` process on 127.0.0.1 that can be killed and started again on
    the same port (persistence off: a restart loses everything, as after a crash)."""

    def __init__(self, workdir, port=None, unix_socket=None):
        self.binary = redis_server_binary()
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.unix_socket = unix_socket
        self.proc = None
        self.log = self.workdir / ('redis-%d.log' % self.port)
        #: replaces ``--port N`` when set (e.g. a TLS port)
        self.extra_args = None

    @property
    def url(self):
        return 'redis://127.0.0.1:%d/0' % self.port

    def start(self, probe=True):
        """Start (again); ``probe``: wait until it answers PING (plain TCP only)."""
        ports = self.extra_args or ['--port', str(self.port)]
        args = [self.binary, *ports, '--bind', '127.0.0.1',
                '--save', '', '--appendonly', 'no', '--dir', str(self.workdir),
                '--logfile', str(self.log), '--daemonize', 'no',
                '--protected-mode', 'no']
        if self.unix_socket:
            args += ['--unixsocket', str(self.unix_socket), '--unixsocketperm', '700']
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_for_port('127.0.0.1', self.port, timeout=10)
        if probe:
            self.ping()
        return self

    def client(self):
        """A synchronous redis-py client (for probes from the test)."""
        import redis
        return redis.Redis(host='127.0.0.1', port=self.port, socket_timeout=5,
                           socket_connect_timeout=5)

    def ping(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.client() as c:
                    if c.ping():
                        return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self):
        """SIGKILL, as a crash; waits until the process is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def numsub(self, channel):
        """How many connections are subscribed to the Redis channel ``channel``."""
        with self.client() as c:
            return dict(c.pubsub_numsub(channel)).get(channel.encode(), 0)

    def wait_numsub(self, channel, count, timeout=20.0):
        """Wait until ``count`` connections are subscribed to ``channel``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.numsub(channel) >= count:
                    return
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise AssertionError('%d subscriber(s) to %r expected, not there after '
                                     '%.0fs' % (count, channel, timeout))
            time.sleep(0.05)
