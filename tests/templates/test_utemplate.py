"""Tests for the uTemplate engine and the Microdot ``microdot.utemplate`` Template."""
import asyncio
import marshal
import os
import threading
import traceback

import pytest
from microdot import utemplate, utemplate_engine
from microdot.utemplate import Template
from microdot.utemplate_engine import (
    Loader,
    TemplateNotFoundError,
    TemplateSyntaxError,
    compile_template,
    generate_source,
)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures',
                        'utemplate')


@pytest.fixture(autouse=True)
def reset_template():
    """Each test starts (and leaves) the shared Template without a loader."""
    Template._loader = None
    yield
    Template._loader = None


@pytest.fixture
def tdir(tmp_path):
    """An empty template directory plus a helper that writes templates into it."""
    root = tmp_path / 'templates'
    root.mkdir()

    def write(name, text):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding='utf-8')
        return str(path)

    write.root = str(root)
    return write


def render(tdir, text, *args, name='t.html', **kwargs):
    tdir(name, text)
    return ''.join(Loader(tdir.root).load(name)(*args, **kwargs))


# --- the language ---------------------------------------------------------

def test_plain_text_and_expressions(tdir):
    assert render(tdir, 'a {{ 1 + 2 }} b {{ "x" * 3 }}\n') == 'a 3 b xxx\n'
    assert render(tdir, '{{ None }} {{ [1, 2] }} {{ {"k": 1}["k"] }}') == \
        'None [1, 2] 1'


def test_expressions_are_not_escaped(tdir):
    assert render(tdir, '{% args x %}{{ x }}', '<b>&</b>') == '<b>&</b>'


def test_args_with_defaults_varargs_and_kwargs(tdir):
    text = '{% args a, b=1, *rest, **kw %}{{ a }}|{{ b }}|{{ rest }}|{{ kw }}'
    assert render(tdir, text, 'A') == 'A|1|()|{}'
    assert render(tdir, text, 'A', 2, 3, 4, x=5) == "A|2|(3, 4)|{'x': 5}"
    with pytest.raises(TypeError):
        render(tdir, text)


def test_no_args_tag_means_no_parameters(tdir):
    tdir('t.html', 'static')
    function = Loader(tdir.root).load('t.html')
    assert ''.join(function()) == 'static'
    with pytest.raises(TypeError):
        function(1)


def test_if_elif_else(tdir):
    text = ('{% args n %}{% if n < 0 %}neg{% elif n == 0 %}zero'
            '{% elif n < 10 %}small{% else %}big{% endif %}')
    assert [render(tdir, text, n) for n in (-1, 0, 5, 50)] == \
        ['neg', 'zero', 'small', 'big']


def test_for_loop_with_unpacking(tdir):
    text = '{% args d %}{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}'
    assert render(tdir, text, {'a': 1, 'b': 2}) == 'a=1;b=2;'


def test_while_and_set(tdir):
    text = ('{% set n = 3 %}{% while n > 0 %}{{ n }}{% set n -= 1 %}'
            '{% endwhile %}!')
    assert render(tdir, text) == '321!'


def test_nested_blocks(tdir):
    # statement tags at the start of their lines: those lines vanish entirely
    text = '''{% args rows %}
<table>
{% for row in rows %}
{% if row %}
  <tr>
{% for cell in row %}
{% if cell % 2 %}
    <td class="odd">{{ cell }}</td>
{% else %}
    <td>{{ cell }}</td>
{% endif %}
{% endfor %}
  </tr>
{% else %}
  <tr><td>empty</td></tr>
{% endif %}
{% endfor %}
</table>
'''
    assert render(tdir, text, [[1, 2], []]) == '''<table>
  <tr>
    <td class="odd">1</td>
    <td>2</td>
  </tr>
  <tr><td>empty</td></tr>
</table>
'''


def test_empty_blocks(tdir):
    text = ('{% args x %}{% if x %}{% elif x is None %}{% else %}{% endif %}'
            '{% for i in x or () %}{% endfor %}ok')
    assert render(tdir, text, None) == 'ok'
    assert render(tdir, text, [1]) == 'ok'


def test_template_without_output_is_still_a_generator(tdir):
    assert render(tdir, '{% set x = 1 %}') == ''
    assert render(tdir, '') == ''


def test_newline_directly_after_a_statement_tag_is_dropped(tdir):
    # uTemplate 1.4.1's rule: the text before a statement tag is output as
    # written (indentation included); the newline right after '%}' is dropped
    text = '''{% args items %}
<ul>
  {% for item in items %}
    {% if item %}
  <li>{{ item }}</li>
    {% endif %}
  {% endfor %}
</ul>
   {% set done = True %}   \t
{{ done }}
'''
    assert render(tdir, text, ['a', '', 'b']) == (
        '<ul>\n'
        '  '                          # before 'for', once
        '    ' '  <li>a</li>\n' '    '  # item 'a': before 'if', body, before 'endif'
        '  '                          # before 'endfor'
        '    '                        # item '': before 'if' only
        '  '
        '    ' '  <li>b</li>\n' '    '
        '  '
        '</ul>\n'
        '      \t\n'                  # text around 'set', its newline kept
        'True\n')


def test_issue_examples_of_the_whitespace_rule(tdir):
    # text before a tag on the same line does not stop the newline being dropped
    text = '{% set i = 0 %}\n{% for x in range(3) %}\n{{ i }},{% set i += 1 %}\n' \
        '{% endfor %}\n'
    assert render(tdir, text) == '0,1,2,'
    assert render(tdir, '{% args x %}\n    {% if x %}\nyes\n{% endif %}\n', 1) \
        == '    yes\n'


def test_lines_with_text_or_expressions_keep_newlines(tdir):
    assert render(tdir, '{% args x %}\n{{ x }}\n\nend {% if x %}y{% endif %}\n',
                  1) == '1\n\nend y'
    # only a newline directly after '%}' is dropped: spaces before it keep it
    assert render(tdir, 'a\n {% if 1 %} {% set x = 2 %} \n{{ x }}\n{% endif %}\n'
                  ) == 'a\n   \n2\n'
    # an expression, or literal text, at the end of a line keeps its newline
    assert render(tdir, '{{ 1 }}\n{ \n{% if 1 %}{{ 2 }}\n{% endif %}') == \
        '1\n{ \n2\n'
    # a tag at the end of the file, without newline
    assert render(tdir, 'a\n{% if 1 %}b{% endif %}') == 'a\nb'
    # blank lines after a statement line: only the tag's own newline goes
    assert render(tdir, '{% if 1 %}\n\n\nx\n{% endif %}\n\n') == '\n\nx\n\n'


def test_windows_line_endings(tdir):
    # files are read with universal newlines ...
    assert render(tdir, '{% if 1 %}\r\nyes\r\n{% endif %}\r\n') == 'yes\n'
    # ... and so does the compiler given text directly (same result as a file)
    namespace = {'_ut_str': str}
    exec(compile_template('{% if 1 %}\r\nyes\r\n{% endif %}\r\n'), namespace)
    assert ''.join(namespace['_ut_render']()) == 'yes\n'
    assert render(tdir, 'a\rb {% if 1 %}\r{{ 1 }}\r\n{% endif %}\r') == 'a\nb 1\n'


def test_utf8_and_bom(tdir):
    path = tdir('t.html', '')
    with open(path, 'wb') as f:
        f.write('\ufeff{% args x %}héllo {{ x }} ✓\n'.encode('utf-8'))
    assert ''.join(Loader(tdir.root).load('t.html')('wörld')) == \
        'héllo wörld ✓\n'


def test_multiline_tags(tdir):
    text = ('{% args a,\n    b=2 %}\n{{ a +\n   b }}\n'
            '{% if (a ==\n 1) %}one{% endif %}\n')
    assert render(tdir, text, 1) == '3\none'


def test_literal_braces(tdir):
    text = '''{% args x %}
{# not a comment #} { x } {x} {
<style>p { color: red; } @media (x) { a { b: c } }</style>
<script>if (a) { f({k: [1, 2]}); } var s = "{" + '}';</script>
value: {{ x }} {
{'''
    assert render(tdir, text, 7) == '''{# not a comment #} { x } {x} {
<style>p { color: red; } @media (x) { a { b: c } }</style>
<script>if (a) { f({k: [1, 2]}); } var s = "{" + '}';</script>
value: 7 {
{'''


def test_expressions_with_braces_and_closers_in_strings(tdir):
    assert render(tdir, '{{ {"a": {"b": 1}}["a"] }}|{{ "}}" }}|{{ "%}" }}') == \
        "{'b': 1}|}}|%}"
    assert render(tdir, '{% set d = {"k": "%}"} %}{{ d["k"] }}') == '%}'


def test_builtins_and_shadowing(tdir):
    # a template variable called ``str`` does not break expression output
    assert render(tdir, '{% set str = "s" %}{{ len([1, 2]) }}{{ str }}') == '2s'


def test_include_static_with_args(tdir):
    tdir('item.html', '{% args item, highlight=False %}'
                      '<li{{ " class=hl" if highlight else "" }}>{{ item }}</li>\n')
    text = '''{% args items %}
{% for i, item in enumerate(items) %}
{% include "item.html" item, highlight=(i == 0) %}
{% endfor %}
{% include 'item.html' 'last' %}
'''
    assert render(tdir, text, ['a', 'b']) == \
        '<li class=hl>a</li>\n<li>b</li>\n<li>last</li>\n'


def test_include_without_args_and_subdirectories(tdir):
    tdir('parts/header.html', 'HEADER\n')
    tdir('parts/nested.html', '[{% include "parts/header.html" %}]')
    assert render(tdir, '{% include "parts/nested.html" %}\nbody\n') == \
        '[HEADER\n]body\n'


def test_include_dynamic_with_args(tdir):
    tdir('a.html', '{% args x, y=0 %}A{{ x + y }}')
    tdir('b.html', '{% args x, y=0 %}B{{ x * y }}')
    text = '{% args which %}{% include {{ which + ".html" }} 3, y=4 %}'
    assert render(tdir, text, 'a') == 'A7'
    assert render(tdir, text, 'b') == 'B12'


def test_include_is_recursive_capable(tdir):
    tdir('tree.html', '{% args node %}({{ node[0] }}{% for child in node[1] %}'
                      '{% include "tree.html" child %}{% endfor %})')
    function = Loader(tdir.root).load('tree.html')
    assert ''.join(function(('a', [('b', []), ('c', [('d', [])])]))) == \
        '(a(b)(c(d)))'


def test_generate_source_is_python(tdir):
    source = generate_source('{% args x %}{% if x %}{{ x }}{% endif %}', 't')
    assert source.startswith('def ')
    compile(source, 't', 'exec')


# --- syntax errors ----------------------------------------------------------

@pytest.mark.parametrize('text, lineno, message', [
    ('a\n{% for x in y %}\nb\n{% endfor %}\n{% endfor %}', 5,
     "'endfor' without matching 'for'"),
    ('a\n\n{% else %}', 3, "'else' without matching 'if'"),
    ('{% for x in y %}\n{% else %}\n{% endfor %}', 2,
     "'else' without matching 'if'"),
    ('{% if x %}\n{% else %}\n{% elif y %}{% endif %}', 3, "'elif' after 'else'"),
    ('{% if x %}{% else %}{% else %}{% endif %}', 1, "duplicate 'else'"),
    ('x\n{% if a %}\nb\n', 2, "'if' without matching 'endif'"),
    ('{% while 1 %}\n{% for a in b %}\n{% endwhile %}', 3,
     "'endwhile' without matching 'while'"),
    ('{% endif %}', 1, "'endif' without matching 'if'"),
    ('x\n{% blah x %}', 2, "unknown tag 'blah'"),
    ('a\nb {{ x ', 2, "unterminated '{{'"),
    ('a\n\nb {% if x ', 3, "unterminated '{%'"),
    ('\n{{ 1 + }}', 2, 'invalid Python'),
    ('{% if x ==  %}{% endif %}', 1, 'invalid Python'),
    ('{% for x y %}{% endfor %}', 1, 'invalid Python'),
    ('{% set x %}', 1, "'set' requires a single assignment"),
    ('{% args a=1, b %}', 1, 'invalid Python'),
    ('{% args a %}{% args b %}', 1, "duplicate 'args'"),
    ('{% if 1 %}\n{% args a %}{% endif %}', 2, 'top level'),
    ('{% include foo %}', 1, "'include' requires a quoted template name"),
    ('{% include "x" 1 + %}', 1, 'invalid Python'),
    ('{{ }}', 1, 'requires an expression'),
    ('{% %}', 1, 'empty'),
    ('{% endif x %}', 1, 'takes no arguments'),
    ('a\n{{ await x }}', 2, 'await'),
    ('a\n\n{% if (x\n  + ) %}{% endif %}', 4, 'invalid Python'),
])
def test_syntax_errors(tdir, text, lineno, message):
    tdir('index.html', text)
    with pytest.raises(TemplateSyntaxError) as info:
        Loader(tdir.root).load('index.html')
    exc = info.value
    assert exc.filename == 'index.html'
    assert exc.lineno == lineno
    assert message in exc.msg
    assert str(exc).startswith(f'index.html, line {lineno}: ')


def test_syntax_error_message_example():
    with pytest.raises(TemplateSyntaxError) as info:
        compile_template('\n' * 6 + '{% endfor %}', 'index.html')
    assert str(info.value) == \
        "index.html, line 7: 'endfor' without matching 'for'"


def test_syntax_error_through_template_class(tdir):
    tdir('bad.html', 'ok\n{% if %}')
    Template.initialize(tdir.root)
    with pytest.raises(TemplateSyntaxError, match=r'bad\.html, line 2'):
        Template('bad.html')


def test_runtime_errors_point_to_template_lines(tdir):
    path = tdir('err.html', 'line 1\n{% args values %}\n{% for v in values %}\n'
                            '{{ 10 // v }}\n{% endfor %}\n')
    function = Loader(tdir.root).load('err.html')
    with pytest.raises(ZeroDivisionError) as info:
        ''.join(function([1, 0]))
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert frame.filename == path
    assert frame.lineno == 4
    assert frame.line == '{{ 10 // v }}'


# --- loading, caching and recompilation -------------------------------------

def test_missing_template(tdir):
    loader = Loader(tdir.root)
    with pytest.raises(TemplateNotFoundError) as info:
        loader.load('nope.html')
    assert isinstance(info.value, FileNotFoundError)
    expected = os.path.join(tdir.root, 'nope.html')
    assert info.value.filename == expected
    assert expected in str(info.value)


def test_missing_included_template(tdir):
    tdir('t.html', '{% include "gone.html" %}')
    function = Loader(tdir.root).load('t.html')
    with pytest.raises(FileNotFoundError, match='gone.html'):
        ''.join(function())


@pytest.mark.parametrize('name', [
    '../secret.html', 'a/../../secret.html', '/etc/passwd',
    os.path.abspath('x.html'), '..', ''])
def test_names_escaping_the_template_dir_are_refused(tdir, name):
    with pytest.raises(ValueError):
        Loader(tdir.root).load(name)


def test_dynamic_include_escaping_is_refused(tdir, tmp_path):
    (tmp_path / 'secret.html').write_text('SECRET')
    tdir('t.html', '{% args n %}{% include {{ n }} %}')
    function = Loader(tdir.root).load('t.html')
    with pytest.raises(ValueError):
        ''.join(function('../secret.html'))


def test_names_that_stay_inside_are_allowed(tdir):
    tdir('a/b.html', 'B')
    assert ''.join(Loader(tdir.root).load('a/../a/./b.html')()) == 'B'


def _rewrite(path, text, bump):
    """Rewrite a template and move its mtime by ``bump`` seconds."""
    st = os.stat(path)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + int(bump * 1e9)))


def test_recompiles_when_the_file_changes(tdir):
    path = tdir('t.html', '{% args x %}one {{ x }}')
    Template.initialize(tdir.root)
    template = Template('t.html')
    assert template.render(1) == 'one 1'
    _rewrite(path, '{% args x %}two {{ x }}', 5)
    assert template.render(1) == 'two 1'
    # same size, different mtime
    _rewrite(path, '{% args x %}six {{ x }}', 10)
    assert template.render(2) == 'six 2'
    # same mtime, different size
    st = os.stat(path)
    with open(path, 'w') as f:
        f.write('{% args x %}seven {{ x }}')
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert template.render(3) == 'seven 3'


def test_included_templates_are_recompiled_too(tdir):
    tdir('t.html', '[{% include "inc.html" %}]')
    inc = tdir('inc.html', 'old')
    function = Loader(tdir.root).load('t.html')
    assert ''.join(function()) == '[old]'
    _rewrite(inc, 'new', 5)
    assert ''.join(function()) == '[new]'


def test_unchanged_templates_are_not_recompiled(tdir, monkeypatch):
    tdir('t.html', 'x')
    loader = Loader(tdir.root)
    function = loader.load('t.html')
    monkeypatch.setattr(utemplate_engine, 'compile_template',
                        pytest.fail)  # any compilation now fails the test
    assert ''.join(function()) == 'x'
    assert ''.join(loader.load('t.html')()) == 'x'


def test_stat_at_most_once_per_template_per_render(tdir, monkeypatch):
    tdir('item.html', '{% args i %}<{{ i }}>')
    tdir('list.html', '{% for i in range(50) %}{% include "item.html" i %}'
                      '{% include {{ "item.html" }} i %}{% endfor %}')
    function = Loader(tdir.root).load('list.html')
    ''.join(function())  # compile everything once
    calls = []
    real_stat = os.stat

    def counting_stat(path, *args, **kwargs):
        calls.append(path)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, 'stat', counting_stat)
    generator = function()
    assert len(calls) == 1  # the top-level template, checked at call time
    chunks = list(generator)
    assert len(chunks) == 300
    assert sorted(os.path.basename(p) for p in calls) == \
        ['item.html', 'list.html']


def test_disk_cache_is_reused_and_invalidated(tdir, tmp_path, monkeypatch):
    cache = tmp_path / 'cache'
    path = tdir('t.html', '{% args x %}v1 {{ x }}')
    assert ''.join(Loader(tdir.root, cache_dir=str(cache)).load('t.html')(1)) \
        == 'v1 1'
    files = os.listdir(cache)
    assert len(files) == 1 and not files[0].endswith('.tmp')

    # a second loader (e.g. a new process) uses the compiled file
    real_compile = utemplate_engine.compile_template
    monkeypatch.setattr(utemplate_engine, 'compile_template', pytest.fail)
    loader = Loader(tdir.root, cache_dir=str(cache))
    function = loader.load('t.html')
    assert ''.join(function(2)) == 'v1 2'

    # ... and still recompiles, and rewrites the cache, when the source changes
    compiled = []

    def tracking_compile(*args, **kwargs):
        compiled.append(args[1])
        return real_compile(*args, **kwargs)

    monkeypatch.setattr(utemplate_engine, 'compile_template', tracking_compile)
    _rewrite(path, '{% args x %}v2 {{ x }}', 5)
    assert ''.join(function(3)) == 'v2 3'
    assert compiled == ['t.html']
    assert os.listdir(cache) == files
    monkeypatch.setattr(utemplate_engine, 'compile_template', pytest.fail)
    assert ''.join(Loader(tdir.root, cache_dir=str(cache)).load('t.html')(4)) \
        == 'v2 4'


def test_disk_cache_survives_corruption(tdir, tmp_path):
    cache = tmp_path / 'cache'
    tdir('t.html', 'ok')
    Loader(tdir.root, cache_dir=str(cache)).load('t.html')
    (name,) = os.listdir(cache)
    (cache / name).write_bytes(b'garbage')
    assert ''.join(Loader(tdir.root, cache_dir=str(cache)).load('t.html')()) \
        == 'ok'


def test_disk_cache_of_an_older_code_format_is_not_reused(tdir, tmp_path):
    # a cache written by a build with other whitespace rules (format 1 stripped
    # statement-only lines) must not serve its old output
    cache = tmp_path / 'cache'
    tdir('t.html', '  {% if 1 %}\nyes\n{% endif %}\n')
    Loader(tdir.root, cache_dir=str(cache)).load('t.html')
    (name,) = os.listdir(cache)
    data = (cache / name).read_bytes()
    magic = len(utemplate_engine._CACHE_MAGIC)
    header = utemplate_engine._CACHE_HEADER
    _, mtime_ns, size = header.unpack_from(data, magic)
    stale = compile_template('yes\n', 't.html')  # what the old rule rendered
    (cache / name).write_bytes(
        data[:magic] + header.pack(utemplate_engine.CODE_FORMAT - 1, mtime_ns, size)
        + marshal.dumps(stale))
    assert ''.join(Loader(tdir.root, cache_dir=str(cache)).load('t.html')()) \
        == '  yes\n'
    # ... whereas the same file with the current format is used as it is
    (cache / name).write_bytes(
        data[:magic] + header.pack(utemplate_engine.CODE_FORMAT, mtime_ns, size)
        + marshal.dumps(stale))
    assert ''.join(Loader(tdir.root, cache_dir=str(cache)).load('t.html')()) \
        == 'yes\n'


def test_unwritable_cache_dir_is_not_fatal(tdir, tmp_path, caplog):
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')
    tdir('t.html', 'ok')
    loader = Loader(tdir.root, cache_dir=str(blocker / 'cache'))
    assert ''.join(loader.load('t.html')()) == 'ok'
    assert 'cannot write template cache' in caplog.text


def test_cache_dir_inside_template_dir_is_refused(tdir):
    with pytest.raises(ValueError, match='outside'):
        Loader(tdir.root, cache_dir=os.path.join(tdir.root, 'cache'))
    with pytest.raises(ValueError):
        Loader(tdir.root, cache_dir=tdir.root)


def test_loader_is_thread_safe(tdir):
    tdir('item.html', '{% args i %}{{ i }},')
    tdir('t.html', '{% args n %}{% for i in range(n) %}'
                   '{% include "item.html" i %}{% endfor %}')
    function = Loader(tdir.root).load('t.html')
    expected = ''.join(f'{i},' for i in range(100))
    results = []

    def work():
        for _ in range(20):
            results.append(''.join(function(100)))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 160


# --- the Microdot Template class ----------------------------------------------

def test_full_page_from_fixtures():
    Template.initialize(FIXTURES)
    html = Template('index.html').render('Shop', ['apple', 'pear'])
    assert html == '''<!DOCTYPE html>
<html>
<head>
  <title>Shop</title>
  <style>body { margin: 0; }</style>
</head>
<body>
  {# this is not a comment in uTemplate #}
    <ul>
            <li class="hl">apple</li>
            <li>pear</li>
      </ul>
      <footer>Shop footer</footer>
  <script>
    function greet(name) { return {hello: name}; }
  </script>
</body>
</html>
'''
    html = Template('index.html').render('X', footer='alt_footer.html',
                                         show_empty=True)
    assert '<p>No items.</p>' in html
    assert '<footer>alternative footer for X</footer>' in html
    assert '<p>Nothing to show.</p>' in Template('index.html').render('X')


def test_generate_streams_several_chunks():
    Template.initialize(FIXTURES)
    chunks = list(Template('index.html').generate('Shop', ['a', 'b']))
    assert len(chunks) > 5
    assert all(isinstance(chunk, str) for chunk in chunks)
    assert ''.join(chunks) == Template('index.html').render('Shop', ['a', 'b'])


def test_generate_is_lazy():
    Template.initialize(FIXTURES)
    seen = []

    class Items:
        def __iter__(self):
            seen.append('iterated')
            return iter(['a'])

    generator = Template('index.html').generate('T', Items())
    assert seen == []
    first = next(generator)
    assert first.startswith('<!DOCTYPE html>')
    list(generator)
    assert seen == ['iterated']


def test_async_methods():
    Template.initialize(FIXTURES)
    template = Template('index.html')
    expected = template.render('Shop', ['a', 'b'])

    async def main():
        chunks = [chunk async for chunk in template.generate_async(
            'Shop', ['a', 'b'])]
        return chunks, await template.render_async('Shop', ['a', 'b'])

    chunks, rendered = asyncio.run(main())
    assert len(chunks) > 5
    assert ''.join(chunks) == expected
    assert rendered == expected


def test_async_methods_render_off_the_event_loop(tdir):
    tdir('t.html', '{% args probe %}{{ probe() }}|{{ probe() }}')
    Template.initialize(tdir.root)
    template = Template('t.html')

    async def main():
        loop_thread = threading.current_thread()
        threads = []

        def probe():
            threads.append(threading.current_thread())
            return 'x'

        chunks = [c async for c in template.generate_async(probe)]
        rendered = await template.render_async(probe)
        return loop_thread, threads, chunks, rendered

    loop_thread, threads, chunks, rendered = asyncio.run(main())
    assert chunks == ['x', '|', 'x'] and rendered == 'x|x'
    assert len(threads) == 4 and loop_thread not in threads


def test_generate_async_can_stop_early():
    Template.initialize(FIXTURES)

    async def main():
        agen = Template('index.html').generate_async('T')
        first = await agen.__anext__()
        await agen.aclose()
        return first

    assert asyncio.run(main()).startswith('<!DOCTYPE html>')


def test_template_dir_absolute_and_relative(monkeypatch, tmp_path):
    Template.initialize(FIXTURES)
    assert Template('hello.txt').render() == 'Hello, World!\n'
    monkeypatch.chdir(os.path.dirname(FIXTURES))
    Template.initialize('utemplate')
    assert Template('hello.txt').render('you') == 'Hello, you!\n'
    # the relative directory was resolved when initialize() ran
    monkeypatch.chdir(tmp_path)
    assert Template('hello.txt').render('again') == 'Hello, again!\n'


def test_lazy_initialization_uses_templates_dir(monkeypatch, tmp_path):
    (tmp_path / 'templates').mkdir()
    (tmp_path / 'templates' / 'x.html').write_text('{% args v %}<{{ v }}>')
    monkeypatch.chdir(tmp_path)
    assert Template('x.html').render(1) == '<1>'
    assert Template._loader.template_dir == str(tmp_path / 'templates')


def test_template_attributes():
    Template.initialize(FIXTURES)
    template = Template('hello.txt')
    assert template.name == 'hello.txt'
    assert callable(template.template)


def test_initialize_with_cache_dir(tmp_path):
    Template.initialize(FIXTURES, cache_dir=str(tmp_path / 'c'))
    assert Template('hello.txt').render() == 'Hello, World!\n'
    assert len(os.listdir(tmp_path / 'c')) == 1


def test_custom_loader_class():
    created = []

    class UpperLoader:
        def __init__(self, template_dir, cache_dir=None):
            created.append((template_dir, cache_dir))

        def load(self, name):
            return lambda *args, **kwargs: iter([name.upper(), '!'])

    Template.initialize('somewhere', loader_class=UpperLoader)
    assert Template('abc').render() == 'ABC!'
    Template.initialize('other', loader_class=UpperLoader, cache_dir='/c')
    assert created == [('somewhere', None), ('other', '/c')]


def test_plugin_api_and_exports():
    assert utemplate.MICRODOT_PLUGIN_API == 1
    assert utemplate_engine.MICRODOT_PLUGIN_API == 1
    assert utemplate.TemplateSyntaxError is TemplateSyntaxError
    assert issubclass(TemplateSyntaxError, Exception)


def test_modules_use_only_the_cores_public_helpers():
    import ast
    for module in (utemplate, utemplate_engine):
        with open(module.__file__, encoding='utf-8') as f:
            tree = ast.parse(f.read())
        imported = {node.module for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree)
                     if isinstance(node, ast.Import) for alias in node.names}
        assert {name for name in imported if name and name.startswith(
            'microdot')} <= {'microdot.utemplate_engine', 'microdot.helpers'}
