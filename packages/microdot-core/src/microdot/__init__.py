"""Microdot: the impossibly small web framework (Microdot 2.x compatible).

This distribution (microdot-core) owns the ``microdot`` import package; plugin
distributions (microdot-asgi, microdot-wsgi, microdot-templates) add modules to it.
"""
from pkgutil import extend_path

# Plugin distributions installed in other directories (editable workspace installs)
# contribute their modules to this package.
__path__ = extend_path(__path__, __name__)

from .app import Microdot, invoke_handler  # noqa: E402,F401
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


def _read_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version
        return version('microdot-core')
    except PackageNotFoundError:  # running from a source tree that is not installed
        return '0+unknown'


def __getattr__(name: str) -> str:
    if name == '__version__':
        value = _read_version()
        globals()['__version__'] = value
        return value
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
