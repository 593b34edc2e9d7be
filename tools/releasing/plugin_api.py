"""The plugin-API history and the ``microdot-core`` ranges the dependants declare.

``tools/plugin-api.toml`` maps the first microdot-core version of each plugin-API
version (and of each core major) to that API. From it, a package that targets plugin
API ``M.m`` gets the range ``microdot-core>=FIRST,<NEXT``: FIRST is the first core
providing ``M.m`` or a later ``M.x``; NEXT is the first core whose API major is not
``M`` or, while there is none, the major after the last core recorded for ``M``. The
policy behind it is in docs/releasing.md.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from packaging.version import Version

from . import CORE, ReleaseError
from .project import Api, format_api, parse_api

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: hatchling depends on tomli there
    import tomli as tomllib

HISTORY_FILE = Path('tools') / 'plugin-api.toml'

_HEADER = """\
# The microdot plugin API (PLUGIN_API in packages/microdot-core/src/microdot/plugins.py)
# and the first microdot-core version that provides each of its versions, and each core
# major. tools/release.py adds a line when a microdot-core release changes either; the
# dependants' `microdot-core>=X,<Y` ranges are computed from this table
# (docs/releasing.md). Edit by hand only to correct history.
[core-versions]
"""


@dataclass(frozen=True)
class Entry:
    """One line of the history: from core ``version`` on, the core provides ``api``."""
    version: str
    api: Api


def load(root: Path) -> List[Entry]:
    """The history, oldest core version first.

    Args:
        root: The repository root.

    Returns:
        The entries.

    Raises:
        ReleaseError: The file is missing or malformed.
    """
    path = root / HISTORY_FILE
    try:
        with open(path, 'rb') as f:
            table = tomllib.load(f)['core-versions']
        entries = [Entry(str(Version(version)), parse_api(api)) for version, api in table.items()]
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise ReleaseError('%s: cannot read the plugin API history (%s)'
                           % (HISTORY_FILE.as_posix(), exc)) from exc
    if not entries:
        raise ReleaseError('%s: the plugin API history is empty' % HISTORY_FILE.as_posix())
    return sorted(entries, key=lambda entry: Version(entry.version))


def save(root: Path, entries: List[Entry]) -> None:
    """Write the history back.

    Args:
        root: The repository root.
        entries: The entries, in any order.
    """
    lines = ['"%s" = "%s"\n' % (entry.version, format_api(entry.api))
             for entry in sorted(entries, key=lambda entry: Version(entry.version))]
    (root / HISTORY_FILE).write_text(_HEADER + ''.join(lines), encoding='utf-8')


def core_range(history: List[Entry], api: Api) -> str:
    """The ``microdot-core`` range of a package that targets plugin API ``api``.

    Args:
        history: The plugin-API history.
        api: The plugin API the package declares.

    Returns:
        A specifier such as ``>=0.1.0,<1``.

    Raises:
        ReleaseError: No core release provides that API yet.
    """
    first = next((entry for entry in history
                  if entry.api[0] == api[0] and entry.api[1] >= api[1]), None)
    if first is None:
        raise ReleaseError('no microdot-core release provides plugin API %s yet (latest: %s '
                           'in microdot-core %s): release microdot-core first'
                           % (format_api(api), format_api(history[-1].api),
                              history[-1].version))
    later = [entry for entry in history if Version(entry.version) > Version(first.version)]
    other = next((entry for entry in later if entry.api[0] != api[0]), None)
    if other is not None:
        upper = other.version
    else:
        same = [first] + [entry for entry in later if entry.api[0] == api[0]]
        upper = str(Version(same[-1].version).major + 1)
    return '>=%s,<%s' % (first.version, upper)


def api_at(history: List[Entry], version: str) -> Optional[Api]:
    """The plugin API that core ``version`` provides, per the history.

    Args:
        history: The plugin-API history.
        version: A microdot-core version.

    Returns:
        The API, or None if ``version`` is older than the whole history.
    """
    found = None
    for entry in history:
        if Version(entry.version) <= Version(version):
            found = entry.api
    return found


def record_core_release(history: List[Entry], old: str, new: str,
                        api: Api) -> Tuple[List[Entry], Optional[str]]:
    """Check a core release against the policy and add its history line if it needs one.

    Args:
        history: The plugin-API history.
        old: The core's version before the release.
        new: The version being released.
        api: The plugin API the core in the tree provides.

    Returns:
        The new history and a one-line description of the change (None if unchanged).

    Raises:
        ReleaseError: The version bump does not match the plugin-API change.
    """
    last = history[-1]
    before, after = Version(old), Version(new)
    if api < last.api:
        raise ReleaseError('PLUGIN_API went back from %s (microdot-core %s) to %s'
                           % (format_api(last.api), last.version, format_api(api)))
    if api[0] != last.api[0]:
        if after.major <= before.major:
            raise ReleaseError(
                'the plugin API changed major (%s -> %s): every plugin built for %d.x stops '
                'working, so microdot-core needs a major release: prepare %s major'
                % (format_api(last.api), format_api(api), last.api[0], CORE))
        why = 'plugin API %s (was %s): a new major' % (format_api(api), format_api(last.api))
    elif api != last.api:
        if after.release[:2] <= before.release[:2]:
            raise ReleaseError(
                'the plugin API gained features (%s -> %s): microdot-core needs at least a '
                'minor release: prepare %s minor'
                % (format_api(last.api), format_api(api), CORE))
        why = 'plugin API %s (was %s): additions' % (format_api(api), format_api(last.api))
    elif after.major > Version(last.version).major:
        why = 'microdot-core %d.x keeps plugin API %s' % (after.major, format_api(api))
    else:
        return history, None
    return history + [Entry(str(after), api)], why
