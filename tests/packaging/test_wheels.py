"""Build the four wheels and install them into a clean virtualenv from a local folder.

Checks that one import package spread over several distributions behaves: installing a
plugin pulls in the core and nothing else, the plugin registers its entry points,
and uninstalling it leaves the rest working.
"""
import subprocess
import sys
from pathlib import Path

import pytest

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _wheels import (PACKAGES, TIMEOUT, build_wheel, installed, make_venv,  # noqa: E402
                     pip, py, run)


@pytest.fixture(scope='module')
def wheelhouse(tmp_path_factory):
    for name in PACKAGES:
        folder = build_wheel(name, tmp_path_factory).parent
    return folder


@pytest.fixture()
def clean_venv(tmp_path):
    return make_venv(tmp_path / 'venv')


def test_each_package_builds_its_own_wheel(wheelhouse):
    wheels = sorted(p.name for p in wheelhouse.glob('*.whl'))
    assert len(wheels) == len(PACKAGES)
    for name in PACKAGES:
        assert any(w.startswith(name.replace('-', '_') + '-') for w in wheels), wheels


def test_plugin_wheels_do_not_ship_the_package_init(wheelhouse):
    import zipfile
    for wheel in wheelhouse.glob('*.whl'):
        names = zipfile.ZipFile(wheel).namelist()
        if wheel.name.startswith('microdot_core-'):
            assert 'microdot/__init__.py' in names
            assert 'microdot/py.typed' in names
        else:
            assert 'microdot/__init__.py' not in names, wheel.name
            assert 'microdot/py.typed' not in names, wheel.name
            assert any(n.startswith('microdot/') and n.endswith('.py') for n in names)


def test_install_asgi_plugin_pulls_in_core_only(wheelhouse, clean_venv):
    before = installed(clean_venv)
    pip(clean_venv, 'install', '--no-index', '--find-links', str(wheelhouse), 'microdot-asgi')
    added = installed(clean_venv) - before
    assert added == {'microdot-asgi', 'microdot-core'}

    py(clean_venv, 'import microdot, microdot.asgi, microdot.microdot; '
                   'from microdot import Microdot; Microdot()')
    out = run([str(clean_venv / 'microdot'), 'plugins']).stdout
    assert 'microdot-core 0.1.0' in out
    assert 'microdot-asgi 0.1.0' in out
    assert 'uvicorn' in out and 'asgi' in out
    assert 'microdot-wsgi' not in out
    version = run([str(clean_venv / 'microdot'), '--version']).stdout
    assert version.startswith('microdot-core 0.1.0')
    # the plugin's optional server is not installed: asking for it names the extra
    proc = subprocess.run([str(clean_venv / 'microdot'), 'run', 'x:app', '--server', 'gunicorn'],
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 2
    assert "pip install 'microdot-wsgi[gunicorn]'" in proc.stderr

    pip(clean_venv, 'uninstall', '-y', 'microdot-asgi')
    assert 'microdot-core' in installed(clean_venv)
    py(clean_venv, 'import microdot\n'
                   'from microdot.test_client import TestClient\n'
                   'import asyncio\n'
                   'app = microdot.Microdot()\n'
                   'app.route("/")(lambda r: "ok")\n'
                   'res = asyncio.run(TestClient(app).get("/"))\n'
                   'assert res.text == "ok", res.text\n'
                   'try:\n'
                   '    import microdot.asgi\n'
                   'except ImportError:\n'
                   '    pass\n'
                   'else:\n'
                   '    raise SystemExit("microdot.asgi still importable")\n')
    out = run([str(clean_venv / 'microdot'), 'plugins']).stdout
    assert 'microdot-asgi' not in out and 'builtin' in out


def test_uninstalling_one_plugin_leaves_the_others(wheelhouse, clean_venv):
    pip(clean_venv, 'install', '--no-index', '--find-links', str(wheelhouse),
        'microdot-asgi', 'microdot-wsgi', 'microdot-templates')
    py(clean_venv, 'import microdot.asgi, microdot.wsgi, microdot.utemplate')
    pip(clean_venv, 'uninstall', '-y', 'microdot-wsgi')
    py(clean_venv, 'import microdot, microdot.asgi, microdot.utemplate\n'
                   'import importlib.util\n'
                   'assert importlib.util.find_spec("microdot.wsgi") is None\n')
    pip(clean_venv, 'uninstall', '-y', 'microdot-templates')
    py(clean_venv, 'import microdot, microdot.asgi')
