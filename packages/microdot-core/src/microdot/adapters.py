"""A plain ``microdot.Microdot`` application handed to an ASGI or WSGI server.

``uvicorn app:app``, ``gunicorn app:app`` or ``granian --interface asgi app:app``
call the application object itself. :meth:`microdot.Microdot.__call__` tells the
protocol from the call: ``(scope, receive, send)`` is ASGI 3 and
``(environ, start_response)`` WSGI; ``(scope)``, the ASGI 2 form a server uses when it
cannot tell which ASGI version an application speaks, is served as ASGI too.

The first call of a kind finds the adapter registered under that name in the
``microdot.adapters`` entry-point group (``asgi``: microdot-asgi, ``wsgi``:
microdot-wsgi), wraps the application with it once, and keeps the wrapper on the
application (``_asgi_adapter``, ``_wsgi_adapter``): every later call costs an
attribute read. Without the plugin the call raises :class:`~microdot.plugins.PluginError`
whose one-line message names what to ``pip install``.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Tuple

__all__ = ['serve_call', 'adapter_for', 'NOT_CALLABLE_AS']

#: The adapter kinds, by the number of positional arguments of the server's call.
KINDS = {3: 'asgi', 2: 'wsgi', 1: 'asgi'}

#: Who calls an application, and how, by kind (for messages).
SIGNATURES = {'asgi': 'an ASGI server as app(scope, receive, send)',
              'wsgi': 'a WSGI server as app(environ, start_response)'}

#: The message for a call that is neither ASGI nor WSGI.
NOT_CALLABLE_AS = ('a Microdot application is called by ASGI servers as app(scope, receive, '
                   'send) and by WSGI servers as app(environ, start_response)')

_lock = threading.Lock()


def serve_call(app: Any, args: Tuple[Any, ...]) -> Any:
    """Serve a server's call of ``app`` whose adapter is not made yet.

    The adapter is made (see :func:`adapter_for`), then the call passed on.

    Args:
        app: the application.
        args: the call's positional arguments.

    Returns:
        What the adapter returns: a coroutine (ASGI), an iterable of bytes (WSGI), or
        for the one-argument ASGI 2 form the callable taking ``(receive, send)``.

    Raises:
        TypeError: a call that is neither ASGI nor WSGI (Granian's RSGI interface
            included: the message says which interface to choose).
        microdot.plugins.PluginError: the adapter plugin is not installed.
    """
    kind = KINDS.get(len(args))
    if kind is None:
        raise TypeError('%s; it was called with %d arguments' % (NOT_CALLABLE_AS, len(args)))
    if kind == 'wsgi' and not isinstance(args[0], dict):
        raise TypeError('%s; app(%s, %s) is neither (under Granian, whose default '
                        'interface RSGI is not supported: start it with --interface asgi '
                        'or --interface wsgi)' % (NOT_CALLABLE_AS, type(args[0]).__name__,
                                                  type(args[1]).__name__))
    adapter = adapter_for(app, kind)
    if len(args) == 1:
        return functools.partial(adapter, args[0])
    return adapter(*args)


def adapter_for(app: Any, kind: str) -> Callable[..., Any]:
    """The ``kind`` (``'asgi'`` or ``'wsgi'``) callable serving ``app``.

    It is made on first use from the ``microdot.adapters`` plugin of that name and
    kept on the application.

    Args:
        app: the application.
        kind: the adapter's name in the ``microdot.adapters`` group.

    Returns:
        The adapter's wrapper of ``app`` (e.g. a ``microdot.asgi.ASGIAdapter``).

    Raises:
        microdot.plugins.PluginError: no such adapter is installed, or it is broken or
            built for another plugin API (the message names what to install).
    """
    name = '_%s_adapter' % kind
    adapter = app.__dict__.get(name)
    if adapter is not None:
        return adapter  # type: ignore[no-any-return]
    with _lock:  # a WSGI server's threads may all ask at once: wrap once
        adapter = app.__dict__.get(name)
        if adapter is None:
            adapter = _load(kind)(app)
            setattr(app, name, adapter)
    return adapter  # type: ignore[no-any-return]


def _load(kind: str) -> Callable[[Any], Any]:
    """The ``microdot.adapters`` entry ``kind``, or a one-line PluginError."""
    from .plugins import KNOWN_PROVIDERS, PluginError, registry
    if kind not in registry.names('adapters'):
        dist = KNOWN_PROVIDERS['adapters'].get(kind, 'microdot-' + kind)
        raise PluginError('this Microdot application was called by %s, which needs '
                          'the %s plugin: pip install %s'
                          % (SIGNATURES.get(kind, kind), dist, dist))
    return registry.load('adapters', kind)  # type: ignore[no-any-return]


def mark_coroutine_function(func: Callable[..., Any]) -> None:
    """Make ``func`` (a plain function returning a coroutine for ASGI calls) pass the
    ``iscoroutinefunction`` checks ASGI servers use to tell ASGI 3 from ASGI 2
    applications (uvicorn: ``asyncio``'s; hypercorn: ``inspect``'s, which honours the
    mark from Python 3.12; before it such a server makes the ASGI 2 call, served
    too)."""
    import asyncio.coroutines
    import inspect
    marker = getattr(asyncio.coroutines, '_is_coroutine', None)
    if marker is not None:
        setattr(func, '_is_coroutine', marker)
    mark = getattr(inspect, 'markcoroutinefunction', None)
    if mark is not None:
        mark(func)
