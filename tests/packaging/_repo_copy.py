"""A copy of the repository's release-relevant files, and edits to make on it.

Shared by the release-tool and version-skew tests, which run tools/release.py on the
copy, never on the tree.
"""
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

ROOT = Path(__file__).resolve().parents[2]

DATE = '2026-12-05'
PLUGINS_PY = 'packages/microdot-core/src/microdot/plugins.py'


def copy_repo(copy: Path) -> Path:
    """Copy the repository's release-relevant files (tools/, packages/) to ``copy``."""
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', 'dist', 'build', '*.egg-info')
    for folder in ('tools', 'packages'):
        shutil.copytree(ROOT / folder, copy / folder, ignore=ignore)
    shutil.copy(ROOT / '.gitignore', copy / '.gitignore')
    return copy


def release(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(repo / 'tools' / 'release.py'), *args],
                          cwd=str(repo), capture_output=True, text=True, timeout=300)


def snapshot(repo: Path) -> Dict[str, bytes]:
    return {path.relative_to(repo).as_posix(): path.read_bytes()
            for path in sorted(repo.rglob('*'))
            if path.is_file() and 'dist' not in path.relative_to(repo).parts
            and '__pycache__' not in path.parts}


def changed(before: Dict[str, bytes], after: Dict[str, bytes]) -> set:
    return {path for path in set(before) | set(after) if before.get(path) != after.get(path)}


def version(repo: Path, name: str) -> str:
    text = (repo / 'packages' / name / 'pyproject.toml').read_text()
    return next(line.split('"')[1] for line in text.splitlines() if line.startswith('version ='))


def core_dependency(repo: Path, name: str) -> str:
    text = (repo / 'packages' / name / 'pyproject.toml').read_text()
    return next(line for line in text.splitlines() if line.startswith('dependencies ='))


def add_entry(repo: Path, name: str, entry: str, kind: str = 'Changed') -> None:
    path = repo / 'packages' / name / 'CHANGELOG.md'
    text = path.read_text()
    assert text.count('## [Unreleased]\n') == 1
    path.write_text(text.replace('## [Unreleased]\n', '## [Unreleased]\n\n### %s\n\n- %s\n'
                                 % (kind, entry), 1))


def set_plugin_api(repo: Path, api: str, old: str = '(1, 0)') -> None:
    """Change the core's PLUGIN_API in the copy from ``old`` to ``api``."""
    path = repo / PLUGINS_PY
    text = path.read_text()
    assert text.count('PLUGIN_API = %s\n' % old) == 1
    path.write_text(text.replace('PLUGIN_API = %s\n' % old, 'PLUGIN_API = %s\n' % api))


def declare_api(repo: Path, name: str, api: str) -> None:
    for source in (repo / 'packages' / name / 'src').rglob('*.py'):
        text = source.read_text()
        source.write_text(text.replace('MICRODOT_PLUGIN_API = 1\n',
                                       'MICRODOT_PLUGIN_API = %s\n' % api))
