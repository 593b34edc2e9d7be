"""Granian's WSGI interface (``microdot run MODULE:APP --server granian``).

And WSGI workers that always stop.

``microdot run`` starts Granian (``pip install 'microdot-wsgi[granian]'``) with
``--interface wsgi`` on HOST:PORT, with ``--workers`` processes (``auto``: one per
CPU) of ``--threads`` blocking threads each; the application is imported in each
worker.

Granian (2.x) stops a WSGI worker from a Python signal handler, run by the worker's
main thread while it waits, without a time limit, for the server to finish. Two
things leave such a worker running for ever, whatever the application (a bare WSGI
callable too), so that only SIGKILL ends it:

- the kernel hands a process-wide signal to any thread that does not block it, and
  when it picks one of the worker's other threads (its Tokio runtime, its blocking
  threads: typically when a second signal arrives before the first is handled, as
  with Ctrl+C, which reaches the workers directly while Granian's main process sends
  them SIGTERM too), CPython only takes note: the main thread, asleep on a lock, is
  not woken, so the handler never runs;
- a second signal that does reach the main thread runs the handler again, and its
  second ``WorkerSignal.set()`` blocks for ever.

:func:`install` replaces Granian's ``granian._signals.set_sync_signals``, which its
WSGI workers (and nothing else) call once, after importing the application and before
serving. The replacement sets the worker's stop signal once only, from the handler
or from a thread that reads CPython's signal wake-up file descriptor, which the
interrupted thread writes to, whichever thread that is. ``import microdot.wsgi``
calls it in a process that has Granian loaded, that is in Granian's workers when the
application module imports ``microdot.wsgi`` (and always under ``microdot run``).
"""
from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import os
import signal
import sys
import threading
from typing import Any, Callable, Iterable, Optional, Union

from microdot.wsgi import _as_wsgi, _missing  # pyright: ignore[reportPrivateUsage]

__all__ = ['GranianServer', 'granian_server', 'install']

MICRODOT_PLUGIN_API = 1

logger = logging.getLogger('microdot.wsgi')

#: Environment variable naming the application (``MODULE:APP``) for the workers.
APP_VARIABLE = 'MICRODOT_WSGI_APP'


def install() -> bool:
    """Make Granian's WSGI workers stop on the first SIGINT/SIGTERM.

    Whichever thread catches it (see the module documentation).

    Returns:
        True if Granian's ``set_sync_signals`` is (now) the replacement; False when
        Granian is not installed or does not have the function this replaces.
    """
    try:
        from granian import _signals
    except ImportError:
        return False
    current = getattr(_signals, 'set_sync_signals', None)
    if current is None or not hasattr(_signals, 'WorkerSignal'):
        logger.debug('granian._signals has no set_sync_signals: left as it is')
        return False
    if getattr(current, 'microdot', False):
        return True

    def set_sync_signals() -> Any:
        return worker_signal(getattr(_signals, 'WorkerSignal')(),
                             getattr(_signals, '_get_signals', _default_signals)())

    setattr(set_sync_signals, 'microdot', True)
    set_sync_signals.__doc__ = current.__doc__
    _signals.set_sync_signals = set_sync_signals
    return True


def _default_signals() -> Iterable[int]:
    return (signal.SIGINT, signal.SIGTERM)


#: Seconds a worker that got SIGINT waits for its main process's SIGTERM (see
#: :func:`worker_signal`).
SIGINT_GRACE = 1.0


def worker_signal(event: Any, signals: Iterable[Union[int, signal.Signals]]) -> Any:
    """Install handlers for ``signals`` that call ``event.set()`` once, and a thread
    that does the same when the signal wake-up descriptor reports one of them.

    A worker process that gets SIGINT (Ctrl+C reaches the whole process group) stops
    when its main process's SIGTERM follows, or after :data:`SIGINT_GRACE` seconds:
    Granian's main process reports a worker that stopped before it asked as failed
    ("Unexpected exit", exit status 1).

    Args:
        event: Granian's ``WorkerSignal`` (anything with a ``set()`` method).
        signals: the signals that stop the worker.

    Returns:
        ``event``.
    """
    numbers = frozenset(int(sig) for sig in signals)
    once = threading.Lock()
    in_worker = multiprocessing.parent_process() is not None

    def stop() -> None:
        if once.acquire(blocking=False):  # never released: set() runs once
            event.set()

    def received(signum: int) -> None:
        if signum == signal.SIGINT and in_worker and os.getppid() > 1:
            timer = threading.Timer(SIGINT_GRACE, stop)
            timer.daemon = True
            timer.start()
        else:
            stop()

    def handler(signum: int, frame: Any) -> None:
        received(signum)

    for number in numbers:
        signal.signal(number, handler)
    watch_wakeup_fd(numbers, received)
    return event


def watch_wakeup_fd(numbers: 'frozenset[int]', callback: Callable[[int], None]) -> bool:
    """Call ``callback(signum)`` from a daemon thread as soon as one of the signals
    ``numbers`` is caught by any thread of this process.

    Uses CPython's signal wake-up descriptor (``signal.set_wakeup_fd``), so it must
    run in the main thread and does nothing if something else already uses it.

    Returns:
        Whether the watcher thread was started.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except ValueError:  # not the main thread
        previous = None
    if previous != -1:
        if previous is not None:
            signal.set_wakeup_fd(previous)  # someone else's: leave it to them
        os.close(read_fd)
        os.close(write_fd)
        return False

    def watch() -> None:
        while True:
            data = os.read(read_fd, 64)
            if not data:  # pragma: no cover - the write end is never closed
                return
            for signum in data:
                if signum in numbers:
                    callback(signum)

    threading.Thread(target=watch, name='microdot-signal-watcher', daemon=True).start()
    return True


def load_application() -> Any:
    """The WSGI callable of the application named in ``MICRODOT_WSGI_APP`` (the
    factory each Granian worker calls under ``microdot run``)."""
    return _as_wsgi(os.environ[APP_VARIABLE])


def _worker_count(workers: Union[int, str, None]) -> int:
    if workers in (None, 1):
        return 1
    if workers in (0, 'auto'):
        return os.cpu_count() or 1
    return int(workers)


class GranianServer:
    """Runs an application with Granian's WSGI interface.

    That is ``--server granian --interface wsgi``; with ``interface='asgi'``,
    microdot-asgi's runner of its ASGI interface.

    microdot-asgi and microdot-wsgi both register ``granian``; whichever one the
    registry hands out, ASGI is the default when microdot-asgi is installed (WebSocket
    and lifespan work there), WSGI otherwise.
    """

    MICRODOT_PLUGIN_API = 1
    name = 'granian'
    options: 'frozenset[str]' = frozenset({'workers', 'threads', 'reload', 'interface'})

    def run(self, app: Any, host: str = '127.0.0.1', port: int = 5000,
            workers: Union[int, str, None] = None, threads: Optional[int] = None,
            reload: bool = False, interface: Optional[str] = None,
            **options: Any) -> None:
        """Serve ``app`` until SIGINT/SIGTERM.

        ``app`` is ``MODULE:APP``, or an application object with one worker where
        processes are forked.

        Args:
            app: the application or its import string.
            host: address to bind.
            port: port to bind.
            workers: worker processes (``0`` or ``'auto'``: one per CPU).
            threads: blocking threads per worker (Granian's ``blocking_threads``).
            reload: restart on code changes (needs ``granian[reload]``).
            interface: ``'wsgi'`` or ``'asgi'`` (default: ``'asgi'`` when microdot-asgi
                is installed).
            **options: other ``granian.Granian`` arguments.

        Raises:
            ImportError: Granian is not installed (names the extra to install).
            ValueError: an application object with several workers or ``reload``.
        """
        if interface is None:
            interface = 'asgi' if importlib.util.find_spec('microdot.asgi') else 'wsgi'
        if interface == 'asgi':
            from microdot.asgi import granian_server as asgi_runner
            asgi_runner.run(app, host=host, port=port, workers=workers, reload=reload,
                            threads=threads, **options)
            return
        if interface != 'wsgi':
            raise ValueError("interface must be 'asgi' or 'wsgi', not %r" % (interface,))
        try:
            from granian.constants import Interfaces
            from granian.server import Server
        except ImportError:
            raise _missing('granian') from None
        install()
        count = _worker_count(workers)
        settings = dict(options, address=host, port=port, interface=Interfaces.WSGI,
                        workers=count, reload=reload)
        if threads:
            settings['blocking_threads'] = threads
        if isinstance(app, str):
            os.environ[APP_VARIABLE] = app
            # our loader, not Granian's: it imports MODULE from the current directory
            # as ``microdot run`` does (Granian prefixes the packages around it)
            Server('microdot.wsgi_granian:load_application', **settings).serve(
                target_loader=load_application, wrap_loader=False)
            return
        if count > 1 or reload or multiprocessing.get_start_method() != 'fork':
            raise ValueError('Granian serves from worker processes: give the application '
                             'as an import string ("module:app"), e.g. microdot run '
                             'module:app --server granian')
        application = _as_wsgi(app)
        Server('microdot', **settings).serve(target_loader=lambda: application,
                                             wrap_loader=False)


granian_server = GranianServer()

if 'granian' in sys.modules:  # a Granian process (worker): see the module documentation
    install()
