"""Worker processes of the built-in server (``--workers N``, ``app.run(workers=N)``).

The supervising process binds the listening socket once, then forks the workers. Each
worker is an independent process: it imports the application by ``MODULE:APP`` when
the command line named it (else it uses the application the parent had, copied by the
fork), runs the startup hooks, and accepts connections: on Linux from a socket of its
own on the port (``SO_REUSEPORT``; the kernel spreads connections evenly, and the
parent keeps the port with a bound placeholder that does not listen), elsewhere from
the socket the parent bound, shared by all workers. The parent serves nothing: it

- restarts a worker that dies, at once if it had served for a while
  (:data:`STABLE_AFTER`), else after a back-off that doubles from
  :data:`BACKOFF_MIN` up to :data:`BACKOFF_MAX`, so a crashing application does
  not spin;
- gives up (:class:`~microdot.listener.ServeError`) when no worker could start at all:
  every worker failed before serving, and a retry failed too;
- on SIGINT/SIGTERM, closes its copy of the socket and sends SIGTERM to every worker,
  which stops gracefully (in-flight requests get ``shutdown_timeout``); workers still
  running after that (plus :data:`KILL_GRACE`) are killed. A second signal is
  forwarded as SIGQUIT, which aborts the workers' connections (a repeated SIGTERM
  does not: with systemd's default ``KillMode=control-group`` or ``kill -TERM
  -PGID``, workers get SIGTERM from the signaller and from the parent);
- stops everything when ``app.shutdown()`` is called in a worker (the worker reports
  it at once; a worker that ends on its own with exit status 0 counts the same).

Workers ignore SIGINT (a Ctrl-C reaches the whole process group; the parent forwards
it once, as SIGTERM), and shut down if the parent disappears. POSIX only (``os.fork``).
"""
from __future__ import annotations

import logging
import os
import select
import signal
import socket
import sys
import time
from typing import Any, Dict, Optional, Tuple

from .listener import ServeError, listen_again, reserve_for_workers, reuse_port_supported

logger = logging.getLogger('microdot.server')

#: seconds of service after which a worker's death is not a crash loop
STABLE_AFTER = 10.0
#: first and longest delay before restarting a worker that died early
BACKOFF_MIN = 0.5
#: longest delay before restarting a worker that died early
BACKOFF_MAX = 30.0
#: seconds, beyond ``shutdown_timeout``, a stopping worker gets before SIGKILL
KILL_GRACE = 5.0
#: exit status of a worker that cannot serve this application at all (bad MODULE:APP)
EXIT_FATAL = 3


class _Worker:
    """One worker slot: the process filling it and its restart state."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.pid: Optional[int] = None
        self.started = 0.0
        self.ready = False
        self.backoff = BACKOFF_MIN
        self.restart_at: Optional[float] = None


def _ignore_signal(signum: int, frame: Any) -> None:
    """A handler that does nothing: the signal only wakes the supervisor up."""


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return 'was killed by %s' % signal.Signals(sig).name
        except ValueError:  # pragma: no cover
            return 'was killed by signal %d' % sig
    return 'exited with status %d' % os.waitstatus_to_exitcode(status)


def _worker_main(app: Any, sock: socket.socket, report: int, debug: bool, ssl: Any,
                 parent: int, options: Dict[str, Any], reuse_port: bool = False) -> int:
    """The body of a worker process; returns its exit status. With ``reuse_port``,
    ``sock`` is the supervisor's placeholder and the worker listens on a socket of its
    own (see :func:`~microdot.listener.reserve_for_workers`)."""
    from .server import serve_socket
    if reuse_port:
        own = listen_again(sock)
        sock.close()
        sock = own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    pid = os.getpid()
    try:
        if isinstance(app, str):
            from .cli import CLIError, load_app
            try:
                app = load_app(app)
            except CLIError as exc:
                os.write(report, b'F%d %s\n' % (pid, str(exc).replace('\n', ' ').encode()))
                return EXIT_FATAL
        app.debug = debug

        def ready(server: Any) -> None:
            os.write(report, b'R%d\n' % pid)

        def stopping() -> None:  # app.shutdown() here stops every worker
            os.write(report, b'S%d\n' % pid)

        serve_socket(app, sock, ssl=ssl, signals=(signal.SIGTERM,), parent=parent,
                     on_ready=ready, on_stopping=stopping, abort_signal=signal.SIGQUIT,
                     **options)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        logger.exception('Worker %d failed', pid)
        return 1
    return 0


class Supervisor:
    """Starts, watches and stops the worker processes; see the module docstring.

    Args:
        app: The application, or a ``MODULE:APP`` string each worker imports.
        sock: The listening socket.
        workers: How many worker processes.
        debug: Serve in debug mode (access log).
        ssl: The TLS context, or ``None``.
        name: The name of the application, for the log.
        address: ``(scheme, host, port)``, for the start-up line.
        options: The built-in server's options.
        reuse_port: Give each worker its own ``SO_REUSEPORT`` socket (``sock`` is
            traded for a placeholder).
    """

    def __init__(self, app: Any, sock: socket.socket, workers: int, debug: bool,
                 ssl: Any, name: str, address: Tuple[str, str, int],
                 options: Dict[str, Any], reuse_port: bool = False) -> None:
        self.app = app
        self.reuse_port = reuse_port
        self.sock: Optional[socket.socket] = reserve_for_workers(sock) if reuse_port else sock
        self.workers = [_Worker(i) for i in range(workers)]
        self.debug = debug
        self.ssl = ssl
        self.name = name
        self.address = address
        self.options = options
        from .server import DEFAULTS
        self.shutdown_timeout = float(options.get('shutdown_timeout',
                                                  DEFAULTS['shutdown_timeout']))
        self.signals = 0
        self.stopping = False
        self.forwarded = 0
        self.fatal: Optional[str] = None
        self.gave_up: Optional[str] = None
        self.failures = 0
        self.ever_ready = False
        self.announced = False
        self._buffer = b''

    # -- processes ------------------------------------------------------------------

    def spawn(self, worker: _Worker) -> None:
        """Fork a process for a worker's slot.

        Args:
            worker: The slot.
        """
        assert self.sock is not None
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):  # pragma: no cover
                pass
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                signal.set_wakeup_fd(-1)
                os.close(self._report_r)
                os.close(self._wake_r)
                os.close(self._wake_w)
                status = _worker_main(self.app, self.sock, self._report_w, self.debug,
                                      self.ssl, parent, self.options, self.reuse_port)
            finally:
                try:
                    logging.shutdown()
                    for stream in (sys.stdout, sys.stderr):
                        stream.flush()  # os._exit() would drop what is buffered
                except BaseException:  # pragma: no cover - exiting anyway
                    pass
                finally:
                    os._exit(status)
        worker.pid = pid
        worker.started = time.monotonic()
        worker.ready = False
        worker.restart_at = None
        logger.debug('Started worker %d (pid %d)', worker.index, pid)

    def _read_reports(self) -> None:
        while True:
            try:
                data = os.read(self._report_r, 4096)
            except BlockingIOError:
                break
            if not data:
                break
            self._buffer += data
        *lines, self._buffer = self._buffer.split(b'\n')
        for line in lines:
            kind, _, rest = line.decode('utf-8', 'replace').partition(' ')
            pid = int(kind[1:]) if kind[1:].isdigit() else -1
            if kind[:1] == 'R':
                for worker in self.workers:
                    if worker.pid == pid:
                        worker.ready = True
                        self.ever_ready = True
            elif kind[:1] == 'F' and self.fatal is None:
                self.fatal = rest
            elif kind[:1] == 'S' and not self.signals:
                index = [w.index for w in self.workers if w.pid == pid] or [-1]
                logger.info('Worker %d stopped the application (app.shutdown()): stopping '
                            'the server', index[0])
                self.signals = 1

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for worker in self.workers:
                if worker.pid == pid:
                    self._exited(worker, status)

    def _exited(self, worker: _Worker, status: int) -> None:
        worker.pid = None
        if self.stopping:
            return
        code = os.waitstatus_to_exitcode(status)
        if code == EXIT_FATAL:
            self._read_reports()  # its report, written before it exited
            if self.fatal is not None:
                return
        if code == 0:
            logger.info('Worker %d stopped the application (app.shutdown()): stopping '
                        'the server', worker.index)
            self.signals = 1
            self.stopping = True
            return
        now = time.monotonic()
        if not worker.ready:
            self.failures += 1
        if worker.ready and now - worker.started >= STABLE_AFTER:
            worker.backoff = BACKOFF_MIN
            delay = 0.0
        else:
            delay = worker.backoff
            worker.backoff = min(worker.backoff * 2, BACKOFF_MAX)
        what = 'before serving' if not worker.ready else 'after %.1fs' % (now - worker.started)
        if not self.ever_ready and self.failures > len(self.workers):
            self.gave_up = ('no worker could start: the last one %s %s (see the log above)'
                            % (_describe_status(status), what))
            return
        logger.warning('Worker %d %s %s; restarting it in %.1fs', worker.index,
                       _describe_status(status), what, delay)
        worker.restart_at = now + delay

    # -- the loop -------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signals += 1

    def run(self) -> None:
        """Supervise the workers until stopped.

        Raises:
            ServeError: When the workers cannot run: a worker reported a fatal error
                (exit status 2, as a usage error), or none could start.
        """
        self._report_r, self._report_w = os.pipe()
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._report_r, self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        previous = {sig: signal.getsignal(sig)
                    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)}
        old_wakeup = signal.set_wakeup_fd(self._wake_w)
        try:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
                signal.signal(sig, self._on_signal if sig != signal.SIGCHLD
                              else _ignore_signal)
            for worker in self.workers:
                self.spawn(worker)
            self._supervise()
            self._stop_all()
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
            for fd in (self._report_r, self._report_w, self._wake_r, self._wake_w):
                os.close(fd)
            self._close_socket()
        if self.fatal is not None:
            error = ServeError(self.fatal)
            error.exit_status = 2  # a usage error, as in a single process
            raise error
        if self.gave_up is not None:
            raise ServeError(self.gave_up)

    def _wait(self, timeout: float) -> None:
        try:
            select.select([self._report_r, self._wake_r], [], [], max(0.0, timeout))
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            pass
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _supervise(self) -> None:
        while not self.signals and self.fatal is None and self.gave_up is None:
            now = time.monotonic()
            due = [w.restart_at for w in self.workers if w.restart_at is not None]
            self._wait(min([1.0] + [at - now for at in due]))
            self._read_reports()
            self._reap()
            # once every worker serves, or failed (a crashing one does not hide the line)
            if not self.announced and any(w.ready for w in self.workers) and \
                    all(w.ready or w.pid is None for w in self.workers):
                self.announced = True
                from .console import announce
                scheme, host, port = self.address
                announce(self.name, scheme, host, port, len(self.workers))
            if self.signals or self.fatal is not None or self.gave_up is not None:
                break
            now = time.monotonic()
            for worker in self.workers:
                if worker.pid is None and worker.restart_at is not None \
                        and worker.restart_at <= now:
                    self.spawn(worker)

    def _close_socket(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _kill(self, sig: int) -> None:
        for worker in self.workers:
            if worker.pid is not None:
                try:
                    os.kill(worker.pid, sig)
                except ProcessLookupError:
                    pass

    def _stop_all(self) -> None:
        """Stop the workers gracefully, then by force after the grace period."""
        self.stopping = True
        self._close_socket()  # the kernel stops queueing connections for us
        if any(w.pid is not None for w in self.workers):
            logger.log(logging.INFO if self.signals else logging.DEBUG,
                       'Stopping %d worker(s) (in-flight requests may finish)',
                       sum(w.pid is not None for w in self.workers))
        # the first signal is forwarded as SIGTERM; any later one (even one that came
        # in while this ran) aborts
        self.forwarded = 1
        self._kill(signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_timeout + KILL_GRACE
        while any(w.pid is not None for w in self.workers):
            now = time.monotonic()
            if now >= deadline:
                logger.warning('Killing %d worker(s) still running after %.1fs',
                               sum(w.pid is not None for w in self.workers),
                               self.shutdown_timeout + KILL_GRACE)
                self._kill(signal.SIGKILL)
                deadline = now + 60.0
            if self.signals > self.forwarded:  # a second Ctrl-C or SIGTERM: abort
                self.forwarded = self.signals
                self._kill(signal.SIGQUIT)
            self._wait(min(0.5, deadline - now))
            self._read_reports()
            self._reap()


def run_workers(app: Any, sock: socket.socket, workers: int, debug: bool, ssl: Any,
                name: str, address: Tuple[str, str, int], options: Dict[str, Any],
                reuse_port: Optional[bool] = None) -> None:
    """Serve an application from several worker processes until stopped.

    Until SIGINT, SIGTERM or ``app.shutdown()``. With ``reuse_port`` (the default
    where :func:`~microdot.listener.reuse_port_supported`, when the server bound
    ``sock`` itself), each worker listens on its own ``SO_REUSEPORT`` socket and
    ``sock`` is traded for a placeholder; otherwise every worker accepts from
    ``sock``.

    Args:
        app: An application, or a ``MODULE:APP`` string.
        sock: The listening socket.
        workers: How many worker processes.
        debug: Serve in debug mode (access log).
        ssl: The TLS context, or ``None``.
        name: The name of the application, for the log.
        address: ``(scheme, host, port)``, for the start-up line.
        options: The built-in server's options.
        reuse_port: One socket per worker (``None``: where supported).

    Raises:
        ServeError: If the platform has no ``os.fork``, or the workers cannot run.
    """
    if not hasattr(os, 'fork'):
        raise ServeError('worker processes need os.fork, which this platform lacks; run '
                         'one process per port behind a load balancer instead')
    if reuse_port is None:
        reuse_port = reuse_port_supported()
    Supervisor(app, sock, workers, debug, ssl, name, address, options, reuse_port).run()
