"""Test helpers: free loopback ports and real server processes, always stopped."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port(host: str = '127.0.0.1') -> int:
    """A TCP port that is free on ``host`` right now."""
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, proc=None, timeout: float = 20.0) -> None:
    """Block until ``host:port`` accepts connections (a readiness probe)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ''
            raise AssertionError('server exited with %s before listening:\n%s'
                                 % (proc.returncode, out))
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError('nothing listening on %s:%d after %.0fs' % (host, port, timeout))


class ServerProcess:
    """A server started as a subprocess; ``stop()`` sends SIGTERM and reaps it."""

    def __init__(self, args, port, host='127.0.0.1', cwd=None, env=None):
        self.host = host
        self.port = port
        full_env = dict(os.environ)
        full_env['PYTHONUNBUFFERED'] = '1'
        full_env['PYTHONPATH'] = os.pathsep.join(
            [str(ROOT)] + ([full_env['PYTHONPATH']] if full_env.get('PYTHONPATH') else []))
        full_env.update(env or {})
        self.proc = subprocess.Popen(args, cwd=cwd or str(ROOT), env=full_env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.output = ''

    @property
    def url(self) -> str:
        host = '[%s]' % self.host if ':' in self.host else self.host
        return 'http://%s:%d' % (host, self.port)

    def wait_ready(self, timeout: float = 20.0) -> 'ServerProcess':
        wait_for_port(self.host, self.port, self.proc, timeout)
        return self

    def stop(self, sig=signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # stray workers, if any
        except (ProcessLookupError, PermissionError):
            pass
        self._collect_output()
        return self.proc.returncode

    def _collect_output(self) -> None:
        """Read what the stopped process wrote into ``self.output``."""
        if self.proc.stdout and not self.proc.stdout.closed:
            self.output += self.proc.stdout.read()
            self.proc.stdout.close()


@contextmanager
def serve(args, port, **kwargs):
    """Start a server process, wait until it listens, and always stop it."""
    server = ServerProcess(args, port, **kwargs)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def python_cmd(*args):
    return [sys.executable, *args]


@contextmanager
def live_server(app, host='127.0.0.1', ssl_context=None, **options):
    """Run the built-in server for ``app`` on a free port, in a thread with its own
    event loop (uvloop when installed, as ``run()`` does); always stopped.

    Yields the ``Server`` with ``host``, ``port``, ``loop``, ``url`` and ``ws_url`` set.
    """
    from microdot.server import Server, _new_event_loop
    server = Server(app, **options)
    port = free_port(host)
    loop = _new_event_loop()
    started = threading.Event()
    errors = []

    async def main():
        try:
            await server.start(host, port, ssl=ssl_context)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
            started.set()
            return
        started.set()
        try:
            await server._stop_event.wait()
        finally:
            await server.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10), 'server did not start'
    if errors:
        raise errors[0]
    netloc = '[%s]:%d' % (host, port) if ':' in host else '%s:%d' % (host, port)
    server.host, server.port, server.loop = host, port, loop
    server.url = 'http://' + netloc
    server.ws_url = 'ws://' + netloc
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(server.shutdown)
        thread.join(15)
        assert not thread.is_alive(), 'server did not stop'
        loop.close()


def wait_for_line(path, text, timeout=10):
    """Poll the file ``path`` until it contains ``text``; False after ``timeout``
    seconds (servers under test write what their hooks saw there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and text in open(path).read():
            return True
        time.sleep(0.02)
    return False


class LiveOutput:
    """Reads a process's combined output in a thread, so a test can wait for a line
    while the process runs (``wait_for``) and read everything once it stopped."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = []
        self.done = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self.done = True
            self._cond.notify_all()

    @property
    def text(self):
        with self._cond:
            return ''.join(self.lines)

    def count(self, text):
        with self._cond:
            return sum(text in line for line in self.lines)

    def wait_for(self, text, timeout=10.0, count=1):
        """True once ``count`` lines contain ``text``; False after ``timeout`` seconds
        or when the output ended first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(text in line for line in self.lines) < count:
                left = deadline - time.monotonic()
                if left <= 0 or self.done:
                    return False
                self._cond.wait(left)
            return True

    def join(self, timeout=10.0):
        self._thread.join(timeout)


class LiveServerProcess(ServerProcess):
    """A :class:`ServerProcess` whose output is read while it runs (``self.live``)."""

    def __init__(self, args, port, **kwargs):
        super().__init__(args, port, **kwargs)
        self.live = LiveOutput(self.proc)

    def wait_ready(self, timeout: float = 20.0, line=None) -> 'LiveServerProcess':
        """Wait until the port accepts connections, and ``line`` (if given) is seen."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self.live.join(5)
                raise AssertionError('server exited with %s before listening:\n%s'
                                     % (self.proc.returncode, self.live.text))
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError('nothing listening on %s:%d after %.0fs:\n%s'
                                         % (self.host, self.port, timeout, self.live.text))
                time.sleep(0.05)
        if line is not None:
            assert self.live.wait_for(line, max(0.1, deadline - time.monotonic())), \
                'no %r in the output:\n%s' % (line, self.live.text)
        return self

    def _collect_output(self) -> None:
        self.live.join(10)
        self.output = self.live.text


def recv_all(s, timeout=5):
    """Read from socket ``s`` until the peer closes; fails (socket.timeout) if it does
    not within ``timeout`` seconds of silence."""
    s.settimeout(timeout)
    data = b''
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
