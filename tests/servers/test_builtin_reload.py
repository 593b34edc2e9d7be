"""``microdot run --reload`` and ``app.run(reload=True)`` (issue #14): a change to a
.py file or a template restarts the application, which then serves the new code; a
broken change waits for the next one; SIGTERM stops everything."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import httpx
import pytest

from microdot import reload as reloader
from support import LiveServerProcess, free_port

MICRODOT = [sys.executable, '-m', 'microdot']

APP = '''
import os
from microdot import Microdot
app = Microdot()

@app.route('/')
async def index(request):
    return '%s %d' % (VERSION, os.getpid())

VERSION = {version!r}
'''


def write_app(path, version):
    path.write_text(APP.format(version=version))


def get(url):
    return httpx.get(url + '/', timeout=10).text.split()


def wait_for_version(url, version, timeout=15.0):
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        try:
            seen = get(url)
        except httpx.HTTPError:
            seen = None
        if seen and seen[0] == version:
            return int(seen[1])
        time.sleep(0.1)
    raise AssertionError('still %r, not %r, after %.0fs' % (seen, version, timeout))


def start(args, cwd):
    port = free_port()
    server = LiveServerProcess(args + ['--port', str(port)] if args[:4] == MICRODOT + ['run']
                               else args + [str(port)], port, cwd=str(cwd))
    try:
        server.wait_ready(line='Serving')
    except BaseException:
        server.stop()
        raise
    return server


def test_reload_serves_the_new_code_after_a_change(tmp_path):
    write_app(tmp_path / 'rapp.py', 'one')
    server = start(MICRODOT + ['run', 'rapp:app', '--reload'], tmp_path)
    try:
        assert server.live.wait_for('Reloading on changes in %s (' % tmp_path)
        first = wait_for_version(server.url, 'one')
        write_app(tmp_path / 'rapp.py', 'second')
        second = wait_for_version(server.url, 'second')
        assert second != first  # a new process
        assert server.live.wait_for('rapp.py changed: reloading')
    finally:
        assert server.stop() == 0, server.output
    with pytest.raises(ProcessLookupError):  # the application process is gone too
        os.kill(second, 0)


def test_a_broken_change_waits_for_the_next_one(tmp_path):
    write_app(tmp_path / 'rapp.py', 'one')
    server = start(MICRODOT + ['run', 'rapp:app', '--reload'], tmp_path)
    try:
        wait_for_version(server.url, 'one')
        (tmp_path / 'rapp.py').write_text('this is not python(\n')
        assert server.live.wait_for('exited with status 1; waiting for a change', 15)
        assert server.proc.poll() is None  # the reloader keeps the port
        write_app(tmp_path / 'rapp.py', 'fixed')
        wait_for_version(server.url, 'fixed')
    finally:
        assert server.stop() == 0, server.output


def test_a_template_change_reloads(tmp_path):
    write_app(tmp_path / 'rapp.py', 'one')
    (tmp_path / 'templates').mkdir()
    (tmp_path / 'templates' / 'page.html').write_text('<p>one</p>')
    server = start(MICRODOT + ['run', 'rapp:app', '--reload'], tmp_path)
    try:
        first = wait_for_version(server.url, 'one')
        (tmp_path / 'templates' / 'page.html').write_text('<p>second</p>')
        assert server.live.wait_for('page.html changed: reloading', 15)
        deadline = time.monotonic() + 15
        while wait_for_version(server.url, 'one') == first:
            assert time.monotonic() < deadline, 'not restarted'
            time.sleep(0.1)
    finally:
        assert server.stop() == 0, server.output


def test_app_run_reload_restarts_the_script(tmp_path):
    write_app(tmp_path / 'rapp.py', 'one')
    (tmp_path / 'serve.py').write_text(textwrap.dedent('''
        import sys
        from rapp import app
        app.run(host='127.0.0.1', port=int(sys.argv[1]), reload=True)
    '''))
    server = start([sys.executable, 'serve.py'], tmp_path)
    try:
        wait_for_version(server.url, 'one')
        write_app(tmp_path / 'rapp.py', 'second')
        wait_for_version(server.url, 'second')
    finally:
        assert server.stop(signal.SIGINT) == 0, server.output


def test_reload_and_workers_together_are_refused(tmp_path):
    write_app(tmp_path / 'rapp.py', 'one')
    proc = subprocess.run(MICRODOT + ['run', 'rapp:app', '--reload', '--workers', '2'],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == ('microdot: error: --reload and --workers cannot be used '
                           'together: the reloader runs one process; drop --workers while '
                           'developing\n')
    from microdot import Microdot
    with pytest.raises(ValueError, match='reload and workers cannot be used together'):
        Microdot().run(port=free_port(), reload=True, workers=2)


def test_watched_files():
    assert reloader.watched(os.path.join('a', 'b.py'))
    assert reloader.watched(os.path.join('a', 'page.html'))
    assert reloader.watched(os.path.join('a', 'templates', 'page.txt'))
    assert not reloader.watched(os.path.join('a', 'notes.txt'))
    assert not reloader.watched(os.path.join('a', '__pycache__', 'b.py'))
    assert not reloader.watched(os.path.join('a', '.venv', 'lib', 'b.py'))


def test_app_folder_of_a_target_is_found_without_importing_it(tmp_path, monkeypatch):
    (tmp_path / 'pkg').mkdir()
    (tmp_path / 'pkg' / '__init__.py').write_text('raise RuntimeError("imported")\n')
    (tmp_path / 'single.py').write_text('raise RuntimeError("imported")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    assert reloader.app_folders('pkg.web:app') == [str(tmp_path / 'pkg')]
    assert reloader.app_folders('single:app') == [str(tmp_path)]


def _sees_a_change(watcher, tmp_path):
    watcher.start()
    try:
        time.sleep(0.3)  # the first scan (polling) or the watch (watchfiles) is set up
        (tmp_path / 'new.py').write_text('x = 1\n')
        deadline = time.monotonic() + 10
        while not watcher.changed and time.monotonic() < deadline:
            time.sleep(0.05)
        return watcher.take()
    finally:
        watcher.stop()


def test_polling_watcher_reports_a_change(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'watchfiles', None)  # force the fallback
    watcher = reloader.Watcher([str(tmp_path)])
    assert watcher.kind == 'polling'
    assert _sees_a_change(watcher, tmp_path) == [str(tmp_path / 'new.py')]


def test_watchfiles_watcher_reports_a_change(tmp_path):
    pytest.importorskip('watchfiles', reason='watchfiles is not installed '
                                             "(pip install 'microdot-core[dev]')")
    watcher = reloader.Watcher([str(tmp_path)])
    assert watcher.kind == 'watchfiles'
    assert str(tmp_path / 'new.py') in _sees_a_change(watcher, tmp_path)
