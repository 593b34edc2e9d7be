"""``microdot run MODULE:APP --server uwsgi``: uWSGI, with graceful stops.

The command starts the ``uwsgi`` program (from ``pip install 'microdot-wsgi[uwsgi]'``)
with its HTTP router on HOST:PORT (``--http``; ``--http-websockets`` so WebSocket
routes work, ``--http-keepalive --http-auto-chunked`` so clients keep their
connections), a master process, ``--workers`` processes of ``--threads`` threads
each, and stays in front of it:

* SIGTERM or SIGINT (Ctrl+C) stops uWSGI gracefully: it accepts no new requests, the
  requests in progress complete, then it exits. uWSGI 2.0 offers that only through
  its master FIFO (``q``), with no time limit, so after ``graceful_timeout`` seconds
  (uWSGI's ``--worker-reload-mercy``, 30 unless ``UWSGI_WORKER_RELOAD_MERCY`` says
  otherwise) what is left is stopped. A second signal stops at once.
* SIGHUP reloads the application gracefully: uWSGI's chain reload (FIFO command
  ``c``) replaces the workers one at a time, each once its requests in progress are
  complete (within the same time limit), and the new ones import the application
  anew (``--lazy-apps``), so the new code is served while the service continues.
* The ``uwsgi`` processes run in their own process group, so Ctrl+C reaches this
  process only, and they stop if this process dies.

uWSGI's own signals, for those who run it directly: SIGHUP reloads everything,
restarting the master and the HTTP router too, which drops the connections they carry;
with ``--die-on-term`` (given here) SIGTERM stops at once, cutting requests in
progress (without it SIGTERM reloads, at once); SIGINT stops at once. Any other uWSGI
option can be given through its environment variables (``UWSGI_HARAKIRI=60``, ...).
"""
from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import FrameType
from typing import Any, Dict, FrozenSet, List, Optional

from microdot.listener import PortInUse, ServeError
from microdot.wsgi import _missing  # pyright: ignore[reportPrivateUsage]
from microdot.wsgi_uwsgi import APP_VARIABLE, SUPERVISOR_VARIABLE

__all__ = ['UwsgiServer', 'uwsgi_server', 'uwsgi_binary']

logger = logging.getLogger('microdot.wsgi')

#: What uWSGI runs to get the WSGI callable (``application``) of MICRODOT_UWSGI_APP.
_LOADER = 'from microdot.wsgi_uwsgi import load_application; application = load_application()'
#: Seconds between the forced stop (SIGINT) and SIGKILL.
_KILL_AFTER = 5.0
#: Seconds between two looks at uWSGI's state while it runs or stops.
_POLL = 0.5
#: Seconds between two SIGHUPs to the workers during a graceful stop.
_NUDGE_EVERY = 1.0


def uwsgi_binary() -> str:
    """The ``uwsgi`` program to run.

    Returns:
        Its path: the one installed next to this Python (by ``pip install uwsgi``),
        else the first on ``PATH``.

    Raises:
        ImportError: uWSGI is not installed (the message says what to install).
    """
    here = os.path.join(os.path.dirname(sys.executable), 'uwsgi')
    if os.path.isfile(here) and os.access(here, os.X_OK):
        return here
    found = shutil.which('uwsgi')
    if found is None:
        raise _missing('uwsgi')
    return found


def _check_port(host: str, port: int) -> None:
    """Raise :class:`PortInUse` if something listens on ``host:port`` already."""
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(host, port) from None
            raise ServeError('cannot listen on %s:%d: %s' % (host, port, exc.strerror)) \
                from None


def _own_group_dying_with_parent() -> None:  # pragma: no cover - runs in the child
    """In the uWSGI child before exec: a process group of its own, and SIGINT (uWSGI's
    "stop") when this process dies (Linux)."""
    os.setpgid(0, 0)
    if sys.platform.startswith('linux'):
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGINT))  # PR_SET_PDEATHSIG


class _Supervisor:
    """Waits for the uWSGI master while turning signals into uWSGI's stop and reload
    commands (see module doc)."""

    def __init__(self, proc: 'subprocess.Popen[bytes]', fifo: str, timeout: float) -> None:
        self.proc = proc
        self.fifo = fifo
        self.timeout = timeout
        #: True once a stop was asked for.
        self.stopping = False
        self.deadline: Optional[float] = None
        self.kill_at: Optional[float] = None
        self.nudge_at = 0.0

    def handle(self, signum: int, frame: Optional[FrameType] = None) -> None:
        """Signal handler: SIGHUP reloads, SIGTERM/SIGINT stop (the second at once)."""
        if signum == signal.SIGHUP:
            if self.stopping:
                return
            logger.info('Reloading the application: uWSGI replaces its workers one by one')
            if not self._fifo_command(b'c'):
                self._signal_master(signal.SIGHUP)
        elif self.stopping:
            self.stop_now()
        else:
            self.stop_gracefully()

    def _signal_master(self, signum: int) -> None:
        try:
            os.kill(self.proc.pid, signum)
        except ProcessLookupError:
            pass

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def _fifo_command(self, command: bytes, attempts: int = 25) -> bool:
        """Write ``command`` to uWSGI's master FIFO; False if the master is not
        reading it (still starting, or gone). The master makes the FIFO anew after
        each command, so a command that follows another closely may wait a little."""
        for attempt in range(attempts):
            if attempt:
                time.sleep(0.02)
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader; ENOENT: not created (yet)
                if self.proc.poll() is not None:
                    return False
                continue
            try:
                os.write(fd, command)
                return True
            except OSError:
                continue
            finally:
                os.close(fd)
        return False

    def stop_gracefully(self) -> None:
        """Have uWSGI finish the requests in progress and exit (bounded in time)."""
        self.stopping = True
        self.deadline = time.monotonic() + self.timeout
        self.nudge_at = time.monotonic() + _NUDGE_EVERY
        if self._fifo_command(b'q'):
            logger.info('Stopping uWSGI: waiting up to %gs for the requests in progress '
                        '(signal again to stop now)', self.timeout)
        else:
            self.stop_now()

    def stop_now(self) -> None:
        """Stop every uWSGI process at once (SIGINT, then SIGKILL if need be)."""
        self.stopping = True
        self.deadline = None
        if self.kill_at is None:
            logger.info('Stopping uWSGI now')
            self.kill_at = time.monotonic() + _KILL_AFTER
            self._signal_group(signal.SIGINT)

    def _nudge_workers(self) -> None:
        """During a graceful stop, repeat the master's SIGHUP ("finish, then exit") to
        its children: a worker still importing the application (``--lazy-apps``)
        when the master sent it ignored it. uWSGI's HTTP router ignores SIGHUP; the
        master is not signalled (SIGHUP would make it reload)."""
        now = time.monotonic()
        if now < self.nudge_at:
            return
        self.nudge_at = now + _NUDGE_EVERY
        for child in _children(self.proc.pid):
            try:
                os.kill(child, signal.SIGHUP)
            except ProcessLookupError:
                pass

    def wait(self) -> int:
        """Wait for uWSGI to exit; its exit status."""
        try:
            while True:
                try:
                    return self.proc.wait(_POLL)  # wakes up to keep the time limits
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                if self.kill_at is not None:
                    if now >= self.kill_at:
                        logger.warning('uWSGI did not stop: killing it')
                        self._signal_group(signal.SIGKILL)
                        self.kill_at = now + _KILL_AFTER
                elif self.deadline is not None:
                    if now >= self.deadline:
                        logger.warning('Requests still in progress after %gs: stopping '
                                       'them', self.timeout)
                        self.stop_now()
                    else:
                        self._nudge_workers()
        finally:
            self._signal_group(signal.SIGKILL)  # anything left of the group


def _children(pid: int) -> List[int]:
    """The child processes of ``pid`` (Linux; none where it cannot be known)."""
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
            return [int(child) for child in f.read().split()]
    except (OSError, ValueError):
        return []


class UwsgiServer:
    """Runs an application with uWSGI (``--server uwsgi``); see the module doc."""

    MICRODOT_PLUGIN_API = 1
    name = 'uwsgi'
    options: FrozenSet[str] = frozenset({'workers', 'threads', 'reload', 'access_log'})
    #: Seconds a graceful stop or reload waits for the requests in progress (uWSGI's
    #: ``--worker-reload-mercy``); the ``UWSGI_WORKER_RELOAD_MERCY`` environment
    #: variable overrides it.
    graceful_timeout: int = 30

    def installed(self) -> bool:
        """Whether the ``uwsgi`` program is installed.

        (The ``uwsgi`` Python module exists only inside uWSGI, so looking for it
        cannot tell.)

        Returns:
            ``True`` if :func:`uwsgi_binary` finds it.
        """
        try:
            uwsgi_binary()
        except ImportError:
            return False
        return True

    def mercy(self) -> int:
        """The graceful stop/reload time limit in seconds.

        Returns:
            ``UWSGI_WORKER_RELOAD_MERCY`` if set, else :attr:`graceful_timeout`.
        """
        value = os.environ.get('UWSGI_WORKER_RELOAD_MERCY', '')
        return int(value) if value.isdigit() else self.graceful_timeout

    def command(self, host: str, port: int, fifo: str, workers: Any = None,
                threads: Optional[int] = None, reload: bool = False,
                access_log: Optional[bool] = None) -> List[str]:
        """The uWSGI command line serving the application on ``host:port``.

        uWSGI serves the application named by the ``MICRODOT_UWSGI_APP`` environment
        variable.

        Args:
            host: address to listen on.
            port: port to listen on.
            fifo: path of uWSGI's master FIFO (``q`` there stops it gracefully).
            workers: number of processes; ``'auto'`` or ``0``: one per CPU.
            threads: threads per process.
            reload: restart when a Python module changes (``--py-autoreload``).
            access_log: ``False`` turns uWSGI's request log off.

        Returns:
            The argument list, program first.
        """
        address = '[%s]:%d' % (host, port) if ':' in host else '%s:%d' % (host, port)
        if workers in ('auto', 0):
            workers = os.cpu_count() or 1
        cmd = [uwsgi_binary(), '--master', '--http', address, '--http-websockets',
               '--http-keepalive', '--http-auto-chunked', '--eval', _LOADER, '--need-app', '--lazy-apps', '--enable-threads',
               '--single-interpreter', '--die-on-term', '--master-fifo', fifo,
               '--buffer-size', '32768', '--ignore-sigpipe', '--ignore-write-errors',
               '--disable-write-exception', '--processes', str(workers or 1)]
        if 'UWSGI_WORKER_RELOAD_MERCY' not in os.environ:
            cmd += ['--worker-reload-mercy', str(self.graceful_timeout)]
        if threads and threads > 1:
            cmd += ['--threads', str(threads)]
        if sys.prefix != sys.base_prefix:  # a virtual environment: uWSGI's Python home
            cmd += ['--virtualenv', sys.prefix]
        if reload:
            cmd += ['--py-autoreload', '1']
        if access_log is False:
            cmd += ['--disable-logging']
        return cmd

    def run(self, app: Any, host: str = '127.0.0.1', port: int = 5000, **options: Any) -> None:
        """Serve ``app`` (``'MODULE:APP'``) with uWSGI until stopped (see module doc).

        Args:
            app: the application, as ``MODULE:APP`` (uWSGI imports it in its own
                processes).
            host: address to listen on.
            port: port to listen on.
            **options: ``workers``, ``threads``, ``reload``, ``access_log``.

        Raises:
            ImportError: uWSGI is not installed.
            TypeError: ``app`` is not a ``MODULE:APP`` string.
            ServeError: the port is in use, or uWSGI failed.
        """
        if not isinstance(app, str):
            raise TypeError("the uwsgi server imports the application in its own "
                            "processes: pass it as 'MODULE:APP', not as an object")
        uwsgi_binary()  # installed?
        from microdot.cli import load_app
        load_app(app)  # the command line's own errors for a wrong MODULE:APP
        _check_port(host, port)
        timeout = self.mercy()
        with tempfile.TemporaryDirectory(prefix='microdot-uwsgi-') as tmp:
            cmd = self.command(host, port, os.path.join(tmp, 'master.fifo'), **options)
            env: Dict[str, str] = dict(os.environ)
            env[APP_VARIABLE] = app
            env[SUPERVISOR_VARIABLE] = str(os.getpid())
            logger.info('Serving on http://%s:%d with uWSGI (%s)', host, port,
                        ' '.join(cmd[1:]))
            proc = subprocess.Popen(cmd, env=env, preexec_fn=_own_group_dying_with_parent)
            supervisor = _Supervisor(proc, os.path.join(tmp, 'master.fifo'), timeout)
            signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
            previous = {sig: signal.signal(sig, supervisor.handle) for sig in signals}
            try:
                status = supervisor.wait()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
        if status and not supervisor.stopping:
            raise ServeError('uWSGI exited with status %d (its messages are above)'
                             % status)


uwsgi_server = UwsgiServer()
