"""The engine-neutral helper ``microdot.templates``: one API for every engine.

Route code written against ``microdot.templates`` must give the same pages whichever
engine is configured, the engine must be found through the ``microdot.templates``
entry points (lazily, once), and missing engines must name what to install.
"""
import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from microdot import Microdot, plugins
from microdot import templates as neutral
from microdot.templates import (
    Template,
    render_template,
    render_template_async,
    stream_template,
    stream_template_async,
)
from microdot.test_client import TestClient
from support import ROOT

pytest.importorskip('jinja2')

ENGINES = ['utemplate', 'jinja']

# The same page in each engine's syntax (no trailing newline: Jinja drops it).
SOURCES = {
    'utemplate': {
        'hello.html': '{% args name, items=() %}\n'
                      '<h1>Hello, {{ name }}!</h1>\n'
                      '{% for item in items %}\n'
                      '<p>{{ item }}</p>\n'
                      '{% endfor %}\n'
                      '<hr>',
    },
    'jinja': {
        'hello.html': '<h1>Hello, {{ name }}!</h1>\n'
                      '{% for item in items %}'
                      '<p>{{ item }}</p>\n'
                      '{% endfor %}'
                      '<hr>',
    },
}
EXPECTED = '<h1>Hello, World!</h1>\n<p>a</p>\n<p>b</p>\n<hr>'


@pytest.fixture(autouse=True)
def restore_configuration():
    """Leave the helper's class-level configuration as each test found it."""
    saved = (Template._engine_name, Template._engine_options, Template._engine_class)
    yield
    Template._engine_name, Template._engine_options, Template._engine_class = saved


@pytest.fixture
def template_dirs(tmp_path):
    """One template folder per engine, holding the same page."""
    dirs = {}
    for engine, files in SOURCES.items():
        folder = tmp_path / engine
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
        dirs[engine] = folder
    return dirs


@pytest.mark.parametrize('engine', ENGINES)
def test_four_methods_delegate_to_the_engine(engine, template_dirs):
    Template.initialize(engine=engine, template_dir=str(template_dirs[engine]))
    template = Template('hello.html')
    assert template.engine == engine
    assert template.name == 'hello.html'
    assert engine in repr(template)
    kwargs = {'name': 'World', 'items': ['a', 'b']}

    chunks = list(template.generate(**kwargs))
    assert len(chunks) > 1
    assert ''.join(chunks) == EXPECTED
    assert template.render(**kwargs) == EXPECTED

    async def main():
        achunks = [chunk async for chunk in template.generate_async(**kwargs)]
        return achunks, await template.render_async(**kwargs)

    achunks, rendered = asyncio.run(main())
    assert len(achunks) > 1
    assert ''.join(achunks) == EXPECTED
    assert rendered == EXPECTED


@pytest.mark.parametrize('engine', ENGINES)
def test_module_functions(engine, template_dirs):
    Template.initialize(engine=engine, template_dir=str(template_dirs[engine]))
    kwargs = {'name': 'World', 'items': ['a', 'b']}
    assert render_template('hello.html', **kwargs) == EXPECTED
    assert ''.join(stream_template('hello.html', **kwargs)) == EXPECTED

    async def main():
        chunks = [c async for c in stream_template_async('hello.html', **kwargs)]
        return ''.join(chunks), await render_template_async('hello.html', **kwargs)

    assert asyncio.run(main()) == (EXPECTED, EXPECTED)


@pytest.mark.parametrize('engine', ENGINES)
def test_streaming_functions_fail_before_returning(engine, template_dirs):
    """A missing template is an error in the route, not a cut-short 200 page."""
    Template.initialize(engine=engine, template_dir=str(template_dirs[engine]))
    # jinja2.TemplateNotFound and uTemplate's TemplateNotFoundError are OSErrors
    with pytest.raises(OSError) as sync_error:
        stream_template('missing.html')
    with pytest.raises(OSError) as async_error:
        stream_template_async('missing.html')
    assert 'missing.html' in str(sync_error.value)
    assert 'missing.html' in str(async_error.value)


def test_route_code_does_not_change_with_the_engine(template_dirs):
    """The same application, configured for each engine, serves the same pages."""
    app = Microdot()
    kwargs = {'name': 'World', 'items': ['a', 'b']}

    @app.route('/render')
    async def render(req):
        return render_template('hello.html', **kwargs)

    @app.route('/render-async')
    async def render_async(req):
        return await render_template_async('hello.html', **kwargs)

    @app.route('/generate')
    def generate(req):
        return Template('hello.html').generate(**kwargs)

    @app.route('/generate-async')
    async def generate_async(req):
        return Template('hello.html').generate_async(**kwargs)

    async def fetch_all():
        client = TestClient(app)
        pages = {}
        for path in ('/render', '/render-async', '/generate', '/generate-async'):
            response = await client.get(path)
            assert response.status_code == 200, path
            pages[path] = response.text
        return pages

    for engine in ENGINES:
        Template.initialize(engine=engine, template_dir=str(template_dirs[engine]))
        pages = asyncio.run(fetch_all())
        assert pages == dict.fromkeys(pages, EXPECTED), engine


def test_default_engine_is_utemplate(tmp_path, monkeypatch):
    (tmp_path / 'templates').mkdir()
    (tmp_path / 'templates' / 'x.html').write_text('{% args n %}\n{{ n * 2 }}')
    monkeypatch.chdir(tmp_path)
    Template.initialize()
    assert Template.engine_name() == neutral.DEFAULT_ENGINE == 'utemplate'
    assert render_template('x.html', 21) == '42'


def test_relative_template_dir_is_resolved_when_initialize_runs(tmp_path, monkeypatch,
                                                                 template_dirs):
    monkeypatch.chdir(tmp_path)
    Template.initialize(engine='jinja', template_dir='jinja')
    monkeypatch.chdir(ROOT)  # the engine is initialized later, from elsewhere
    assert render_template('hello.html', name='World', items=['a', 'b']) == EXPECTED


@pytest.mark.parametrize('engine', ENGINES)
def test_engine_is_loaded_once_per_configuration(engine, template_dirs, monkeypatch):
    calls = []
    real = plugins.get_template_engine

    def counting(name):
        calls.append(name)
        return real(name)

    monkeypatch.setattr(plugins, 'get_template_engine', counting)
    Template.initialize(engine=engine, template_dir=str(template_dirs[engine]))
    assert calls == []  # lazy: nothing is loaded by initialize()
    for _ in range(3):
        Template('hello.html').render(name='World', items=['a', 'b'])
    assert calls == [engine]
    first = Template.engine_class()
    assert first is Template.engine_class()
    assert issubclass(first, real(engine))

    Template.initialize(engine=engine, template_dir=str(template_dirs[engine]))
    Template('hello.html')
    assert calls == [engine, engine]
    assert Template.engine_class() is not first


def test_engine_class_is_isolated_from_direct_use(template_dirs):
    """Configuring the helper does not reconfigure ``microdot.jinja.Template``."""
    from microdot import jinja
    saved = jinja.Template.jinja_env
    try:
        jinja.Template.jinja_env = None
        Template.initialize(engine='jinja', template_dir=str(template_dirs['jinja']))
        Template('hello.html')
        assert jinja.Template.jinja_env is None
        assert Template.engine_class().jinja_env is not None
    finally:
        jinja.Template.jinja_env = saved


def test_engine_options_are_passed_through(template_dirs, tmp_path):
    Template.initialize(engine='jinja', template_dir=str(template_dirs['jinja']),
                        enable_async=True)
    template = Template('hello.html', globals={'items': ['a', 'b']})
    assert template.template.template.environment.is_async
    assert template.render(name='World') == EXPECTED
    assert asyncio.run(template.render_async(name='World')) == EXPECTED

    cache = tmp_path / 'cache'
    Template.initialize(engine='utemplate',
                        template_dir=str(template_dirs['utemplate']),
                        cache_dir=str(cache))
    assert render_template('hello.html', 'World', ['a', 'b']) == EXPECTED
    assert any(cache.iterdir())


def test_unknown_engine_is_refused_with_the_installed_names():
    with pytest.raises(plugins.PluginError) as info:
        Template.initialize(engine='mako')
    message = str(info.value)
    assert "no template engine named 'mako'" in message
    assert 'jinja' in message and 'utemplate' in message


def _registry_without_templates():
    """A registry in which no installed distribution provides anything."""
    registry = plugins.Registry()
    registry._infos = {kind: {} for kind in plugins.GROUPS}
    return registry


@pytest.mark.parametrize('engine, install', [
    ('jinja', "pip install 'microdot-templates[jinja]'"),
    ('utemplate', "pip install 'microdot-templates'"),
])
def test_engine_not_installed_names_the_install_line(engine, install, monkeypatch):
    monkeypatch.setattr(plugins, 'registry', _registry_without_templates())
    with pytest.raises(plugins.PluginError) as info:
        Template.initialize(engine=engine)
    assert install in str(info.value)


def test_jinja2_missing_raises_the_plugin_error(template_dirs, monkeypatch):
    """microdot-templates is installed without its ``jinja`` extra."""
    monkeypatch.setattr(plugins, 'registry', plugins.Registry())
    monkeypatch.setitem(sys.modules, 'jinja2', None)  # import jinja2 -> ImportError
    monkeypatch.delitem(sys.modules, 'microdot.jinja', raising=False)
    Template.initialize(engine='jinja', template_dir=str(template_dirs['jinja']))
    with pytest.raises(plugins.PluginError) as info:
        Template('hello.html')
    assert "pip install 'microdot-templates[jinja]'" in str(info.value)
    assert Template._engine_class is None  # a later attempt tries again


def test_core_module_names_no_engine():
    source = Path(neutral.__file__).read_text()
    for module in ('microdot.jinja', 'microdot.utemplate', 'jinja2'):
        assert 'import %s' % module not in source
        assert 'from %s' % module not in source
    assert 'from . import jinja' not in source
    assert 'from . import utemplate' not in source


def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env=env, timeout=60, cwd=str(ROOT))


def test_importing_and_configuring_does_not_import_the_engine():
    result = _run(
        'import sys\n'
        'from microdot.templates import Template\n'
        "Template.initialize(engine='jinja')\n"
        "loaded = [m for m in ('jinja2', 'microdot.jinja', 'microdot.utemplate')\n"
        '          if m in sys.modules]\n'
        'assert not loaded, loaded\n')
    assert result.returncode == 0, result.stderr


def test_microdot_plugins_lists_both_engines():
    assert {'jinja', 'utemplate'} <= set(plugins.registry.names('templates'))
    result = subprocess.run([sys.executable, '-m', 'microdot', 'plugins'],
                            capture_output=True, text=True, timeout=60, cwd=str(ROOT),
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith('microdot-templates '))
    assert lines[start + 1].split() == ['templates:', 'jinja,', 'utemplate']
