"""Engine-neutral template rendering for Microdot applications.

Template engines are plugins: a distribution registers a ``Template`` class under
the ``microdot.templates`` entry-point group (microdot-templates registers
``utemplate`` and ``jinja``). This module picks one of them by name, so that an
application chooses its engine in one place and its route code does not change
when the engine does::

    from microdot.templates import Template, render_template

    Template.initialize(engine='jinja', template_dir='templates')

    @app.get('/')
    async def index(request):
        return render_template('index.html', name='World'), \\
            {'Content-Type': 'text/html'}

    @app.get('/stream')
    async def stream(request):
        return Template('index.html').generate_async(name='World'), \\
            {'Content-Type': 'text/html'}

The core never imports an engine module by name: the engine class is looked up
through :func:`microdot.plugins.get_template_engine` the first time a template is
needed (so importing an application does not import Jinja2), and only once per
configuration. An engine that is not installed raises
:class:`microdot.plugins.PluginError` naming the ``pip install`` line.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar, cast

from . import plugins

__all__ = ['DEFAULT_ENGINE', 'Template', 'render_template',
           'render_template_async', 'stream_template', 'stream_template_async']

logger = logging.getLogger(__name__)

#: The engine used when :meth:`Template.initialize` is not called or names none:
#: uTemplate needs no third-party packages.
DEFAULT_ENGINE = 'utemplate'


def _resolve_template_dir(template_dir: object) -> Any:
    """Make a relative template directory (or list of them) absolute now.

    The engines resolve relative paths when *their* ``initialize`` runs, which here
    happens lazily on first use; resolving at configuration time keeps the
    documented rule that the current directory of :meth:`Template.initialize`
    counts, even if the application changes directory later.
    """
    if isinstance(template_dir, (str, os.PathLike)):
        return os.path.abspath(cast('str | os.PathLike[str]', template_dir))
    if isinstance(template_dir, (list, tuple)):
        paths = cast('list[str | os.PathLike[str]]', template_dir)
        return [os.path.abspath(path) for path in paths]
    return template_dir


class Template:
    """A template rendered by the configured engine.

    ``Template(name)`` loads ``name`` with the engine chosen by :meth:`initialize`;
    the four rendering methods have the same meaning for every engine. The engine's
    own template object is available as :attr:`template`.

    Args:
        template: The template's name, relative to the template directory.
        **kwargs: Passed to the engine's ``Template`` constructor (Jinja accepts
            ``parent`` and ``globals``; uTemplate ignores them).

    Raises:
        PluginError: If the engine cannot be loaded.
    """

    # The configuration, shared by all instances (class-level, like the engines).
    _engine_name: ClassVar[str] = DEFAULT_ENGINE
    _engine_options: ClassVar[dict[str, Any]] = {}
    # The engine class configured for this helper; None until first needed.
    _engine_class: ClassVar[Any] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def initialize(cls, engine: str | None = None,
                   template_dir: str | os.PathLike[str] | list[str] = 'templates',
                   **engine_options: Any) -> None:
        """Choose the template engine and its options.

        The engine itself is imported and initialized when the first template is
        created.

        Args:
            engine: A name registered under the ``microdot.templates`` entry points
                (``'utemplate'``, the default, or ``'jinja'``).
            template_dir: The template directory, or several (a relative path is
                resolved against the current directory now).
            **engine_options: Passed to the engine's ``Template.initialize``, e.g.
                ``enable_async=True`` for Jinja or ``cache_dir=...`` for uTemplate.

        Raises:
            PluginError: If no installed distribution registers ``engine``; the message
                gives the ``pip install`` line that provides it.
        """
        name = engine or DEFAULT_ENGINE
        if name not in plugins.registry.names('templates'):
            raise plugins.PluginError(plugins.install_hint('templates', name))
        options = dict(engine_options)
        options['template_dir'] = _resolve_template_dir(template_dir)
        with cls._lock:
            cls._engine_name = name
            cls._engine_options = options
            cls._engine_class = None
        logger.debug('template engine %r selected with options %r', name, options)

    @classmethod
    def engine_name(cls) -> str:
        """Name the configured engine.

        Returns:
            The engine's name (``'utemplate'`` unless changed).
        """
        return cls._engine_name

    @classmethod
    def engine_class(cls) -> Any:
        """Return the configured engine's ``Template`` class, loaded and initialized once.

        The class is a private subclass of the registered one, so this helper's
        configuration neither changes nor depends on direct uses of the engine's own
        class (``microdot.jinja.Template.initialize(...)`` elsewhere).

        Returns:
            The engine's template class.

        Raises:
            PluginError: If the engine cannot be loaded (for Jinja without Jinja2:
                ``pip install 'microdot-templates[jinja]'``).
        """
        configured: Any = cls._engine_class
        if configured is not None:
            return configured
        with cls._lock:
            if cls._engine_class is None:
                name, options = cls._engine_name, dict(cls._engine_options)
                options.setdefault('template_dir',
                                   _resolve_template_dir('templates'))
                base: Any = plugins.get_template_engine(name)
                if isinstance(base, type):
                    configured = type(base.__name__, (base,), {
                        '__module__': base.__module__, '__doc__': base.__doc__})
                else:  # a factory object: used as registered
                    configured = base
                configured.initialize(**options)
                cls._engine_class = configured
                logger.debug('template engine %r (%s.%s) initialized', name,
                             base.__module__, getattr(base, '__qualname__', base))
            return cls._engine_class

    def __init__(self, template: str, **kwargs: Any) -> None:
        #: The name of the template.
        self.name = template
        #: The name of the engine that loaded it.
        self.engine = self._engine_name
        #: The engine's own ``Template`` object.
        self.template = self.engine_class()(template, **kwargs)

    def __repr__(self) -> str:
        return '<%s %r (%s)>' % (type(self).__name__, self.name, self.engine)

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        """Render the template as an iterator over its chunks.

        Return the iterator from a route to stream.

        Args:
            *args: The template's positional arguments.
            **kwargs: The template's variables.

        Returns:
            An iterator over the rendered text.
        """
        chunks: Iterator[str] = self.template.generate(*args, **kwargs)
        return chunks

    def render(self, *args: Any, **kwargs: Any) -> str:
        """Render the whole template.

        Args:
            *args: The template's positional arguments.
            **kwargs: The template's variables.

        Returns:
            The rendered text.
        """
        text: str = self.template.render(*args, **kwargs)
        return text

    def generate_async(self, *args: Any, **kwargs: Any) -> AsyncIterator[str]:
        """Render the template as an async iterator over its chunks.

        The rendering does not block the event loop. Return the iterator from an
        ``async def`` route to stream.

        Args:
            *args: The template's positional arguments.
            **kwargs: The template's variables.

        Returns:
            An async iterator over the rendered text.
        """
        chunks: AsyncIterator[str] = self.template.generate_async(*args, **kwargs)
        return chunks

    async def render_async(self, *args: Any, **kwargs: Any) -> str:
        """Render the whole template without blocking the event loop.

        Args:
            *args: The template's positional arguments.
            **kwargs: The template's variables.

        Returns:
            The rendered text.
        """
        text: str = await self.template.render_async(*args, **kwargs)
        return text


def render_template(template: str, *args: Any, **kwargs: Any) -> str:
    """Render a template with the configured engine.

    Args:
        template: The template's name.
        *args: The template's positional arguments.
        **kwargs: The template's variables.

    Returns:
        The rendered text.
    """
    return Template(template).render(*args, **kwargs)


async def render_template_async(template: str, *args: Any, **kwargs: Any) -> str:
    """Render a template without blocking the event loop.

    Loading (and, on first use, compiling) the template happens in a worker thread
    as well as the rendering.

    Args:
        template: The template's name.
        *args: The template's positional arguments.
        **kwargs: The template's variables.

    Returns:
        The rendered text.
    """
    loaded = await asyncio.to_thread(Template, template)
    return await loaded.render_async(*args, **kwargs)


def stream_template(template: str, *args: Any, **kwargs: Any) -> Iterator[str]:
    """Render a template as an iterator over its chunks, for a streamed response.

    The template is loaded now, so that a missing or invalid template fails in the
    route (an error response) rather than after the headers were sent.

    Args:
        template: The template's name.
        *args: The template's positional arguments.
        **kwargs: The template's variables.

    Returns:
        An iterator over the rendered text.
    """
    return Template(template).generate(*args, **kwargs)


def stream_template_async(template: str, *args: Any,
                          **kwargs: Any) -> AsyncIterator[str]:
    """Render a template as an async iterator over its chunks, for a streamed response.

    As with :func:`stream_template`, the template is loaded before this returns.

    Args:
        template: The template's name.
        *args: The template's positional arguments.
        **kwargs: The template's variables.

    Returns:
        An async iterator over the rendered text.
    """
    return Template(template).generate_async(*args, **kwargs)
