"""``app.shutdown()`` under an external server (the ASGI and WSGI adapters).

Such a server is stopped by SIGTERM to its main process (which process that is, each
adapter knows: :meth:`ServerShutdown.master_pid`), never to the process group, which
can hold the shell or supervisor that started it. When ``app.shutdown()`` is called
while a request is served (the usual "shutdown" route), the signal waits until that
request's answer is sent, so the client receives it whole; the adapter tells when
through :data:`current_request`.
"""
from __future__ import annotations

import contextvars
import logging
import os
import signal
import threading
from typing import Any, List, Optional

#: What ``app.shutdown()`` needs to know about the request it is called from: a
#: one-item list (cheaper than an object, as an adapter makes one per request) holding
#: :data:`SERVING`, :data:`STOP_AFTER` (``app.shutdown()`` was called: signal once the
#: answer is sent) or :data:`SENT`. An adapter sets it in the request's context; the
#: threads and tasks the handler starts inherit it.
current_request: 'contextvars.ContextVar[Optional[List[int]]]' = \
    contextvars.ContextVar('microdot_request', default=None)
#: The states of :data:`current_request`: serving, stop once the answer is sent, sent.
SERVING, STOP_AFTER, SENT = 0, 1, 2


class ServerShutdown:
    """Sends SIGTERM once per process to the server's main process.

    The signal goes at once, or after the answer of the request that asked for it.
    Adapters subclass it to name the process (:meth:`master_pid`) and their logger.
    """

    #: Seconds to wait for the asking request's answer before signalling anyway (an
    #: answer that never completes, such as an endless stream).
    grace: float = 5.0
    #: Where the signal is reported.
    logger = logging.getLogger('microdot')

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent_by: Optional[int] = None  # the pid that sent it (reset in forks)
        self.timer: Optional[threading.Timer] = None

    def master_pid(self) -> int:
        """Name the process whose SIGTERM stops the whole server.

        Returns:
            Its pid: here this process's; adapters return their server's main one.
        """
        return os.getpid()

    def request(self) -> None:
        """Stop the server, after the answer of the request being served if any.

        Called while a request is served, the signal is sent once that request's
        answer is (or after :attr:`grace` seconds); otherwise it is sent now.
        """
        state = current_request.get()
        if state is None or state[0] == SENT:
            self.fire()
            return
        state[0] = STOP_AFTER
        with self.lock:
            if self.timer is None:
                self.timer = threading.Timer(self.grace, self.fire)
                self.timer.daemon = True
                self.timer.start()

    def fire(self) -> None:
        """Send the signal now (once per process: later calls do nothing)."""
        pid = os.getpid()
        with self.lock:
            if self.sent_by == pid:
                return
            self.sent_by = pid
            timer, self.timer = self.timer, None
        if timer is not None:
            timer.cancel()
        target = self.master_pid()
        self.logger.info('Shutdown requested: sending SIGTERM to %s (pid %d)',
                         'this process' if target == pid
                         else 'the server\'s main process', target)
        os.kill(target, signal.SIGTERM)


def stop_server_on_shutdown(app: Any, stopper: ServerShutdown, marker: str) -> None:
    """Make ``app.shutdown()`` stop the external server that runs the application.

    For a plain ``microdot.Microdot`` handed to an adapter: its new ``shutdown()``
    calls ``stopper.request()`` whenever the built-in server is not running the
    application, as the adapters' own ``Microdot`` classes do.

    Args:
        app: The application.
        stopper: The adapter's :class:`ServerShutdown`.
        marker: An attribute name set on the new method, so that wrapping the same
            application twice for one adapter installs it once.
    """
    builtin = getattr(app, 'shutdown', None)
    if builtin is None or getattr(builtin, marker, False):
        return

    def shutdown() -> None:
        if getattr(app, 'server', None) is not None:
            builtin()
        else:
            stopper.request()

    setattr(shutdown, marker, True)
    shutdown.__doc__ = builtin.__doc__
    app.shutdown = shutdown
