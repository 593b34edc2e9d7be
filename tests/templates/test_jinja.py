"""Tests for the Microdot ``microdot.jinja`` Template."""
import asyncio
import os
import subprocess
import sys
import threading

import pytest

jinja2 = pytest.importorskip('jinja2')

from microdot import jinja  # noqa: E402
from microdot.jinja import Template  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures',
                        'jinja')
# no trailing newline: Jinja drops it by default
PAGE = '<h1>{title}</h1>\n<ul>\n  <li>a</li>\n  <li>b</li>\n</ul>'


@pytest.fixture(autouse=True)
def reset_template():
    """Each test starts (and leaves) the shared Template without an environment."""
    Template.jinja_env = None
    yield
    Template.jinja_env = None


def test_plugin_api():
    assert jinja.MICRODOT_PLUGIN_API == 1


@pytest.mark.parametrize('enable_async', [False, True])
def test_all_four_methods(enable_async):
    Template.initialize(FIXTURES, enable_async=enable_async)
    template = Template('page.html')
    expected = PAGE.format(title='T')
    kwargs = {'title': 'T', 'items': ['a', 'b']}

    chunks = list(template.generate(**kwargs))
    assert len(chunks) > 1
    assert ''.join(chunks) == expected
    assert template.render(**kwargs) == expected
    assert template.render({'title': 'T', 'items': ['a', 'b']}) == expected

    async def main():
        achunks = [c async for c in template.generate_async(**kwargs)]
        return achunks, await template.render_async(**kwargs)

    achunks, rendered = asyncio.run(main())
    assert len(achunks) > 1
    assert ''.join(achunks) == expected
    assert rendered == expected


@pytest.mark.parametrize('enable_async', [False, True])
def test_sync_methods_inside_a_running_loop(enable_async):
    Template.initialize(FIXTURES, enable_async=enable_async)
    template = Template('page.html')

    async def main():
        return (template.render(title='L', items=['a', 'b']),
                ''.join(template.generate(title='L', items=['a', 'b'])))

    assert asyncio.run(main()) == (PAGE.format(title='L'),) * 2


def test_async_environment_is_native():
    Template.initialize(FIXTURES, enable_async=True)
    template = Template('plain.txt')
    assert template.template.environment.is_async

    async def agen():
        for name in ('x', 'y'):
            await asyncio.sleep(0)
            yield name

    # async iterables in the context need Jinja's async mode
    tpl = Template.jinja_env.from_string('{% for n in names %}{{ n }}{% endfor %}')

    async def main():
        return await tpl.render_async(names=agen())

    assert asyncio.run(main()) == 'xy'


def test_sync_environment_renders_off_the_loop():
    Template.initialize(FIXTURES)
    template = Template('plain.txt')
    threads = []

    class Name:
        def __str__(self):
            threads.append(threading.current_thread())
            return 'N'

    async def main():
        chunks = [c async for c in template.generate_async(name=Name())]
        rendered = await template.render_async(name=Name())
        return threading.current_thread(), chunks, rendered

    loop_thread, chunks, rendered = asyncio.run(main())
    assert ''.join(chunks) == rendered == 'Hello, N!'
    assert len(threads) == 2 and loop_thread not in threads


@pytest.mark.parametrize('enable_async', [False, True])
def test_generate_streams_lazily(enable_async):
    Template.initialize(FIXTURES, enable_async=enable_async)
    template = Template('page.html')
    seen = []

    def items():
        seen.append('started')
        yield 'a'
        seen.append('second')
        yield 'b'

    generator = template.generate(title='S', items=items())
    first = next(generator)
    assert first == '<h1>'
    assert seen == []
    rest = list(generator)
    assert seen == ['started', 'second']
    assert first + ''.join(rest) == PAGE.format(title='S')


@pytest.mark.parametrize('enable_async', [False, True])
def test_generate_can_stop_early(enable_async):
    Template.initialize(FIXTURES, enable_async=enable_async)
    generator = Template('page.html').generate(title='S', items=['a'])
    assert next(generator) == '<h1>'
    generator.close()

    async def main():
        agen = Template('page.html').generate_async(title='S', items=['a'])
        first = await agen.__anext__()
        await agen.aclose()
        return first

    assert asyncio.run(main()) == '<h1>'


@pytest.mark.parametrize('enable_async', [False, True])
def test_autoescape_by_extension(enable_async):
    Template.initialize(FIXTURES, enable_async=enable_async)
    evil = '<script>&'
    html = Template('page.html').render(title=evil, items=[])
    assert '<h1>&lt;script&gt;&amp;</h1>' in html
    xml = Template('feed.xml').render(title=evil)
    assert '&lt;script&gt;&amp;' in xml
    txt = Template('plain.txt').render(name=evil)
    assert txt == 'Hello, <script>&!'

    async def main():
        return await Template('page.html').render_async(title=evil, items=[])

    assert '&lt;script&gt;' in asyncio.run(main())


def test_environment_kwargs_are_passed_through():
    Template.initialize(FIXTURES, trim_blocks=True, autoescape=False)
    assert Template.jinja_env.trim_blocks is True
    assert Template('page.html').render(title='<b>', items=[]).startswith(
        '<h1><b></h1>')


def test_template_dir_absolute_and_relative(monkeypatch, tmp_path):
    Template.initialize(FIXTURES)
    assert Template('plain.txt').render(name='abs') == 'Hello, abs!'
    monkeypatch.chdir(os.path.dirname(FIXTURES))
    Template.initialize('jinja')
    assert Template('plain.txt').render(name='rel') == 'Hello, rel!'
    # resolved when initialize() ran, not at each lookup
    monkeypatch.chdir(tmp_path)
    assert Template('plain.txt').render(name='moved') == 'Hello, moved!'


def test_lazy_initialization_uses_templates_dir(monkeypatch, tmp_path):
    (tmp_path / 'templates').mkdir()
    (tmp_path / 'templates' / 'x.html').write_text('<p>{{ v }}</p>')
    monkeypatch.chdir(tmp_path)
    assert Template('x.html').render(v='<') == '<p>&lt;</p>'
    assert Template.jinja_env is not None


def test_template_attributes():
    Template.initialize(FIXTURES)
    template = Template('plain.txt')
    assert template.name == 'plain.txt'
    assert isinstance(template.template, jinja2.Template)


def test_get_template_kwargs():
    Template.initialize(FIXTURES)
    template = Template('plain.txt', globals={'name': 'global'})
    assert template.render() == 'Hello, global!'


def test_missing_template():
    Template.initialize(FIXTURES)
    with pytest.raises(jinja2.TemplateNotFound):
        Template('missing.html')


@pytest.mark.parametrize('enable_async', [False, True])
def test_changed_template_is_reloaded(tmp_path, enable_async):
    path = tmp_path / 'x.txt'
    path.write_text('one {{ v }}')
    Template.initialize(str(tmp_path), enable_async=enable_async)
    template = Template('x.txt')
    assert template.render(v=1) == 'one 1'
    st = os.stat(path)
    path.write_text('two {{ v }}')
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert template.render(v=2) == 'two 2'


def _run_without_jinja2(code):
    """Run ``code`` in a subprocess where importing jinja2 fails."""
    prelude = (f'import sys; sys.path[:0] = {sys.path!r}; '
               "sys.modules['jinja2'] = None; ")
    return subprocess.run([sys.executable, '-c', prelude + code],
                          capture_output=True, text=True, check=False)


def test_import_error_without_jinja2_subprocess():
    result = _run_without_jinja2(
        'import microdot.jinja')
    assert result.returncode != 0
    assert 'ModuleNotFoundError' in result.stderr
    assert "pip install 'microdot-templates[jinja]'" in result.stderr


def test_import_error_without_jinja2_reload(monkeypatch):
    import importlib
    real_module = sys.modules['microdot.jinja']
    monkeypatch.setitem(sys.modules, 'jinja2', None)
    try:
        with pytest.raises(ImportError) as info:
            importlib.reload(real_module)
        assert "pip install 'microdot-templates[jinja]'" in str(info.value)
        assert info.value.name == 'jinja2'
    finally:
        monkeypatch.undo()
        sys.modules['microdot.jinja'] = real_module
        importlib.reload(real_module)
    assert sys.modules['jinja2'] is jinja2
    assert real_module.jinja2 is jinja2


def test_utemplate_still_imports_without_jinja2():
    result = _run_without_jinja2(
        'from microdot.utemplate import Template; print("ok")')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'ok'


def test_list_of_template_dirs(tmp_path):
    (tmp_path / 'extra.txt').write_text('extra {{ v }}')
    Template.initialize([FIXTURES, str(tmp_path)])
    assert Template('plain.txt').render(name='a') == 'Hello, a!'
    assert Template('extra.txt').render(v=1) == 'extra 1'


@pytest.mark.parametrize('enable_async', [False, True])
def test_template_errors_propagate(tmp_path, enable_async):
    (tmp_path / 'err.txt').write_text('a\n{{ 1 // x }}\n')
    Template.initialize(str(tmp_path), enable_async=enable_async)
    template = Template('err.txt')
    with pytest.raises(ZeroDivisionError):
        template.render(x=0)
    with pytest.raises(ZeroDivisionError):
        list(template.generate(x=0))

    async def main():
        with pytest.raises(ZeroDivisionError):
            await template.render_async(x=0)
        with pytest.raises(ZeroDivisionError):
            [c async for c in template.generate_async(x=0)]
        with pytest.raises(ZeroDivisionError):
            template.render(x=0)  # sync call inside a running loop

    asyncio.run(main())
