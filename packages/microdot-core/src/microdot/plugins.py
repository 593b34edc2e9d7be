"""Plugin registry: the entry-point groups the core defines and plugins fill.

The core never imports a plugin by name. Distributions register objects under the
groups below; the registry discovers them lazily, once per process, and checks that
each plugin targets a compatible plugin-API version before handing it out.
"""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

#: Version of the contract between the core and its plugins. A plugin module declares
#: the version it was written for as ``MICRODOT_PLUGIN_API``; the major number must
#: match and the minor number must not exceed this one.
PLUGIN_API = (1, 0)

GROUPS = {
    'servers': 'microdot.servers',
    'adapters': 'microdot.adapters',
    'templates': 'microdot.templates',
}

#: What to install for the well-known names, used in "not installed" messages only.
KNOWN_PROVIDERS = {
    'servers': {
        'builtin': 'microdot-core',
        'uvicorn': 'microdot-asgi[uvicorn]',
        'hypercorn': 'microdot-asgi[hypercorn]',
        'gunicorn': 'microdot-wsgi[gunicorn]',
        'waitress': 'microdot-wsgi[waitress]',
        'wsgiref': 'microdot-wsgi',
    },
    'adapters': {'asgi': 'microdot-asgi', 'wsgi': 'microdot-wsgi'},
    'templates': {'jinja': 'microdot-templates[jinja]',
                  'utemplate': 'microdot-templates'},
}

_KIND_NOUN = {'servers': 'server', 'adapters': 'adapter', 'templates': 'template engine'}


class PluginError(RuntimeError):
    """A plugin is missing, broken, or built for an incompatible plugin API."""


@dataclass
class PluginInfo:
    """One registered entry point, as ``microdot plugins`` reports it."""
    kind: str
    name: str
    value: str
    distribution: Optional[str]
    version: Optional[str]
    _entry_point: Any = field(default=None, repr=False)


def _parse_api(value: Any) -> Optional[tuple]:
    if isinstance(value, int):
        return (value, 0)
    if isinstance(value, str):
        value = tuple(int(part) for part in value.split('.'))
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        return (value + (0,))[:2]
    return None


def format_api(api: tuple) -> str:
    return '%d.%d' % api


def check_plugin_api(declared: Any, who: str) -> None:
    """Refuse a plugin whose declared plugin-API version the core cannot serve."""
    api = _parse_api(declared)
    if api is None:
        raise PluginError(
            '%s does not declare the microdot plugin API it targets '
            '(MICRODOT_PLUGIN_API); this core provides plugin API %s'
            % (who, format_api(PLUGIN_API)))
    if api[0] != PLUGIN_API[0] or api[1] > PLUGIN_API[1]:
        raise PluginError(
            '%s targets microdot plugin API %s, but the installed microdot-core '
            'provides plugin API %s; install versions of the two that match'
            % (who, format_api(api), format_api(PLUGIN_API)))


def install_hint(kind: str, name: str) -> str:
    """The error text for a plugin that is asked for but not installed."""
    noun = _KIND_NOUN[kind]
    dist = KNOWN_PROVIDERS.get(kind, {}).get(name)
    if dist:
        return "the '%s' %s needs %s: pip install '%s'" % (name, noun, dist, dist)
    return "no %s named '%s' is installed (installed: %s)" % (
        noun, name, ', '.join(sorted(registry.names(kind))) or 'none')


class Registry:
    """Lazy, thread-safe view of the ``microdot.*`` entry-point groups."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._infos: Optional[Dict[str, Dict[str, PluginInfo]]] = None
        self._loaded: Dict[tuple, Any] = {}

    def _discover(self) -> Dict[str, Dict[str, PluginInfo]]:
        if self._infos is not None:
            return self._infos
        with self._lock:
            if self._infos is None:
                from importlib.metadata import entry_points
                infos: Dict[str, Dict[str, PluginInfo]] = {k: {} for k in GROUPS}
                for kind, group in GROUPS.items():
                    for ep in entry_points(group=group):
                        dist = getattr(ep, 'dist', None)
                        infos[kind].setdefault(ep.name, PluginInfo(
                            kind, ep.name, ep.value,
                            dist.metadata['Name'] if dist else None,
                            dist.version if dist else None, ep))
                self._infos = infos
        return self._infos

    def refresh(self) -> None:
        """Forget what was discovered (after installing a plugin at run time)."""
        with self._lock:
            self._infos = None
            self._loaded.clear()

    def names(self, kind: str) -> List[str]:
        return list(self._discover()[kind])

    def infos(self) -> List[PluginInfo]:
        return [info for kind in GROUPS for info in self._discover()[kind].values()]

    def load(self, kind: str, name: str) -> Any:
        """The object registered as ``name`` in group ``kind``, loaded and checked."""
        if kind not in GROUPS:
            raise ValueError('unknown plugin kind %r (one of %s)' % (kind, ', '.join(GROUPS)))
        key = (kind, name)
        try:
            return self._loaded[key]
        except KeyError:
            pass
        info = self._discover()[kind].get(name)
        if info is None:
            raise PluginError(install_hint(kind, name))
        who = '%s %s (%s)' % (info.distribution or 'a plugin', info.version or '', name)
        try:
            obj = info._entry_point.load()
        except (ImportError, AttributeError) as exc:
            raise PluginError('%s could not be loaded: %s' % (who, exc)) from exc
        module = sys.modules.get(getattr(obj, '__module__', '') or '')
        declared = getattr(obj, 'MICRODOT_PLUGIN_API',
                           getattr(module, 'MICRODOT_PLUGIN_API', None))
        check_plugin_api(declared, who.replace('  ', ' '))
        self._loaded[key] = obj
        return obj


registry = Registry()


def get_server(name: str) -> Any:
    """The server runner registered under ``microdot.servers`` as ``name``."""
    return registry.load('servers', name)


def get_adapter(name: str) -> Any:
    """The protocol adapter registered under ``microdot.adapters`` as ``name``."""
    return registry.load('adapters', name)


def get_template_engine(name: str) -> Any:
    """The template class registered under ``microdot.templates`` as ``name``."""
    return registry.load('templates', name)
