"""uTemplate support for Microdot: ``Template`` renders uTemplate files.

Uses the self-contained engine in :mod:`microdot.utemplate_engine`.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from microdot.helpers import iterate_in_thread
from microdot.utemplate_engine import (
    Loader,
    TemplateNotFoundError,
    TemplateSyntaxError,
)

__all__ = ['Loader', 'Template', 'TemplateNotFoundError', 'TemplateSyntaxError']

#: The Microdot core plugin API version this module targets.
MICRODOT_PLUGIN_API = 1

class Template:
    """A uTemplate template, loaded by name from the template directory.

    Args:
        template: The template's name, relative to the template directory.
        **kwargs: Accepted and ignored, for symmetry with the Jinja class.

    Raises:
        TemplateNotFoundError: If there is no such template.
        TemplateSyntaxError: If the template does not compile.
    """

    #: The loader shared by all templates; set by :meth:`initialize`.
    _loader: Any = None

    @classmethod
    def initialize(cls, template_dir: str = 'templates',
                   loader_class: type | None = None,
                   cache_dir: str | None = None) -> None:
        """Set the template directory, the loader class and the cache directory.

        Args:
            template_dir: The template directory (a relative path is resolved now).
            loader_class: The loader class (default:
                :class:`~microdot.utemplate_engine.Loader`).
            cache_dir: A directory (outside the template directory) for a disk cache of
                compiled templates; the default keeps them in memory only.
        """
        if loader_class is None:
            loader_class = Loader
        if cache_dir is None:
            cls._loader = loader_class(template_dir)
        else:
            cls._loader = loader_class(template_dir, cache_dir=cache_dir)

    def __init__(self, template: str, **kwargs: Any) -> None:
        if self._loader is None:
            self.initialize()
        loader: Loader = type(self)._loader  # set by initialize()
        #: The name of the template.
        self.name = template
        #: The loaded template: call it with the template arguments.
        self.template = loader.load(template)

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        """Render the template as an iterator over its chunks, for streaming.

        Args:
            *args: The template's positional arguments (its ``{% args %}``).
            **kwargs: The template's keyword arguments.

        Returns:
            An iterator over the rendered text.
        """
        chunks: Iterator[str] = self.template(*args, **kwargs)
        return chunks

    def render(self, *args: Any, **kwargs: Any) -> str:
        """Render the whole template.

        Args:
            *args: The template's positional arguments (its ``{% args %}``).
            **kwargs: The template's keyword arguments.

        Returns:
            The rendered text.
        """
        return ''.join(self.template(*args, **kwargs))

    def generate_async(self, *args: Any, **kwargs: Any) -> AsyncIterator[str]:
        """Render the template as an async iterator over its chunks, in worker threads.

        Args:
            *args: The template's positional arguments (its ``{% args %}``).
            **kwargs: The template's keyword arguments.

        Returns:
            An async iterator over the rendered text.
        """
        return iterate_in_thread(lambda: self.template(*args, **kwargs))

    async def render_async(self, *args: Any, **kwargs: Any) -> str:
        """Render the whole template in a worker thread.

        Args:
            *args: The template's positional arguments (its ``{% args %}``).
            **kwargs: The template's keyword arguments.

        Returns:
            The rendered text.
        """
        return await asyncio.to_thread(self.render, *args, **kwargs)
