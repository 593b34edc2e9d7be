"""Types for annotating Microdot applications and the servers that run them.

Import them from here to annotate your own handlers, hooks and helpers::

    from microdot.typedefs import AfterRequestHandler, ASGIApp

The names describe the callables the framework accepts. The decorators keep the
type of what they decorate, so annotate handlers with ``Request`` and your own
return types; these aliases are for code that stores or passes handlers around, and
for checking that an application is an ASGI or WSGI callable. Nothing here has a
run-time effect.
"""
from __future__ import annotations

import types
from typing import (Any, Awaitable, Callable, Dict, Iterable, List, Mapping, Optional,
                    Protocol, Tuple, Type, TypeVar, Union)

from .requests import Request
from .responses import Response

__all__ = ['ResponseValue', 'MaybeAwaitable', 'RouteHandler', 'BeforeRequestHandler',
           'AfterRequestHandler', 'ErrorHandler', 'ExceptionHandler', 'LifespanHandler',
           'ASGIScope', 'ASGIMessage', 'ASGIReceive', 'ASGISend', 'ASGIApp',
           'WSGIEnviron', 'ExcInfo', 'StartResponse', 'WSGIApp']

_T = TypeVar('_T')
_E = TypeVar('_E', bound=BaseException)

#: What a route handler, a ``before_request`` hook or an error handler may return: a
#: :class:`~microdot.Response`; a body (``str``, ``bytes``, a ``dict`` or ``list``
#: sent as JSON, a sync or async iterator, a file-like object with ``read``); an
#: ``int`` status; or a tuple ``(body, status)``, ``(body, headers)`` or
#: ``(body, status, headers)``. Any other object is sent as its ``str()``, so this
#: is ``Any``.
ResponseValue = Any

#: A value, or an awaitable producing it: handlers and hooks may be ``def`` or
#: ``async def``.
MaybeAwaitable = Union[_T, Awaitable[_T]]

#: A route handler: ``f(request, **url_args)``, sync or async.
RouteHandler = Callable[..., Any]

#: A ``before_request`` hook: ``f(request)``; a truthy return value becomes the
#: response.
BeforeRequestHandler = Callable[[Request], Any]

#: An ``after_request`` or ``after_error_request`` hook: ``f(request, response)``; a
#: returned response replaces the one given.
AfterRequestHandler = Callable[[Request, Response], MaybeAwaitable[Optional[Response]]]

#: An error handler for a status code: ``f(request)``.
ErrorHandler = Callable[[Request], Any]

#: An error handler for an exception class ``E``: ``f(request, exc)``. Generic:
#: ``ExceptionHandler[ValueError]``.
ExceptionHandler = Callable[[Request, _E], Any]

#: An ``on_startup`` or ``on_shutdown`` hook: ``f()`` or ``f(scope)``, sync or async.
LifespanHandler = Union[Callable[[], object], Callable[[Any], object]]

#: The ASGI connection scope. A ``Mapping`` so that servers typing their scopes as
#: ``TypedDict`` (hypercorn) type-check too.
ASGIScope = Mapping[str, Any]

#: An ASGI event, received or sent.
ASGIMessage = Mapping[str, Any]

#: The ASGI ``receive`` callable.
ASGIReceive = Callable[[], Awaitable[ASGIMessage]]

#: The ASGI ``send`` callable. It takes ``Any``: servers type their events in ways
#: that differ (``TypedDict`` unions, mutable mappings), and an application is
#: called with each server's own ``send``.
ASGISend = Callable[[Any], Awaitable[None]]

#: An ASGI 3 application (``microdot.asgi.Microdot`` is one).
ASGIApp = Callable[[ASGIScope, ASGIReceive, ASGISend], Awaitable[None]]

#: The WSGI environment.
WSGIEnviron = Dict[str, Any]

#: ``sys.exc_info()``'s value, as WSGI's ``start_response`` takes it.
ExcInfo = Union[Tuple[Type[BaseException], BaseException, types.TracebackType],
                Tuple[None, None, None]]


class StartResponse(Protocol):
    """The ``start_response`` callable a WSGI server passes to the application."""

    def __call__(self, status: str, headers: List[Tuple[str, str]],
                 exc_info: Optional[ExcInfo] = ..., /) -> Callable[[bytes], object]:
        """Begin the response.

        Args:
            status: The status line, such as ``'200 OK'``.
            headers: The response headers, as ``(name, value)`` pairs.
            exc_info: The exception being answered, when the application restarts
                a response after an error.

        Returns:
            The legacy ``write(data)`` callable.
        """
        ...


#: A WSGI application (``microdot.wsgi.Microdot`` is one).
WSGIApp = Callable[[WSGIEnviron, StartResponse], Iterable[bytes]]
