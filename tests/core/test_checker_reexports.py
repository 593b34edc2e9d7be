"""``microdot.asgi`` and ``microdot.wsgi`` re-export the core's names to type checkers.

At run time both modules re-export ``microdot.__all__`` with a star import. Type
checkers read an ``if TYPE_CHECKING:`` import that spells the names out instead, so that
``Microdot`` there is the module's own ASGI/WSGI class, not the core's; this test keeps
that list equal to ``microdot.__all__`` (minus ``Microdot``) as the core changes.
"""
from __future__ import annotations

import ast
import importlib
import inspect
from typing import Set

import pytest

import microdot


def checker_imports(module_name: str) -> Set[str]:
    """The names imported ``from microdot`` under ``if TYPE_CHECKING:`` in a module."""
    module = importlib.import_module(module_name)
    tree = ast.parse(inspect.getsource(module))
    names: Set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == 'TYPE_CHECKING':
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module == 'microdot' \
                        and stmt.level == 0:
                    for alias in stmt.names:
                        assert alias.asname == alias.name, \
                            '%s: import %s as %s (an explicit re-export is "X as X")' \
                            % (module_name, alias.name, alias.asname)
                        names.add(alias.name)
    return names


@pytest.mark.parametrize('module_name', ['microdot.asgi', 'microdot.wsgi'])
def test_checkers_see_every_core_name(module_name: str) -> None:
    assert checker_imports(module_name) == set(microdot.__all__) - {'Microdot'}


@pytest.mark.parametrize('module_name', ['microdot.asgi', 'microdot.wsgi'])
def test_runtime_reexports_are_unchanged(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in microdot.__all__:
        assert name in module.__all__, name
        if name != 'Microdot':
            assert getattr(module, name) == getattr(microdot, name), name
    assert module.Microdot is not microdot.Microdot
    assert issubclass(module.Microdot, microdot.Microdot)
    assert module.Microdot.__module__ == module_name
