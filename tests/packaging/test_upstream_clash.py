"""The upstream ``microdot`` distribution installed next to microdot-core (issue #12).

Both distributions own ``microdot/__init__.py`` and most modules; pip lets each
overwrite the other's files, and uninstalling one deletes files the other needs. These
tests install the real microdot-core wheel and a stand-in for upstream Microdot 2.7.0
(same file list as the real wheel, built here so the test runs offline) into clean
virtualenvs, in both orders, and check what ``import microdot`` and the ``microdot``
command say, and that the documented fix repairs the environment.
"""
import sys
from pathlib import Path

import pytest

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _wheels import attempt, build_wheel, make_venv, pip, py, write_wheel  # noqa: E402
from support import free_port  # noqa: E402

# Upstream Microdot 2.7.0's ``microdot`` package: every module ships with a .pyi stub.
UPSTREAM_MODULES = ['__init__', 'asgi', 'auth', 'cors', 'csrf', 'helpers', 'jinja', 'login',
                    'microdot', 'multipart', 'session', 'sse', 'test_client', 'utemplate',
                    'websocket', 'wsgi']
FIX = 'pip uninstall microdot && pip install --force-reinstall microdot-core'
WARNING = 'MicrodotClashWarning'

# Prints which Microdot the running package is, and fails if it is not ours.
IMPORT_CORE = ('import microdot\n'
               'from microdot import Microdot\n'
               'assert microdot._DISTRIBUTION == "microdot-core", microdot.__file__\n'
               'assert Microdot.__module__ == "microdot.app", Microdot.__module__\n')


def upstream_files():
    files = {}
    for module in UPSTREAM_MODULES:
        stub = '# stand-in for upstream Microdot 2.7.0: microdot/%s\n' % module
        files['microdot/%s.pyi' % module] = stub.encode()
        files['microdot/%s.py' % module] = stub.encode()
    files['microdot/__init__.py'] += (b'from microdot.microdot import Microdot  # noqa\n'
                                      b"__version__ = '2.7.0'\n")
    files['microdot/microdot.py'] += b'class Microdot:\n    """Upstream\'s app class."""\n'
    files['microdot/py.typed'] = b''
    return files


@pytest.fixture(scope='module')
def wheels(tmp_path_factory):
    """Find-links arguments offering microdot-core and the upstream stand-in."""
    build_wheel('microdot-asgi', tmp_path_factory)
    core = build_wheel('microdot-core', tmp_path_factory)
    upstream_dir = tmp_path_factory.mktemp('upstream')
    write_wheel(upstream_dir, 'microdot', '2.7.0', upstream_files(), top_level=['microdot'])
    return ['--no-index', '--find-links', str(core.parent), '--find-links', str(upstream_dir)]


def microdot_cli(bindir, *args):
    return attempt([bindir / 'microdot', *args], cwd=str(bindir.parent))


def python(bindir, code):
    return attempt([bindir / 'python', '-c', code], cwd=str(bindir.parent))


def assert_no_traceback(proc):
    assert 'Traceback' not in proc.stderr, proc.stderr


def assert_repaired(bindir, wheels, fix=FIX, code=IMPORT_CORE):
    """Run the fix the CLI named, then check everything works again without a warning."""
    uninstall, reinstall = fix.split(' && ')
    assert uninstall == 'pip uninstall microdot'
    pip(bindir, 'uninstall', '-y', 'microdot')
    assert reinstall.startswith('pip install ')
    pip(bindir, 'install', *wheels, *reinstall.split()[2:])
    proc = python(bindir, code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ''
    proc = microdot_cli(bindir, 'plugins')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'problem' not in proc.stdout and proc.stderr == ''
    assert 'microdot-core 0.1.0' in proc.stdout
    proc = microdot_cli(bindir, '--version')
    assert proc.returncode == 0 and proc.stderr == ''
    site = Path(py(bindir, 'import microdot, os; print(os.path.dirname(microdot.__file__))')
                .stdout.strip())
    assert not list(site.glob('*.pyi')), 'upstream stubs left behind'


def test_upstream_installed_after_core_is_reported_and_fixed(wheels, tmp_path):
    """Upstream's files replace ours: import cannot warn, the CLI explains and refuses."""
    bindir = make_venv(tmp_path / 'venv')
    pip(bindir, 'install', *wheels, 'microdot-asgi')  # and microdot-core
    pip(bindir, 'install', *wheels, 'microdot==2.7.0')
    fix = FIX + ' microdot-asgi'  # upstream replaced microdot/asgi.py too

    # upstream's __init__ runs now: nothing of ours runs on import, so no warning
    proc = python(bindir, 'import microdot; print(microdot.__version__)')
    assert proc.returncode == 0 and proc.stdout.strip() == '2.7.0'
    assert python(bindir, IMPORT_CORE).returncode != 0

    proc = microdot_cli(bindir, 'plugins')
    assert_no_traceback(proc)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'microdot-core 0.1.0' in proc.stdout and 'builtin' in proc.stdout
    assert "problem: the upstream 'microdot' distribution 2.7.0 is installed" in proc.stdout
    assert 'files of microdot-core, microdot-asgi were overwritten by upstream Microdot: ' \
        'microdot/__init__.py, microdot/asgi.py' in proc.stdout
    assert 'fix: %s\n' % fix in proc.stdout

    proc = microdot_cli(bindir, '--version')
    assert_no_traceback(proc)
    assert proc.returncode == 0
    assert proc.stdout.startswith('microdot-core 0.1.0 ')  # not upstream's 2.7.0
    assert fix in proc.stderr

    (tmp_path / 'hello.py').write_text('from microdot import Microdot\napp = Microdot()\n')
    proc = attempt([bindir / 'microdot', 'run', 'hello:app', '--port', str(free_port())],
                   cwd=str(tmp_path), timeout=60)
    assert_no_traceback(proc)
    assert proc.returncode == 2
    assert 'microdot-core cannot run in this environment' in proc.stderr
    assert fix in proc.stderr

    # upstream's stand-in asgi.py has no Microdot class; microdot-asgi's has
    assert_repaired(bindir, wheels, fix, IMPORT_CORE + 'from microdot.asgi import Microdot\n'
                                                       'assert callable(Microdot())\n')


def test_core_installed_after_upstream_warns_on_import_and_is_fixed(wheels, tmp_path):
    """Our files replace upstream's but its metadata stays: import warns once."""
    bindir = make_venv(tmp_path / 'venv')
    pip(bindir, 'install', *wheels, 'microdot==2.7.0')
    pip(bindir, 'install', *wheels, 'microdot-core')

    proc = python(bindir, IMPORT_CORE + 'import importlib, microdot.app\n'
                                        'importlib.import_module("microdot.cors")\n')
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count(WARNING) == 1, proc.stderr
    assert FIX in proc.stderr
    assert "replace 'microdot' with 'microdot-core' in your requirements" in proc.stderr.lower()
    # the warning points at the importing line, and is a UserWarning one can filter
    proc = python(bindir, 'import warnings\n'
                          'with warnings.catch_warnings(record=True) as caught:\n'
                          '    warnings.simplefilter("always")\n'
                          '    import microdot\n'
                          'from microdot.plugins import MicrodotClashWarning\n'
                          '[w] = caught\n'
                          'assert w.category is MicrodotClashWarning, w\n'
                          'assert issubclass(MicrodotClashWarning, UserWarning)\n'
                          'assert w.filename == "<string>" and w.lineno == 4, w\n')
    assert proc.returncode == 0, proc.stderr

    proc = microdot_cli(bindir, 'plugins')
    assert_no_traceback(proc)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "problem: the upstream 'microdot' distribution 2.7.0 is installed" in proc.stdout
    assert 'uninstalling either distribution deletes' in proc.stdout
    assert 'fix: ' + FIX in proc.stdout
    assert 'missing' not in proc.stdout and 'overwritten' not in proc.stdout  # intact

    # the trap: uninstalling upstream deletes the files both own
    pip(bindir, 'uninstall', '-y', 'microdot')
    assert python(bindir, IMPORT_CORE).returncode != 0
    proc = microdot_cli(bindir, 'plugins')
    assert_no_traceback(proc)
    assert proc.returncode == 1
    assert "microdot-core's microdot/__init__.py is missing" in proc.stdout
    assert 'files of microdot-core are missing: microdot/__init__.py' in proc.stdout
    assert 'fix: pip install --force-reinstall microdot-core' in proc.stdout

    assert_repaired(bindir, wheels)
