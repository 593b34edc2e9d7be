"""Version skew: a plugin and the core at different versions, installed side by side.

From a copy of the repository, the release tool makes three newer distributions:
microdot-core 0.2.0 (plugin API 1.1, additions), microdot-wsgi 0.2.0 (uses plugin API
1.1, so it needs microdot-core>=0.2.0) and microdot-core 1.0.0 (plugin API 2.0, a
break). With the tree's 0.1.0 distributions, in clean virtualenvs and offline:

- compatible pairs install and serve (old plugin on a newer core, new on new);
- pip refuses what the declared ranges forbid (new plugin on an old core, an old plugin
  on a core of the next major), and picks the newest core a plugin admits;
- forced past pip (``--no-deps``), the core refuses the incompatible plugin with a
  message naming both plugin-API versions.

The plugin is exercised for real: ``microdot run --server wsgiref`` loads
microdot-wsgi's server plugin and adapter through the registry, and an HTTP client
asks the application.
"""
import sys
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _repo_copy import (DATE, add_entry, copy_repo, declare_api,  # noqa: E402
                        release, set_plugin_api)
from _wheels import attempt, build_dists, make_venv, pip  # noqa: E402
from support import ServerProcess, free_port  # noqa: E402

APP = """\
from microdot import Microdot

app = Microdot()

@app.route('/')
async def index(request):
    return 'served by ' + request.environ['SERVER_SOFTWARE'].split()[0]
"""


@pytest.fixture(scope='module')
def wheelhouse(tmp_path_factory) -> Path:
    """The tree's 0.1.0 wheels plus core 0.2.0, wsgi 0.2.0 and core 1.0.0."""
    folder = tmp_path_factory.mktemp('skew-wheels')
    for name in ('microdot-core', 'microdot-wsgi'):
        wheel = build_dists(name, tmp_path_factory)[1]
        (folder / wheel.name).write_bytes(wheel.read_bytes())
    repo = copy_repo(tmp_path_factory.mktemp('skew') / 'repo')
    steps = [
        (lambda: set_plugin_api(repo, '(1, 1)'), 'microdot-core', 'minor'),
        (lambda: declare_api(repo, 'microdot-wsgi', '"1.1"'), 'microdot-wsgi', 'minor'),
        (lambda: set_plugin_api(repo, '(2, 0)', old='(1, 1)'), 'microdot-core', 'major'),
    ]
    for edit, name, how in steps:
        edit()
        add_entry(repo, name, 'Plugin API change for the skew test.')
        proc = release(repo, 'prepare', name, how, '--date', DATE, '--outdir', str(folder))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    for sdist in folder.glob('*.tar.gz'):
        sdist.unlink()  # wheels only: what pip installs must be what was checked
    names = sorted(p.name for p in folder.iterdir())
    assert names == ['microdot_core-0.1.0-py3-none-any.whl',
                     'microdot_core-0.2.0-py3-none-any.whl',
                     'microdot_core-1.0.0-py3-none-any.whl',
                     'microdot_wsgi-0.1.0-py3-none-any.whl',
                     'microdot_wsgi-0.2.0-py3-none-any.whl'], names
    return folder


@pytest.fixture(scope='module')
def shared_venv(tmp_path_factory):
    return make_venv(tmp_path_factory.mktemp('skew-venv') / 'venv')


@pytest.fixture
def venv(shared_venv):
    """The module's virtualenv with no distribution of the family installed."""
    installed = versions(shared_venv)
    if installed:
        pip(shared_venv, 'uninstall', '-y', *installed)
    return shared_venv


def install(bindir, wheelhouse, *args):
    return pip(bindir, 'install', '--no-index', '--find-links', str(wheelhouse), *args)


def refused_by_pip(bindir, wheelhouse, *requirements) -> str:
    proc = attempt([bindir / 'python', '-m', 'pip', '--isolated', 'install', '--no-index',
                    '--find-links', str(wheelhouse), *requirements])
    assert proc.returncode != 0, proc.stdout
    return proc.stdout + proc.stderr


def versions(bindir) -> dict:
    out = pip(bindir, 'list', '--format=freeze').stdout
    return dict(line.lower().split('==') for line in out.splitlines()
                if line.startswith('microdot'))


def serve_with_wsgiref(bindir, tmp_path) -> str:
    """``microdot run app:app --server wsgiref`` and one GET; returns the body."""
    app_dir = tmp_path / 'app'
    app_dir.mkdir(exist_ok=True)
    (app_dir / 'app.py').write_text(APP)
    port = free_port()
    server = ServerProcess([str(bindir / 'microdot'), 'run', 'app:app', '--server', 'wsgiref',
                            '--host', '127.0.0.1', '--port', str(port)], port,
                           cwd=str(app_dir), env={'PYTHONPATH': ''})
    try:
        server.wait_ready(30)
        response = httpx.get(server.url + '/', timeout=10)
        assert response.status_code == 200
        return response.text
    finally:
        server.stop()


def refused_at_run_time(bindir, tmp_path) -> str:
    app_dir = tmp_path / 'app'
    app_dir.mkdir(exist_ok=True)
    (app_dir / 'app.py').write_text(APP)
    proc = attempt([bindir / 'microdot', 'run', 'app:app', '--server', 'wsgiref',
                    '--host', '127.0.0.1', '--port', str(free_port())], cwd=str(app_dir),
                   timeout=60)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    return proc.stderr


def test_old_plugin_on_newer_compatible_core(wheelhouse, venv, tmp_path):
    install(venv, wheelhouse, 'microdot-wsgi==0.1.0', 'microdot-core==0.2.0')
    assert versions(venv) == {'microdot-core': '0.2.0', 'microdot-wsgi': '0.1.0'}
    assert serve_with_wsgiref(venv, tmp_path) == 'served by WSGIServer/0.2'


def test_new_plugin_on_new_core_and_pip_picks_the_newest_core_it_admits(wheelhouse, venv,
                                                                         tmp_path):
    install(venv, wheelhouse, 'microdot-wsgi')
    # 1.0.0 is newer but outside microdot-wsgi 0.2.0's range (<1)
    assert versions(venv) == {'microdot-core': '0.2.0', 'microdot-wsgi': '0.2.0'}
    assert serve_with_wsgiref(venv, tmp_path) == 'served by WSGIServer/0.2'


def test_new_plugin_on_old_core_refused_by_pip_then_by_the_core(wheelhouse, venv, tmp_path):
    out = refused_by_pip(venv, wheelhouse, 'microdot-wsgi==0.2.0', 'microdot-core==0.1.0')
    assert 'ResolutionImpossible' in out, out
    assert 'microdot-wsgi 0.2.0 depends on microdot-core' in out and '>=0.2.0' in out, out
    assert versions(venv) == {}

    install(venv, wheelhouse, '--no-deps', 'microdot-wsgi==0.2.0', 'microdot-core==0.1.0')
    message = refused_at_run_time(venv, tmp_path)
    assert 'microdot-wsgi 0.2.0' in message
    assert 'targets microdot plugin API 1.1' in message
    assert 'provides plugin API 1.0' in message


def test_old_plugin_on_next_core_major_refused_by_pip_then_by_the_core(wheelhouse, venv,
                                                                       tmp_path):
    out = refused_by_pip(venv, wheelhouse, 'microdot-wsgi==0.1.0', 'microdot-core==1.0.0')
    assert 'ResolutionImpossible' in out, out
    assert 'microdot-wsgi 0.1.0 depends on microdot-core' in out and '<1' in out, out

    install(venv, wheelhouse, '--no-deps', 'microdot-wsgi==0.1.0', 'microdot-core==1.0.0')
    message = refused_at_run_time(venv, tmp_path)
    assert 'microdot-wsgi 0.1.0' in message
    assert 'targets microdot plugin API 1.0' in message
    assert 'provides plugin API 2.0' in message

    # upgrading the plugin alone cannot help: no microdot-wsgi admits microdot-core 1.x
    refused_by_pip(venv, wheelhouse, '--upgrade', 'microdot-wsgi', 'microdot-core==1.0.0')
