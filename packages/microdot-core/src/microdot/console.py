"""What ``app.run()`` and ``microdot run`` tell the person who started them.

The default console configuration (:func:`configure_logging`) is installed only by
``app.run()`` and ``microdot run``, and only when the application has not configured
logging itself (the root logger has no handler): importing microdot or calling
``start_server()`` configures nothing. It shows INFO (DEBUG with ``debug=True``) for
the ``microdot`` loggers, and warnings and errors of everything else, on stderr.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any, Optional, Tuple

logger = logging.getLogger('microdot')

#: The format of the default console output; worker processes add their pid.
FORMAT = '%(levelname)s %(name)s: %(message)s'
WORKER_FORMAT = '%(levelname)s %(name)s[%(process)d]: %(message)s'


def configure_logging(debug: bool = False, workers: int = 1) -> bool:
    """Install the default console output unless the application configured logging.

    Args:
        debug: Show the ``microdot`` loggers' DEBUG messages too.
        workers: The number of worker processes: with several, each line names the
            process that wrote it.

    Returns:
        Whether the configuration was installed.
    """
    root = logging.getLogger()
    if root.handlers:
        return False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(WORKER_FORMAT if workers > 1 else FORMAT))
    root.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.DEBUG if debug else logging.INFO)
    return True


def describe_app(app: Any) -> str:
    """``MODULE:NAME`` for an application started with ``app.run()``.

    Args:
        app: The application.

    Returns:
        ``MODULE:NAME``: the name is the global of the ``__main__`` module holding
        ``app``; the module is the one ``python -m`` ran, or the script's file name.
        Either falls back to ``app``.
    """
    main = sys.modules.get('__main__')
    module = 'app'
    if main is not None:
        spec = getattr(main, '__spec__', None)
        if spec is not None and getattr(spec, 'name', None):
            module = spec.name
        else:
            path: Optional[str] = getattr(main, '__file__', None)
            if path:
                module = os.path.splitext(os.path.basename(path))[0]
        for name, value in list(vars(main).items()):
            if value is app and not name.startswith('_'):
                return '%s:%s' % (module, name)
    return '%s:app' % module


#: What the start-up line adds when the server runs on the standard asyncio loop
#: because uvloop is not installed.
SPEED_HINT = "on asyncio: pip install 'microdot-core[speed]' (uvloop) makes it faster"


def event_loop_note() -> str:
    """Which event loop serves, as the start-up line ends.

    Inside a running loop (one process) that loop tells; elsewhere (the supervisor of
    worker processes) the choice the workers make (see ``microdot.server``).

    Returns:
        ``on uvloop``, ``on asyncio (MICRODOT_LOOP=asyncio)``, or :data:`SPEED_HINT`
        when uvloop is not installed.
    """
    import asyncio
    try:
        loop: Any = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        uvloop = type(loop).__module__.split('.', 1)[0] == 'uvloop'
    else:
        from .server import uvloop_chosen
        uvloop = uvloop_chosen()
    if uvloop:
        return 'on uvloop'
    if os.environ.get('MICRODOT_LOOP', 'auto') == 'asyncio':
        return 'on asyncio (MICRODOT_LOOP=asyncio)'
    return SPEED_HINT


def serving_line(target: str, scheme: str, host: str, port: int, workers: int) -> str:
    """The start-up line of the built-in server.

    Args:
        target: The application, as ``MODULE:APP``.
        scheme: ``'http'`` or ``'https'``.
        host: The address it listens on.
        port: The port it listens on.
        workers: The number of worker processes.

    Returns:
        The line, such as ``Serving hello:app on http://127.0.0.1:5000 (1 worker,
        built-in server) on uvloop`` (see :func:`event_loop_note` for its end).
    """
    from .listener import display_host
    return 'Serving %s on %s://%s:%d (%d worker%s, built-in server) %s' % (
        target, scheme, display_host(host), port, workers, '' if workers == 1 else 's',
        event_loop_note())


def announce(target: str, scheme: str, host: str, port: int, workers: int) -> None:
    """Log :func:`serving_line` (INFO, ``microdot`` logger).

    Args:
        target: The application, as ``MODULE:APP``.
        scheme: ``'http'`` or ``'https'``.
        host: The address it listens on.
        port: The port it listens on.
        workers: The number of worker processes.
    """
    logger.info('%s', serving_line(target, scheme, host, port, workers))


def shown_address(sock: Any, host: Optional[str]) -> Tuple[str, int]:
    """The address to show for a bound socket.

    Args:
        sock: The bound socket.
        host: The host as given (``0.0.0.0`` stays as is); empty or ``None``: every
            address.

    Returns:
        ``(host, port)``: the port as bound (useful with port 0).
    """
    port: int = sock.getsockname()[1]
    if not host:
        host = '::' if sock.family == socket.AF_INET6 else '0.0.0.0'
    return host, port
