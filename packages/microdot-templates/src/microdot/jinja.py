"""Jinja2 support for Microdot: ``Template`` renders Jinja2 templates.

Jinja2 is an optional dependency: ``pip install 'microdot-templates[jinja]'``.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, cast

from microdot.helpers import iterate_in_thread

try:
    import jinja2
except ImportError as exc:
    raise ModuleNotFoundError(
        "microdot.jinja requires Jinja2, which is not installed; install it "
        "with: pip install 'microdot-templates[jinja]'", name='jinja2') from exc

__all__ = ['Template']

#: The Microdot core plugin API version this module targets.
MICRODOT_PLUGIN_API = 1

def _iterate_private_loop(
        make_agen: Callable[[], AsyncIterator[str]]) -> Iterator[str]:
    """Drive an async generator from sync code on a private event loop.

    Each step runs in the calling thread, or in a helper thread when the
    calling thread is already running an event loop (where it cannot nest).
    """
    loop = asyncio.new_event_loop()
    executor: concurrent.futures.ThreadPoolExecutor | None = None
    agen: Any = None

    def run(coro_factory: Callable[[], Any]) -> Any:
        nonlocal executor
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return loop.run_until_complete(coro_factory())
        if executor is None:
            executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix='microdot-jinja')
        return executor.submit(
            lambda: loop.run_until_complete(coro_factory())).result()

    async def start() -> Any:
        nonlocal agen
        agen = make_agen()
        return await agen.__anext__()

    async def finish() -> None:
        if agen is not None:
            await agen.aclose()
        await loop.shutdown_asyncgens()

    try:
        step: Callable[[], Any] = start
        while True:
            try:
                chunk = run(step)
            except StopAsyncIteration:
                break
            yield chunk
            step = agen.__anext__
    finally:
        try:
            run(finish)
        finally:
            loop.close()
            if executor is not None:
                executor.shutdown(wait=False)


class Template:
    """A Jinja2 template, loaded by name from the template directory.

    Args:
        template: The template's name, relative to the template directory.
        **kwargs: Passed to ``Environment.get_template`` (``parent``, ``globals``).

    Raises:
        jinja2.TemplateNotFound: If there is no such template.
    """

    #: The Jinja2 environment shared by all templates; set by :meth:`initialize`.
    jinja_env: jinja2.Environment | None = None

    @classmethod
    def initialize(cls, template_dir: str | os.PathLike[str] | list[str] =
                   'templates', enable_async: bool = False,
                   **kwargs: Any) -> None:
        """Create the Jinja2 environment shared by all templates.

        Autoescaping is on for .html, .htm and .xml templates unless ``autoescape`` is
        given.

        Args:
            template_dir: The template directory, or several (a relative path is
                resolved against the current directory now).
            enable_async: Render with Jinja2's native async mode (templates may then
                await coroutines).
            **kwargs: Passed to ``jinja2.Environment``.
        """
        if isinstance(template_dir, (str, os.PathLike)):
            search_path: Any = os.path.abspath(template_dir)
        else:  # a list of directories, as jinja2.FileSystemLoader accepts
            search_path = [os.path.abspath(path) for path in template_dir]
        kwargs.setdefault('loader', jinja2.FileSystemLoader(search_path))
        kwargs.setdefault('autoescape', jinja2.select_autoescape())
        cls.jinja_env = jinja2.Environment(enable_async=enable_async, **kwargs)

    def __init__(self, template: str, **kwargs: Any) -> None:
        if self.jinja_env is None:
            self.initialize()
        #: The name of the template.
        self.name = template
        self._get_kwargs = kwargs
        env = cast('jinja2.Environment', self.jinja_env)  # set by initialize()
        #: The ``jinja2.Template`` object.
        self.template = env.get_template(template, **kwargs)

    def _current(self) -> jinja2.Template:
        """Return the template, reloaded first if its file changed on disk.

        Jinja only checks for changes in ``get_template``; asking again per
        render is a cache lookup plus one ``stat`` when ``auto_reload`` is on.
        """
        env = self.template.environment
        if env.auto_reload and env.cache is not None:
            self.template = env.get_template(self.name, **self._get_kwargs)
        return self.template

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        """Render the template as an iterator over its chunks, for streaming.

        Args:
            *args: Passed to Jinja2's ``generate`` (a dict of variables).
            **kwargs: The template's variables.

        Returns:
            An iterator over the rendered text.
        """
        template = self._current()
        if template.environment.is_async:
            return _iterate_private_loop(
                lambda: template.generate_async(*args, **kwargs))
        return template.generate(*args, **kwargs)

    def render(self, *args: Any, **kwargs: Any) -> str:
        """Render the whole template.

        Args:
            *args: Passed to Jinja2's ``render`` (a dict of variables).
            **kwargs: The template's variables.

        Returns:
            The rendered text.
        """
        template = self._current()
        if template.environment.is_async:
            return ''.join(self.generate(*args, **kwargs))
        return template.render(*args, **kwargs)

    def generate_async(self, *args: Any, **kwargs: Any) -> AsyncIterator[str]:
        """Render the template as an async iterator over its chunks.

        Native with ``enable_async=True``; otherwise the chunks are rendered in worker
        threads, so the event loop is never blocked.

        Args:
            *args: Passed to Jinja2's ``generate`` (a dict of variables).
            **kwargs: The template's variables.

        Returns:
            An async iterator over the rendered text.
        """
        template = self._current()
        if template.environment.is_async:
            return template.generate_async(*args, **kwargs)
        return iterate_in_thread(lambda: template.generate(*args, **kwargs))

    async def render_async(self, *args: Any, **kwargs: Any) -> str:
        """Render the whole template without blocking the event loop.

        Args:
            *args: Passed to Jinja2's ``render`` (a dict of variables).
            **kwargs: The template's variables.

        Returns:
            The rendered text.
        """
        template = self._current()
        if template.environment.is_async:
            return await template.render_async(*args, **kwargs)
        return await asyncio.to_thread(template.render, *args, **kwargs)
