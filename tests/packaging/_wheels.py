"""Helpers shared by the packaging tests: build wheels, make virtualenvs, run pip.

Everything works offline: wheels are built from the source tree with
``--no-isolation`` and installed with ``--no-index --find-links``.
"""
import base64
import fcntl
import hashlib
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

ROOT = Path(__file__).resolve().parents[2]
# Every distribution under packages/, microdot-core first.
PACKAGES = sorted((path.parent.name for path in (ROOT / 'packages').glob('*/pyproject.toml')),
                  key=lambda name: (name != 'microdot-core', name))
TIMEOUT = 180

# The session's built sdists and wheels, by distribution name: each is built once per
# test run, whichever packaging test (or pytest-xdist worker) asks first.
_BUILT: Dict[str, Tuple[Path, Path]] = {}


def run(cmd: List, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, failing the test with its output if it fails."""
    proc = attempt(cmd, **kwargs)
    if proc.returncode != 0:
        raise AssertionError('%s failed (%d):\n%s\n%s' % (
            ' '.join(map(str, cmd)), proc.returncode, proc.stdout, proc.stderr))
    return proc


def attempt(cmd: List, **kwargs) -> subprocess.CompletedProcess:
    """Run a command and return its result whatever its exit status."""
    kwargs.setdefault('timeout', TIMEOUT)
    return subprocess.run([str(part) for part in cmd], capture_output=True, text=True,
                          **kwargs)


def build_dists(name: str, tmp_path_factory) -> Tuple[Path, Path]:
    """The sdist of ``packages/<name>`` and the wheel built from that sdist.

    Built once per test run into one folder (``python -m build``: the sdist, then the
    wheel from it, as a release does); pytest-xdist workers share the folder, the
    first one to ask builds under a lock and the others reuse its files.
    """
    if name not in _BUILT:
        base = tmp_path_factory.getbasetemp()
        if os.environ.get('PYTEST_XDIST_WORKER'):
            base = base.parent  # shared by the workers of this run
        folder = base / 'wheelhouse'
        folder.mkdir(exist_ok=True)
        with open(base / 'wheelhouse.lock', 'w') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            done = folder / ('.built-' + name)
            if not done.exists():
                run([sys.executable, '-m', 'build', '--no-isolation', '--outdir', folder,
                     ROOT / 'packages' / name])
                done.touch()
        prefix = name.replace('-', '_') + '-'
        _BUILT[name] = (
            next(p for p in folder.glob('*.tar.gz') if p.name.startswith(prefix)),
            next(p for p in folder.glob('*.whl') if p.name.startswith(prefix)))
    return _BUILT[name]


def build_wheel(name: str, tmp_path_factory) -> Path:
    """The wheel of ``packages/<name>`` (built from its sdist), once per test run."""
    return build_dists(name, tmp_path_factory)[1]


def make_venv(env_dir: Path) -> Path:
    """A fresh virtualenv with pip; returns its scripts directory."""
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    return env_dir / ('Scripts' if os.name == 'nt' else 'bin')


def pip(bindir: Path, *args) -> subprocess.CompletedProcess:
    """Run the virtualenv's pip, ignoring any pip configuration of the caller."""
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK='1')
    for var in ('PIP_CONSTRAINT', 'PIP_FIND_LINKS', 'PIP_EXTRA_INDEX_URL', 'PIP_INDEX_URL'):
        env.pop(var, None)
    return run([bindir / 'python', '-m', 'pip', '--isolated', *args], env=env)


def installed(bindir: Path) -> set:
    """The lower-case names of the distributions installed in the virtualenv."""
    out = pip(bindir, 'list', '--format=freeze').stdout
    return {line.split('==')[0].lower() for line in out.splitlines() if '==' in line}


def py(bindir: Path, code: str) -> subprocess.CompletedProcess:
    """Run Python code in the virtualenv (outside the source tree), failing on error."""
    return run([bindir / 'python', '-c', code], cwd=str(bindir.parent))


def write_wheel(folder: Path, name: str, version: str, files: Dict[str, bytes],
                top_level: Iterable[str] = ()) -> Path:
    """Write a pure-Python wheel holding ``files`` (archive path -> content)."""
    info = '%s-%s.dist-info' % (name.replace('-', '_'), version)
    members = dict(files)
    members[info + '/METADATA'] = ('Metadata-Version: 2.1\nName: %s\nVersion: %s\n'
                                   % (name, version)).encode()
    members[info + '/WHEEL'] = (b'Wheel-Version: 1.0\nGenerator: microdot-tests\n'
                                b'Root-Is-Purelib: true\nTag: py3-none-any\n')
    if top_level:
        members[info + '/top_level.txt'] = ''.join(t + '\n' for t in top_level).encode()
    record = []
    for path, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=')
        record.append('%s,sha256=%s,%d' % (path, digest.decode(), len(data)))
    record.append(info + '/RECORD,,')
    members[info + '/RECORD'] = ('\n'.join(record) + '\n').encode()
    wheel = folder / ('%s-%s-py3-none-any.whl' % (name.replace('-', '_'), version))
    with zipfile.ZipFile(wheel, 'w', zipfile.ZIP_DEFLATED) as archive:
        for path, data in members.items():
            archive.writestr(path, data)
    return wheel
