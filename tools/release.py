"""Prepare the release of one package of the Microdot family.

    hatch run release:prepare microdot-asgi minor      # or: python tools/release.py ...
    hatch run release:check                            # build and check every package
    hatch run release:ranges                           # show/repair the core ranges

``prepare NAME BUMP`` bumps one package's version with ``hatch version`` semantics
(``major``, ``minor``, ``patch``, ``release``, ``rc``, ``post``, ``dev``, comma
combinations, or an explicit version), refuses when its CHANGELOG.md has no entry for
the new version, and, for microdot-core, checks the bump against the plugin-API change
and updates the dependants' ``microdot-core>=X,<Y`` ranges. It then builds the sdist
and the wheel (from the sdist) into ``dist/NAME/``, checks both with ``twine check
--strict`` and the wheel against one built from the tree, and prints the tag to
create. No other package's version changes. Nothing is committed, tagged or uploaded:
the commands for that are printed. See docs/releasing.md.
"""
from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from releasing import CORE, ReleaseError, changelog, dists, plugin_api, tag_name
from releasing.project import Package, core_plugin_api, discover, format_api

ROOT = Path(__file__).resolve().parent.parent


def bump(version: str, how: str) -> str:
    """The version after ``hatch version <how>`` (hatchling's standard scheme).

    Args:
        version: The current version.
        how: A segment (``minor``, ``rc``...), comma-separated segments, or a version.

    Returns:
        The new version.

    Raises:
        ReleaseError: ``how`` is not valid or would not raise the version.
    """
    from hatchling.version.scheme.standard import StandardScheme
    try:
        return str(Version(StandardScheme(str(ROOT), {}).update(how, version, {})))
    except ValueError as exc:
        raise ReleaseError('cannot bump %s by %r: %s' % (version, how, exc)) from exc


def target_range(package: Package, history: List[plugin_api.Entry]) -> Optional[str]:
    """The ``microdot-core`` range ``package`` should declare, or None if unmanaged.

    A package that declares no ``MICRODOT_PLUGIN_API`` keeps targeting the API of the
    lowest core its current range admits.

    Args:
        package: A package depending on microdot-core.
        history: The plugin-API history.

    Returns:
        The range, e.g. ``>=0.1.0,<1``.
    """
    requirement = package.core_requirement()
    if requirement is None:
        return None
    api = package.declared_api()
    if api is None:
        lows = [spec.version for spec in requirement.specifier if spec.operator in ('>=', '==')]
        api = plugin_api.api_at(history, lows[0]) if lows else None
        if api is None:
            return None
    return plugin_api.core_range(history, api)


def range_changes(packages: Sequence[Package],
                  history: List[plugin_api.Entry]) -> List[Tuple[Package, str, str]]:
    """The packages whose declared core range differs from the policy's.

    Args:
        packages: The packages to look at.
        history: The plugin-API history.

    Returns:
        ``(package, current range, new range)`` for each one to change.
    """
    out = []
    for package in packages:
        wanted = target_range(package, history)
        requirement = package.core_requirement()
        if wanted is not None and requirement is not None \
                and SpecifierSet(wanted) != requirement.specifier:
            out.append((package, show(requirement.specifier), wanted))
    return out


def show(specifier: SpecifierSet) -> str:
    """A range as people write it, lower bound first (``>=0.1.0,<1``).

    Args:
        specifier: The range.

    Returns:
        Its text.
    """
    return ','.join(str(spec) for spec in sorted(
        specifier, key=lambda spec: (not spec.operator.startswith('>'), str(spec))))


def _tag_exists(tag: str) -> bool:
    if not (ROOT / '.git').exists():
        return False
    proc = subprocess.run(['git', '-C', str(ROOT), 'tag', '--list', tag],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode == 0 and bool(proc.stdout.strip())


def _package(packages: Dict[str, Package], name: str) -> Package:
    try:
        return packages[canonicalize_name(name)]
    except KeyError:
        raise ReleaseError('no package %r under packages/ (there are: %s)'
                           % (name, ', '.join(packages))) from None


def build_and_check(package: Package, version: str, outdir: Path) -> List[str]:
    """Build the sdist and wheel, twine-check them, compare with a wheel from the tree.

    Args:
        package: The package.
        version: Its version in the tree.
        outdir: Where the two files go.

    Returns:
        Report lines.

    Raises:
        ReleaseError: A step failed.
    """
    sdist, wheel = dists.build(package.directory, package.name, version, outdir)
    dists.check([sdist, wheel])
    with tempfile.TemporaryDirectory() as scratch:
        direct = dists.build_wheel(package.directory, Path(scratch))
        differ = dists.differences(wheel, direct)
    if differ:
        raise ReleaseError('the wheel built from the sdist differs from the one built from '
                           'the tree (a file is missing from the sdist?):\n  '
                           + '\n  '.join(differ))
    return ['  %s' % package.relative(path) if path.is_relative_to(package.root) else
            '  %s' % path for path in (sdist, wheel)] + \
        ['  twine check --strict: passed; the wheel built from the sdist is the one '
         'built from the tree']


def prepare(name: str, how: str, date: str, outdir: Optional[Path], build: bool) -> str:
    """Prepare the release of one package; see the module docstring.

    Args:
        name: The distribution name.
        how: The ``hatch version`` argument.
        date: The release date for the changelog.
        outdir: Where to build (default ``dist/NAME``).
        build: Whether to build and check the distributions.

    Returns:
        The tag to create.

    Raises:
        ReleaseError: The release is refused; nothing was changed.
    """
    packages = discover(ROOT)
    package = _package(packages, name)
    old = package.version
    new = bump(old, how)
    tag = tag_name(package.name, new)
    if _tag_exists(tag):
        raise ReleaseError('tag %s already exists: %s %s is released; bump again'
                           % (tag, package.name, new))
    notes_text = changelog.promote(package.changelog.read_text(encoding='utf-8'),
                                   package.name, new, date)

    history = plugin_api.load(ROOT)
    new_history, why = history, None
    if package.name == CORE:
        new_history, why = plugin_api.record_core_release(history, old, new,
                                                           core_plugin_api(ROOT))
        affected = [p for p in packages.values() if p.name != CORE]
    else:
        affected = [package]
    changes = range_changes(affected, new_history)

    touched = [package.pyproject, package.changelog] + [p.pyproject for p, _, _ in changes]
    if why is not None:
        touched.append(ROOT / plugin_api.HISTORY_FILE)
    saved = {path: path.read_bytes() for path in touched}
    report = ['Prepared %s %s (was %s):' % (package.name, new, old)]
    try:
        package.set_version(new)
        package.changelog.write_text(notes_text, encoding='utf-8')
        report.append('  %s: version %s' % (package.relative(package.pyproject), new))
        report.append('  %s: [%s] - %s' % (package.relative(package.changelog), new, date))
        if why is not None:
            plugin_api.save(ROOT, new_history)
            report.append('  %s: %s' % (plugin_api.HISTORY_FILE.as_posix(), why))
        for dependant, current, wanted in changes:
            dependant.set_core_range(wanted)
            report.append('  %s: microdot-core%s (was %s); its version stays %s'
                          % (dependant.relative(dependant.pyproject), wanted, current,
                             dependant.version))
        if build:
            report += build_and_check(package, new, outdir or ROOT / 'dist' / package.name)
    except BaseException:
        for path, data in saved.items():
            path.write_bytes(data)
        raise
    files = ' '.join(sorted(package.relative(path) for path in touched))
    upload = (outdir or ROOT / 'dist' / package.name) / (dists.stem(package.name, new) + '*')
    report += ['Next:',
               '  git commit -m "%s %s" -- %s' % (package.name, new, files),
               '  git tag -a %s -m "%s %s"' % (tag, package.name, new),
               '  git push origin main %s' % tag,
               '  twine upload %s' % (upload.relative_to(ROOT) if upload.is_relative_to(ROOT)
                                      else upload),
               'Tag to create: %s' % tag]
    print('\n'.join(report))
    return tag


def check_all(names: Sequence[str]) -> None:
    """Build and check the named packages (all by default) without changing anything.

    Args:
        names: Distribution names; empty for every package.
    """
    packages = discover(ROOT)
    chosen = [_package(packages, name) for name in names] or list(packages.values())
    with tempfile.TemporaryDirectory() as scratch:
        for package in chosen:
            print('%s %s' % (package.name, package.version))
            for line in build_and_check(package, package.version,
                                        Path(scratch) / package.name):
                print(line)


def ranges(write: bool) -> int:
    """Report (or write) dependants whose core range is not what the policy gives.

    Args:
        write: Whether to rewrite them.

    Returns:
        The exit status: 1 if some range is off and ``write`` is false.
    """
    history = plugin_api.load(ROOT)
    packages = [p for p in discover(ROOT).values() if p.name != CORE]
    print('microdot-core in the tree provides plugin API %s; history: %s'
          % (format_api(core_plugin_api(ROOT)),
             ', '.join('%s from %s' % (format_api(e.api), e.version) for e in history)))
    changes = range_changes(packages, history)
    for package in packages:
        requirement = package.core_requirement()
        print('  %s: %s' % (package.name, 'microdot-core' + show(requirement.specifier)
                            if requirement else 'no microdot-core dependency'))
    for package, current, wanted in changes:
        print('%s %s: microdot-core%s -> %s' % ('updated' if write else 'off:', package.name,
                                                current, wanted))
        if write:
            package.set_core_range(wanted)
    return 1 if changes and not write else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line.

    Args:
        argv: The arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0 done, 1 refused or failed, 2 bad usage.
    """
    parser = argparse.ArgumentParser(prog='release', description=__doc__.split('\n\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    prep = commands.add_parser('prepare', help='bump, check the changelog, build, check')
    prep.add_argument('name', help='the distribution, e.g. microdot-asgi')
    prep.add_argument('bump', help='major, minor, patch, release, rc, ... or a version')
    prep.add_argument('--date', default=datetime.date.today().isoformat(),
                      help='release date for the changelog (default: today)')
    prep.add_argument('--outdir', type=Path, help='where to build (default: dist/NAME)')
    prep.add_argument('--no-build', action='store_true', help='skip building and checking')
    check = commands.add_parser('check', help='build and check packages, change nothing')
    check.add_argument('names', nargs='*', help='distributions (default: all)')
    rng = commands.add_parser('ranges', help='compare the core ranges with the policy')
    rng.add_argument('--write', action='store_true', help='rewrite the ranges that are off')
    args = parser.parse_args(argv)
    try:
        if args.command == 'prepare':
            prepare(args.name, args.bump, args.date, args.outdir, not args.no_build)
        elif args.command == 'check':
            check_all(args.names)
        else:
            return ranges(args.write)
    except ReleaseError as exc:
        print('release: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
