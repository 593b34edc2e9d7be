"""URL patterns and the compiled router.

``URLPattern`` keeps Microdot's pattern syntax (``<name>``, ``<int:name>``,
``<path:name>``, ``<re:REGEX:name>`` and registered types). ``Router`` compiles the
routes of an application once: exact paths resolve with one dict lookup, dynamic
routes through a segment tree, so lookup cost does not grow with the route count.
When several routes match a path the one registered first wins, as in Microdot.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

_PLAIN_SEGMENT = '[^/]+'


class URLPattern:
    """A compiled URL pattern; ``match(path)`` returns the arguments or ``None``."""

    segment_patterns: Dict[str, str] = {
        'string': _PLAIN_SEGMENT,
        'int': '-?\\d+',
        'path': '.+',
    }
    segment_parsers: Dict[str, Optional[Callable[[str], Any]]] = {'int': int}
    #: Bumped by :meth:`register_type` so compiled routers notice new types.
    types_version = 0

    def __init__(self, url_pattern: str) -> None:
        self.url_pattern = url_pattern
        #: One entry per ``/``-separated part: ``(None, text)`` for literal text,
        #: ``(type, name)`` for an argument.
        self.segments: List[Tuple[Optional[str], str]] = []
        self.is_static = True
        self.regex: Optional[re.Pattern] = None
        self._parsers: List[Tuple[str, Optional[Callable[[str], Any]]]] = []
        self._compile()

    def _compile(self) -> None:
        regex = ''
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
                        re.compile(expr)
                    except re.error as exc:
                        raise ValueError('invalid regular expression in URL pattern %r: %s'
                                         % (self.url_pattern, exc)) from None
                    parser = None
                    type_ = 're:' + expr
                else:
                    type_, _, name = spec.rpartition(':')
                    type_ = type_ or 'string'
                    if type_ not in self.segment_patterns:
                        raise ValueError('invalid URL segment type %r in %r (register it '
                                         'with URLPattern.register_type)'
                                         % (type_, self.url_pattern))
                    expr = self.segment_patterns[type_]
                    parser = self.segment_parsers.get(type_)
                if not name.isidentifier():
                    raise ValueError('invalid argument name %r in URL pattern %r'
                                     % (name, self.url_pattern))
                self.is_static = False
                self.segments.append((type_, name))
                self._parsers.append((name, parser))
                regex += '/(' + expr + ')'
            else:
                self.segments.append((None, part))
                regex += '/' + re.escape(part)
        self.regex = re.compile('^' + (regex or '/') + '$')

    def match(self, path: str) -> Optional[Dict[str, Any]]:
        """The URL arguments if ``path`` matches this pattern, else ``None``."""
        if self.is_static:
            return {} if path == self._static_path() else None
        assert self.regex is not None
        m = self.regex.match(path)
        if m is None:
            return None
        return self._convert(m.groups())

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
        """Build a path from this pattern and argument values."""
        from urllib.parse import quote
        parts = []
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

        ``pattern`` is the regular expression a segment must match; ``parser``
        converts the text and may return ``None`` to reject the segment.
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
    """One registered route with what dispatch needs precomputed."""

    __slots__ = ('index', 'methods', 'pattern', 'handler', 'url_prefix', 'subapp',
                 'is_async', 'owner', 'before_request', 'after_request',
                 'after_error_request', 'error_handlers')

    def __init__(self, index: int, methods: Sequence[str], pattern: URLPattern,
                 handler: Callable[..., Any], url_prefix: str = '',
                 subapp: Any = None, owner: Any = None) -> None:
        from .helpers import iscoroutine
        self.index = index
        self.methods = frozenset(m.upper() for m in methods)
        self.pattern = pattern
        self.handler = handler
        self.url_prefix = url_prefix
        self.subapp = subapp
        self.owner = owner
        self.is_async = iscoroutine(handler)
        self.before_request: List[Any] = []
        self.after_request: List[Any] = []
        self.after_error_request: List[Any] = []
        self.error_handlers: List[Dict[Any, Any]] = []

    def __repr__(self) -> str:
        return 'Route(%s %r)' % ('|'.join(sorted(self.methods)), self.pattern.url_pattern)


Match = Tuple[Route, Dict[str, Any]]


class _Node:
    __slots__ = ('static', 'params', 'routes', 'tails')

    def __init__(self) -> None:
        self.static: Dict[str, _Node] = {}
        #: (type, compiled fullmatch regex or None for any segment, parser, name, child)
        self.params: List[Tuple[Any, Any, Any, _Node]] = []
        self.routes: List[Route] = []
        #: routes whose remaining pattern may span several segments (path, re, custom)
        self.tails: List[Route] = []


class Router:
    """Routes compiled for fast lookup, preserving first-registered-wins order."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        self.types_version = URLPattern.types_version
        self._root = _Node()
        self._exact: Dict[str, List[Match]] = {}
        self._has_dynamic = False
        for route in self.routes:
            if not route.pattern.is_static:
                self._has_dynamic = True
                self._insert(route)
        for route in self.routes:
            if route.pattern.is_static:
                path = route.pattern._static_path()
                if path not in self._exact:
                    self._exact[path] = self._match_dynamic(path)
                self._exact[path].append((route, {}))
        for matches in self._exact.values():
            matches.sort(key=lambda m: m[0].index)

    def _insert(self, route: Route) -> None:
        node = self._root
        patterns = URLPattern.segment_patterns
        for type_, text in route.pattern.segments:
            if type_ is None:
                node = node.static.setdefault(text, _Node())
            elif type_ in ('string', 'int') or (
                    not type_.startswith('re:') and type_ != 'path'
                    and patterns.get(type_) == _PLAIN_SEGMENT):
                regex = None
                if type_ != 'string' and patterns[type_] != _PLAIN_SEGMENT:
                    regex = re.compile(patterns[type_])
                for entry in node.params:
                    if entry[0] == type_:
                        node = entry[3]
                        break
                else:
                    child = _Node()
                    node.params.append((type_, regex, None, child))
                    node = child
            else:
                node.tails.append(route)
                return
        node.routes.append(route)

    def _match_dynamic(self, path: str) -> List[Match]:
        if not self._has_dynamic:
            return []
        found: List[Match] = []
        segments = path[1:].split('/') if path.startswith('/') else None
        if segments is None:
            return found
        if segments == ['']:
            segments = []
        self._walk(self._root, segments, 0, path, found)
        found.sort(key=lambda m: m[0].index)
        return found

    def _walk(self, node: _Node, segments: List[str], i: int, path: str,
              found: List[Match]) -> None:
        for route in node.tails:
            if route.pattern.regex is not None:
                m = route.pattern.regex.match(path)
                if m is not None:
                    args = route.pattern._convert(m.groups())
                    if args is not None:
                        found.append((route, args))
        if i == len(segments):
            for route in node.routes:
                if route.pattern.is_static:
                    found.append((route, {}))
                    continue
                args = self._args(route, segments)
                if args is not None:
                    found.append((route, args))
            return
        segment = segments[i]
        child = node.static.get(segment)
        if child is not None:
            self._walk(child, segments, i + 1, path, found)
        if segment:
            for type_, regex, _, child in node.params:
                if regex is None or regex.fullmatch(segment):
                    self._walk(child, segments, i + 1, path, found)

    @staticmethod
    def _args(route: Route, segments: List[str]) -> Optional[Dict[str, Any]]:
        values = [seg for (type_, _), seg in zip(route.pattern.segments, segments)
                  if type_ is not None]
        return route.pattern._convert(values)

    def match(self, path: str) -> List[Match]:
        """Every route matching ``path`` with its arguments, first registered first."""
        matches = self._exact.get(path)
        if matches is not None:
            return matches
        return self._match_dynamic(path)
