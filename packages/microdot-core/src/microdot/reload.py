"""``--reload`` for the built-in server: restart the application when its code changes.

The reloading process binds the listening socket once, then runs the application in a
child process (the same command line again, with the socket's descriptor in the
``MICRODOT_RELOAD_FD`` environment variable), and watches the application's folder.
When a ``.py`` file or a template changes, the child is stopped gracefully (SIGTERM,
``shutdown_timeout``) and a new one started; clients that connect meanwhile wait in
the socket's backlog instead of being refused. A child that exits with an error (a
syntax error, say) is restarted after the next change. Changes are seen through
`watchfiles` when it is installed (``pip install 'microdot-core[dev]'``), else by
polling file modification times twice a second.

For development only: one process, never together with worker processes.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

logger = logging.getLogger('microdot.server')

#: environment variable naming the inherited listening socket's descriptor
ENV = 'MICRODOT_RELOAD_FD'
#: seconds between two scans of the polling watcher
POLL_INTERVAL = 0.5
#: template files (any file in a ``templates`` folder is watched too)
TEMPLATE_SUFFIXES = frozenset({'.html', '.htm', '.jinja', '.jinja2', '.j2', '.tpl'})
#: folders never watched
SKIPPED_DIRS = frozenset({'__pycache__', 'node_modules', 'site-packages', 'venv'})
#: seconds, beyond ``shutdown_timeout``, a stopping child gets before SIGKILL
KILL_GRACE = 5.0


def inherited_socket() -> Optional[socket.socket]:
    """Take the listening socket the reloader handed down, in the process it started.

    The environment variable is removed so that grandchildren do not see it.

    Returns:
        The socket, or ``None`` in a process the reloader did not start.
    """
    value = os.environ.pop(ENV, None)
    if value is None:
        return None
    return socket.socket(fileno=int(value))


def app_folders(app: Any) -> List[str]:
    """Find the folders to watch for an application.

    For a ``MODULE:APP`` string, the folder of the module's top-level package (or of
    the module), found without importing it; for an application, the folder of the
    script that was run. Falls back to the current directory.

    Args:
        app: A ``MODULE:APP`` string or an application.

    Returns:
        The folders.
    """
    if isinstance(app, str):
        top = app.partition(':')[0].split('.')[0]
        if os.getcwd() not in sys.path and '' not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            spec = importlib.util.find_spec(top) if top else None
        except (ImportError, ValueError):
            spec = None
        if spec is not None:
            if spec.submodule_search_locations:
                return [os.path.abspath(p) for p in spec.submodule_search_locations]
            if spec.origin and os.path.exists(spec.origin):
                return [os.path.dirname(os.path.abspath(spec.origin))]
    else:
        main = sys.modules.get('__main__')
        path = getattr(main, '__file__', None)
        if path:
            return [os.path.dirname(os.path.abspath(path))]
    return [os.getcwd()]


def watched(path: str) -> bool:
    """Tell whether a change of a file restarts the application.

    Args:
        path: The file's path.

    Returns:
        ``True`` for ``.py`` files and templates outside hidden and skipped folders.
    """
    parts = path.split(os.sep)
    if any(part.startswith('.') or part in SKIPPED_DIRS for part in parts[:-1]):
        return False
    suffix = os.path.splitext(parts[-1])[1]
    return suffix == '.py' or suffix in TEMPLATE_SUFFIXES or 'templates' in parts[:-1]


class Watcher:
    """Collects changed files under some folders in a background thread.

    Uses ``watchfiles`` when it is installed, else polls modification times.

    Args:
        roots: The folders to watch.
    """

    def __init__(self, roots: List[str]) -> None:
        self.roots = roots
        self._changes: List[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        try:
            import watchfiles  # noqa: F401  # pyright: ignore[reportUnusedImport]
            self.kind = 'watchfiles'
            target = self._watchfiles
        except ImportError:
            self.kind = 'polling'
            target = self._poll
        self._thread = threading.Thread(target=target, name='microdot-reload',
                                        daemon=True)

    def start(self) -> None:
        """Start watching."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (the thread ends soon after)."""
        self._stop.set()

    def take(self) -> List[str]:
        """Return the files changed since the last call, and forget them.

        Returns:
            Their paths.
        """
        with self._lock:
            changes, self._changes = self._changes, []
        return changes

    @property
    def changed(self) -> bool:
        """Whether files changed since the last :meth:`take`."""
        return bool(self._changes)

    def _add(self, paths: List[str]) -> None:
        if paths:
            with self._lock:
                self._changes.extend(paths)

    def _watchfiles(self) -> None:
        import watchfiles
        for changes in watchfiles.watch(*self.roots, stop_event=self._stop,
                                        watch_filter=lambda change, path: watched(path),
                                        raise_interrupt=False):
            self._add(sorted({path for _, path in changes}))

    def _scan(self) -> Dict[str, Tuple[int, int]]:
        state: Dict[str, Tuple[int, int]] = {}
        for root in self.roots:
            for folder, dirs, files in os.walk(root):
                dirs[:] = [d for d in dirs if not d.startswith('.') and d not in SKIPPED_DIRS]
                for name in files:
                    path = os.path.join(folder, name)
                    if watched(path):
                        try:
                            st = os.stat(path)
                        except OSError:
                            continue
                        state[path] = (st.st_mtime_ns, st.st_size)
        return state

    def _poll(self) -> None:
        before = self._scan()
        while not self._stop.wait(POLL_INTERVAL):
            after = self._scan()
            if after != before:
                self._add(sorted(path for path in set(before) | set(after)
                                 if before.get(path) != after.get(path)))
                before = after


class Reloader:
    """Runs the application in a child process, restarted on changes.

    Args:
        sock: The listening socket, handed down to each child.
        roots: The folders to watch.
        shutdown_timeout: Seconds a child has to stop gracefully before it is killed.
        argv: The child's command line (default: this process's).
    """

    def __init__(self, sock: socket.socket, roots: List[str], shutdown_timeout: float,
                 argv: Optional[List[str]] = None) -> None:
        self.sock = sock
        self.watcher = Watcher(roots)
        self.shutdown_timeout = shutdown_timeout
        self.argv = argv or [sys.executable] + list(getattr(sys, 'orig_argv', sys.argv))[1:]
        self.signals = 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signals += 1

    def _spawn(self) -> 'subprocess.Popen[bytes]':
        fd = self.sock.fileno()
        env = dict(os.environ)
        env[ENV] = str(fd)
        return subprocess.Popen(self.argv, env=env, pass_fds=(fd,))

    def _stop_child(self, child: 'subprocess.Popen[bytes]') -> None:
        if child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)
        sent = max(self.signals, 1)
        deadline = time.monotonic() + self.shutdown_timeout + KILL_GRACE
        while child.poll() is None:
            if time.monotonic() >= deadline:
                logger.warning('The application did not stop in time: killing it')
                child.kill()
                child.wait()
                return
            if self.signals > sent:  # a second Ctrl-C aborts connections
                sent = self.signals
                child.send_signal(signal.SIGTERM)
            time.sleep(0.05)

    def _wait(self, child: Optional['subprocess.Popen[bytes]']) -> None:
        while not self.signals and not self.watcher.changed:
            if child is not None and child.poll() is not None:
                return
            time.sleep(0.05)

    def _changes(self) -> List[str]:
        time.sleep(0.05)  # editors write in bursts
        return self.watcher.take()

    def run(self) -> None:
        """Reload until SIGINT/SIGTERM, or until the application ends on its own."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, self._on_signal)
        self.watcher.start()
        logger.info('Reloading on changes in %s (%s)', ', '.join(self.watcher.roots),
                    self.watcher.kind)
        child: Optional['subprocess.Popen[bytes]'] = None
        try:
            while not self.signals:
                child = self._spawn()
                self._wait(child)
                if self.signals:
                    break
                code = child.poll()
                if code is None:
                    changes = self._changes()
                    logger.info('%s changed: reloading', _short(changes))
                    self._stop_child(child)
                    continue
                if code == 0:
                    logger.info('The application stopped')
                    return
                logger.error('The application exited with status %d; waiting for a change '
                             'to restart it', code)
                self._wait(None)
                if not self.signals:
                    logger.info('%s changed: restarting', _short(self._changes()))
        finally:
            if child is not None:
                self._stop_child(child)
            self.watcher.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
            self.sock.close()


def _short(paths: List[str]) -> str:
    cwd = os.getcwd()
    shown = [os.path.relpath(p, cwd) if p.startswith(cwd) else p for p in paths[:3]]
    return ', '.join(shown) + (' and %d more' % (len(paths) - 3) if len(paths) > 3 else '') \
        if shown else 'a file'


def run_reloader(sock: socket.socket, roots: List[str], shutdown_timeout: float) -> None:
    """Serve by re-running this command line in a child process, restarted on changes.

    Returns once stopped (SIGINT or SIGTERM, or the application ended on its own).

    Args:
        sock: The listening socket, handed down to each child.
        roots: The folders whose changes restart the child.
        shutdown_timeout: Seconds a child has to stop gracefully before it is killed.
    """
    Reloader(sock, roots, shutdown_timeout).run()
