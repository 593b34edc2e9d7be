"""The plugin registry (entry points, API version checks, install hints) and the CLI."""
import subprocess
import sys
import textwrap

import httpx
import pytest

from microdot import plugins
from support import ROOT, free_port, serve

MICRODOT = [sys.executable, '-m', 'microdot']


def cli(*args, cwd=None, env=None, timeout=60):
    return subprocess.run(MICRODOT + list(args), capture_output=True, text=True,
                          cwd=cwd or str(ROOT), env=env, timeout=timeout)


def make_fake_plugin(tmp_path, api, group='microdot.servers', name='fake'):
    """A real distribution on sys.path registering ``name`` in ``group``."""
    (tmp_path / 'fake_microdot_plugin.py').write_text(textwrap.dedent('''
        MICRODOT_PLUGIN_API = %r

        class FakeServer:
            options = frozenset({'workers'})

            def run(self, app, host, port, **options):
                print('fake server', app, host, port, options)

        server = FakeServer()
    ''' % (api,)))
    info = tmp_path / 'fake_microdot_plugin-9.9.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: fake-microdot-plugin\n'
                                   'Version: 9.9\n')
    (info / 'entry_points.txt').write_text('[%s]\n%s = fake_microdot_plugin:server\n'
                                           % (group, name))
    return tmp_path


def run_with_path(path, code):
    import os
    env = dict(os.environ, PYTHONPATH=str(path))
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env=env, timeout=60)


def test_builtin_server_is_registered_by_the_core():
    server = plugins.get_server('builtin')
    assert server.name == 'builtin'
    assert 'builtin' in plugins.registry.names('servers')


def test_discovery_is_lazy_and_cached():
    registry = plugins.Registry()
    assert registry._infos is None
    first = registry.load('servers', 'builtin')
    infos = registry._infos
    assert registry.load('servers', 'builtin') is first
    assert registry._infos is infos


def test_compatible_plugin_is_loaded(tmp_path):
    path = make_fake_plugin(tmp_path, '1.0')
    proc = run_with_path(path, 'from microdot import plugins\n'
                               'print(type(plugins.get_server("fake")).__name__)')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 'FakeServer'


def test_incompatible_plugin_is_refused_naming_both_versions(tmp_path):
    path = make_fake_plugin(tmp_path, 2)
    proc = run_with_path(path, 'from microdot import plugins\n'
                               'try:\n'
                               '    plugins.get_server("fake")\n'
                               'except plugins.PluginError as exc:\n'
                               '    print(exc)\n')
    assert proc.returncode == 0, proc.stderr
    message = proc.stdout
    assert 'fake-microdot-plugin 9.9' in message
    assert 'targets microdot plugin API 2.0' in message
    assert 'provides plugin API 1.0' in message


def test_plugin_without_api_declaration_is_refused():
    with pytest.raises(plugins.PluginError, match='does not declare'):
        plugins.check_plugin_api(None, 'x 1.0')
    with pytest.raises(plugins.PluginError, match='targets microdot plugin API 1.5'):
        plugins.check_plugin_api('1.5', 'x 1.0')
    plugins.check_plugin_api(1, 'x 1.0')
    plugins.check_plugin_api('1.0', 'x 1.0')


def test_missing_plugin_names_the_install_line():
    with pytest.raises(plugins.PluginError) as exc:
        plugins.registry.load('templates', 'mako')
    assert "no template engine named 'mako'" in str(exc.value)
    assert 'utemplate' in str(exc.value)  # lists what is installed
    assert plugins.install_hint('servers', 'uvicorn') == (
        "the 'uvicorn' server needs microdot-asgi[uvicorn]: "
        "pip install 'microdot-asgi[uvicorn]'")
    assert "pip install 'microdot-templates[jinja]'" in plugins.install_hint(
        'templates', 'jinja')


def test_cli_version():
    proc = cli('--version')
    assert proc.returncode == 0
    from importlib.metadata import version
    assert proc.stdout.startswith('microdot-core %s' % version('microdot-core'))


def test_cli_run_help():
    proc = cli('run', '--help')
    assert proc.returncode == 0
    for flag in ('--server', '--host', '--port', '--workers', '--reload', 'MODULE:APP',
                 '--access-log', '--no-access-log'):
        assert flag in proc.stdout


def test_cli_plugins_lists_the_family():
    proc = cli('plugins')
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert 'microdot plugin API 1.0' in out
    for dist in ('microdot-core', 'microdot-asgi', 'microdot-wsgi', 'microdot-templates'):
        assert dist + ' 0.1.0' in out
    assert 'builtin' in out and 'uvicorn' in out and 'gunicorn' in out
    assert 'jinja' in out and 'utemplate' in out


def test_cli_unsupported_option_is_a_clear_error():
    proc = cli('run', 'examples.hello:app', '--threads', '2')
    assert proc.returncode == 2
    assert "the 'builtin' server does not support --threads" in proc.stderr
    assert 'waitress' in proc.stderr  # names the servers that do
    assert 'Traceback' not in proc.stderr


def test_cli_unknown_module_is_a_clear_error():
    proc = cli('run', 'no_such_module_xyz:app')
    assert proc.returncode == 2
    assert "could not import module 'no_such_module_xyz'" in proc.stderr
    proc = cli('run', 'examples.hello:nope')
    assert proc.returncode == 2
    assert "has no attribute 'nope'" in proc.stderr


def test_cli_run_serves_with_builtin_server_and_stops_on_sigterm():
    port = free_port()
    with serve(MICRODOT + ['run', 'examples.hello:app', '--port', str(port)], port) as server:
        res = httpx.get(server.url + '/', timeout=10)
        assert res.status_code == 200
        assert res.text == 'Hello, World!'
        assert res.http_version == 'HTTP/1.1'
    assert server.proc.returncode == 0, server.output


# -- the upstream ``microdot`` distribution (issue #12) ---------------------------------

def make_upstream_site(tmp_path):
    """A site directory holding a stand-in upstream Microdot 2.7.0 and its metadata."""
    site = tmp_path / 'site'
    (site / 'microdot').mkdir(parents=True)
    (site / 'microdot' / '__init__.py').write_text("__version__ = '2.7.0'\n")
    info = site / 'microdot-2.7.0.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: microdot\nVersion: 2.7.0\n')
    (info / 'RECORD').write_text('microdot/__init__.py,,\nmicrodot-2.7.0.dist-info/RECORD,,\n')
    return site


def test_fix_command_names_the_installed_family():
    assert plugins.fix_command() == (
        'pip uninstall microdot && pip install --force-reinstall microdot-core')
    assert plugins.fix_command(['microdot_templates', 'Microdot-ASGI', 'uvicorn']) == (
        'pip uninstall microdot && pip install --force-reinstall '
        'microdot-core microdot-asgi microdot-templates')
    assert plugins.fix_command(['microdot-core'], upstream=False) == (
        'pip install --force-reinstall microdot-core')
    assert issubclass(plugins.MicrodotClashWarning, UserWarning)


def test_no_clash_reported_without_upstream():
    assert plugins.find_clash() is None
    proc = subprocess.run([sys.executable, '-W', 'error::UserWarning', '-c',
                           'import microdot'],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ''


def test_upstream_copy_on_the_path_is_warned_about_and_reported(tmp_path):
    """Ours first on sys.path, upstream's package and metadata after it."""
    import os
    site = make_upstream_site(tmp_path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / 'packages' / 'microdot-core' / 'src'), str(site)]))
    fix = 'pip uninstall microdot && pip install --force-reinstall microdot-core'

    proc = subprocess.run([sys.executable, '-c', 'import microdot, microdot.app\n'
                                                 'from microdot import Microdot\n'
                                                 'assert Microdot.__module__ == "microdot.app"'],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count('MicrodotClashWarning') == 1, proc.stderr
    assert "the upstream 'microdot' distribution (2.7.0) is installed" in proc.stderr
    assert fix in proc.stderr

    proc = cli('plugins', env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "problem: the upstream 'microdot' distribution 2.7.0 is installed" in proc.stdout
    assert str(site) in proc.stdout
    assert 'fix: ' + fix in proc.stdout  # and the installed plugins after it
    assert 'microdot-asgi' in proc.stdout.split('fix: ')[1]

    proc = cli('--version', env=env)  # our __init__ runs: the import warning says it all
    assert proc.returncode == 0
    assert proc.stdout.startswith('microdot-core ')


# -- one-line errors of ``microdot run`` (issue #14) ------------------------------------

def test_cli_target_that_is_not_an_application_is_a_clear_error():
    proc = cli('run', 'examples.hello:index')
    assert proc.returncode == 2
    assert proc.stderr == (
        'microdot: error: examples.hello:index is a function, not a Microdot application; '
        'expected MODULE:APP naming a Microdot() instance, e.g. examples.hello:app; name '
        'the application the routes are added to (usually app)\n')
    proc = cli('run', 'examples.hello:Microdot')
    assert proc.returncode == 2
    assert 'examples.hello:Microdot is the class Microdot, not a Microdot application' \
        in proc.stderr
    assert 'create one (app = Microdot())' in proc.stderr
    proc = cli('run', 'examples.hello:__doc__')
    assert proc.returncode == 2
    assert 'examples.hello:__doc__ is a str object, not a Microdot application' \
        in proc.stderr


@pytest.mark.parametrize('server,package,extra', [
    ('hypercorn', 'hypercorn', 'microdot-asgi[hypercorn]'),
    ('waitress', 'waitress', 'microdot-wsgi[waitress]'),
])
def test_cli_server_plugin_installed_without_its_server_names_the_extra(
        tmp_path, server, package, extra):
    """The plugin is installed, the server package is not (an importable stand-in that
    fails the way a missing package does hides the real one)."""
    import os
    (tmp_path / package).mkdir()
    (tmp_path / package / '__init__.py').write_text(
        'raise ModuleNotFoundError("No module named %r", name=%r)\n' % (package, package))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    proc = cli('run', 'examples.hello:app', '--server', server, '--port', str(free_port()),
               env=env)
    assert proc.returncode == 2
    assert proc.stderr == "microdot: error: the '%s' server needs %s: pip install '%s'\n" % (
        server, extra, extra)


def test_cli_workers_values():
    from microdot.cli import build_parser
    parser = build_parser()
    assert parser.parse_args(['run', 'a:app', '--workers', 'auto']).workers == 'auto'
    assert parser.parse_args(['run', 'a:app', '--workers', '0']).workers == 0
    assert parser.parse_args(['run', 'a:app', '--workers', '3']).workers == 3
    proc = cli('run', 'a:app', '--workers', 'many')
    assert proc.returncode == 2
    assert 'expected a number or "auto"' in proc.stderr
    proc = cli('run', 'a:app', '--workers', '-1')
    assert proc.returncode == 2
    assert 'expected a number >= 0' in proc.stderr


def test_cli_access_log_option_is_refused_by_servers_without_it():
    proc = cli('run', 'examples.hello:app', '--server', 'wsgiref', '--no-access-log')
    assert proc.returncode == 2
    assert "the 'wsgiref' server does not support --no-access-log; servers that " \
        "support it: builtin" in proc.stderr


# -- servers whose plugin is installed but not the server (issue #18) -------------------

BLOCK_IMPORTS = '''
import sys

class Blocked:
    """Makes the named top-level packages look uninstalled."""
    names = set(sys.argv[1].split(','))

    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in self.names:
            raise ModuleNotFoundError('No module named %r' % name, name=name)
        return None

sys.meta_path.insert(0, Blocked())
from microdot.cli import main
sys.exit(main(sys.argv[2:]))
'''


def cli_without(packages, *args):
    return subprocess.run([sys.executable, '-c', BLOCK_IMPORTS, ','.join(packages), *args],
                          capture_output=True, text=True, cwd=str(ROOT), timeout=60)


def test_cli_plugins_marks_a_server_whose_package_is_missing():
    proc = cli_without(['hypercorn', 'waitress'], 'plugins')
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "hypercorn (not installed: pip install 'microdot-asgi[hypercorn]')" in out
    assert "waitress (not installed: pip install 'microdot-wsgi[waitress]')" in out
    listed = [item for line in out.splitlines() if line.strip().startswith('servers:')
              for item in line.split(':', 1)[1].strip().split(', ')]
    # the servers that are installed are listed as before, without a mark
    for name in ('uvicorn', 'gunicorn', 'builtin', 'wsgiref', 'granian'):
        assert name in listed, listed


def test_cli_plugins_lists_installed_servers_unmarked():
    proc = cli('plugins')
    assert proc.returncode == 0, proc.stderr
    assert 'not installed' not in proc.stdout
    assert 'granian' in proc.stdout


def test_server_missing_hint_names_the_plugins_extra():
    from microdot.cli import server_missing
    info = plugins.PluginInfo('servers', 'granian', 'x:y', 'microdot-wsgi', '0.1.0')
    assert server_missing(info) is None  # installed in the test environment
    info = plugins.PluginInfo('servers', 'builtin', 'x:y', 'microdot-core', '0.1.0')
    assert server_missing(info) is None  # nothing to install
    info = plugins.PluginInfo('templates', 'jinja', 'x:y', 'microdot-templates', '0.1.0')
    assert server_missing(info) is None  # servers only


def test_server_missing_asks_a_server_that_is_a_program(monkeypatch):
    # uWSGI is a program, not an importable module: its plugin says whether it is there
    from microdot.cli import server_missing
    server = plugins.registry.load('servers', 'uwsgi')
    info = plugins.PluginInfo('servers', 'uwsgi', 'x:y', 'microdot-wsgi', '0.1.0')
    assert server_missing(info) is None  # installed in the test environment
    monkeypatch.setattr(server, 'installed', lambda: False)
    assert server_missing(info) == "pip install 'microdot-wsgi[uwsgi]'"
