"""A package of the family as the release tool sees it: ``packages/<name>/``.

Reads ``pyproject.toml`` with tomllib (tomli before Python 3.11) and edits it with small
textual replacements, so the rest of the file (comments, order, other helpers' tables)
stays exactly as written.
"""
from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from . import CORE, ReleaseError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: hatchling depends on tomli there
    import tomli as tomllib

#: A plugin-API version, ``(major, minor)``.
Api = Tuple[int, int]

_API_ASSIGNMENT = re.compile(r'(?m)^\s*MICRODOT_PLUGIN_API\s*(?::[^=]*)?=\s*(.+?)\s*(?:#.*)?$')
_CORE_API = re.compile(r'(?m)^PLUGIN_API\s*(?::[^=]*)?=\s*(.+?)\s*(?:#.*)?$')


def parse_api(value: Any) -> Api:
    """A plugin-API declaration as ``(major, minor)``.

    Accepts the forms the core accepts: ``1``, ``'1.1'``, ``(1, 1)``.

    Args:
        value: The declared value.

    Returns:
        The version as a pair of integers.

    Raises:
        ValueError: The value is not a plugin-API version.
    """
    if isinstance(value, bool):
        raise ValueError('not a plugin API version: %r' % (value,))
    if isinstance(value, int):
        return (value, 0)
    if isinstance(value, str):
        value = tuple(int(part) for part in value.split('.'))
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        return (value + (0,))[:2]
    raise ValueError('not a plugin API version: %r' % (value,))


def format_api(api: Api) -> str:
    """``(1, 0)`` as ``'1.0'``.

    Args:
        api: A plugin-API version.

    Returns:
        Its dotted form.
    """
    return '%d.%d' % api


@dataclass
class Package:
    """One distribution of the family.

    Attributes:
        root: The repository root.
        directory: ``packages/<name>``.
    """
    root: Path
    directory: Path

    @property
    def pyproject(self) -> Path:
        """The package's ``pyproject.toml``."""
        return self.directory / 'pyproject.toml'

    @property
    def changelog(self) -> Path:
        """The package's ``CHANGELOG.md``."""
        return self.directory / 'CHANGELOG.md'

    def metadata(self) -> Dict[str, Any]:
        """The ``[project]`` table.

        Returns:
            The table as parsed from ``pyproject.toml``.
        """
        with open(self.pyproject, 'rb') as f:
            return tomllib.load(f)['project']  # type: ignore[no-any-return]

    @property
    def name(self) -> str:
        """The distribution name, canonical form."""
        return str(canonicalize_name(self.metadata()['name']))

    @property
    def version(self) -> str:
        """The version written in ``pyproject.toml``."""
        version = self.metadata().get('version')
        if not isinstance(version, str):
            raise ReleaseError('%s: [project] has no static version; the release tool '
                               'expects version = "X.Y.Z"' % self.relative(self.pyproject))
        return version

    def relative(self, path: Path) -> str:
        """``path`` relative to the repository root, for messages.

        Args:
            path: A path inside the repository.

        Returns:
            The relative path in POSIX form.
        """
        return path.relative_to(self.root).as_posix()

    def core_requirement(self) -> Optional[Requirement]:
        """The ``microdot-core`` requirement among the package's dependencies, if any.

        Returns:
            The requirement, or None for the core itself and packages without it.
        """
        for line in self.metadata().get('dependencies', []):
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == CORE:
                return requirement
        return None

    def declared_api(self) -> Optional[Api]:
        """The highest ``MICRODOT_PLUGIN_API`` declared in the package's sources.

        Returns:
            The plugin-API version the package targets, or None if it declares none.

        Raises:
            ReleaseError: A declaration is not a literal plugin-API version.
        """
        found: List[Api] = []
        for source in sorted((self.directory / 'src').rglob('*.py')):
            for match in _API_ASSIGNMENT.finditer(source.read_text(encoding='utf-8')):
                try:
                    found.append(parse_api(ast.literal_eval(match.group(1))))
                except (ValueError, SyntaxError) as exc:
                    raise ReleaseError('%s: MICRODOT_PLUGIN_API = %s is not a literal '
                                       'plugin API version (1, "1.1" or (1, 1))'
                                       % (self.relative(source), match.group(1))) from exc
        return max(found) if found else None

    def set_version(self, version: str) -> None:
        """Write ``version`` as the ``[project]`` version.

        Args:
            version: The new version.
        """
        text = self.pyproject.read_text(encoding='utf-8')
        start = text.index('[project]\n')
        pattern = re.compile(r'(?m)^version\s*=\s*"[^"]*"')
        match = pattern.search(text, start)
        if match is None:
            raise ReleaseError('%s: no version = "..." line in [project]'
                               % self.relative(self.pyproject))
        text = text[:match.start()] + 'version = "%s"' % version + text[match.end():]
        self.pyproject.write_text(text, encoding='utf-8')

    def set_core_range(self, specifier: str) -> None:
        """Replace the ``microdot-core`` requirement's version range.

        Only the quoted requirement inside ``[project]``'s ``dependencies`` changes;
        markers and extras written there are kept.

        Args:
            specifier: The new range, e.g. ``>=0.2.0,<1``.
        """
        text = self.pyproject.read_text(encoding='utf-8')
        block = re.compile(r'(?ms)^dependencies\s*=\s*\[.*?\]').search(
            text, text.index('[project]\n'))
        if block is None:
            raise ReleaseError('%s: no dependencies list in [project]'
                               % self.relative(self.pyproject))
        quoted = re.compile(r'"(microdot[-_.]core)(\[[^\]]*\])?\s*([^";]*)(;[^"]*)?"', re.I)
        match = quoted.search(text, block.start(), block.end())
        if match is None:
            raise ReleaseError('%s: no microdot-core dependency to update'
                               % self.relative(self.pyproject))
        new = '"%s%s%s%s"' % (match.group(1), match.group(2) or '', specifier,
                              match.group(4) or '')
        text = text[:match.start()] + new + text[match.end():]
        self.pyproject.write_text(text, encoding='utf-8')


def core_plugin_api(root: Path) -> Api:
    """The plugin API the core in the tree provides (``PLUGIN_API`` in plugins.py).

    Args:
        root: The repository root.

    Returns:
        The version as ``(major, minor)``.

    Raises:
        ReleaseError: plugins.py has no literal ``PLUGIN_API``.
    """
    source = root / 'packages' / CORE / 'src' / 'microdot' / 'plugins.py'
    match = _CORE_API.search(source.read_text(encoding='utf-8'))
    try:
        if match is None:
            raise ValueError('missing')
        return parse_api(ast.literal_eval(match.group(1)))
    except (ValueError, SyntaxError) as exc:
        raise ReleaseError('%s: no literal PLUGIN_API = (MAJOR, MINOR)'
                           % source.relative_to(root).as_posix()) from exc


def discover(root: Path) -> Dict[str, Package]:
    """Every package under ``packages/``, by canonical name.

    Args:
        root: The repository root.

    Returns:
        The packages, the core first, then the others by name.
    """
    found = [Package(root, path.parent) for path in (root / 'packages').glob('*/pyproject.toml')]
    found.sort(key=lambda package: (package.name != CORE, package.name))
    return {package.name: package for package in found}
