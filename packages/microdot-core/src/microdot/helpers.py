"""Small helpers kept for Microdot compatibility."""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

wraps = functools.wraps


def iscoroutine(func: Any) -> bool:
    """True if ``func`` is an ``async def`` function (or wraps one)."""
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, '__call__', None))


def is_async_callable(func: Callable[..., Any]) -> bool:
    """Alias of :func:`iscoroutine` with a clearer name for internal use."""
    return iscoroutine(func)
