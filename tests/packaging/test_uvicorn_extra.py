"""``pip install 'microdot-asgi[uvicorn]'`` into a clean virtualenv, and nothing else:
uvicorn then serves WebSocket (the extra brings ``websockets``), as
``examples/echo_asgi.py`` shows under a real uvicorn with a real WebSocket client.
Without a WebSocket library, uvicorn's answer to a handshake is a 501 that names it.

Offline, as the other packaging tests: the microdot wheels are built from the source
tree, and every other distribution is offered as a wheel rebuilt from what this test
environment has installed (its files and WHEEL tags), so pip picks from many more
than the extra needs (wsproto, uvloop, httptools, watchfiles, hypercorn, granian...)
and what it installs is what the extra asks for.
"""
import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from importlib.metadata import distributions
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _wheels import build_wheel, installed, make_venv, pip  # noqa: E402
from support import ServerProcess, free_port  # noqa: E402
from serving_checks import EXAMPLES, check_echo  # noqa: E402

#: Files of an installed distribution that are the installer's, not the wheel's.
INSTALLER_FILES = {'RECORD', 'INSTALLER', 'REQUESTED', 'direct_url.json', 'uv_cache.json'}
#: What uvicorn[standard] adds that the extra must not bring (only websockets).
STANDARD_EXTRAS = {'uvloop', 'httptools', 'watchfiles', 'python-dotenv', 'pyyaml'}

HANDSHAKE = {'Upgrade': 'websocket', 'Connection': 'Upgrade',
             'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13'}


def wheel_from_installed(dist, folder):
    """The wheel of the installed distribution ``dist``, rebuilt from the files its
    RECORD lists and the tags of its WHEEL file; None if it has no dist-info."""
    files = [f for f in dist.files or () if not str(f).startswith('..')]
    info = next((f.parts[0] for f in files if f.parts[0].endswith('.dist-info')), None)
    if info is None:
        return None
    tags = [line.split(':', 1)[1].strip() for line in (dist.read_text('WHEEL') or '')
            .splitlines() if line.startswith('Tag:')] or ['py3-none-any']
    parts = list(zip(*(tag.split('-') for tag in tags)))
    tag = '-'.join('.'.join(dict.fromkeys(values)) for values in parts)
    members = {}
    for path in files:
        name = str(path).replace(os.sep, '/')
        if '__pycache__' in path.parts or name.endswith('.pyc') or \
                (path.parts[0] == info and path.name in INSTALLER_FILES):
            continue
        try:
            members[name] = Path(dist.locate_file(path)).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            continue
    record = ['%s,sha256=%s,%d' % (name, base64.urlsafe_b64encode(
        hashlib.sha256(data).digest()).rstrip(b'=').decode(), len(data))
        for name, data in members.items()]
    members[info + '/RECORD'] = ('\n'.join(record + [info + '/RECORD,,']) + '\n').encode()
    wheel = folder / ('%s-%s.whl' % (info[:-len('.dist-info')], tag))
    with zipfile.ZipFile(wheel, 'w', zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return wheel


@pytest.fixture(scope='module')
def find_links(tmp_path_factory):
    """--find-links arguments: the microdot wheels and every other distribution of
    this environment, as wheels."""
    ours = build_wheel('microdot-core', tmp_path_factory).parent
    build_wheel('microdot-asgi', tmp_path_factory)
    theirs = tmp_path_factory.mktemp('installed-wheels')
    for dist in distributions():
        name = (dist.metadata['Name'] or '').lower()
        if name and not name.startswith('microdot') and name not in ('pip', 'setuptools'):
            wheel_from_installed(dist, theirs)
    return ['--no-index', '--find-links', str(ours), '--find-links', str(theirs)]


@pytest.fixture(scope='module')
def venv(find_links, tmp_path_factory):
    bindir = make_venv(tmp_path_factory.mktemp('uvicorn-extra') / 'venv')
    before = installed(bindir)
    pip(bindir, 'install', *find_links, 'microdot-asgi[uvicorn]')
    return SimpleNamespace(bin=bindir, added=installed(bindir) - before)


def venv_env():
    """The environment for the virtualenv's programs: nothing from the source tree."""
    return {'PYTHONPATH': '', 'PYTHONNOUSERSITE': '1'}


def start_echo_example(bindir):
    port = free_port()
    server = ServerProcess([str(bindir / 'uvicorn'), '--host', '127.0.0.1', '--port',
                            str(port), 'echo_asgi:app'], port, cwd=EXAMPLES, env=venv_env())
    server.wait_ready()
    return server


def test_the_extra_installs_uvicorn_and_websockets_only(venv):
    assert {'microdot-core', 'microdot-asgi', 'uvicorn', 'websockets'} <= venv.added
    # nothing of uvicorn[standard] beyond websockets, no other WebSocket library
    assert not venv.added & (STANDARD_EXTRAS | {'wsproto', 'hypercorn', 'granian'})
    # the rest is what uvicorn itself depends on
    assert venv.added - {'microdot-core', 'microdot-asgi', 'uvicorn', 'websockets'} <= \
        {'click', 'h11', 'typing-extensions', 'typing_extensions'}


def test_echo_example_serves_websocket_under_the_extras_uvicorn(venv):
    server = start_echo_example(venv.bin)
    try:
        page = httpx.get(server.url + '/', timeout=10)
        assert page.status_code == 200 and '<html' in page.text.lower()
        check_echo('ws://127.0.0.1:%d' % server.port)
    finally:
        server.stop()
    assert 'Traceback' not in server.output, server.output
    assert 'No supported WebSocket library' not in server.output


def test_plugins_listing_marks_the_servers_not_installed(venv):
    proc = subprocess.run([str(venv.bin / 'microdot'), 'plugins'], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, **venv_env()))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "hypercorn (not installed: pip install 'microdot-asgi[hypercorn]')" in out
    assert "granian (not installed: pip install 'microdot-asgi[granian]')" in out
    assert 'uvicorn (not installed' not in out and 'uvicorn' in out


def test_plain_app_without_the_wsgi_plugin_names_it(venv):
    code = ('from microdot import Microdot\n'
            'from microdot.plugins import PluginError\n'
            'try:\n'
            '    Microdot()({"REQUEST_METHOD": "GET"}, lambda *a: None)\n'
            'except PluginError as exc:\n'
            '    print(exc)\n')
    proc = subprocess.run([str(venv.bin / 'python'), '-c', code], capture_output=True, text=True,
                          timeout=60, cwd=str(venv.bin.parent), env=dict(os.environ, **venv_env()))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ('this Microdot application was called by a WSGI server as '
                           'app(environ, start_response), which needs the microdot-wsgi '
                           'plugin: pip install microdot-wsgi\n')


def test_uvicorn_without_a_websocket_library_answers_501_naming_it(venv, find_links):
    """What a plain ``pip install uvicorn`` gives: the handshake reaches the
    application as plain HTTP, and the answer says what to install (websockets is put
    back afterwards, for the other tests of this virtualenv)."""
    pip(venv.bin, 'uninstall', '-y', 'websockets')
    try:
        server = start_echo_example(venv.bin)
        try:
            res = httpx.get(server.url + '/echo', headers=HANDSHAKE, timeout=10)
        finally:
            server.stop()
    finally:
        pip(venv.bin, 'install', *find_links, 'websockets')
    assert res.status_code == 501
    assert "pip install 'microdot-asgi[uvicorn]'" in res.text
    assert 'uvicorn has no WebSocket implementation' in res.text
    assert 'Traceback' not in server.output, server.output
