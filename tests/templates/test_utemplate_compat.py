"""uTemplate output is byte-identical to the original uTemplate 1.4.1.

The corpus in ``fixtures/utemplate/compat`` holds templates (``templates/``), the
calls made with them (``cases.json``) and the output the original uTemplate 1.4.1
produced for each call (``expected/<case>.txt``), recorded by rendering the same
templates through Microdot 2.7's ``microdot.utemplate.Template`` on CPython (see
that folder's README). The original is not needed to run these tests.

A property test checks generated templates against the whitespace rule written
out independently of the engine: text is output exactly as written, except that a
newline directly after a statement tag's ``%}`` is dropped.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from microdot import Microdot
from microdot.test_client import TestClient
from microdot.utemplate import Template
from microdot.utemplate_engine import Loader

COMPAT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures',
                      'utemplate', 'compat')
TEMPLATES = os.path.join(COMPAT, 'templates')

with open(os.path.join(COMPAT, 'cases.json'), encoding='utf-8') as _f:
    CASES: list[dict[str, Any]] = json.load(_f)


def expected(case: dict[str, Any]) -> bytes:
    """The original uTemplate 1.4.1's output for ``case``, as UTF-8 bytes."""
    path = os.path.join(COMPAT, 'expected', case['case'] + '.txt')
    with open(path, 'rb') as f:
        return f.read()


def rendered(loader: Loader, case: dict[str, Any]) -> bytes:
    """Our output for ``case``, as UTF-8 bytes (what Microdot would send)."""
    chunks = loader.load(case['template'])(*case['args'], **case['kwargs'])
    return ''.join(chunks).encode('utf-8')


@pytest.fixture(autouse=True)
def reset_template():
    """Each test starts (and leaves) the shared Template without a loader."""
    Template._loader = None
    yield
    Template._loader = None


@pytest.fixture(scope='module')
def crlf_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The corpus templates with Windows (CRLF) line endings."""
    root = tmp_path_factory.mktemp('crlf')
    for name in os.listdir(TEMPLATES):
        with open(os.path.join(TEMPLATES, name), 'rb') as f:
            data = f.read()
        assert b'\r' not in data
        (root / name).write_bytes(data.replace(b'\n', b'\r\n'))
    return str(root)


def test_corpus_is_complete():
    # every template is rendered or included, every case has its output
    files = set(os.listdir(TEMPLATES))
    included = {name for name in files if name.startswith('inc_')}
    assert {case['template'] for case in CASES} | included == files
    assert {case['case'] + '.txt' for case in CASES} == \
        set(os.listdir(os.path.join(COMPAT, 'expected')))
    assert len(CASES) >= 50


@pytest.mark.parametrize('case', CASES, ids=[c['case'] for c in CASES])
def test_output_matches_utemplate_1_4_1(case):
    assert rendered(Loader(TEMPLATES), case) == expected(case)


@pytest.mark.parametrize('case', CASES, ids=[c['case'] for c in CASES])
def test_crlf_templates_give_the_same_output(case, crlf_dir):
    # the original reads templates with universal newlines: the output uses
    # '\n' and the newline after a statement tag is dropped as with LF files
    assert rendered(Loader(crlf_dir), case) == expected(case)


def test_template_class_and_streaming_match():
    Template.initialize(TEMPLATES)
    for case in CASES:
        template = Template(case['template'])
        assert template.render(*case['args'], **case['kwargs']).encode() == \
            expected(case), case['case']
        assert ''.join(template.generate(*case['args'], **case['kwargs'])) \
            .encode() == expected(case), case['case']


def test_response_body_and_content_length_match():
    # the bytes (and so the Content-Length) Microdot sends for a page
    Template.initialize(TEMPLATES)
    app = Microdot()
    by_name = {case['case']: case for case in CASES}

    @app.get('/<name>')
    async def page(request, name):
        case = by_name[name]
        html = Template(case['template']).render(*case['args'], **case['kwargs'])
        return html, {'Content-Type': 'text/html; charset=UTF-8'}

    async def main() -> None:
        client = TestClient(app)
        for name in ('page_full', 'page_empty', 'form', 'loop_counter',
                     'unicode', 'include_inline'):
            response = await client.get(f'/{name}')
            assert response.status_code == 200
            assert response.body == expected(by_name[name]), name
            assert int(response.headers['Content-Length']) == \
                len(expected(by_name[name])), name

    asyncio.run(main())


def test_issue_example_outputs():
    # the two examples of issue #12, as recorded from the original
    by_name = {case['case']: case for case in CASES}
    assert expected(by_name['loop_counter']) == b'0,1,2,done\n'
    assert expected(by_name['indented_if_true']) == \
        b'<div>\n        <p>yes</p>\n    </div>\n'
    assert expected(by_name['indented_if_false']) == b'<div>\n    </div>\n'


def test_included_template_in_a_copied_directory(tmp_path):
    # includes are resolved against the loader's directory, wherever it is
    target = tmp_path / 'templates'
    shutil.copytree(TEMPLATES, target)
    case = next(c for c in CASES if c['case'] == 'include_loop')
    assert rendered(Loader(str(target)), case) == expected(case)


def test_backslashes_in_text_are_output_as_written(tmp_path):
    # deliberate difference: uTemplate 1.4.1 reads backslashes in text as Python
    # string escapes: for this template it outputs 'C:', a newline, 'ew \ \d x'
    # (one backslash each, and the line break after the third one is gone), and a
    # tab instead of the script's backslash-t
    text = 'C:\\new \\\\ \\d \\\nx\n<script>s = "a\\tb";</script>\n'
    (tmp_path / 't.html').write_text(text, encoding='utf-8')
    assert ''.join(Loader(str(tmp_path)).load('t.html')()) == text


# --- generated templates against the rule, stated independently --------------

_TEXT = st.text(alphabet=' \t\nab<>/="\'\\{}%é✓', max_size=8).filter(
    lambda s: '{{' not in s and '{%' not in s and not s.endswith('{'))
_VALUE = st.text(alphabet=' \nxy{}%\'"\\', max_size=4)


@dataclass
class _Node:
    """A piece of a generated template: text, expr, set, if or for."""

    kind: str
    value: Any = None
    body: list[_Node] | None = None
    orelse: list[_Node] | None = None


def _nodes(children: st.SearchStrategy[list[_Node]]) -> st.SearchStrategy[_Node]:
    return st.one_of(
        st.builds(_Node, st.just('if'), st.booleans(), children,
                  st.none() | children),
        st.builds(_Node, st.just('for'), st.integers(0, 2), children),
    )


_LEAF = st.one_of(
    st.builds(_Node, st.just('text'), _TEXT),
    st.builds(_Node, st.just('text'), st.sampled_from(['\n', '  ', '\t\n'])),
    st.builds(_Node, st.just('expr'), _VALUE),
    st.builds(_Node, st.just('set')),
)
_TREE = st.lists(
    st.recursive(_LEAF, lambda children: _nodes(st.lists(children, max_size=4)),
                 max_leaves=12),
    max_size=8)


class _Writer:
    """Writes a template for a node tree and the output the rule predicts."""

    def __init__(self) -> None:
        # True while the last thing written is a statement tag's '%}'
        self.after_statement = False

    def tag(self, code: str) -> str:
        self.after_statement = True
        return '{% ' + code + ' %}'

    def write(self, nodes: list[_Node]) -> tuple[str, str]:
        """Return (template text, predicted output) for ``nodes``."""
        text = out = ''
        for node in nodes:
            if node.kind == 'text':
                piece = node.value
                if self.after_statement and piece.startswith('\n'):
                    out += piece[1:]  # the newline right after '%}' is dropped
                else:
                    out += piece
                if piece:
                    self.after_statement = False
                text += piece
            elif node.kind == 'expr':
                text += '{{ ' + repr(node.value) + ' }}'
                out += node.value
                self.after_statement = False
            elif node.kind == 'set':
                text += self.tag('set _unused = 1')
            elif node.kind == 'if':
                text += self.tag(f'if {node.value}')
                body_text, body_out = self.write(node.body or [])
                text += body_text
                else_out = ''
                if node.orelse is not None:
                    text += self.tag('else')
                    else_text, else_out = self.write(node.orelse)
                    text += else_text
                text += self.tag('endif')
                out += body_out if node.value else else_out
            else:  # for
                text += self.tag(f'for _ in range({node.value})')
                body_text, body_out = self.write(node.body or [])
                text += body_text + self.tag('endfor')
                out += body_out * node.value
        return text, out


@settings(max_examples=300, deadline=None)
@given(tree=_TREE, crlf=st.booleans())
def test_generated_templates_follow_the_rule(tmp_path_factory, tree, crlf):
    text, predicted = _Writer().write(tree)
    if crlf:
        text = text.replace('\n', '\r\n')
    root = tmp_path_factory.mktemp('gen')
    (root / 't.html').write_bytes(text.encode('utf-8'))
    assert ''.join(Loader(str(root)).load('t.html')()) == predicted
