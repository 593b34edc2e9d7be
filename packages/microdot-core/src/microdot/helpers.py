"""Small helpers kept for Microdot compatibility."""
from __future__ import annotations

import asyncio
import functools
import inspect
from typing import Any, AsyncIterator, Callable, Iterator, Optional

wraps = functools.wraps


def iscoroutine(func: Any) -> bool:
    """Tell whether ``func`` is an ``async def`` function (or wraps one).

    Args:
        func: The callable (a ``functools.partial`` is looked through).

    Returns:
        True for an ``async def`` function, or an object whose ``__call__`` is one.
    """
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, '__call__', None))


def is_async_callable(func: Callable[..., Any]) -> bool:
    """Alias of :func:`iscoroutine` with a clearer name for internal use.

    Args:
        func: The callable.

    Returns:
        Whether calling it gives a coroutine.
    """
    return iscoroutine(func)


_END = object()


async def iterate_in_thread(make_iter: Callable[[], Iterator[Any]]) -> AsyncIterator[Any]:
    """Drive a blocking iterator in worker threads, one item per hop.

    A slow producer (e.g. a template rendering) then never blocks the event loop.

    Args:
        make_iter: Makes the iterator (called in a worker thread too).

    Yields:
        The iterator's items; it is closed however the iteration ends.
    """
    iterator: Optional[Iterator[Any]] = None

    def step() -> Any:
        nonlocal iterator
        if iterator is None:
            iterator = make_iter()
        return next(iterator, _END)

    try:
        while True:
            item = await asyncio.to_thread(step)
            if item is _END:
                break
            yield item
    finally:
        close = getattr(iterator, 'close', None)
        if close is not None:
            try:
                close()
            except ValueError:  # still running in a worker after cancellation
                pass
