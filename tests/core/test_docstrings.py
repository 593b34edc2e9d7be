"""Every public name of every package has a Google-style docstring (issue #16).

The modules are those the installed packages put in ``microdot`` (every distribution
of the family contributes to ``microdot.__path__``). Public means: no leading
underscore, and listed in the module's ``__all__`` when it has one; for classes, the
methods and properties defined in the class itself (plus ``__call__``, which is how
decorator objects and ASGI/WSGI applications are used). Names imported from another
module are checked where they are defined.

The rules, each checked mechanically:

* module, class, function, method and property: a docstring whose first line is a
  one-line summary ending with a period, followed by a blank line or nothing;
* a function or method with parameters (``self``/``cls``, ``*args`` and ``**kwargs``
  aside): an ``Args:`` section naming exactly its parameters (``*args`` and
  ``**kwargs`` may be listed too); a class's ``__init__`` parameters are named in the
  class docstring's ``Args:`` (or ``Attributes:``) or in ``__init__``'s own;
* a return annotation other than ``None``/``NoReturn``: a ``Returns:`` section
  (``Yields:`` for a generator); a ``None`` one: no ``Returns:`` section;
* an exception raised by a ``raise`` statement of the function itself (not caught
  there, not a re-raise): named in a ``Raises:`` section.

The sections are Google style: a line ``Args:`` (``Returns:``, ...), then entries
indented below it: ``name: description`` or ``name (type): description``.
"""
from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
import re
import textwrap
import types
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import microdot

SECTIONS = ('Args', 'Arguments', 'Attributes', 'Returns', 'Yields', 'Raises',
            'Example', 'Examples', 'Note', 'Notes', 'Warning', 'Warnings', 'See Also',
            'Todo', 'References')
_SECTION = re.compile(r'^(%s):\s*$' % '|'.join(SECTIONS))
_ENTRY = re.compile(r'^(\*{0,2}[A-Za-z_][\w.]*)\s*(\([^)]*\))?\s*:(\s|$)')
_NONE_RETURNS = {'None', 'NoReturn', 'Never', 'typing.NoReturn', 'typing.Never'}


def public_modules() -> List[str]:
    """The package and the public modules of every installed package of the family."""
    return ['microdot'] + sorted(
        'microdot.' + info.name for info in pkgutil.iter_modules(microdot.__path__)
        if not info.name.startswith('_'))


def parse_docstring(doc: str) -> Tuple[List[str], Dict[str, List[str]]]:
    """Split a docstring into its summary problems and its sections' entry names."""
    problems = []
    lines = inspect.cleandoc(doc).splitlines()
    if not lines or not lines[0].strip():
        return ['empty docstring'], {}
    if not lines[0].rstrip().endswith('.'):
        problems.append('summary line does not end with a period: %r' % lines[0])
    if len(lines) > 1 and lines[1].strip():
        problems.append('summary is not one line followed by a blank line')
    sections: Dict[str, List[str]] = {}
    current: Optional[List[str]] = None
    entry_indent: Optional[int] = None
    for line in lines[1:]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            match = _SECTION.match(line)
            if match:
                current = sections.setdefault(match.group(1), [])
                entry_indent = None
            else:
                current = None
            continue
        if current is None:
            continue
        if entry_indent is None:
            entry_indent = indent
        if indent == entry_indent:
            match = _ENTRY.match(line.strip())
            current.append(match.group(1) if match else '?' + line.strip())
    return problems, sections


def _names(sections: Dict[str, List[str]], *keys: str) -> Set[str]:
    return {name.lstrip('*') for key in keys for name in sections.get(key, [])}


def _parameters(func: Any, method: bool) -> Tuple[List[str], List[str]]:
    """``(named parameters, *args/**kwargs names)`` of ``func``."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return [], []
    if method and params and params[0].name in ('self', 'cls'):
        params = params[1:]
    named = [p.name for p in params
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    variadic = [p.name for p in params if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return named, variadic


def _return_annotation(func: Any) -> Optional[str]:
    try:
        annotation = inspect.signature(func, eval_str=False).return_annotation
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return None
    if annotation is inspect.Signature.empty:
        return None
    if annotation is None or annotation is type(None):
        return 'None'
    if isinstance(annotation, str):
        return annotation.strip()
    return getattr(annotation, '__name__', None) or repr(annotation)


def _resolve(node: ast.expr, namespace: Dict[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        if node.id in namespace:
            return namespace[node.id]
        return getattr(builtins, node.id, None)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, namespace)
        return getattr(base, node.attr, None) if base is not None else None
    return None


def _exception_class(node: Optional[ast.expr], namespace: Dict[str, Any]) -> Any:
    if isinstance(node, ast.Call):
        node = node.func
    if node is None:
        return None
    value = _resolve(node, namespace)
    if isinstance(value, type) and issubclass(value, BaseException):
        return value
    return None


def raised_exceptions(func: Any) -> Set[type]:
    """The exception classes ``func``'s own ``raise`` statements let out."""
    func = inspect.unwrap(func)
    try:
        source = textwrap.dedent(inspect.getsource(func))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):  # pragma: no cover - no source
        return set()
    namespace = dict(getattr(func, '__globals__', {}))
    definition = tree.body[0]
    found: Set[type] = set()

    def caught(cls: type, handlers: List[Tuple[type, ...]]) -> bool:
        return any(issubclass(cls, h) for group in handlers for h in group)

    def walk(nodes: List[ast.stmt], handlers: List[Tuple[type, ...]]) -> None:
        for node in nodes:
            visit(node, handlers)

    def visit(node: ast.AST, handlers: List[Tuple[type, ...]]) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                             ast.ClassDef)):
            return
        if isinstance(node, ast.Raise):
            cls = _exception_class(node.exc, namespace)
            if cls is not None and not caught(cls, handlers):
                found.add(cls)
            return
        if isinstance(node, ast.Try):
            group: List[type] = []
            for handler in node.handlers:
                if handler.type is None:
                    group.append(BaseException)
                    continue
                types_ = handler.type.elts if isinstance(handler.type, ast.Tuple) \
                    else [handler.type]
                for t in types_:
                    cls = _exception_class(t, namespace)
                    if cls is not None:
                        group.append(cls)
            walk(node.body, handlers + [tuple(group)])
            for handler in node.handlers:
                walk(handler.body, handlers)
            walk(node.orelse, handlers)
            walk(node.finalbody, handlers)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, handlers)

    if isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef)):
        walk(definition.body, [])
    return found


def check_function(func: Any, where: str, method: bool = False,
                   skip_params: bool = False) -> Iterator[str]:
    """The problems of one function's or method's docstring."""
    doc = func.__doc__
    if not doc or not doc.strip():
        yield '%s: no docstring' % where
        return
    problems, sections = parse_docstring(doc)
    for problem in problems:
        yield '%s: %s' % (where, problem)
    if not skip_params:
        named, variadic = _parameters(func, method)
        documented = _names(sections, 'Args', 'Arguments')
        missing = [n for n in named if n not in documented]
        unknown = sorted(documented - set(named) - set(variadic))
        if missing:
            yield '%s: Args: does not document %s' % (where, ', '.join(missing))
        if unknown:
            yield '%s: Args: documents unknown %s' % (where, ', '.join(unknown))
    target = inspect.unwrap(func)
    annotation = _return_annotation(func)
    generator = inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target)
    if annotation is None:
        yield '%s: no return annotation' % where
    elif generator:
        if 'Yields' not in sections and 'Returns' not in sections:
            yield '%s: generator without a Yields: section' % where
    elif annotation in _NONE_RETURNS:
        if 'Returns' in sections:
            yield '%s: Returns: section, but it returns None' % where
    elif 'Returns' not in sections:
        yield '%s: returns %s, but has no Returns: section' % (where, annotation)
    for name in unlisted(raised_exceptions(func), _names(sections, 'Raises'), func):
        yield '%s: raises %s, not listed in Raises:' % (where, name)


def unlisted(raised: Set[type], listed: Set[str], func: Any) -> List[str]:
    """The names of the ``raised`` classes that no ``listed`` name covers (the class
    itself or a base class, such as ``HTTPException`` for a private subclass)."""
    namespace = getattr(inspect.unwrap(func), '__globals__', {})
    listed_classes = []
    for name in listed:
        value = _resolve(ast.parse(name, mode='eval').body, namespace) \
            if re.match(r'^[\w.]+$', name) else None
        if isinstance(value, type):
            listed_classes.append(value)
    short = {name.rpartition('.')[2] for name in listed}
    return sorted(cls.__name__ for cls in raised
                  if cls.__name__ not in short
                  and not any(issubclass(cls, base) for base in listed_classes))


def _defined_here(obj: Any, module: str, qualname: str) -> bool:
    return getattr(obj, '__module__', None) == module and \
        getattr(obj, '__qualname__', None) == qualname


def check_class(cls: type, module: str) -> Iterator[str]:
    """The problems of a class's docstring and of its public members'."""
    where = '%s.%s' % (module, cls.__qualname__)
    doc = cls.__doc__
    if not doc or not doc.strip():
        yield '%s: no docstring' % where
        class_sections: Dict[str, List[str]] = {}
    else:
        problems, class_sections = parse_docstring(doc)
        for problem in problems:
            yield '%s: %s' % (where, problem)
    init = cls.__dict__.get('__init__')
    if isinstance(init, types.FunctionType) and \
            _defined_here(init, module, cls.__qualname__ + '.__init__'):
        named, variadic = _parameters(init, method=True)
        documented = _names(class_sections, 'Args', 'Arguments', 'Attributes')
        init_sections = parse_docstring(init.__doc__)[1] if init.__doc__ else {}
        documented |= _names(init_sections, 'Args', 'Arguments')
        missing = [n for n in named if n not in documented]
        if missing:
            yield '%s: Args: does not document %s' % (where, ', '.join(missing))
        listed = _names(class_sections, 'Raises') | _names(init_sections, 'Raises')
        for name in unlisted(raised_exceptions(init), listed, init):
            yield '%s: __init__ raises %s, not listed in Raises:' % (where, name)
    for name, value in vars(cls).items():
        if name.startswith('_') and name != '__call__':
            continue
        qualname = '%s.%s' % (cls.__qualname__, name)
        member = '%s.%s' % (module, qualname)
        if isinstance(value, property):
            if value.fget is not None and _defined_here(value.fget, module, qualname):
                doc = value.fget.__doc__
                if not doc or not doc.strip():
                    yield '%s: no docstring' % member
                else:
                    for problem in parse_docstring(doc)[0]:
                        yield '%s: %s' % (member, problem)
            continue
        if isinstance(value, (staticmethod, classmethod)):
            func = value.__func__
            if _defined_here(func, module, qualname):
                yield from check_function(func, member,
                                          method=isinstance(value, classmethod))
            continue
        if isinstance(value, types.FunctionType):
            if _defined_here(value, module, qualname):
                yield from check_function(value, member, method=True)
            continue
        if isinstance(value, type) and _defined_here(value, module, qualname):
            yield from check_class(value, module)


def check_module(name: str) -> Iterator[str]:
    """The problems of a module's docstrings."""
    module = importlib.import_module(name)
    if not module.__doc__ or not module.__doc__.strip():
        yield '%s: no module docstring' % name
    else:
        for problem in parse_docstring(module.__doc__)[0]:
            yield '%s: module docstring: %s' % (name, problem)
    exported = getattr(module, '__all__', None)
    names = list(exported) if exported is not None else \
        [n for n in vars(module) if not n.startswith('_')]
    for attr in names:
        value = getattr(module, attr, None)
        if not _defined_here(value, name, attr):
            continue
        if isinstance(value, type):
            yield from check_class(value, name)
        elif isinstance(value, types.FunctionType):
            yield from check_function(value, '%s.%s' % (name, attr))


def test_public_names_have_google_docstrings() -> None:
    problems = [problem for name in public_modules() for problem in check_module(name)]
    assert not problems, '%d docstring problems:\n%s' % (len(problems), '\n'.join(problems))


# -- the checker itself ----------------------------------------------------------------

def _sample(a: int, b: str = '', *args: Any, **kwargs: Any) -> int:
    """Add things.

    Args:
        a: A number.
        b (str): A text.
        *args: More.

    Returns:
        The sum.

    Raises:
        ValueError: If ``a`` is negative.
    """
    if a < 0:
        raise ValueError(a)
    try:
        raise KeyError(b)
    except LookupError:
        pass
    return a


def _undocumented(a: int, c: int) -> int:
    """adds things

    Args:
        a: A number.
        b: Not a parameter.
    """
    if a:
        raise TypeError(a)
    return a + c


def test_checker_accepts_a_complete_docstring() -> None:
    assert list(check_function(_sample, '_sample')) == []


def test_checker_reports_each_rule() -> None:
    problems = list(check_function(_undocumented, 'f'))
    assert problems == [
        "f: summary line does not end with a period: 'adds things'",
        'f: Args: does not document c',
        'f: Args: documents unknown b',
        'f: returns int, but has no Returns: section',
        'f: raises TypeError, not listed in Raises:',
    ]
