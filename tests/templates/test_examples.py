"""Smoke tests for examples/templates/: each documented command serves its pages.

The commands are read from each example's docstring (the lines starting with
``uvicorn`` or ``gunicorn``, optionally after ``NAME=value`` environment settings),
so the documentation is what gets tested. A command naming ``examples.templates.``
runs from the repository root, the others from examples/templates/. The server is
started as a real process on 127.0.0.1 and a page is fetched with httpx.
"""
import ast
import shlex
import sys

import httpx
import pytest

from support import ROOT, free_port, serve

pytest.importorskip('jinja2')

EXAMPLES = ROOT / 'examples' / 'templates'
SERVER_ARGS = {
    'uvicorn': lambda port: ['--host', '127.0.0.1', '--port', str(port)],
    'gunicorn': lambda port: ['--workers', '1', '--bind', '127.0.0.1:%d' % port],
}

#: What each example must serve: (path, texts the page must contain).
PAGES = {
    'hello_asgi_jinja': [('/', ['<h1>Hello, World!</h1>', 'Jinja']),
                         ('/?name=<b>', ['<h1>Hello, &lt;b&gt;!</h1>'])],
    'hello_asgi_utemplate': [('/', ['<h1>Hello, World!</h1>', 'uTemplate']),
                             ('/?name=<b>', ['<h1>Hello, &lt;b&gt;!</h1>'])],
    'hello_wsgi_jinja': [('/', ['<h1>Hello, World!</h1>', 'Jinja']),
                         ('/?name=Ann', ['<h1>Hello, Ann!</h1>'])],
    'hello_wsgi_utemplate': [('/', ['<h1>Hello, World!</h1>', 'uTemplate']),
                             ('/?name=Ann', ['<h1>Hello, Ann!</h1>'])],
    'layout': [('/', ['<title>Home - Microdot</title>', '<h1>Home</h1>',
                      '<li>two engines</li>', '</html>']),
               ('/about', ['<title>About - Microdot</title>', '<li>rendered by '])],
    'streaming': [('/?rows=3', ['<h1>Squares</h1>', '<tr><td>3</td><td>9</td></tr>',
                                'Done', '</html>'])],
}


def documented_commands(module: str) -> list:
    """The server command lines in ``module``'s docstring."""
    tree = ast.parse((EXAMPLES / (module + '.py')).read_text())
    docstring = ast.get_docstring(tree) or ''
    commands = []
    for line in docstring.splitlines():
        words = shlex.split(line.split('#', 1)[0])
        env = {}
        while words and '=' in words[0] and not words[0].startswith('-'):
            name, _, value = words.pop(0).partition('=')
            env[name] = value
        if words and words[0] in SERVER_ARGS:
            commands.append((env, words))
    return commands


def cases():
    for module in sorted(PAGES):
        for env, words in documented_commands(module):
            label = ' '.join(['%s=%s' % item for item in env.items()] + words)
            yield pytest.param(module, env, words, id=label)


def test_every_example_is_covered():
    modules = {path.stem for path in EXAMPLES.glob('*.py') if path.stem != '__init__'}
    assert modules == set(PAGES)
    for module in PAGES:
        servers = {words[0] for _, words in documented_commands(module)}
        assert servers, '%s documents no server command' % module
        commands = [words for _, words in documented_commands(module)]
        assert any(not w[-1].startswith('examples.') for w in commands), module
        assert any(w[-1].startswith('examples.templates.') for w in commands), module


def test_engine_specific_folders_exist():
    for engine in ('jinja', 'utemplate'):
        assert (EXAMPLES / engine / 'index.html').is_file()
        assert (EXAMPLES / engine / 'page.html').is_file()
        assert (EXAMPLES / engine / 'stream.html').is_file()
    assert 'extends "base.html"' in (EXAMPLES / 'jinja' / 'page.html').read_text()
    utemplate_page = (EXAMPLES / 'utemplate' / 'page.html').read_text()
    assert '{% include "header.html"' in utemplate_page


@pytest.mark.parametrize('module, env, words', list(cases()))
def test_documented_command_serves_the_example(module, env, words):
    server, target = words[0], words[-1]
    pytest.importorskip(server)
    cwd = ROOT if target.startswith('examples.') else EXAMPLES
    port = free_port()
    command = [sys.executable, '-m', server, *words[1:], *SERVER_ARGS[server](port)]
    # only what the documentation sets, whatever the test process environment holds
    env = {'TEMPLATE_ENGINE': '', **env}
    with serve(command, port, cwd=str(cwd), env=env) as proc:
        with httpx.Client(base_url=proc.url, timeout=20) as client:
            for path, texts in PAGES[module]:
                response = client.get(path)
                assert response.status_code == 200, (path, response.text)
                assert response.headers['content-type'].startswith('text/html')
                for text in texts:
                    assert text in response.text, (path, text, response.text)
                if module == 'streaming':
                    assert response.headers.get('transfer-encoding') == 'chunked'
                if module in ('layout', 'streaming'):
                    engine = env['TEMPLATE_ENGINE'] or 'utemplate'
                    marker = 'Jinja' if engine == 'jinja' else 'uTemplate'
                    assert marker in response.text
