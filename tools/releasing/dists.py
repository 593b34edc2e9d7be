"""Build a package's sdist and wheel, check them, and compare wheels.

The wheel is built from the sdist (as ``python -m build`` does), so what is uploaded
is what anyone rebuilding from the sdist gets. Builds use the running environment's
hatchling (``--no-isolation``): no download, and the same backend for every package.
"""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from . import ReleaseError

TIMEOUT = 300


def _run(command: Sequence[object], what: str) -> str:
    proc = subprocess.run([str(part) for part in command], capture_output=True, text=True,
                          timeout=TIMEOUT)
    if proc.returncode != 0:
        raise ReleaseError('%s failed (exit %d):\n%s%s'
                           % (what, proc.returncode, proc.stdout, proc.stderr))
    return proc.stdout


def stem(name: str, version: str) -> str:
    """The file-name stem of a distribution's files, e.g. ``microdot_asgi-0.2.0``.

    Args:
        name: The distribution name.
        version: Its version.

    Returns:
        The stem shared by the sdist and the wheel.
    """
    return '%s-%s' % (name.replace('-', '_').replace('.', '_'), version)


def build(directory: Path, name: str, version: str, outdir: Path) -> Tuple[Path, Path]:
    """Build the sdist, then the wheel from that sdist, into ``outdir``.

    Args:
        directory: The package's directory (``packages/<name>``).
        name: The distribution name.
        version: The version written in its pyproject.toml.
        outdir: Where to put the two files.

    Returns:
        The sdist and the wheel.

    Raises:
        ReleaseError: The build failed or did not produce the expected files.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, '-m', 'build', '--no-isolation', '--outdir', outdir, directory],
         'building %s' % name)
    sdist = outdir / (stem(name, version) + '.tar.gz')
    wheels = sorted(outdir.glob(stem(name, version) + '-*.whl'))
    if not sdist.is_file() or len(wheels) != 1:
        raise ReleaseError('building %s %s did not produce one sdist and one wheel in %s'
                           % (name, version, outdir))
    return sdist, wheels[0]


def build_wheel(directory: Path, outdir: Path) -> Path:
    """Build a wheel straight from the source tree (no sdist).

    Args:
        directory: The package's directory.
        outdir: An empty folder for the wheel.

    Returns:
        The wheel.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, '-m', 'build', '--wheel', '--no-isolation', '--outdir', outdir,
          directory], 'building a wheel of %s' % directory.name)
    return next(outdir.glob('*.whl'))


def check(paths: Sequence[Path]) -> str:
    """Run ``twine check --strict`` on the files.

    Args:
        paths: sdists and wheels.

    Returns:
        twine's report.

    Raises:
        ReleaseError: twine found a problem (its report is the message).
    """
    return _run([sys.executable, '-m', 'twine', 'check', '--strict', *paths],
                'twine check --strict')


def contents(wheel: Path) -> Dict[str, bytes]:
    """Every member of a wheel, by archive path.

    Args:
        wheel: A wheel file.

    Returns:
        The members' bytes.
    """
    with zipfile.ZipFile(wheel) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def differences(first: Path, second: Path) -> List[str]:
    """How two wheels differ, file by file (empty when they hold the same files).

    Args:
        first: A wheel.
        second: Another wheel.

    Returns:
        One line per member that is missing from one of them or differs.
    """
    a, b = contents(first), contents(second)
    out = ['only in %s: %s' % (first.name, path) for path in sorted(set(a) - set(b))]
    out += ['only in %s: %s' % (second.name, path) for path in sorted(set(b) - set(a))]
    out += ['differs: %s' % path for path in sorted(set(a) & set(b)) if a[path] != b[path]]
    return out
