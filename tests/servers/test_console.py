"""What ``python app.py`` and ``microdot run`` show (issue #14): the start-up line, the
access log (``debug=True`` turns it on, as Microdot's debug output listed requests),
tracebacks, and one-line errors; an application's own logging setup is respected."""
import os
import socket
import subprocess
import sys
import textwrap

import httpx

from support import LiveServerProcess, free_port

MICRODOT = [sys.executable, '-m', 'microdot']

APP = '''
import logging, sys
from microdot import Microdot

app = Microdot()


@app.route('/')
async def index(request):
    return 'hello'


@app.route('/boom')
async def boom(request):
    raise ValueError('kaboom')


if __name__ == '__main__':
    {setup}
    app.run(host='127.0.0.1', port=int(sys.argv[1]), {options})
'''


def script(tmp_path, options='', setup='pass'):
    (tmp_path / 'myapp.py').write_text(APP.format(options=options, setup=setup))
    return tmp_path


def run_script(tmp_path, requests=('/',), options='', setup='pass', wait='Serving'):
    """Run myapp.py, make the requests, stop it; returns (status, output)."""
    script(tmp_path, options, setup)
    port = free_port()
    server = LiveServerProcess([sys.executable, 'myapp.py', str(port)], port,
                               cwd=str(tmp_path))
    try:
        server.wait_ready(line=wait)  # (the port first: it is bound before any line)
        for path in requests:
            httpx.get(server.url + path, timeout=10)
    finally:
        status = server.stop()
    return status, server.output, port


def test_app_run_says_where_it_serves(tmp_path):
    # uvloop is not installed here: the line says how to get the faster server
    status, output, port = run_script(tmp_path, setup="sys.modules['uvloop'] = None")
    assert status == 0
    assert ('INFO microdot: Serving myapp:app on http://127.0.0.1:%d (1 worker, built-in '
            "server) on asyncio: pip install 'microdot-core[speed]' (uvloop) makes it "
            'faster\n' % port) in output
    assert output.count('Serving') == 1  # one line, not one per socket as well
    assert 'microdot.access' not in output  # off by default in app.run()


def test_debug_turns_the_access_log_on_and_shows_tracebacks(tmp_path):
    status, output, _ = run_script(tmp_path, ('/', '/boom'), options='debug=True')
    assert status == 0
    assert 'INFO microdot.access: 127.0.0.1 - "GET / HTTP/1.1" 200' in output
    assert 'INFO microdot.access: 127.0.0.1 - "GET /boom HTTP/1.1" 500' in output
    assert 'ERROR microdot: Unhandled exception in GET /boom' in output
    assert 'Traceback' in output and 'ValueError: kaboom' in output


def test_debug_keeps_an_explicit_access_log_off(tmp_path):
    status, output, _ = run_script(tmp_path, options='debug=True, access_log=False')
    assert status == 0 and 'Serving' in output
    assert 'microdot.access' not in output


def test_logging_configured_by_the_application_is_left_alone(tmp_path):
    status, output, _ = run_script(
        tmp_path, ('/', '/boom'), options='access_log=True',
        setup="logging.basicConfig(level=logging.WARNING, format='APP %(message)s')",
        wait=None)  # nothing below WARNING is shown
    assert status == 0
    assert 'Serving' not in output and 'GET / HTTP' not in output
    assert 'APP Unhandled exception in GET /boom' in output


def test_cli_access_log_is_on_by_default_and_can_be_turned_off(tmp_path):
    script(tmp_path)
    for flags, shown in (([], True), (['--no-access-log'], False), (['--access-log'], True)):
        port = free_port()
        server = LiveServerProcess(MICRODOT + ['run', 'myapp:app', '--port', str(port)]
                                   + flags, port, cwd=str(tmp_path))
        try:
            server.wait_ready(line='Serving myapp:app on http://127.0.0.1:%d (1 worker, '
                                   'built-in server)' % port)
            assert httpx.get(server.url + '/', timeout=10).text == 'hello'
            if shown:
                assert server.live.wait_for('"GET / HTTP/1.1" 200')
        finally:
            assert server.stop() == 0
        assert ('microdot.access' in server.output) is shown, (flags, server.output)


def test_port_in_use_is_one_line(tmp_path):
    script(tmp_path)
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([sys.executable, 'myapp.py', str(port)], cwd=str(tmp_path),
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1
        assert proc.stderr == ('ERROR microdot: port %d is in use; pick another with '
                               'app.run(port=...)\n' % port)
        for extra in ([], ['--workers', '2'], ['--reload']):
            proc = subprocess.run(MICRODOT + ['run', 'myapp:app', '--port', str(port)]
                                  + extra, cwd=str(tmp_path), capture_output=True,
                                  text=True, timeout=60)
            assert proc.returncode == 1, extra
            assert proc.stderr == ('microdot: error: port %d is in use; pick another with '
                                   '--port\n' % port), extra


def test_bind_errors_are_one_line():
    from microdot.listener import PortInUse, ServeError, bind
    sock = bind('localhost', 0)  # a name: its IPv4 address
    try:
        assert sock.family == socket.AF_INET
        assert sock.getsockname()[0] == '127.0.0.1'
        port = sock.getsockname()[1]
        try:
            bind('127.0.0.1', port)
        except PortInUse as exc:
            assert str(exc) == 'port %d is in use' % port
        else:
            raise AssertionError('bound a port in use')
    finally:
        sock.close()
    try:
        bind('no-such-host.invalid', 0)
    except ServeError as exc:
        assert str(exc).startswith("cannot resolve host 'no-such-host.invalid'")
    else:
        raise AssertionError('resolved an invalid name')


MULTI = '''
import socket, sys
from microdot import Microdot

real = socket.getaddrinfo


def getaddrinfo(host, port, *args, **kwargs):
    """'multi.test' stands for a name with two addresses (localhost: 127.0.0.1, ::1)."""
    if host == 'multi.test':
        return [info for address in ('127.0.0.1', '127.0.0.2')
                for info in real(address, port, *args, **kwargs)]
    return real(host, port, *args, **kwargs)


socket.getaddrinfo = getaddrinfo
app = Microdot()


@app.route('/')
async def index(request):
    return 'hello'


app.run(host='multi.test', port=int(sys.argv[1]))
'''


def test_a_name_with_several_addresses_is_served_on_all(tmp_path):
    """As asyncio.start_server (and Microdot) do; the start-up line names the host."""
    (tmp_path / 'multi.py').write_text(MULTI)
    port = free_port()
    server = LiveServerProcess([sys.executable, 'multi.py', str(port)], port,
                               cwd=str(tmp_path), env={'MICRODOT_LOOP': 'asyncio'})
    try:
        server.wait_ready(line='Serving multi:app on http://multi.test:%d (1 worker' % port)
        for address in ('127.0.0.1', '127.0.0.2'):
            assert httpx.get('http://%s:%d/' % (address, port), timeout=10).text == 'hello'
        proc = subprocess.run([sys.executable, 'multi.py', str(port)], cwd=str(tmp_path),
                              env=dict(os.environ, MICRODOT_LOOP='asyncio'),
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1
        assert proc.stderr == ('ERROR microdot: port %d is in use; pick another with '
                               'app.run(port=...)\n' % port)
    finally:
        assert server.stop() == 0, server.output


def test_start_up_line_names_the_event_loop(tmp_path, monkeypatch):
    # refused with MICRODOT_LOOP=asyncio: no advice to install what is there
    monkeypatch.setenv('MICRODOT_LOOP', 'asyncio')
    status, output, port = run_script(tmp_path)
    assert status == 0
    assert ('Serving myapp:app on http://127.0.0.1:%d (1 worker, built-in server) on '
            'asyncio (MICRODOT_LOOP=asyncio)\n' % port) in output


def test_event_loop_note_inside_and_outside_a_loop(monkeypatch):
    import asyncio
    import types
    from microdot import console, server

    class Loop:  # what a uvloop loop's type looks like from here
        __module__ = 'uvloop.loop'

    monkeypatch.delenv('MICRODOT_LOOP', raising=False)
    monkeypatch.setattr(asyncio, 'get_running_loop', lambda: Loop())
    assert console.event_loop_note() == 'on uvloop'
    # outside a loop (the supervisor of workers): what the workers will choose
    monkeypatch.undo()
    monkeypatch.delenv('MICRODOT_LOOP', raising=False)
    monkeypatch.setitem(sys.modules, 'uvloop', types.ModuleType('uvloop'))
    assert server.uvloop_chosen() and console.event_loop_note() == 'on uvloop'
    monkeypatch.setenv('MICRODOT_LOOP', 'asyncio')
    assert console.event_loop_note() == 'on asyncio (MICRODOT_LOOP=asyncio)'
    monkeypatch.delenv('MICRODOT_LOOP')
    monkeypatch.setitem(sys.modules, 'uvloop', None)  # not installed
    assert not server.uvloop_chosen()
    assert console.event_loop_note() == console.SPEED_HINT
