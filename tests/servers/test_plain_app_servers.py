"""A plain ``from microdot import Microdot`` application handed straight to uvicorn,
hypercorn, gunicorn, waitress and Granian (``microdot.adapters``), as real processes
on 127.0.0.1: the seed's hello example verbatim, and streaming, SSE, WebSocket and the
startup/shutdown hooks where the server has them."""
import signal
import sys

import httpx
import pytest

from support import LiveServerProcess, free_port, serve
from serving_checks import (APPS, EXAMPLES, check_echo, check_hello, check_sse,
                            check_stream, granian_cmd, hook_pids, wait_for_hooks)


def command(server, port, target):
    host = '127.0.0.1'
    if server == 'uvicorn':
        return [sys.executable, '-m', 'uvicorn', '--host', host, '--port', str(port), target]
    if server.startswith('hypercorn'):  # hypercorn-asgi: its 'asgi:' prefix says which
        prefix = 'asgi:' if server == 'hypercorn-asgi' else ''
        return [sys.executable, '-m', 'hypercorn', '--bind', '%s:%d' % (host, port),
                prefix + target]
    if server == 'gunicorn':  # gthread: WebSocket sessions take a thread each
        return [sys.executable, '-m', 'gunicorn', '--bind', '%s:%d' % (host, port),
                '--threads', '4', target]
    if server == 'waitress':
        return [sys.executable, '-m', 'waitress', '--listen', '%s:%d' % (host, port), target]
    return granian_cmd(server.split('-')[1], port, target)


#: hypercorn tells ASGI from WSGI applications with inspect.iscoroutinefunction, which
#: honours the mark on Microdot.__call__ from Python 3.12; before, it serves a plain
#: application as a WSGI one (through microdot-wsgi): no WebSocket, no hooks at exit.
HYPERCORN_ASGI = sys.version_info >= (3, 12)

#: Servers, and whether they carry WebSocket to the application.
SERVERS = {'uvicorn': True, 'hypercorn': HYPERCORN_ASGI, 'hypercorn-asgi': True,
           'gunicorn': True, 'waitress': False, 'granian-asgi': True, 'granian-wsgi': False}
#: Servers that stop gracefully on SIGTERM, running the shutdown hooks (waitress
#: takes SIGTERM's default action).
STOP_HOOKS = {'uvicorn', 'gunicorn', 'granian-asgi', 'granian-wsgi', 'hypercorn-asgi'} | (
    {'hypercorn'} if HYPERCORN_ASGI else set())


@pytest.mark.parametrize('server', list(SERVERS))
def test_seed_hello_example_verbatim(server):
    port = free_port()
    with serve(command(server, port, 'hello:app'), port, cwd=EXAMPLES) as proc:
        check_hello(proc.url)
        check_hello(proc.url)  # the adapter made on the first call serves the next


@pytest.mark.parametrize('server', list(SERVERS))
def test_plain_app_streams_sse_websocket_and_hooks(server, tmp_path):
    events = str(tmp_path / 'events.txt')
    port = free_port()
    proc = LiveServerProcess(command(server, port, 'granian_app:app'), port, cwd=APPS,
                             env={'MICRODOT_TEST_EVENTS': events,
                                  'MICRODOT_TEST_FLAVOR': 'plain'})
    try:
        proc.wait_ready()
        check_hello(proc.url)
        info = httpx.get(proc.url + '/pid', timeout=10).json()
        assert info['class'] == 'microdot.app'  # a plain Microdot, served as it is
        check_stream(proc.url)
        check_sse(proc.url)
        if SERVERS[server]:
            check_echo('ws://127.0.0.1:%d' % port)
        assert wait_for_hooks(events, 'startup', 1) == [info['pid']]
        proc.stop(signal.SIGTERM)
    finally:
        proc.stop()
    assert 'Traceback' not in proc.output, proc.output
    if server in STOP_HOOKS:
        assert hook_pids(events, 'shutdown') == [info['pid']]


def test_granian_default_interface_is_named_in_the_error():
    """Granian's default interface (RSGI) is neither ASGI nor WSGI: the error says
    which option to give."""
    port = free_port()
    cmd = [sys.executable, '-m', 'granian', '--host', '127.0.0.1', '--port', str(port),
           'hello:app']
    proc = LiveServerProcess(cmd, port, cwd=EXAMPLES)
    try:
        proc.wait_ready()
        assert httpx.get(proc.url + '/', timeout=10).status_code == 500
        assert proc.live.wait_for('--interface asgi or --interface wsgi', timeout=10), \
            proc.live.text
    finally:
        proc.stop()
