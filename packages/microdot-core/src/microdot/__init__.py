"""Microdot: the impossibly small web framework (Microdot 2.x compatible).

This distribution (microdot-core) owns the ``microdot`` import package; plugin
distributions (microdot-asgi, microdot-wsgi, microdot-templates) add modules to it.
"""
from pkgutil import extend_path

# Plugin distributions installed in other directories (editable workspace installs)
# contribute their modules to this package.
__path__ = extend_path(__path__, __name__)

#: Which distribution this ``__init__.py`` belongs to; ``microdot plugins`` reads it
#: to tell whether upstream Microdot's ``__init__.py`` replaced this one.
_DISTRIBUTION = 'microdot-core'


def _warn_if_upstream_installed() -> None:
    """Warn once when the upstream ``microdot`` distribution shares this package.

    Upstream Microdot's distribution owns the same ``microdot/__init__.py``. When it
    was installed after microdot-core, its files replaced these and this code does
    not run (``microdot plugins`` reports that case). When microdot-core came second,
    upstream's metadata remains next to the package, and uninstalling it would delete
    files of ours: that is what this detects, plus an upstream copy of the package
    elsewhere on ``sys.path`` that this one shadows. It runs on every import, so it
    only lists the directory holding this package (and, rarely, one holding another
    ``microdot/__init__.py``): no metadata scan.
    """
    import os
    dirs = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
    for other in __path__[1:]:
        if os.path.isfile(os.path.join(other, '__init__.py')):
            dirs.append(os.path.dirname(os.path.abspath(other)))
    found = False
    upstream: str | None = None
    family: list[str] = []
    for directory in dirs:
        try:
            with os.scandir(directory) as entries:
                names = [e.name for e in entries if e.name[:8].lower() == 'microdot']
        except OSError:
            continue
        for name in names:
            stem, _, suffix = name.rpartition('.')
            if suffix not in ('dist-info', 'egg-info'):
                continue
            dist, _, version = stem.partition('-')
            dist = dist.lower().replace('_', '-').replace('.', '-')
            if dist == 'microdot':
                found = True
                upstream = version.partition('-')[0] or upstream
            elif dist.startswith('microdot-'):
                family.append(dist)
    if found:
        import warnings
        from .plugins import MicrodotClashWarning, clash_warning_text
        warnings.warn(clash_warning_text(upstream, family), MicrodotClashWarning,
                      stacklevel=3)


_warn_if_upstream_installed()
del _warn_if_upstream_installed

from .app import Microdot  # noqa: E402
from .app import invoke_handler as invoke_handler  # noqa: E402 (Microdot has it here)
from .exceptions import HTTPException, abort  # noqa: E402
from .helpers import iscoroutine  # noqa: E402
from .requests import Request  # noqa: E402
from .responses import Response, redirect, send_file  # noqa: E402
from .routing import URLPattern  # noqa: E402
from .streams import AsyncBytesIO  # noqa: E402
from .structures import MultiDict, NoCaseDict  # noqa: E402
from .urls import urldecode, urlencode  # noqa: E402

__all__ = ['Microdot', 'Request', 'Response', 'abort', 'redirect', 'send_file',
           'URLPattern', 'AsyncBytesIO', 'iscoroutine', 'HTTPException', 'MultiDict',
           'NoCaseDict', 'urlencode', 'urldecode', '__version__']

#: The installed microdot-core version (read from its metadata on first access).
__version__: str


def _read_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version('microdot-core')
    except PackageNotFoundError:  # running from a source tree that is not installed
        return '0+unknown'


def __getattr__(name: str) -> str:
    if name == '__version__':
        value = _read_version()
        globals()['__version__'] = value
        return value
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
