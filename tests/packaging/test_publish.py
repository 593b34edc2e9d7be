"""Publish every package to a real package index and deploy from it, as a user would.

A real ``pypiserver`` on a free loopback port receives the sdists and wheels through
``twine upload``; then each deployment line of the README is installed with pip into a
clean virtualenv whose only index is that server (which redirects the names it does
not hold, the third-party dependencies, to PyPI), and the seed applications (Microdot's
"Production Deployments" examples, examples/) are served under their servers and
asked with a real HTTP or WebSocket client. The sdists and wheels also pass ``twine
check --strict``, carry the LICENSE and complete metadata, and an sdist rebuilds the
very wheel built from the tree.

The distributions are built once per test run (tests/packaging/_wheels.py) and shared
by pytest-xdist workers; pip's own cache keeps the third-party downloads.
"""
import email.parser
import importlib.util
import json
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List, Tuple

import httpx
import pytest

HERE = Path(__file__).resolve().parent
for folder in (HERE, HERE.parents[1] / 'tools'):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from _wheels import PACKAGES, ROOT, build_dists, make_venv, pip, run  # noqa: E402
from releasing import REPOSITORY, dists as release_dists  # noqa: E402
from support import ServerProcess, free_port  # noqa: E402

#: Where the local index sends the names it does not hold (the third-party ones).
FALLBACK = 'https://pypi.org/simple/'

SEED_ASGI = """\
from microdot.asgi import Microdot

app = Microdot()

@app.route('/')
async def index(req):
    return 'Hello, World!'
"""

SEED_WSGI = """\
from microdot.wsgi import Microdot

app = Microdot()

@app.route('/')
def index(req):
    return 'Hello, World!'
"""

JINJA_APP = """\
import os

from microdot import Microdot
from microdot.jinja import Template

Template.initialize(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'jinja'))

app = Microdot()

@app.route('/')
async def index(req):
    return await Template('index.html').render_async(name=req.args.get('name', 'World')), \\
        {'Content-Type': 'text/html; charset=UTF-8'}
"""


PUBSUB_APP = """\
import os

from microdot import Microdot
from microdot.pubsub import PubSub

app = Microdot()
pubsub = PubSub(app, os.environ['REDIS_URL'])

@app.post('/say')
async def say(request):
    await pubsub.publish('chat', request.json)
    return '', 204

@app.route('/events')
async def events(request):
    return pubsub.sse_response(request, 'chat')
"""


def _version(name: str) -> str:
    text = (ROOT / 'packages' / name / 'pyproject.toml').read_text()
    return next(line.split('"')[1] for line in text.splitlines() if line.startswith('version ='))


@pytest.fixture(scope='module')
def dists(tmp_path_factory) -> Dict[str, Tuple[Path, Path]]:
    return {name: build_dists(name, tmp_path_factory) for name in PACKAGES}


@pytest.fixture(scope='module')
def index(dists, tmp_path_factory):
    """A pypiserver on 127.0.0.1 holding every package, uploaded with twine."""
    folder = tmp_path_factory.mktemp('index')
    port = free_port()
    server = ServerProcess([sys.executable, '-m', 'pypiserver', 'run', '-i', '127.0.0.1',
                            '-p', str(port), '-a', '.', '-P', '.', '--fallback-url', FALLBACK,
                            str(folder)], port)
    try:
        server.wait_ready(30)
        files = [path for pair in dists.values() for path in pair]
        run([sys.executable, '-m', 'twine', 'upload', '--non-interactive',
             '--disable-progress-bar', '--repository-url', server.url + '/',
             '-u', 'maintainer', '-p', 'not-checked', *files])
        yield server.url
    finally:
        server.stop()


def test_index_serves_what_twine_uploaded(index, dists):
    with httpx.Client(base_url=index, timeout=10) as client:
        listing = client.get('/simple/')
        assert listing.status_code == 200
        for name, (sdist, wheel) in dists.items():
            assert name in listing.text
            page = client.get('/simple/%s/' % name)
            assert page.status_code == 200
            assert sdist.name in page.text and wheel.name in page.text
            assert '#sha256=' in page.text
            served = client.get('/packages/%s' % wheel.name)
            assert served.status_code == 200 and served.content == wheel.read_bytes()


def test_sdists_and_wheels_pass_twine_check_strict(dists):
    files = [path for pair in dists.values() for path in pair]
    out = run([sys.executable, '-m', 'twine', 'check', '--strict', *files]).stdout
    assert out.count('PASSED') == len(files), out


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith('.dist-info/METADATA'))
        return email.parser.Parser().parsestr(archive.read(name).decode())


@pytest.mark.parametrize('name', PACKAGES)
def test_metadata_is_complete(name, dists):
    sdist, wheel = dists[name]
    meta = _metadata(wheel)
    assert meta['License-Expression'] == 'MIT'
    assert meta['Requires-Python'] == '>=3.10'
    assert meta['Description-Content-Type'] == 'text/markdown'
    assert meta.get_payload().startswith('# %s' % name)  # the package's README
    classifiers = meta.get_all('Classifier')
    for version in ('3.10', '3.11', '3.12', '3.13'):
        assert 'Programming Language :: Python :: ' + version in classifiers
    assert 'Typing :: Typed' in classifiers
    assert not [c for c in classifiers if c.startswith('License ::')]  # PEP 639: the expression
    assert meta['Keywords'] and 'microdot' in meta['Keywords'].split(',')
    urls = dict(line.split(', ', 1) for line in meta.get_all('Project-URL'))
    assert set(urls) == {'Documentation', 'Source', 'Changelog', 'Issues'}
    for label, url in urls.items():
        assert url.startswith(REPOSITORY + '/'), (label, url)
    assert urls['Changelog'].endswith('/packages/%s/CHANGELOG.md' % name)
    if name != 'microdot-core':
        assert any(req.startswith('microdot-core') for req in meta.get_all('Requires-Dist'))
    with zipfile.ZipFile(wheel) as archive:
        license_member = next(n for n in archive.namelist() if n.endswith('/licenses/LICENSE'))
        assert archive.read(license_member).startswith(b'MIT License')
    with tarfile.open(sdist) as archive:
        members = {member.split('/', 1)[1] for member in archive.getnames() if '/' in member}
    assert {'LICENSE', 'README.md', 'CHANGELOG.md', 'pyproject.toml', 'PKG-INFO'} <= members


@pytest.mark.parametrize('name', PACKAGES)
def test_the_sdist_rebuilds_the_wheel_built_from_the_tree(name, dists, tmp_path):
    from_sdist = dists[name][1]
    from_tree = release_dists.build_wheel(ROOT / 'packages' / name, tmp_path / 'tree')
    assert from_tree.name == from_sdist.name
    assert release_dists.differences(from_sdist, from_tree) == []


# -- deployments -----------------------------------------------------------------------


def _install(index: str, tmp_path: Path, line: str) -> Tuple[Path, Dict[str, dict]]:
    """A clean virtualenv with ``pip install LINE`` from the local index only."""
    bindir = make_venv(tmp_path / 'venv')
    report = tmp_path / 'pip-report.json'
    pip(bindir, 'install', '--index-url', index + '/simple/', '--report', report, line)
    items = json.loads(report.read_text())['install']
    return bindir, {item['metadata']['name'].lower(): item for item in items}


def _assert_family_from_index(items: Dict[str, dict], index: str, expected: List[str]):
    family = sorted(name for name in items if name.startswith('microdot'))
    assert family == sorted(expected)
    for name in family:
        assert items[name]['metadata']['version'] == _version(name)
        assert items[name]['download_info']['url'].startswith(index + '/'), items[name]


def _serve(bindir: Path, args: List[str], cwd: Path) -> ServerProcess:
    port = free_port()
    argv = [str(bindir / args[0])] + [a.replace('{port}', str(port)) for a in args[1:]]
    # the virtualenv's packages only: nothing from the source tree on the path
    return ServerProcess(argv, port, cwd=str(cwd), env={'PYTHONPATH': ''}).wait_ready(30)


def _get_text(server: ServerProcess, path: str = '/') -> httpx.Response:
    response = httpx.get(server.url + path, timeout=10)
    assert response.status_code == 200, (response.status_code, response.text)
    return response


def _echo_round_trip(server: ServerProcess) -> None:
    from websockets.sync.client import connect
    with connect('ws://127.0.0.1:%d/echo' % server.port, open_timeout=10) as ws:
        ws.send('ping over the published packages')
        assert ws.recv(timeout=10) == 'ping over the published packages'


def _app_dir(tmp_path: Path, files: Dict[str, str], copies: Tuple[str, ...] = ()) -> Path:
    folder = tmp_path / 'app'
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    for relative in copies:
        source = ROOT / relative
        if source.is_dir():
            shutil.copytree(source, folder / source.name)
        else:
            shutil.copy(source, folder / source.name)
    return folder


def test_deploy_microdot_core_builtin_server(index, tmp_path):
    bindir, items = _install(index, tmp_path, 'microdot-core')
    assert set(items) == {'microdot-core'}  # no dependencies at all
    _assert_family_from_index(items, index, ['microdot-core'])
    assert run([bindir / 'microdot', '--version']).stdout.startswith(
        'microdot-core %s' % _version('microdot-core'))
    app = _app_dir(tmp_path, {}, ('examples/hello.py',))
    server = _serve(bindir, ['microdot', 'run', 'hello:app', '--host', '127.0.0.1',
                             '--port', '{port}'], app)
    try:
        assert _get_text(server).text == 'Hello, World!'
    finally:
        server.stop()


def test_deploy_microdot_asgi_under_uvicorn(index, tmp_path):
    bindir, items = _install(index, tmp_path, 'microdot-asgi[uvicorn]')
    _assert_family_from_index(items, index, ['microdot-core', 'microdot-asgi'])
    assert 'uvicorn' in items
    # the seed: "If the above example application was stored in a file called test.py"
    app = _app_dir(tmp_path, {'test.py': SEED_ASGI},
                   ('examples/echo_asgi.py', 'examples/echo.html'))
    server = _serve(bindir, ['uvicorn', 'test:app', '--host', '127.0.0.1', '--port', '{port}'],
                    app)
    try:
        assert _get_text(server).text == 'Hello, World!'
    finally:
        server.stop()
    server = _serve(bindir, ['uvicorn', 'echo_asgi:app', '--host', '127.0.0.1',
                             '--port', '{port}'], app)
    try:
        assert '<html' in _get_text(server).text.lower()
        _echo_round_trip(server)
    finally:
        server.stop()


def test_deploy_microdot_wsgi_under_gunicorn(index, tmp_path):
    bindir, items = _install(index, tmp_path, 'microdot-wsgi[gunicorn]')
    _assert_family_from_index(items, index, ['microdot-core', 'microdot-wsgi'])
    assert 'gunicorn' in items
    app = _app_dir(tmp_path, {'test.py': SEED_WSGI},
                   ('examples/echo_wsgi.py', 'examples/echo.html'))
    server = _serve(bindir, ['gunicorn', 'test:app', '--bind', '127.0.0.1:{port}'], app)
    try:
        assert _get_text(server).text == 'Hello, World!'
    finally:
        server.stop()
    server = _serve(bindir, ['gunicorn', '--threads', '8', 'echo_wsgi:app',
                             '--bind', '127.0.0.1:{port}'], app)
    try:
        _echo_round_trip(server)
    finally:
        server.stop()


def test_deploy_microdot_templates_with_jinja(index, tmp_path):
    bindir, items = _install(index, tmp_path, 'microdot-templates[jinja]')
    _assert_family_from_index(items, index, ['microdot-core', 'microdot-templates'])
    assert 'jinja2' in items
    app = _app_dir(tmp_path, {'hello_jinja.py': JINJA_APP}, ('examples/templates/jinja',))
    server = _serve(bindir, ['microdot', 'run', 'hello_jinja:app', '--host', '127.0.0.1',
                             '--port', '{port}'], app)
    try:
        page = _get_text(server, '/?name=<index>')
        assert 'Hello, &lt;index&gt;!' in page.text  # rendered by Jinja, autoescaped
        assert page.headers['content-type'] == 'text/html; charset=UTF-8'
    finally:
        server.stop()


def _redis_server_class():
    """tests/pubsub's RedisServer (a real redis-server on a free loopback port)."""
    spec = importlib.util.spec_from_file_location(
        '_pubsub_fixtures', ROOT / 'tests' / 'pubsub' / 'conftest.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RedisServer


def test_deploy_microdot_redis_across_two_workers(index, tmp_path):
    bindir, items = _install(index, tmp_path, 'microdot-redis')
    _assert_family_from_index(items, index, ['microdot-core', 'microdot-redis'])
    assert 'redis' in items
    redis_server = _redis_server_class()(tmp_path).start()
    app = _app_dir(tmp_path, {'chat.py': PUBSUB_APP})
    port = free_port()
    server = None
    try:
        server = ServerProcess([str(bindir / 'microdot'), 'run', 'chat:app', '--workers', '2',
                                '--host', '127.0.0.1', '--port', str(port)], port,
                               cwd=str(app), env={'PYTHONPATH': '',
                                                  'REDIS_URL': redis_server.url})
        server.wait_ready(30)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            with client.stream('GET', '/events') as events:
                assert events.status_code == 200
                assert events.headers['content-type'].startswith('text/event-stream')
                redis_server.wait_numsub('microdot:chat', 1)
                # whichever worker takes the POST, Redis carries the message to the stream
                for _ in range(2):
                    assert client.post('/say', json={'text': 'hi'}).status_code == 204
                data = [json.loads(line[5:]) for line in _lines(events, 2)
                        if line.startswith('data:')]
                assert data == [{'text': 'hi'}] * 2, data
    finally:
        if server is not None:
            server.stop()
        redis_server.stop()


def _lines(response: httpx.Response, events: int) -> List[str]:
    """Read an SSE stream until ``events`` events (blank-line separated) arrived."""
    lines: List[str] = []
    for line in response.iter_lines():
        lines.append(line)
        if line == '' and sum(1 for x in lines if x.startswith('data:')) >= events:
            break
    return lines
