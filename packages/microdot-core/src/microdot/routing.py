"""URL patterns and the compiled router.

``URLPattern`` keeps Microdot's pattern syntax (``<name>``, ``<int:name>``,
``<path:name>``, ``<re:REGEX:name>`` and registered types). ``Router`` compiles the
routes of an application once: exact paths resolve with one dict lookup, dynamic
routes through a segment tree, so lookup cost does not grow with the route count.
When several routes match a path the one registered first wins, as in Microdot.
"""
from __future__ import annotations

import re
from types import FunctionType
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

_PLAIN_SEGMENT = '[^/]+'
_INT_PATTERN = '-?\\d+'


class PatternError(re.error, ValueError):
    """An invalid regular expression in a ``<re:...>`` URL segment."""


class URLPattern:
    """A URL pattern; ``match(path)`` returns the arguments or ``None``.

    The pattern is checked and compiled on first use (:meth:`compile`), as in Microdot.

    Args:
        url_pattern: The pattern, such as ``'/users/<int:id>'``.
    """

    segment_patterns: Dict[str, str] = {
        'string': _PLAIN_SEGMENT,
        'int': _INT_PATTERN,
        'path': '.+',
    }
    segment_parsers: Dict[str, Optional[Callable[[str], Any]]] = {'int': int}
    #: Bumped by :meth:`register_type` so compiled routers notice new types.
    types_version = 0

    def __init__(self, url_pattern: str) -> None:
        self.url_pattern = url_pattern
        #: One entry per ``/``-separated part: ``(None, text)`` for literal text,
        #: ``(type, name)`` for an argument (filled in by :meth:`compile`).
        self.segments: List[Tuple[Optional[str], str]] = []
        self.is_static = True
        #: The compiled regular expression; ``None`` until :meth:`compile` runs.
        self.regex: Optional[re.Pattern[str]] = None
        self._parsers: List[Tuple[str, Optional[Callable[[str], Any]]]] = []
        #: Regex group number of each argument (``<re:...>`` may add groups of its own).
        self._groups: List[int] = []
        #: The regular expression of each argument, as registered when compiled.
        self._exprs: List[str] = []
        self._static: Optional[str] = None

    def compile(self) -> re.Pattern[str]:
        """Check the pattern and build its regular expression.

        As in Microdot, nothing is checked when the pattern is created: an invalid
        pattern raises ``ValueError`` here, or on the first :meth:`match`.

        Returns:
            The compiled regular expression (kept: later calls return it).

        Raises:
            PatternError: A bad ``<re:...>`` expression: both ``ValueError`` and
                ``re.error`` (Microdot lets ``re.error`` through).
            ValueError: An unterminated ``<``, or an unknown segment type.
        """
        if self.regex is not None:
            return self.regex
        segments: List[Tuple[Optional[str], str]] = []
        parsers: List[Tuple[str, Optional[Callable[[str], Any]]]] = []
        groups: List[int] = []
        exprs: List[str] = []
        is_static = True
        regex = ''
        group = 1
        for part in _split_pattern(self.url_pattern):
            if part.startswith('<'):
                if not part.endswith('>'):
                    raise ValueError('invalid URL pattern %r: unterminated "<"'
                                     % self.url_pattern)
                spec = part[1:-1]
                if spec.startswith('re:'):
                    type_, _, name = spec.rpartition(':')
                    expr = type_[3:]
                    try:
                        inner_groups = re.compile(expr).groups
                    except re.error as exc:
                        raise PatternError('invalid regular expression in URL pattern '
                                           '%r: %s' % (self.url_pattern, exc.msg),
                                           exc.pattern, exc.pos) from None
                    parser = None
                    type_ = 're:' + expr
                else:
                    type_, colon, name = spec.rpartition(':')
                    if not colon:
                        type_ = 'string'
                    if type_ not in self.segment_patterns:
                        raise ValueError('invalid URL segment type %r in %r (register it '
                                         'with URLPattern.register_type)'
                                         % (type_, self.url_pattern))
                    expr = self.segment_patterns[type_]
                    parser = self.segment_parsers.get(type_)
                    inner_groups = re.compile(expr).groups
                is_static = False
                segments.append((type_, name))
                parsers.append((name, parser))
                exprs.append(expr)
                groups.append(group)
                group += 1 + inner_groups
                regex += '/(' + expr + ')'
            else:
                segments.append((None, part))
                regex += '/' + re.escape(part)
        self.segments = segments
        self._parsers = parsers
        self._groups = groups
        self._exprs = exprs
        self.is_static = is_static
        if is_static:
            self._static = '/' + '/'.join(text for _, text in segments)
        # \Z, not $: '$' would also match before a final newline ('/x/1%0A')
        self.regex = re.compile('^' + (regex or '/') + '\\Z')
        return self.regex

    def match(self, path: str) -> Optional[Dict[str, Any]]:
        """Match ``path`` against this pattern.

        The pattern is compiled on first use (:meth:`compile`): an invalid one raises
        ``ValueError`` then.

        Args:
            path: The path to match, such as ``'/users/42'``.

        Returns:
            The URL arguments (parsed by their types) if ``path`` matches, else
            ``None``.
        """
        regex = self.regex or self.compile()
        if self._static is not None:
            return {} if path == self._static else None
        m = regex.match(path)
        if m is None:
            return None
        return self._convert([m.group(g) for g in self._groups])

    def _static_path(self) -> str:
        return '/' + '/'.join(text for _, text in self.segments)

    def _convert(self, values: Sequence[str]) -> Optional[Dict[str, Any]]:
        args: Dict[str, Any] = {}
        for (name, parser), value in zip(self._parsers, values):
            if parser is not None:
                try:
                    value = parser(value)
                except ValueError:
                    return None
                if value is None:
                    return None
            args[name] = value
        return args

    def reverse(self, **kwargs: Any) -> str:
        """Build a path from this pattern and argument values.

        Args:
            **kwargs: A value for each argument of the pattern (quoted into the path).

        Returns:
            The path.
        """
        from urllib.parse import quote
        self.compile()
        parts: List[str] = []
        for type_, text in self.segments:
            if type_ is None:
                parts.append(text)
            else:
                parts.append(quote(str(kwargs[text]), safe='/' if type_ == 'path' else ''))
        return '/' + '/'.join(parts)

    @classmethod
    def register_type(cls, type_name: str, pattern: str = _PLAIN_SEGMENT,
                      parser: Optional[Callable[[str], Any]] = None) -> None:
        """Add a segment type usable as ``<type_name:arg>``.

        Args:
            type_name: The type's name in patterns.
            pattern: The regular expression a segment must match.
            parser: Converts the matched text into the argument's value; it may return
                ``None`` (or raise ``ValueError``) to reject the segment.
        """
        re.compile(pattern)
        cls.segment_patterns = dict(cls.segment_patterns, **{type_name: pattern})
        cls.segment_parsers = dict(cls.segment_parsers, **{type_name: parser})
        cls.types_version += 1

    def __repr__(self) -> str:
        return 'URLPattern(%r)' % self.url_pattern


_PART = re.compile(r'(<re:.*?:[A-Za-z_]\w*>|[^/]*)(/|$)', re.S)


def _split_pattern(pattern: str) -> List[str]:
    """Split a pattern on ``/``, keeping a ``<re:...:name>`` part whole."""
    text = pattern.lstrip('/')
    parts: List[str] = []
    pos = 0
    while text:
        m = _PART.match(text, pos)
        assert m is not None
        parts.append(m.group(1))
        if not m.group(2):
            break
        pos = m.end()
    return parts


class Route:
    """One registered route with what dispatch needs precomputed.

    Args:
        index: Its position in the application's ``url_map``.
        methods: The HTTP methods it answers.
        pattern: Its URL pattern.
        handler: The route handler.
        url_prefix: The prefix it is mounted at (for routes of a sub-application).
        subapp: The sub-application it comes from, if any.
        owner: The application that declared it.
    """

    __slots__ = ('index', 'methods', 'method_list', 'pattern', 'handler', 'url_prefix',
                 'subapp', 'is_async', 'owner', 'before_request', 'after_request',
                 'after_error_request', 'error_handlers', 'positional', 'mounted')

    def __init__(self, index: int, methods: Sequence[str], pattern: URLPattern,
                 handler: Callable[..., Any], url_prefix: str = '',
                 subapp: Any = None, owner: Any = None) -> None:
        from .helpers import iscoroutine
        self.index = index
        #: The methods as declared (upper case, each once), for the ``Allow`` header.
        self.method_list: Tuple[str, ...] = tuple(dict.fromkeys(m.upper() for m in methods))
        self.methods = frozenset(self.method_list)
        self.pattern = pattern
        self.handler = handler
        self.url_prefix = url_prefix
        self.subapp = subapp
        #: Whether it comes from a mounted application (a prefix or a sub-application).
        self.mounted = bool(url_prefix) or subapp is not None
        self.owner = owner
        self.is_async = iscoroutine(handler)
        self.before_request: List[Any] = []
        self.after_request: List[Any] = []
        self.after_error_request: List[Any] = []
        self.error_handlers: List[Dict[Any, Any]] = []
        #: The name of the route's one URL argument when dispatch may pass it to the
        #: handler positionally, the same as by keyword (see :func:`_positional_name`).
        self.positional: Optional[str] = None

    def __iter__(self) -> Iterator[Any]:
        """Unpack as a Microdot ``url_map`` entry.

        So code that lists ``app.url_map`` keeps working.

        Returns:
            An iterator over ``(methods, pattern, handler, url_prefix, subapp)``.
        """
        return iter((list(self.method_list), self.pattern, self.handler, self.url_prefix,
                     self.subapp))

    def __getitem__(self, index: Any) -> Any:
        return tuple(self)[index]

    def __repr__(self) -> str:
        return 'Route(%s %r)' % ('|'.join(sorted(self.methods)), self.pattern.url_pattern)


Match = Tuple[Route, Dict[str, Any]]


def _route_index(match: Match) -> int:
    return match[0].index


class _Node:
    """A node of the segment tree: one ``/``-separated level of the dynamic routes."""

    __slots__ = ('static', 'any', 'int', 'params', 'routes', 'tails')

    def __init__(self) -> None:
        #: literal segment -> child
        self.static: Dict[str, _Node] = {}
        #: child for arguments accepting any non-empty segment (``<name>``, ...)
        self.any: Optional[_Node] = None
        #: child for ``<int:...>`` arguments
        self.int: Optional[_Node] = None
        #: ``(is the int child, child)`` for the two above that exist, else ``None``
        self.params: Optional[Tuple[Tuple[bool, _Node], ...]] = None
        #: routes ending here: ``(route, ((name, segment index, parser), ...), name,
        #: segment index)``, the last two for a route whose one argument is a plain
        #: string (its arguments then come without the general loop), else ``None``
        self.routes: List[Tuple[Route, Tuple[Tuple[str, int, Any], ...],
                                Optional[str], int]] = []
        #: routes whose remaining pattern may span several segments (path, re,
        #: custom types with their own regex): matched with their full regex
        self.tails: List[Route] = []


def _positional_name(route: Route) -> Optional[str]:
    """The name of ``route``'s one URL argument if its handler can take it as its
    second positional argument exactly as by keyword: a plain function (not a wrapper
    that could read its keyword arguments) whose second parameter, positional or
    keyword, has that name, and a route with no ``before_request`` hook (one could
    change ``request.url_args``). ``None`` otherwise."""
    names = [name for type_, name in route.pattern.segments if type_ is not None]
    handler = route.handler
    if len(names) != 1 or route.before_request or type(handler) is not FunctionType:
        return None
    code = handler.__code__
    if code.co_argcount < 2 or code.co_posonlyargcount > 1 or \
            code.co_varnames[1] != names[0]:
        return None
    return names[0]


def _method_table(matches: List[Match]) -> Dict[str, Route]:
    """Method -> the first of ``matches`` accepting it (for HEAD: HEAD or GET)."""
    table: Dict[str, Route] = {}
    for route, _ in matches:
        for method in route.method_list:
            if method != 'OPTIONS':
                table.setdefault(method, route)
        if 'HEAD' not in table and 'GET' in route.methods:
            table['HEAD'] = route
    return table


class Router:
    """Routes compiled for fast lookup, preserving first-registered-wins order.

    Static paths resolve with one dict lookup (their list of matches, dynamic routes
    included, is precomputed). Other paths walk a tree of segments: literal segments
    are dict lookups and each argument type is tried once per level, so the cost
    depends on the path's depth, not on the number of routes.

    Args:
        routes: The routes, in registration order.
    """

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        self.types_version = URLPattern.types_version
        self._root = _Node()
        #: static path -> its static routes, for paths no dynamic route matches
        self._exact: Dict[str, List[Match]] = {}
        #: The same, for dispatch to look a static path up without a call.
        self.exact = self._exact
        #: static path -> its static routes, for paths some dynamic route matches
        #: too (looked up by walking the tree, so argument dicts are never shared)
        self._overlap: Dict[str, List[Match]] = {}
        #: static path (of ``exact``) -> method -> the route that answers it: the
        #: first of the path's routes accepting that method (for HEAD, HEAD or GET),
        #: for every upper-case method its routes list but OPTIONS (which the
        #: application's ``options_handler`` may answer); see ``Microdot._route``.
        self.static: Dict[str, Dict[str, Route]] = {}
        self._has_dynamic = False
        #: True when some pattern does not compile: routes are then tried one by one
        #: in order (:meth:`scan`), and reaching the invalid one raises ``ValueError``,
        #: as in Microdot, while paths that an earlier route answers keep working
        self.linear = False
        for route in self.routes:
            try:
                route.pattern.compile()
            except ValueError:
                self.linear = True
        if self.linear:
            return
        for route in self.routes:
            if not route.pattern.is_static:
                self._has_dynamic = True
                self._insert(route)
                route.positional = _positional_name(route)
        statics: Dict[str, List[Match]] = {}
        for route in self.routes:
            if route.pattern.is_static:
                statics.setdefault(route.pattern._static_path(),  # pyright: ignore[reportPrivateUsage]
                                   []).append((route, {}))
        for path, matches in statics.items():
            if self.match(path):
                self._overlap[path] = matches
            else:
                self._exact[path] = matches
                self.static[path] = _method_table(matches)

    def _insert(self, route: Route) -> None:
        node = self._root
        pattern = route.pattern
        args: List[Tuple[str, int, Any]] = []
        n_arg = 0
        for position, (type_, text) in enumerate(pattern.segments):
            if type_ is None:
                node = node.static.setdefault(text, _Node())
            else:
                expr = pattern._exprs[n_arg]  # pyright: ignore[reportPrivateUsage]
                if type_.startswith('re:') or (expr != _PLAIN_SEGMENT
                                               and expr != _INT_PATTERN):
                    # may span segments (path, re, custom regex): full regex
                    node.tails.append(route)
                    return
                args.append((text, position + 1,
                             pattern._parsers[n_arg][1]))  # pyright: ignore[reportPrivateUsage]
                n_arg += 1
                if expr == _PLAIN_SEGMENT:
                    if node.any is None:
                        node.any = _Node()
                    child = node.any
                else:
                    if node.int is None:
                        node.int = _Node()
                    child = node.int
                node.params = tuple((is_int, branch) for is_int, branch in
                                    ((False, node.any), (True, node.int))
                                    if branch is not None)
                node = child
        name, position, parser = args[0] if len(args) == 1 else (None, 0, True)
        node.routes.append((route, tuple(args), name if parser is None else None,
                            position))

    def scan(self, path: str) -> Iterator[Match]:
        """The routes matching ``path``, in order, trying each pattern in turn.

        The slow path for applications with an invalid pattern: ``ValueError`` when
        the scan reaches it.

        Args:
            path: The path to route.

        Yields:
            ``(route, arguments)`` for each route matching ``path``.
        """
        for route in self.routes:
            args = route.pattern.match(path)
            if args is not None:
                yield route, args

    def match(self, path: str) -> List[Match]:
        """Every route matching ``path`` with its arguments, first registered first.

        Args:
            path: The path to route.

        Returns:
            ``(route, arguments)`` pairs. The list returned for a static path (and its
            empty argument dicts) is shared: do not modify it.
        """
        if self.linear:
            return list(self.scan(path))
        matches = self._exact.get(path)
        if matches is not None:
            return matches
        return self.walk(path)

    def walk(self, path: str) -> List[Match]:
        """What :meth:`match` gives for a path that is not one of ``exact``'s.

        Args:
            path: The path to route.

        Returns:
            ``(route, arguments)`` pairs, first registered first.
        """
        if not self._has_dynamic:
            return []
        # segments[0] is the empty text before the leading '/'; positions stored in
        # the tree count it, so no slicing is needed
        segments = path.split('/')
        if segments[0]:
            return []
        n = len(segments)
        found: List[Match] = []
        node = self._root
        i = 1
        # Branches still to explore (a literal and an argument both matching, or
        # several argument types); the order does not matter, matches are sorted.
        pending: Optional[List[Tuple[_Node, int]]] = None
        while True:
            if node.tails:
                for route in node.tails:
                    tail_args = route.pattern.match(path)
                    if tail_args is not None:
                        found.append((route, tail_args))
            if i == n:
                for route, spec, plain, position in node.routes:
                    if plain is not None:  # one plain string argument
                        found.append((route, {plain: segments[position]}))
                        continue
                    args: Dict[str, Any] = {}
                    for name, position, parser in spec:
                        value = segments[position]
                        if parser is not None:
                            try:
                                value = parser(value)
                            except ValueError:
                                break
                            if value is None:
                                break
                        args[name] = value
                    else:
                        found.append((route, args))
            else:
                segment = segments[i]
                i += 1
                child = node.static.get(segment)
                params = node.params
                if params is not None and segment:
                    for is_int, branch in params:
                        # str.isdecimal() accepts exactly what \d matches (Unicode Nd)
                        if is_int and not (segment.isdecimal() or (
                                segment[0] == '-' and segment[1:].isdecimal())):
                            continue
                        if child is None:
                            child = branch
                        elif pending is None:
                            pending = [(branch, i)]
                        else:
                            pending.append((branch, i))
                if child is not None:
                    node = child
                    continue
            if not pending:
                break
            node, i = pending.pop()
        if found and self._overlap:
            statics = self._overlap.get(path)
            if statics:
                found.extend(statics)
        if len(found) > 1:
            found.sort(key=_route_index)
        return found
