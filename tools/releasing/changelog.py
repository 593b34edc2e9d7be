"""A package's CHANGELOG.md in the Keep a Changelog 1.1 format.

The shape the tool reads and writes::

    # Changelog of microdot-asgi
    (preamble)
    ## [Unreleased]
    ### Added
    - ...
    ## [0.1.0] - 2026-12-05
    ### Fixed
    - ...
    [Unreleased]: <repository>/compare/microdot-asgi-v0.1.0...HEAD
    [0.1.0]: <repository>/releases/tag/microdot-asgi-v0.1.0

Change types are the six of Keep a Changelog; level-4 headings may group entries
inside a type.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional

from . import REPOSITORY, ReleaseError, tag_name

TYPES = ('Added', 'Changed', 'Deprecated', 'Removed', 'Fixed', 'Security')
UNRELEASED = 'Unreleased'

_HEADING = re.compile(r'^## \[(?P<label>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?\s*$')
_LINK = re.compile(r'^\[(?P<label>[^\]]+)\]: \S+\s*$')


@dataclass
class Section:
    """One ``## [label]`` section: its heading line index and its body lines."""
    label: str
    date: Optional[str]
    start: int
    end: int


def sections(lines: List[str]) -> List[Section]:
    """The ``##`` sections of a changelog, in file order.

    Args:
        lines: The file's lines, without line ends.

    Returns:
        The sections; each ends where the next one or the link references begin.

    Raises:
        ReleaseError: A level-2 heading is not ``## [Unreleased]`` or
            ``## [VERSION] - YYYY-MM-DD``.
    """
    found: List[Section] = []
    for index, line in enumerate(lines):
        if line.startswith('## '):
            match = _HEADING.match(line)
            if match is None or (match.group('label') != UNRELEASED
                                 and match.group('date') is None):
                raise ReleaseError('line %d: %r is not a Keep a Changelog heading '
                                   '("## [Unreleased]" or "## [1.2.0] - 2026-01-31")'
                                   % (index + 1, line))
            if found:
                found[-1].end = index
            found.append(Section(match.group('label'), match.group('date'), index, len(lines)))
        elif found and _LINK.match(line):
            found[-1].end = min(found[-1].end, index)
    return found


def entries(lines: List[str], section: Section) -> List[str]:
    """The entry lines (``- ...``) of a section, after checking its change types.

    Args:
        lines: The file's lines.
        section: One of :func:`sections`.

    Returns:
        The lines that start an entry.

    Raises:
        ReleaseError: A ``###`` heading is not one of the six change types, or an
            entry comes before any change type.
    """
    found = []
    kind = None
    for index in range(section.start + 1, section.end):
        line = lines[index]
        if line.startswith('### '):
            kind = line[4:].strip()
            if kind not in TYPES:
                raise ReleaseError('line %d: "### %s" is not a Keep a Changelog change type '
                                   '(%s)' % (index + 1, kind, ', '.join(TYPES)))
        elif line.startswith('- '):
            if kind is None:
                raise ReleaseError('line %d: an entry before any "### Added/Changed/Fixed/..."'
                                   ' heading' % (index + 1))
            found.append(line)
    return found


def promote(text: str, name: str, version: str, date: str) -> str:
    """The changelog with an entry for ``version``, ready for its release.

    A ``## [version]`` section that has entries is kept as it is (dated ``date`` if
    it was not). Otherwise the entries under ``## [Unreleased]`` become
    ``## [version] - date`` and an empty ``## [Unreleased]`` opens above them. The
    link references at the bottom are rewritten for the new tag.

    Args:
        text: The changelog.
        name: The distribution name.
        version: The version being released.
        date: The release date, ``YYYY-MM-DD``.

    Returns:
        The new changelog text.

    Raises:
        ReleaseError: There is no entry for ``version``: neither its own section with
            entries nor entries under ``## [Unreleased]``.
    """
    lines = text.split('\n')
    found = sections(lines)
    own = next((s for s in found if s.label == version), None)
    unreleased = next((s for s in found if s.label == UNRELEASED), None)
    if own is not None and entries(lines, own):
        pass
    elif unreleased is not None and entries(lines, unreleased):
        if own is not None:
            raise ReleaseError('both "## [Unreleased]" and an empty "## [%s]" section: '
                               'keep one of them' % version)
        lines[unreleased.start:unreleased.start + 1] = [
            '## [%s]' % UNRELEASED, '', '## [%s] - %s' % (version, date)]
    else:
        raise ReleaseError('no changelog entry for %s %s: list the changes under "## '
                           '[Unreleased]" (### Added, Changed, Fixed, ...) and run again'
                           % (name, version))
    if own is None or own.date is None:
        lines = [('## [%s] - %s' % (version, date)) if line == '## [%s]' % version else line
                 for line in lines]
    return '\n'.join(_links(lines, name, version))


def _links(lines: List[str], name: str, version: str) -> List[str]:
    """The lines with the link references rewritten for a release of ``version``."""
    body = [line for line in lines if not _LINK.match(line)]
    while body and body[-1] == '':
        body.pop()
    labels = [s.label for s in sections(body)]
    versions = [label for label in labels if label != UNRELEASED]
    links = []
    if UNRELEASED in labels:
        links.append('[%s]: %s/compare/%s...HEAD'
                     % (UNRELEASED, REPOSITORY, tag_name(name, versions[0] if versions
                                                         else version)))
    for index, label in enumerate(versions):
        if index + 1 < len(versions):
            links.append('[%s]: %s/compare/%s...%s' % (
                label, REPOSITORY, tag_name(name, versions[index + 1]), tag_name(name, label)))
        else:
            links.append('[%s]: %s/releases/tag/%s' % (label, REPOSITORY, tag_name(name, label)))
    return body + [''] + links + ['']
