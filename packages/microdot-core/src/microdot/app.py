"""The ``Microdot`` application: routes, hooks, error handlers and dispatch.

Dispatch is protocol-neutral: :meth:`Microdot.dispatch_request` takes a ``Request``
and returns a ``Response``. The built-in server, the test client and the ASGI/WSGI
adapters all go through it.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import os
from typing import (Any, Callable, Coroutine, Dict, Iterable, List, Optional, Sequence, Tuple,
                    Type, TypeVar, Union, overload)

from .adapters import mark_coroutine_function, serve_call
from .exceptions import HTTPException, abort as _abort
from .helpers import iscoroutine
from .requests import Request
from .responses import Response
from .routing import Route, Router, URLPattern
from .streams import BodyTooLarge
from .typedefs import (AfterRequestHandler, ASGIReceive, ASGIScope, ASGISend,
                       BeforeRequestHandler, ErrorHandler, LifespanHandler, RouteHandler,
                       StartResponse, WSGIEnviron)

logger = logging.getLogger('microdot')

Handler = Callable[..., Any]

_F = TypeVar('_F', bound=RouteHandler)
_B = TypeVar('_B', bound=BeforeRequestHandler)
_A = TypeVar('_A', bound=AfterRequestHandler)
_H = TypeVar('_H', bound=ErrorHandler)
_L = TypeVar('_L', bound=LifespanHandler)
_E = TypeVar('_E', bound=BaseException)
_R = TypeVar('_R')

_async_cache: Dict[Any, bool] = {}
#: ``Response.already_handled``, read per request without a class attribute lookup.
_already_handled = Response.already_handled
#: Methods already in upper case (routing compares upper-cased methods).
_UPPER_METHODS = frozenset(('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS',
                            'QUERY', 'TRACE', 'CONNECT'))


def _is_async(f: Any) -> bool:
    try:
        return _async_cache[f]
    except KeyError:
        result = _async_cache[f] = iscoroutine(f)
        return result
    except TypeError:  # unhashable callable
        return iscoroutine(f)


class _LoopSwitch:
    """Awaited before the first ``async def`` callable of a request driven without an
    event loop (WSGI): the driver then continues the dispatch on a real loop."""

    __slots__ = ()

    def __await__(self) -> Any:
        yield self


SWITCH_TO_LOOP = _LoopSwitch()


async def _invoke(req: Any, f: Handler, *args: Any, **kwargs: Any) -> Any:
    """Call a handler or hook for ``req``: awaited if async; a ``def`` runs in a worker
    thread, or inline when the server already runs the request in its own thread."""
    if _is_async(f):
        if req is not None and not req.on_loop:
            req.on_loop = True
            await SWITCH_TO_LOOP
        return await f(*args, **kwargs)
    if req is not None and req.inline_sync:
        return f(*args, **kwargs)
    return await asyncio.to_thread(f, *args, **kwargs)


async def invoke_handler(f: Handler, *args: Any, **kwargs: Any) -> Any:
    """Call ``f``: awaited if async, in a worker thread if not (so it cannot block).

    Args:
        f: The function, sync or async.
        *args: Its positional arguments.
        **kwargs: Its keyword arguments.

    Returns:
        What ``f`` returns (awaited when it is async).
    """
    if _is_async(f):
        return await f(*args, **kwargs)
    return await asyncio.to_thread(f, *args, **kwargs)


def _call_hook(f: Handler, scope: Any) -> Any:
    """Call a startup/shutdown hook with the scope if it accepts an argument."""
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return f(scope)
    takes_arg = any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
                    for p in params)
    return f(scope) if takes_arg else f()


def merge_vary(headers: Any, *names: str) -> None:
    """Add ``names`` to a ``Vary`` header, keeping what is there and avoiding repeats.

    Args:
        headers: The response headers (updated in place).
        *names: The header names the response depends on.
    """
    current = headers.get('Vary') or ''
    items = [h.strip() for h in current.split(',') if h.strip()]
    lower = {h.lower() for h in items}
    if '*' in lower:
        return
    for name in names:
        if name.lower() not in lower:
            items.append(name)
            lower.add(name.lower())
    if items:
        headers['Vary'] = ', '.join(items)


def _changed() -> None:
    """Note a registration (route, hook, error handler, mount) on any application:
    routers compiled before it are rebuilt on their next request."""
    URLPattern.types_version += 1


def make_response(res: Any) -> Response:
    """Turn a handler's return value into a ``Response`` (Microdot's rules).

    Args:
        res: What the handler returned: a ``Response``; a body (``str``, ``bytes``,
            a ``dict`` or ``list`` sent as JSON, an iterator, a file); an ``int``
            status; or a tuple ``(body, status)``, ``(body, headers)``,
            ``(body, status, headers)`` (a first ``int`` item is the status).

    Returns:
        The response.
    """
    if type(res) is str:
        return Response(res)
    if isinstance(res, Response):
        return res
    if isinstance(res, int) and not isinstance(res, bool):
        return Response(b'', res)
    if isinstance(res, tuple):
        if not res:
            return Response()
        if isinstance(res[0], int) and not isinstance(res[0], bool):
            res = (b'',) + res  # pyright: ignore[reportUnknownVariableType]
        body = res[0]  # pyright: ignore[reportUnknownVariableType]
        if len(res) > 1 and isinstance(res[1], int):  # pyright: ignore[reportUnknownArgumentType]
            return Response(body, res[1], res[2] if len(res) > 2 else None)  # pyright: ignore[reportUnknownArgumentType]
        return Response(body, 200, res[1] if len(res) > 1 else None)  # pyright: ignore[reportUnknownArgumentType]
    return Response(res)


class Microdot:
    """A web application.

    Limits default to the ``Request`` class attributes; set ``max_content_length``,
    ``max_body_length`` or ``max_readline`` on an instance to change them for this
    application only.
    """

    #: Per-application overrides of the ``Request`` limits (``None``: class default).
    max_content_length: Optional[int] = None
    max_body_length: Optional[int] = None
    max_readline: Optional[int] = None

    def __init__(self) -> None:
        self.url_map: List[Route] = []
        self.before_request_handlers: List[Handler] = []
        self.after_request_handlers: List[Handler] = []
        self.after_error_request_handlers: List[Handler] = []
        self.error_handlers: Dict[Any, Handler] = {}
        self.startup_handlers: List[Handler] = []
        self.shutdown_handlers: List[Handler] = []
        self.options_handler: Optional[Handler] = self.default_options_handler
        self.mounted: List[Tuple[str, 'Microdot', bool]] = []
        #: The ``ssl`` argument of the running server (Microdot's attribute).
        self.ssl: Any = False
        self.debug = False
        self.server: Any = None
        self.access_log = False
        self._router: Optional[Router] = None
        # the limits as instance attributes (each request reads them), from the class
        cls = type(self)
        self.max_content_length = cls.max_content_length
        self.max_body_length = cls.max_body_length
        self.max_readline = cls.max_readline

    # -- registration ---------------------------------------------------------------

    def route(self, url_pattern: str, methods: Optional[Sequence[str]] = None
              ) -> Callable[[_F], _F]:
        """Decorator: handle ``url_pattern`` for ``methods``.

        The handler is called as ``f(request, **url_args)``, sync or async, and
        returns the response (see :func:`make_response`). As in Microdot, the pattern
        is checked when the first request is routed, not here: an invalid pattern then
        raises ``ValueError`` out of dispatch.

        Args:
            url_pattern: The URL pattern, such as ``'/users/<int:id>'``.
            methods: The HTTP methods (default ``['GET']``).

        Returns:
            The decorator; it registers the handler and returns it unchanged.
        """
        def decorated(f: _F) -> _F:
            self.url_map.append(Route(len(self.url_map), methods or ['GET'],
                                      URLPattern(url_pattern), f, owner=self))
            _changed()
            return f
        return decorated

    def get(self, url_pattern: str) -> Callable[[_F], _F]:
        """Decorator: handle ``url_pattern`` for the ``GET`` method.

        Args:
            url_pattern: The URL pattern (see :meth:`route`).

        Returns:
            The decorator; it registers the handler and returns it unchanged.
        """
        return self.route(url_pattern, methods=['GET'])

    def post(self, url_pattern: str) -> Callable[[_F], _F]:
        """Decorator: handle ``url_pattern`` for the ``POST`` method.

        Args:
            url_pattern: The URL pattern (see :meth:`route`).

        Returns:
            The decorator; it registers the handler and returns it unchanged.
        """
        return self.route(url_pattern, methods=['POST'])

    def put(self, url_pattern: str) -> Callable[[_F], _F]:
        """Decorator: handle ``url_pattern`` for the ``PUT`` method.

        Args:
            url_pattern: The URL pattern (see :meth:`route`).

        Returns:
            The decorator; it registers the handler and returns it unchanged.
        """
        return self.route(url_pattern, methods=['PUT'])

    def patch(self, url_pattern: str) -> Callable[[_F], _F]:
        """Decorator: handle ``url_pattern`` for the ``PATCH`` method.

        Args:
            url_pattern: The URL pattern (see :meth:`route`).

        Returns:
            The decorator; it registers the handler and returns it unchanged.
        """
        return self.route(url_pattern, methods=['PATCH'])

    def delete(self, url_pattern: str) -> Callable[[_F], _F]:
        """Decorator: handle ``url_pattern`` for the ``DELETE`` method.

        Args:
            url_pattern: The URL pattern (see :meth:`route`).

        Returns:
            The decorator; it registers the handler and returns it unchanged.
        """
        return self.route(url_pattern, methods=['DELETE'])

    def query(self, url_pattern: str) -> Callable[[_F], _F]:
        """Decorator: handle ``url_pattern`` for the ``QUERY`` method (a safe GET with a body).

        Args:
            url_pattern: The URL pattern (see :meth:`route`).

        Returns:
            The decorator; it registers the handler and returns it unchanged.
        """
        return self.route(url_pattern, methods=['QUERY'])

    def before_request(self, f: _B) -> _B:
        """Register ``f(request)`` to run before each request's handler.

        A truthy return value becomes the response and ends the chain (a falsy one
        does not, as in Microdot).

        Args:
            f: The hook, sync or async.

        Returns:
            ``f``, so that this works as a decorator.
        """
        self.before_request_handlers.append(f)
        _changed()
        return f

    def after_request(self, f: _A) -> _A:
        """Register ``f(request, response)`` to run after each request's handler.

        Args:
            f: The hook, sync or async; it may return a replacement response.

        Returns:
            ``f``, so that this works as a decorator.
        """
        self.after_request_handlers.append(f)
        _changed()
        return f

    def after_error_request(self, f: _A) -> _A:
        """Register ``f(request, response)`` for the answers no route handler gave.

        Like :meth:`after_request`, for errors and the automatic OPTIONS answers (as
        in Microdot). For a malformed request, ``request`` is ``None``.

        Args:
            f: The hook, sync or async; it may return a replacement response.

        Returns:
            ``f``, so that this works as a decorator.
        """
        self.after_error_request_handlers.append(f)
        _changed()
        return f

    @overload
    def errorhandler(self, status_code_or_exception_class: int
                     ) -> Callable[[_H], _H]: ...

    @overload
    def errorhandler(self, status_code_or_exception_class: Type[_E]
                     ) -> Callable[[Callable[[Request, _E], _R]],
                                   Callable[[Request, _E], _R]]: ...

    def errorhandler(self, status_code_or_exception_class: Union[int, Type[BaseException]]
                     ) -> Callable[[Any], Any]:
        """Decorator: handle a status code or an exception class.

        For a status code the handler is called as ``f(request)``; for an exception
        class as ``f(request, exc)``, and the most specific class wins. Sync or async,
        it returns the response (see :func:`make_response`).

        Args:
            status_code_or_exception_class: The status code (``404``) or the
                exception class (``ValueError``).

        Returns:
            The decorator; it registers the handler and returns it unchanged.
        """
        def decorated(f: Handler) -> Handler:
            self.error_handlers[status_code_or_exception_class] = f
            _changed()
            return f
        return decorated

    def on_startup(self, f: _L) -> _L:
        """Register a startup hook (sync or async; optional ``scope`` argument).

        Args:
            f: The hook: ``f()`` or ``f(scope)`` (the ASGI lifespan scope, or ``None``).

        Returns:
            ``f``, so that this works as a decorator.
        """
        self.startup_handlers.append(f)
        return f

    def on_shutdown(self, f: _L) -> _L:
        """Register a shutdown hook (sync or async; optional ``scope`` argument).

        Args:
            f: The hook: ``f()`` or ``f(scope)`` (the ASGI lifespan scope, or ``None``).

        Returns:
            ``f``, so that this works as a decorator.
        """
        self.shutdown_handlers.append(f)
        return f

    async def run_startup(self, scope: Any = None) -> None:
        """Run the startup hooks, in registration order.

        Args:
            scope: What hooks that take an argument receive (the ASGI lifespan scope).
        """
        for f in self.startup_handlers:
            result = _call_hook(f, scope)
            if inspect.isawaitable(result):
                await result

    async def run_shutdown(self, scope: Any = None) -> None:
        """Run the shutdown hooks, in reverse registration order.

        Args:
            scope: What hooks that take an argument receive (the ASGI lifespan scope).
        """
        for f in reversed(self.shutdown_handlers):
            result = _call_hook(f, scope)
            if inspect.isawaitable(result):
                await result

    def mount(self, subapp: 'Microdot', url_prefix: str = '', local: bool = False) -> None:
        """Serve ``subapp``'s routes under ``url_prefix``.

        With ``local=False`` its hooks are moved to this application (after this
        application's own) and its error handlers replace this application's for the
        same status or exception class. With ``local=True`` they stay with
        ``subapp`` and apply to its routes only: its ``before_request`` hooks run after
        this application's, its ``after_request``/``after_error_request`` hooks and
        error handlers before this application's. Routes are copied now: routes
        added to ``subapp`` later are not served.

        Args:
            subapp: The application to mount.
            url_prefix: The path its routes are served under (``''``: at the root).
            local: Keep ``subapp``'s hooks and error handlers for its own routes.
        """
        url_prefix = url_prefix.rstrip('/')
        for route in subapp.url_map:
            new = Route(len(self.url_map), route.method_list,
                        URLPattern(url_prefix + route.pattern.url_pattern), route.handler,
                        url_prefix + route.url_prefix, route.subapp or subapp,
                        owner=route.owner)
            self.url_map.append(new)
        if not local:
            self.before_request_handlers.extend(subapp.before_request_handlers)
            subapp.before_request_handlers = []
            self.after_request_handlers.extend(subapp.after_request_handlers)
            subapp.after_request_handlers = []
            self.after_error_request_handlers.extend(subapp.after_error_request_handlers)
            subapp.after_error_request_handlers = []
            self.error_handlers.update(subapp.error_handlers)
            subapp.error_handlers = {}
        self.startup_handlers.extend(subapp.startup_handlers)
        self.shutdown_handlers.extend(subapp.shutdown_handlers)
        self.mounted.append((url_prefix, subapp, local))
        _changed()

    def static(self, url_prefix: str, directory: str, max_age: Optional[int] = None,
               index: Optional[str] = 'index.html') -> None:
        """Serve the files below ``directory`` at ``url_prefix`` (path traversal refused).

        Hidden files (a path part starting with ``.``) are not served.

        Args:
            url_prefix: The URL path the files are served under.
            directory: The folder to serve.
            max_age: The ``Cache-Control`` max-age of the answers, in seconds.
            index: The file served for a folder's path (``None``: none).
        """
        root = os.path.realpath(directory)
        url_prefix = url_prefix.rstrip('/')

        async def static_file(request: Request, path: str = '') -> Any:
            parts = path.split('/')
            # no traversal, no hidden files (.env, .git ...), no odd characters
            if any(p.startswith('.') or '\\' in p or '\0' in p for p in parts):
                _abort(404)
            full = os.path.realpath(os.path.join(root, *[p for p in parts if p]))
            if full != root and not full.startswith(root + os.sep):
                _abort(404)
            if os.path.isdir(full) and index:
                full = os.path.join(full, index)
            if not os.path.isfile(full):
                _abort(404)
            return Response.send_file(full, max_age=max_age)

        static_file.__name__ = 'static_' + (url_prefix.strip('/').replace('/', '_') or 'root')
        self.route(url_prefix + '/<path:path>', methods=['GET'])(static_file)
        if index:
            self.route(url_prefix + '/', methods=['GET'])(static_file)

    abort = staticmethod(_abort)

    # -- routing --------------------------------------------------------------------

    def _compile(self) -> Router:
        """The router for the current routes, hooks and types (rebuilt after any
        registration on any application, or a new URL segment type)."""
        router = self._router
        if router is not None and router.types_version == URLPattern.types_version \
                and len(router.routes) == len(self.url_map):
            return router
        for route in self.url_map:
            self._bind_hooks(route)
        self._router = router = Router(self.url_map)
        return router

    def _bind_hooks(self, route: Route) -> None:
        """Precompute the hooks and error handlers that apply to ``route``.

        The applications between this one and the one that declared the route each
        add their own (a non-local mount has moved them here already): before
        hooks from the outermost in, after hooks and error handlers from the
        innermost out, then this application's.
        """
        apps: List['Microdot'] = []
        owner = route.owner
        if owner is not None and owner is not self:
            apps = [subapp for _, subapp, _ in self._mount_chain(owner)]
        before = list(self.before_request_handlers)
        after: List[Handler] = []
        after_error: List[Handler] = []
        error_handlers: List[Dict[Any, Handler]] = []
        for subapp in apps:
            before += subapp.before_request_handlers
        for subapp in reversed(apps):
            after += subapp.after_request_handlers
            after_error += subapp.after_error_request_handlers
            if subapp.error_handlers:
                error_handlers.append(subapp.error_handlers)
        route.before_request = before
        route.after_request = after + self.after_request_handlers
        route.after_error_request = after_error + self.after_error_request_handlers
        route.error_handlers = error_handlers + [self.error_handlers]

    def _mount_chain(self, owner: 'Microdot') -> List[Tuple[str, 'Microdot', bool]]:
        """The mounts leading from this app down to ``owner``."""
        for prefix, subapp, local in self.mounted:
            if subapp is owner:
                return [(prefix, subapp, local)]
            chain = subapp._mount_chain(owner)
            if chain:
                return [(prefix, subapp, local)] + chain
        return []

    def find_route(self, req: Request) -> Any:
        """Route ``req``: set its route and URL arguments.

        Args:
            req: The request.

        Returns:
            The route handler; ``404`` or ``405`` when none applies; or, for
            ``OPTIONS``, the answer's headers (a ``dict``).
        """
        return self._route(req)[0]

    def _route(self, req: Request, router: Optional[Router] = None,
               not_static: bool = False) -> Tuple[Any, Optional[Route]]:
        """``(handler or 404/405 or OPTIONS answer, route whose hooks apply)``.

        For a 405 the route is the last one matching the path, as in Microdot.
        ``router`` is the current router, when the caller has it; ``not_static``
        says the caller found the path is none of the router's static paths.
        """
        if router is None:
            router = self._router
            if router is None or router.types_version != URLPattern.types_version:
                router = self._compile()
        method = req.method
        if method not in _UPPER_METHODS:
            method = method.upper()
        if method == 'OPTIONS' and self.options_handler:
            req.route = None
            answer = self.options_handler(req)
            return ({} if answer is None else answer), None  # None: no headers to add
        if router.linear:
            matches: Any = router.scan(req.path)
        else:
            # a static path's matches with one dict lookup, else the router's walk
            matches = router.walk(req.path) if not_static else \
                router.exact.get(req.path) or router.walk(req.path)
            if not matches:
                return 404, None
        route = None
        handler: Any
        for route, args in matches:
            if method in route.methods or (method == 'HEAD' and 'GET' in route.methods):
                req.route = handler = route.handler  # the function, as in Microdot
                req.url_args = args or {}  # a static route's {} is shared
                break
        else:
            handler = 405
            if route is None:  # (linear scan only)
                return 404, None
            # the path exists, but not for this method: the last route matching it
            # tells where it belongs (Microdot's choice)
        if route.mounted or req.root_path:
            self._place(req, route)
        return handler, route

    @staticmethod
    def _place(req: Request, route: Route) -> None:
        """Record where ``route`` came from on ``req`` (the class defaults suit the
        routes of this application)."""
        if route.url_prefix or req.root_path:
            req.url_prefix = req.root_path + route.url_prefix
        if route.subapp is not None:
            req.subapp = route.subapp

    def allowed_methods(self, path: str) -> List[str]:
        """The methods the routes matching ``path`` accept.

        Args:
            path: The request path.

        Returns:
            The methods in the order they were declared, then HEAD (when GET is
            there) and OPTIONS: Microdot's order, each method once. Empty for a path
            no route matches.
        """
        allow: List[str] = []
        for route, _ in self._compile().match(path):
            for m in route.method_list:
                if m not in allow:
                    allow.append(m)
        if allow:
            if 'GET' in allow and 'HEAD' not in allow:
                allow.append('HEAD')
            if 'OPTIONS' not in allow:
                allow.append('OPTIONS')
        return allow

    def default_options_handler(self, req: Request) -> Dict[str, str]:
        """Answer OPTIONS with the ``Allow`` header for the path.

        Args:
            req: The ``OPTIONS`` request.

        Returns:
            The answer's headers.
        """
        return {'Allow': ', '.join(self.allowed_methods(req.path) or ['OPTIONS'])}

    # -- dispatch -------------------------------------------------------------------

    async def dispatch_request(self, req: Optional[Request]) -> Response:
        """Produce the response for a request.

        Routing happens outside the error handling, as in Microdot: an invalid URL
        pattern (or a failing ``options_handler``) raises out of this method.

        Args:
            req: The request; ``None`` stands for a malformed request (answered 400).

        Returns:
            The response, after the hooks ran.
        """
        res: Any
        if req is None:
            res = await self._error_response(None, 400, 'Bad request')
            return await self._after_error(None, res)
        if req.content_length and req.content_length > req.max_content_length:
            res = await self._error_response(req, 413, 'Payload too large')
            return await self._after_error(req, res)
        router = self._router
        if router is None or router.types_version != URLPattern.types_version:
            router = self._compile()
        # a static path's route for the method as sent: two dict lookups (else, and
        # for other spellings and OPTIONS, the general routing of _route())
        table = router.static.get(req.path)
        f: Any
        if table is not None and (route := table.get(req.method)) is not None:
            req.route = f = route.handler  # the function, as in Microdot
            req.url_args = {}
            if route.mounted or req.root_path:
                self._place(req, route)
        else:
            f, route = self._route(req, router, table is None)
        try:
            if not callable(f):
                if isinstance(f, dict):  # the automatic OPTIONS answer
                    return await self._after_error(req, Response(headers=f))  # pyright: ignore[reportUnknownArgumentType]
                if isinstance(f, Response):
                    return await self._after_error(req, f)
                status = f
                # Microdot answers 405 with the body 'Not found' too
                res = await self._error_response(req, status, 'Not found', route)
                if status == 405 and 'Allow' not in res.headers:
                    res.headers['Allow'] = ', '.join(self.allowed_methods(req.path))
                return await self._after_error(req, res, route)
            assert route is not None
            res = None
            for handler in route.before_request:
                res = await _invoke(req, handler, req)
                if res:
                    break
            if res is None:
                # the URL arguments by keyword, or (see Route.positional) the one
                # argument positionally, or none: calls without a keyword dict
                args = req.url_args
                name = route.positional
                if route.is_async:
                    if not req.on_loop:
                        req.on_loop = True
                        await SWITCH_TO_LOOP
                    if name is not None:
                        res = await f(req, args[name])  # type: ignore[index]  # pyright: ignore[reportOptionalSubscript, reportGeneralTypeIssues, reportUnknownVariableType]
                    else:
                        res = await f(req, **args) if args else await f(req)  # pyright: ignore[reportGeneralTypeIssues, reportUnknownVariableType]
                elif req.inline_sync:
                    if name is not None:
                        res = f(req, args[name])  # type: ignore[index]  # pyright: ignore[reportOptionalSubscript]
                    else:
                        res = f(req, **args) if args else f(req)
                else:
                    res = await asyncio.to_thread(f, req, **req.url_args)  # type: ignore[arg-type]  # pyright: ignore[reportCallIssue, reportUnknownVariableType]
            if type(res) is str:  # pyright: ignore[reportUnknownArgumentType]
                res = Response(res)
            elif type(res) is not Response:  # pyright: ignore[reportUnknownArgumentType]
                res = make_response(res)
            for handler in route.after_request:
                res = await _invoke(req, handler, req, res) or res
            if req._after:  # pyright: ignore[reportPrivateUsage]
                for handler in req._after:  # pyright: ignore[reportPrivateUsage]
                    res = await _invoke(req, handler, req, res) or res
            return self._finish(req, res)
        except HTTPException as exc:
            res = await self._error_response(req, exc.status_code, exc.reason, route)
        except BodyTooLarge:
            res = await self._error_response(req, 413, 'Payload too large', route)
        except Exception as exc:
            res = await self._exception_response(req, exc, route)
        return await self._after_error(req, res, route)

    def _finish(self, req: Request, res: Response) -> Response:
        if res is _already_handled:
            return res
        if res.file_info is not None:
            res = res._apply_conditional(req)  # pyright: ignore[reportPrivateUsage]
        res.is_head = req.method == 'HEAD'
        g = req._g  # pyright: ignore[reportPrivateUsage]
        if g is not None:
            # what the response depends on, recorded by extensions (session, CORS,
            # CSRF) in request.g._vary: on every answer, errors included
            vary = getattr(g, '_vary', None)
            if vary:
                merge_vary(res.headers, *sorted(vary))
        return res

    def _handler_maps(self, route: Optional[Route]) -> List[Dict[Any, Handler]]:
        if route is not None:
            return route.error_handlers
        return [self.error_handlers]

    async def _error_response(self, req: Optional[Request], status: int, reason: str,
                              route: Optional[Route] = None) -> Response:
        for handlers in self._handler_maps(route):
            if status in handlers:
                try:
                    return make_response(await _invoke(req, handlers[status], req))
                except Exception:
                    logger.exception('error handler for %d failed', status)
                    return self._internal_error()
        return make_response((reason, status))

    async def _exception_response(self, req: Request, exc: Exception,
                                  route: Optional[Route]) -> Response:
        """The answer to an exception from a hook or handler: the handler registered
        for the nearest class in its MRO (the sub-application's before this
        application's, class by class), else the 500 answer."""
        maps = self._handler_maps(route)
        handler = None
        for cls in type(exc).__mro__:
            for handlers in maps:
                handler = handlers.get(cls)
                if handler is not None:
                    break
            if handler is not None:
                break
        if handler is not None:
            try:
                res = await _invoke(req, handler, req, exc)
            except Exception:
                # as in Microdot, an error handler that fails (abort() included)
                # gives the 500 answer
                logger.exception('error handler for %s failed', type(exc).__name__)
                res = None
            if res is not None:
                return make_response(res)
        logger.error('Unhandled exception in %s %s', req.method, req.path,
                     exc_info=(type(exc), exc, exc.__traceback__))
        return await self._error_response(req, 500, 'Internal server error', route)

    @staticmethod
    def _internal_error() -> Response:
        """The plain 500 answer: never a traceback, whatever ``debug`` says (the
        traceback goes to the ``microdot`` logger)."""
        return Response('Internal server error', 500)

    async def _after_error(self, req: Optional[Request], res: Response,
                           route: Optional[Route] = None) -> Response:
        handlers = route.after_error_request if route is not None \
            else self.after_error_request_handlers
        for handler in handlers:
            try:
                res = await _invoke(req, handler, req, res) or res
            except Exception:
                logger.exception('after_error_request handler failed')
        if req is not None:
            return self._finish(req, res)
        return res

    # -- serving --------------------------------------------------------------------

    #: What serves this application when an ASGI or a WSGI server calls it: the
    #: adapter plugin's wrapper, made on the first such call (see microdot.adapters).
    _asgi_adapter: Optional[Callable[..., Any]] = None
    _wsgi_adapter: Optional[Callable[..., Any]] = None

    @overload
    def __call__(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend, /
                 ) -> Coroutine[Any, Any, None]: ...

    @overload
    def __call__(self, environ: WSGIEnviron, start_response: StartResponse, /
                 ) -> Iterable[bytes]: ...

    @overload
    def __call__(self, scope: ASGIScope, /
                 ) -> Callable[[ASGIReceive, ASGISend], Coroutine[Any, Any, None]]: ...

    def __call__(self, *args: Any) -> Any:
        """Serve a call from an ASGI or a WSGI server.

        An ASGI server calls ``app(scope, receive, send)`` (or ``app(scope)``, the
        ASGI 2 form), a WSGI server ``app(environ, start_response)``: the call goes
        through the matching adapter plugin, microdot-asgi or microdot-wsgi (see
        :mod:`microdot.adapters`).

        Args:
            *args: The server's positional arguments.

        Returns:
            What the adapter returns: a coroutine (ASGI), the response body's
            iterable of bytes (WSGI), or for the ASGI 2 form the callable taking
            ``(receive, send)``.

        Raises:
            microdot.plugins.PluginError: That plugin is not installed (the message
                names what to ``pip install``).
            TypeError: A call that is neither ASGI nor WSGI.
        """
        count = len(args)
        adapter = self._asgi_adapter if count == 3 else \
            self._wsgi_adapter if count == 2 else None
        if adapter is None:
            return serve_call(self, args)
        return adapter(*args)

    def run(self, host: str = '0.0.0.0', port: int = 5000, debug: bool = False,
            ssl: Any = None, server: Optional[str] = None,
            workers: Union[int, str, None] = None, reload: bool = False,
            **options: Any) -> None:
        """Serve the application until :meth:`shutdown` or SIGINT/SIGTERM.

        Unless the application configured logging, INFO messages of the ``microdot``
        loggers are shown on stderr.

        Args:
            host: The address to listen on.
            port: The port to listen on.
            debug: Turn the access log on (unless ``access_log`` is given) and keep
                ``debug`` on the application.
            ssl: An ``ssl.SSLContext`` for HTTPS (built-in server only).
            server: The name of a ``microdot.servers`` plugin (default: the built-in
                server).
            workers: Serve from N processes (``0`` or ``'auto'``: one per CPU; see
                :mod:`microdot.supervisor`).
            reload: Restart when the code changes (see :mod:`microdot.reload`).
            **options: More options for the server (for the built-in one, those of
                :class:`microdot.server.Server`).

        Raises:
            SystemExit: The server cannot start (port in use): one line is logged and
                the status is 1.
            ValueError: ``ssl`` given with another server than the built-in one.
        """
        from .console import configure_logging
        from .server import cpu_workers
        configure_logging(debug, cpu_workers(workers))
        if server not in (None, 'builtin'):
            from .plugins import get_server
            if ssl is not None:
                raise ValueError('ssl= applies to the built-in server only; configure '
                                 'TLS in the %r server instead' % server)
            self.debug = debug
            if workers is not None:
                options['workers'] = workers
            if reload:
                options['reload'] = reload
            get_server(server).run(self, host=host, port=port, **options)
            return
        from .listener import PortInUse, ServeError
        from .server import run_app
        try:
            run_app(self, host=host, port=port, debug=debug, ssl=ssl, workers=workers,
                    reload=reload, **options)
        except ServeError as exc:
            hint = '; pick another with app.run(port=...)' if isinstance(exc, PortInUse) \
                else ''
            logger.error('%s%s', exc, hint)
            raise SystemExit(1) from None

    async def start_server(self, host: str = '0.0.0.0', port: int = 5000,
                           debug: bool = False, ssl: Any = None, sock: Any = None,
                           start_serving: bool = True, **options: Any) -> Any:
        """Serve the application on the built-in server inside a running event loop.

        It returns after :meth:`shutdown`, once in-flight requests finish.

        Args:
            host: The address to listen on.
            port: The port to listen on.
            debug: Kept as the application's ``debug``.
            ssl: An ``ssl.SSLContext`` for HTTPS.
            sock: An already bound listening socket to serve instead of
                ``host``/``port``.
            start_serving: With ``False`` (as Microdot 2.7), the startup hooks run
                and the socket is bound, but no connection is accepted yet: the
                server is returned, and ``await server.serve_forever()`` serves until
                :meth:`shutdown`.
            **options: The options of :class:`microdot.server.Server`.

        Returns:
            ``None`` once served; with ``start_serving=False``, the
            :class:`microdot.server.Server` (also ``app.server``).
        """
        from .server import Server
        self.debug = debug
        server = self.server = Server(self, **options)
        if not start_serving:
            try:
                await server.start(host, port, ssl=ssl, sock=sock, start_serving=False)
            except BaseException:
                self.server = None
                raise
            return server
        try:
            await server.serve(host, port, ssl=ssl, sock=sock)
        finally:
            self.server = None
        return None

    def shutdown(self) -> None:
        """Ask the running server to stop: no new connections, finish in-flight ones."""
        if self.server is not None:
            self.server.shutdown()


# ASGI servers look at __call__ to tell ASGI 3 from ASGI 2 applications
mark_coroutine_function(Microdot.__call__)
