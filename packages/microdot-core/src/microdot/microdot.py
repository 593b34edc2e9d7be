"""Compatibility module: ``from microdot.microdot import Microdot, Response, ...``."""
from . import __version__  # noqa: F401
from .app import Microdot, invoke_handler  # noqa: F401
from .exceptions import HTTPException, abort  # noqa: F401
from .helpers import iscoroutine  # noqa: F401
from .requests import Request  # noqa: F401
from .responses import Response, redirect, send_file  # noqa: F401
from .routing import URLPattern  # noqa: F401
from .streams import AsyncBytesIO  # noqa: F401
from .structures import MultiDict, NoCaseDict  # noqa: F401
from .urls import urldecode, urldecode_bytes, urldecode_str, urlencode  # noqa: F401

__all__ = ['Microdot', 'invoke_handler', 'HTTPException', 'abort', 'iscoroutine', 'Request',
           'Response', 'redirect', 'send_file', 'URLPattern', 'AsyncBytesIO', 'MultiDict',
           'NoCaseDict', 'urldecode', 'urldecode_bytes', 'urldecode_str', 'urlencode']
