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
    """A uTemplate template, loaded by name from the template directory."""

    #: The loader shared by all templates; set by :meth:`initialize`.
    _loader: Any = None

    @classmethod
    def initialize(cls, template_dir: str = 'templates',
                   loader_class: type | None = None,
                   cache_dir: str | None = None) -> None:
        """Set the template directory (resolved now), loader class and cache dir.

        ``cache_dir`` (outside the template directory) enables a disk cache of
        compiled templates; the default keeps them in memory only.
        """
        if loader_class is None:
            loader_class = Loader
        if cache_dir is None:
            cls._loader = loader_class(template_dir)
        else:
            cls._loader = loader_class(template_dir, cache_dir=cache_dir)

    def __init__(self, template: str, **kwargs: Any) -> None:
        """Load and compile ``template``; ``kwargs`` are accepted and ignored
        for symmetry with the Jinja class."""
        if self._loader is None:
            self.initialize()
        #: The name of the template.
        self.name = template
        #: The loaded template: call it with the template arguments.
        self.template = self._loader.load(template)

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        """Return an iterator over the rendered chunks, for streaming."""
        chunks: Iterator[str] = self.template(*args, **kwargs)
        return chunks

    def render(self, *args: Any, **kwargs: Any) -> str:
        """Render the whole template to a string."""
        return ''.join(self.template(*args, **kwargs))

    def generate_async(self, *args: Any, **kwargs: Any) -> AsyncIterator[str]:
        """Async iterator over the chunks, rendered in worker threads."""
        return iterate_in_thread(lambda: self.template(*args, **kwargs))

    async def render_async(self, *args: Any, **kwargs: Any) -> str:
        """Render the whole template in a worker thread."""
        return await asyncio.to_thread(self.render, *args, **kwargs)
