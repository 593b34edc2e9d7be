"""The guide's code samples run, so that they cannot rot (Sybil).

Every ```` ```python ```` block of the Markdown pages under ``docs/`` (``docs/*.md``,
``docs/deploy/*.md``, ...) is executed, page by page, by ``test_page_samples``.

How a page's samples run:

- In order, in one namespace per page, which starts with ``asyncio`` and ``app``, a
  fresh ``microdot.Microdot()``: the application that fragments such as
  ``@app.get('/')`` add to. A page that needs a fresh application says
  ``app = Microdot()`` itself.
- In a new temporary working directory, so samples may write files (templates, static
  files, uploads) with relative paths. Process-wide settings that samples change
  (class attributes such as ``Request.max_content_length`` or ``URLPattern``'s segment
  types, ``microdot.templates.Template``'s engine) are restored afterwards.
- Hidden set-up and checks go in an HTML comment, invisible on the site and on
  GitHub::

      <!-- invisible-code-block: python
      res = await TestClient(app).get('/')     # top-level await is allowed here
      assert res.text == 'Hello, World!'
      -->

- ``<!-- write-next: PATH -->`` writes the next fenced block, as shown, to ``PATH``
  (relative to the working directory, which is also on ``sys.path``): template files
  and modules are shown on the page exactly as the samples use them.
- ``Microdot.run()`` does not serve: it checks its arguments as the real one does
  (its signature, and the built-in server's option names) and returns, so that
  ``app.run(port=8000, workers=2, shutdown_timeout=20)`` is checked but does not
  block.
- A block that cannot run is preceded by ``<!-- skip: next "why" -->`` (or a
  ``skip: start`` / ``skip: end`` pair). The reason is required: a skip without one
  fails the page. Skipped blocks are listed in the test's output (``-rA`` or ``-v``
  shows them as the page's ``skipped`` property). Blocks in other languages
  (``sh``, ``text``, ``toml``, ``nginx``...) are not run.
"""
from __future__ import annotations

import ast
import asyncio
import copy
import importlib
import inspect
import pkgutil
import re
import sys
import types
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple
from unittest import SkipTest

import pytest
from sybil import Document, Example, Region, Sybil
from sybil.evaluators.skip import Skipper
from sybil.parsers.myst import ClearNamespaceParser, CodeBlockParser, SkipParser

DOCS = Path(__file__).resolve().parents[2] / 'docs'


def _pages() -> List[Path]:
    """The pages with Python samples (API reference pages have none)."""
    return sorted(path for path in DOCS.rglob('*.md')
                  if '_build' not in path.relative_to(DOCS).parts
                  and any(mark in path.read_text(encoding='utf-8')
                          for mark in ('```python', '} python', 'code-block: python')))


def evaluate_python(example: Example) -> None:
    """Run one block; a block with a top-level ``await`` runs in ``asyncio.run``."""
    source = '\n' * (example.line + example.parsed.line_offset) + example.parsed
    code = compile(source, example.path, 'exec', dont_inherit=True,
                   flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if code.co_flags & inspect.CO_COROUTINE:
        asyncio.run(types.FunctionType(code, example.namespace)())
    else:
        exec(code, example.namespace)
    example.namespace.pop('__builtins__', None)


WRITE_NEXT = re.compile(r'^<!-- write-next: (?P<path>\S+) -->\n'
                        r'(?P<fence>`{3,})[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$',
                        re.MULTILINE | re.DOTALL)


def write_file(example: Example) -> None:
    path, body = example.parsed
    target = Path(path)
    assert not target.is_absolute() and '..' not in target.parts, path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding='utf-8')


def parse_write_next(document: Document) -> Iterator[Region]:
    """``<!-- write-next: PATH -->`` regions (the comment only: the block after it may
    be a Python sample as well)."""
    for match in WRITE_NEXT.finditer(document.text):
        yield Region(match.start(), match.start('fence'),
                     (match.group('path'), match.group('body')), write_file)


SYBIL = Sybil(
    parsers=[CodeBlockParser('python', evaluate_python), SkipParser(),
             ClearNamespaceParser(), parse_write_next],
    path=str(DOCS), patterns=['*.md'],
)


def _microdot_classes() -> Iterator[type]:
    import microdot
    for info in pkgutil.iter_modules(microdot.__path__):
        if info.name.startswith('_'):
            continue
        try:
            module = importlib.import_module('microdot.' + info.name)
        except ImportError:  # an optional dependency (Jinja2, redis) is not installed
            continue
        for obj in vars(module).values():
            if inspect.isclass(obj) and obj.__module__ == module.__name__:
                yield obj


def _snapshot() -> List[Tuple[type, Dict[str, Any]]]:
    """The data class attributes of every class of the package (not methods)."""
    out = []
    for cls in _microdot_classes():
        state = {name: value for name, value in vars(cls).items()
                 if not name.startswith('__') and not callable(value)
                 and not isinstance(value, (classmethod, staticmethod, property))}
        out.append((cls, {name: (value, copy.copy(value) if isinstance(value, (dict, list, set))
                                  else None) for name, value in state.items()}))
    return out


def _restore(snapshot: List[Tuple[type, Dict[str, Any]]]) -> None:
    from microdot.routing import URLPattern
    for cls, state in snapshot:
        for name in [n for n in vars(cls) if n not in state and not n.startswith('__')]:
            value = vars(cls)[name]
            if not callable(value) and not isinstance(value,
                                                      (classmethod, staticmethod, property)):
                delattr(cls, name)
        for name, (value, contents) in state.items():
            current = vars(cls).get(name)
            if current is not value:
                setattr(cls, name, value)
            if isinstance(value, (dict, list, set)) and value != contents:
                value.clear()  # a registry changed in place
                if isinstance(value, list):
                    value.extend(contents)
                else:
                    value.update(contents)
    # applications compiled meanwhile recompile their routes with the restored types
    URLPattern.types_version += 1


def checked_run(self: Any, *args: Any, **kwargs: Any) -> None:
    """Stands for ``Microdot.run`` in the samples: the argument checks, no serving."""
    from microdot import Microdot
    from microdot.server import DEFAULTS
    bound = inspect.signature(Microdot.run).bind(self, *args, **kwargs)
    options = bound.arguments.get('options', {})
    if bound.arguments.get('server') in (None, 'builtin'):
        unknown = set(options) - set(DEFAULTS) - {'sock'}
        if unknown:
            raise TypeError('unknown server options: %s' % ', '.join(sorted(unknown)))


@pytest.fixture
def restored_globals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from microdot import Microdot
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))   # modules the page writes are importable
    monkeypatch.setattr(Microdot, 'run', checked_run)
    snapshot = _snapshot()
    try:
        yield
    finally:
        _restore(snapshot)
        for name, module in list(sys.modules.items()):
            if str(getattr(module, '__file__', None) or '').startswith(str(tmp_path)):
                del sys.modules[name]


@pytest.mark.parametrize('page', _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_page_samples(page: Path, restored_globals: None,
                      record_property: Any) -> None:
    from microdot import Microdot
    document = SYBIL.parse(page)
    document.namespace.update(asyncio=asyncio, app=Microdot())
    ran, skipped = 0, []
    for example in document.examples():
        if isinstance(example.region.evaluator, Skipper):
            action, reason = example.parsed
            if action in ('next', 'start') and not (reason or '').strip():
                pytest.fail('%s, line %d: "skip: %s" needs a reason, e.g. '
                            '<!-- skip: %s "app.run() serves until interrupted" -->'
                            % (page.name, example.line, action, action))
            example.evaluate()
            continue
        try:
            example.evaluate()
        except SkipTest as exc:
            skipped.append('line %d: %s' % (example.line, exc))
        else:
            ran += example.region.evaluator is evaluate_python
    record_property('ran', ran)
    record_property('skipped', skipped)
