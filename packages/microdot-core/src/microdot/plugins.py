"""Plugin registry: the entry-point groups the core defines and plugins fill.

The core never imports a plugin by name. Distributions register objects under the
groups below; the registry discovers them lazily, once per process, and checks that
each plugin targets a compatible plugin-API version before handing it out.
"""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple, cast

#: Version of the contract between the core and its plugins. A plugin module declares
#: the version it was written for as ``MICRODOT_PLUGIN_API``; the major number must
#: match and the minor number must not exceed this one.
PLUGIN_API = (1, 0)

GROUPS = {
    'servers': 'microdot.servers',
    'adapters': 'microdot.adapters',
    'templates': 'microdot.templates',
    'brokers': 'microdot.brokers',
}

#: What to install for the well-known names, used in "not installed" messages only.
KNOWN_PROVIDERS = {
    'servers': {
        'builtin': 'microdot-core',
        'uvicorn': 'microdot-asgi[uvicorn]',
        'hypercorn': 'microdot-asgi[hypercorn]',
        'gunicorn': 'microdot-wsgi[gunicorn]',
        'waitress': 'microdot-wsgi[waitress]',
        'uwsgi': 'microdot-wsgi[uwsgi]',
        'granian': 'microdot-asgi[granian]',
        'wsgiref': 'microdot-wsgi',
    },
    'adapters': {'asgi': 'microdot-asgi', 'wsgi': 'microdot-wsgi'},
    'templates': {'jinja': 'microdot-templates[jinja]',
                  'utemplate': 'microdot-templates'},
    'brokers': {'memory': 'microdot-core', 'redis': 'microdot-redis',
                'rediss': 'microdot-redis', 'unix': 'microdot-redis'},
}

_KIND_NOUN = {'servers': 'server', 'adapters': 'adapter', 'templates': 'template engine',
              'brokers': 'broker'}


class PluginError(RuntimeError):
    """A plugin is missing, broken, or built for an incompatible plugin API."""


@dataclass
class PluginInfo:
    """One registered entry point, as ``microdot plugins`` reports it.

    Args:
        kind: The group's short name (``'servers'``, ``'adapters'`` ...).
        name: The entry point's name.
        value: What it points to (``module:attribute``).
        distribution: The distribution that registers it.
        version: That distribution's version.
        _entry_point: The entry point itself (loaded on first use).
    """
    kind: str
    name: str
    value: str
    distribution: Optional[str]
    version: Optional[str]
    _entry_point: Any = field(default=None, repr=False)


def _parse_api(value: Any) -> Optional[Tuple[int, int]]:
    if isinstance(value, int):
        return (value, 0)
    if isinstance(value, str):
        value = tuple(int(part) for part in value.split('.'))
    if isinstance(value, tuple):
        items = cast(Tuple[Any, ...], value)  # type: ignore[redundant-cast]  # (pyright: not Unknown)
        if items and all(isinstance(v, int) for v in items):
            parts = items + (0,)
            return parts[0], parts[1]
    return None


def format_api(api: Tuple[int, int]) -> str:
    """A plugin-API version as text.

    Args:
        api: The ``(major, minor)`` version.

    Returns:
        ``'major.minor'``.
    """
    return '%d.%d' % api


def check_plugin_api(declared: Any, who: str) -> None:
    """Refuse a plugin whose declared plugin-API version the core cannot serve.

    Args:
        declared: The plugin's ``MICRODOT_PLUGIN_API`` (an int, ``'1.0'`` or a
            tuple), or ``None`` when it declares none.
        who: The plugin, as messages name it.

    Raises:
        PluginError: No version declared, or one the core does not provide.
    """
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
    """The error text for a plugin that is asked for but not installed.

    Args:
        kind: The group's short name (``'servers'`` ...).
        name: The plugin's name.

    Returns:
        What to ``pip install`` for a well-known name, else the installed names.
    """
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
        self._loaded: Dict[Tuple[str, str], Any] = {}

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
        """The names registered in a group.

        Args:
            kind: The group's short name (``'servers'`` ...).

        Returns:
            The names, in discovery order.
        """
        return list(self._discover()[kind])

    def infos(self) -> List[PluginInfo]:
        """Every registered entry point of every group.

        Returns:
            Their descriptions, group by group.
        """
        return [info for kind in GROUPS for info in self._discover()[kind].values()]

    def load(self, kind: str, name: str) -> Any:
        """The object registered as ``name`` in group ``kind``, loaded and checked.

        Args:
            kind: The group's short name (``'servers'`` ...).
            name: The plugin's name.

        Returns:
            The loaded object (kept: later calls return it at once).

        Raises:
            ValueError: An unknown group.
            PluginError: The plugin is not installed, cannot be loaded, or targets an
                incompatible plugin API.
        """
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
            obj = info._entry_point.load()  # pyright: ignore[reportPrivateUsage]
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
    """The server runner registered under ``microdot.servers`` as ``name``.

    Args:
        name: The server's name (``'builtin'``, ``'uvicorn'`` ...).

    Returns:
        The runner (its ``run(app, host=..., port=..., **options)`` serves).
    """
    return registry.load('servers', name)


def get_adapter(name: str) -> Any:
    """The protocol adapter registered under ``microdot.adapters`` as ``name``.

    Args:
        name: ``'asgi'`` or ``'wsgi'``.

    Returns:
        The adapter (called with an application, it returns the wrapper serving it).
    """
    return registry.load('adapters', name)


def get_template_engine(name: str) -> Any:
    """The template class registered under ``microdot.templates`` as ``name``.

    Args:
        name: ``'jinja'`` or ``'utemplate'``.

    Returns:
        The template class.
    """
    return registry.load('templates', name)


def get_broker(scheme: str) -> Any:
    """The publish/subscribe broker factory registered for a URL scheme.

    Args:
        scheme: The scheme (``memory``, ``redis`` ...), an entry of the
            ``microdot.brokers`` group.

    Returns:
        The factory.
    """
    return registry.load('brokers', scheme)


# -- the upstream ``microdot`` distribution ---------------------------------------------

#: The distributions of this family, in the order a fix command names them.
FAMILY = ('microdot-core', 'microdot-asgi', 'microdot-wsgi', 'microdot-templates',
          'microdot-redis')

#: Upstream Microdot's distribution name. It owns the same ``microdot/__init__.py``
#: (and ``microdot.py``, ``asgi.py``, ``wsgi.py`` ...), so pip lets each of the two
#: overwrite the other's files, and uninstalling one deletes files the other needs.
UPSTREAM = 'microdot'


class MicrodotClashWarning(UserWarning):
    """The upstream ``microdot`` distribution is installed next to microdot-core.

    Emitted once by ``import microdot`` when the upstream distribution's metadata sits
    next to the package (microdot-core was installed after it, so microdot-core's files
    are in place for now) or an upstream copy of the package is on ``sys.path``. The
    message names the command that repairs the environment (:func:`fix_command`).
    """


def fix_command(installed: Iterable[str] = (), upstream: bool = True) -> str:
    """The shell command that removes upstream Microdot and restores this family's files.

    ``installed`` names the family distributions present (others are ignored); they are
    all reinstalled, since upstream's ``asgi.py``, ``wsgi.py``, ``jinja.py`` and
    ``utemplate.py`` replace (and its uninstall deletes) the plugins' modules too.
    microdot-core is always named.

    Args:
        installed: The family distributions present (others are ignored).
        upstream: False when upstream is already gone and only the reinstall is
            needed.

    Returns:
        The command.
    """
    present = {canonical_name(name) for name in installed}
    names = [name for name in FAMILY if name == 'microdot-core' or name in present]
    reinstall = 'pip install --force-reinstall ' + ' '.join(names)
    return ('pip uninstall %s && %s' % (UPSTREAM, reinstall)) if upstream else reinstall


def canonical_name(name: str) -> str:
    """A distribution name normalised the PEP 503 way.

    Args:
        name: The name, such as ``Microdot_Core``.

    Returns:
        The normalised name, such as ``microdot-core``.
    """
    out = name.strip().lower().replace('_', '-').replace('.', '-')
    while '--' in out:
        out = out.replace('--', '-')
    return out


def clash_warning_text(upstream_version: Optional[str], installed: Iterable[str]) -> str:
    """The one-paragraph text of :class:`MicrodotClashWarning`.

    Args:
        upstream_version: The upstream distribution's version, if known.
        installed: The family distributions present.

    Returns:
        The text, with the command that repairs the environment.
    """
    return (
        "the upstream 'microdot' distribution%s is installed in the same environment as "
        "microdot-core; both own the 'microdot' package (microdot/__init__.py ...), so "
        "installing or uninstalling either one silently overwrites or deletes the other's "
        "files. Replace 'microdot' with 'microdot-core' in your requirements and run: %s"
        % (' (%s)' % upstream_version if upstream_version else '',
           fix_command(installed)))


@dataclass
class Clash:
    """What ``microdot plugins`` found wrong with the ``microdot`` package's files.

    Either the upstream ``microdot`` distribution is installed (``upstream_version`` is
    set), or it is not but files of this family are missing or changed (typically after
    uninstalling upstream, whose RECORD lists the files both distributions own).

    Args:
        upstream_version: The upstream distribution's version, ``None`` if it is not
            installed.
        upstream_location: Where its metadata is.
        installed: The family distributions installed.
        core_active: Whether the imported ``microdot/__init__.py`` is microdot-core's.
        init_file: The imported ``microdot/__init__.py``.
        shared: Files that upstream and this family both own.
        missing: Files of this family that are gone.
        changed: Files of this family whose content changed.
    """
    #: Version of the upstream ``microdot`` distribution, None if it is not installed.
    upstream_version: Optional[str]
    #: Where its metadata is (a ``site-packages`` directory), if installed.
    upstream_location: Optional[str]
    #: Family distributions installed, canonical names.
    installed: List[str]
    #: Whether the imported ``microdot/__init__.py`` is microdot-core's.
    core_active: bool
    #: The imported ``microdot/__init__.py``; None if it is missing (namespace package).
    init_file: Optional[str]
    #: Files (paths relative to site-packages) that upstream and this family both own.
    shared: List[str] = field(default_factory=list)  # pyright: ignore[reportUnknownVariableType]
    #: Files of this family that are gone.
    missing: List[str] = field(default_factory=list)  # pyright: ignore[reportUnknownVariableType]
    #: Files of this family whose content is not what was installed (overwritten).
    changed: List[str] = field(default_factory=list)  # pyright: ignore[reportUnknownVariableType]

    @property
    def fix(self) -> str:
        """The command that repairs the environment."""
        return fix_command(self.installed, upstream=self.upstream_version is not None)

    def describe(self) -> List[str]:
        """The report, one line per fact, the fix last.

        Returns:
            The lines.
        """
        ours = ', '.join(self.installed) or 'microdot-core'
        upstream = self.upstream_version is not None
        lines: List[str] = []
        if upstream:
            lines.append("the upstream 'microdot' distribution %s is installed%s, next to %s; "
                         "both own the 'microdot' package"
                         % (self.upstream_version,
                            ' (in %s)' % self.upstream_location if self.upstream_location
                            else '', ours))
        if not self.core_active:
            if self.init_file is None:
                lines.append("microdot-core's microdot/__init__.py is missing%s"
                             % ('' if upstream else " (uninstalling the upstream 'microdot' "
                                                    "distribution deletes it)"))
            else:
                lines.append("the 'microdot' package in use (%s) is not microdot-core's: "
                             "%s replaced its __init__.py"
                             % (self.init_file, 'upstream Microdot' if upstream
                                else 'another distribution'))
        overwritten = 'overwritten' + (' by upstream Microdot' if upstream else '')
        for paths, one, many in ((self.changed, 'was ' + overwritten, 'were ' + overwritten),
                                 (self.missing, 'is missing', 'are missing')):
            if paths:
                lines.append('%d file%s of %s %s: %s'
                             % (len(paths), '' if len(paths) == 1 else 's', ours,
                                one if len(paths) == 1 else many, _some(paths)))
        if self.shared:
            lines.append("uninstalling either distribution deletes these files the other "
                         "needs: %s" % _some(self.shared))
        if upstream:
            lines.append("replace 'microdot' with 'microdot-core' in your requirements")
        lines.append('fix: %s' % self.fix)
        return lines


def _some(paths: List[str], limit: int = 4) -> str:
    shown = ', '.join(paths[:limit])
    return shown + (' and %d more' % (len(paths) - limit) if len(paths) > limit else '')


def _package_record(dist: Any) -> Dict[str, Optional[str]]:
    """``{path: sha256 or None}`` of the distribution's files in the ``microdot`` package.

    Read from RECORD directly: ``Distribution.files`` leaves out missing files on
    Python 3.12+, and the missing ones are what matters here.
    """
    import csv
    out: Dict[str, Optional[str]] = {}
    text = dist.read_text('RECORD') or ''
    for row in csv.reader(text.splitlines()):
        if not row or not row[0].startswith('microdot/') or '/__pycache__/' in row[0]:
            continue
        algorithm, _, digest = (row[1] if len(row) > 1 else '').partition('=')
        out[row[0]] = digest if algorithm == 'sha256' and digest else None
    return out


def _file_state(path: Any, digest: Optional[str]) -> str:
    """``'ok'``, ``'missing'`` or ``'changed'`` for one installed file."""
    import base64
    import hashlib
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 'missing'
    except OSError:
        return 'changed'
    if digest is None:
        return 'ok'
    actual = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=')
    return 'ok' if actual.decode('ascii') == digest else 'changed'


def find_clash() -> Optional[Clash]:
    """Check the ``microdot`` package's files against the installed distributions.

    Thorough (reads metadata and hashes the family's installed files), so it is meant
    for the CLI, not for ``import microdot``.

    Returns:
        What is wrong, or ``None`` when everything is in order.
    """
    import os
    from importlib.metadata import PackageNotFoundError, distribution

    module = sys.modules.get('microdot')
    core_active = getattr(module, '_DISTRIBUTION', None) == 'microdot-core'
    init_file = getattr(module, '__file__', None)

    family: Dict[str, Any] = {}
    for name in FAMILY:
        try:
            family[name] = distribution(name)
        except PackageNotFoundError:
            pass
    try:
        upstream: Any = distribution(UPSTREAM)
    except PackageNotFoundError:
        upstream = None

    def where(dist: Any, path: str) -> str:
        return os.path.normcase(os.path.realpath(str(dist.locate_file(path))))

    theirs: Set[str] = ({where(upstream, path) for path in _package_record(upstream)}
                        if upstream is not None else set())
    shared: Set[str] = set()
    missing: Set[str] = set()
    changed: Set[str] = set()
    for dist in family.values():
        for path, digest in _package_record(dist).items():
            state = _file_state(dist.locate_file(path), digest)
            if state == 'missing':
                missing.add(path)
            elif state == 'changed':
                changed.add(path)
            if where(dist, path) in theirs:
                shared.add(path)
    if upstream is None and core_active and not missing and not changed:
        return None
    location = str(upstream.locate_file('')) if upstream is not None else None
    return Clash(upstream.version if upstream is not None else None, location,
                 list(family), core_active, init_file, sorted(shared), sorted(missing),
                 sorted(changed))
