"""The ASGI adapter where it is meant to match Microdot 2.7, or to differ from it
because Microdot is defective: ``app.shutdown()`` (the server's main process, after the
response; Microdot signals its process-group leader at once), lifespan shutdown
failures, streamed bodies that stop when the client leaves."""
import asyncio
import os
import signal
import sys
import threading
import time
import types

import pytest

import microdot.asgi as asgi_module
from microdot.asgi import Microdot, asgi_adapter, server_master_pid


class Kills(list):
    """``os.kill`` calls, recorded instead of made."""

    def __init__(self):
        super().__init__()
        self.event = threading.Event()


@pytest.fixture
def kills(monkeypatch):
    """Record ``os.kill``/``os.killpg`` and start from a process that sent nothing."""
    calls = Kills()

    def kill(pid, sig):
        calls.append((pid, sig))
        calls.event.set()

    monkeypatch.setattr(os, 'kill', kill)
    monkeypatch.setattr(os, 'killpg', lambda *a: calls.append(('killpg',) + a))
    monkeypatch.setattr(asgi_module, '_server_shutdown', asgi_module._ServerShutdown())
    return calls


def scope_for(path):
    return {'type': 'http', 'asgi': {'version': '3.0'}, 'http_version': '1.1',
            'method': 'GET', 'scheme': 'http', 'path': path, 'raw_path': path.encode(),
            'query_string': b'', 'root_path': '', 'headers': [],
            'client': ('127.0.0.1', 5), 'server': ('127.0.0.1', 8000)}


async def request(app, path, log, send_error=None):
    """One GET through ``app``; every sent message's type goes to ``log``."""
    inbox = asyncio.Queue()
    inbox.put_nowait({'type': 'http.request', 'body': b'', 'more_body': False})

    async def send(message):
        log.append(message['type'] + ('' if message.get('more_body') else ' (last)'
                                      if message['type'] == 'http.response.body' else ''))
        if send_error is not None and message['type'] == 'http.response.body':
            raise send_error

    await asyncio.wait_for(app(scope_for(path), inbox.get, send), 10)


def stopping_app(log):
    app = Microdot()

    @app.route('/sync')
    def sync_stop(req):  # runs in a thread, as def handlers do
        req.app.shutdown()
        log.append('handler returns')
        return 'bye'

    @app.route('/async')
    async def async_stop(req):
        req.app.shutdown()
        log.append('handler returns')
        return 'bye'

    @app.route('/stream')
    async def stream_stop(req):
        req.app.shutdown()

        async def body():
            yield b'a'
            yield b'b'
        return body()

    return app


# -- app.shutdown() ---------------------------------------------------------------------

def test_shutdown_outside_a_request_signals_this_process_at_once(kills):
    Microdot().shutdown()
    assert kills == [(os.getpid(), signal.SIGTERM)]


@pytest.mark.parametrize('path', ['/sync', '/async', '/stream'])
def test_shutdown_from_a_handler_signals_once_its_response_is_sent(kills, path):
    log = []
    app = stopping_app(log)
    real_kill = os.kill
    os.kill = lambda pid, sig: (log.append('SIGTERM'), kills.append((pid, sig)))
    try:
        asyncio.run(request(app, path, log))
    finally:
        os.kill = real_kill
    assert log[-2:] == ['http.response.body (last)', 'SIGTERM'], log
    assert kills == [(os.getpid(), signal.SIGTERM)]  # never the process group


def test_shutdown_is_signalled_once(kills):
    app = stopping_app([])
    asyncio.run(request(app, '/async', []))
    app.shutdown()
    asyncio.run(request(app, '/sync', []))
    assert kills == [(os.getpid(), signal.SIGTERM)]


def test_shutdown_signals_anyway_when_the_response_never_completes(kills, monkeypatch):
    monkeypatch.setattr(asgi_module._ServerShutdown, 'grace', 0.1)
    app = stopping_app([])
    with pytest.raises(RuntimeError):
        asyncio.run(request(app, '/async', [], send_error=RuntimeError('server broke')))
    assert kills.event.wait(5)
    assert kills == [(os.getpid(), signal.SIGTERM)]


def test_shutdown_from_a_background_task_after_the_response_signals_at_once(kills):
    app = Microdot()
    later = []

    @app.route('/')
    async def index(req):
        later.append(asyncio.get_running_loop().create_future())

        async def stop_later():
            await later[0]
            req.app.shutdown()
        later.append(asyncio.ensure_future(stop_later()))
        return 'ok'

    async def main():
        await request(app, '/', [])
        assert kills == []
        later[0].set_result(None)
        await later[1]

    asyncio.run(main())
    assert kills == [(os.getpid(), signal.SIGTERM)]


def test_shutdown_under_the_builtin_server_stops_it():
    app = Microdot()
    app.server = types.SimpleNamespace(shutdown=lambda: calls.append('server'))
    calls = []
    app.shutdown()
    assert calls == ['server']


# -- which process is the server's main one ----------------------------------------------

def fake_worker(monkeypatch, module, ppid=4242, parent_pid=4242):
    """Pretend this process is a ``multiprocessing`` child running a function of
    ``module`` (as servers start their workers), whose parent is ``ppid``."""
    import multiprocessing
    target = types.FunctionType((lambda: None).__code__, {'__name__': module})
    monkeypatch.setattr(os, 'getppid', lambda: ppid)
    monkeypatch.setattr(multiprocessing, 'parent_process',
                        lambda: types.SimpleNamespace(pid=parent_pid))
    monkeypatch.setattr(multiprocessing, 'current_process',
                        lambda: types.SimpleNamespace(_target=target))


def test_master_pid_of_a_single_process_server_is_this_process():
    assert server_master_pid() == os.getpid()


@pytest.mark.parametrize('module', ['uvicorn._subprocess', 'hypercorn.asyncio.run',
                                    'granian.server.mp'])
def test_master_pid_of_a_server_worker_process_is_its_parent(monkeypatch, module):
    fake_worker(monkeypatch, module)
    assert server_master_pid() == 4242


@pytest.mark.parametrize('ppid,parent_pid', [(4242, 4243), (1, 1)])
def test_master_pid_is_this_process_when_the_parent_is_not_the_server(monkeypatch, ppid,
                                                                      parent_pid):
    fake_worker(monkeypatch, 'uvicorn._subprocess', ppid, parent_pid)
    assert server_master_pid() == os.getpid()


def test_master_pid_of_an_application_child_process_is_itself(monkeypatch):
    fake_worker(monkeypatch, 'myapp.jobs')
    assert server_master_pid() == os.getpid()


def test_master_pid_of_a_gunicorn_worker_is_the_arbiter(monkeypatch):
    monkeypatch.setenv('SERVER_SOFTWARE', 'gunicorn/27.0.1')
    monkeypatch.setitem(sys.modules, 'gunicorn.workers.base', types.ModuleType('base'))
    monkeypatch.setattr(os, 'getppid', lambda: 4242)
    assert server_master_pid() == 4242
    monkeypatch.setattr(os, 'getppid', lambda: 1)  # the arbiter is gone
    assert server_master_pid() == os.getpid()


# -- lifespan ---------------------------------------------------------------------------

def lifespan(app):
    """Run startup then shutdown; returns the messages the application sent."""
    sent = []

    async def main():
        inbox = asyncio.Queue()
        inbox.put_nowait({'type': 'lifespan.startup'})
        inbox.put_nowait({'type': 'lifespan.shutdown'})

        async def send(message):
            sent.append(message)

        await asyncio.wait_for(asgi_adapter(app)({'type': 'lifespan', 'asgi': {
            'version': '3.0'}}, inbox.get, send), 5)

    asyncio.run(main())
    return sent


def test_failing_lifespan_shutdown_hook_is_reported_with_its_message():
    def boom(scope):
        raise RuntimeError('database still busy')

    sent = lifespan(Microdot(lifespan_shutdown=boom))
    assert sent == [{'type': 'lifespan.startup.complete'},
                    {'type': 'lifespan.shutdown.failed',
                     'message': "RuntimeError('database still busy')"}]


def test_failing_on_shutdown_hook_is_reported_too():
    app = Microdot()

    @app.on_shutdown
    async def boom():
        raise ValueError('flush failed')

    assert lifespan(app)[-1] == {'type': 'lifespan.shutdown.failed',
                                 'message': "ValueError('flush failed')"}


def test_startup_failure_message():
    def boom(scope):
        raise RuntimeError('no database')

    assert lifespan(Microdot(lifespan_startup=boom)) == [
        {'type': 'lifespan.startup.failed', 'message': "RuntimeError('no database')"}]


# -- streamed bodies and the client leaving --------------------------------------------

def endless_app(record):
    app = Microdot()

    @app.route('/async')
    async def async_body(req):
        async def body():
            try:
                while True:
                    yield b'frame'
                    await asyncio.sleep(0.01)
            finally:
                record.append('async closed')
        return body()

    @app.route('/idle')
    async def idle_body(req):
        async def body():
            try:
                yield b'frame'
                await asyncio.sleep(3600)
            finally:
                record.append('idle closed')
        return body()

    @app.route('/sync')
    def sync_body(req):
        def body():
            try:
                while True:
                    yield b'frame'
            finally:
                record.append('sync closed')
        return body()

    return app


@pytest.mark.parametrize('path', ['/async', '/idle', '/sync'])
def test_disconnect_closes_an_endless_body(path):
    """``http.disconnect`` while streaming closes the body's generator at once, even
    one that never awaits (a sync generator) or one that waits between frames."""
    record = []
    app = endless_app(record)

    async def main():
        inbox = asyncio.Queue()
        inbox.put_nowait({'type': 'http.request', 'body': b'', 'more_body': False})
        frames = []

        async def send(message):
            if message.get('body'):
                frames.append(message['body'])
                if len(frames) == 3 or path == '/idle':
                    inbox.put_nowait({'type': 'http.disconnect'})

        await asyncio.wait_for(app(scope_for(path), inbox.get, send), 2)

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 1  # (a blocked loop ignores wait_for)
    assert record == [path[1:] + ' closed']


@pytest.mark.parametrize('path', ['/async', '/sync'])
def test_failed_send_closes_an_endless_body(path):
    """A ``send()`` that raises (the server's "client disconnected" error) counts as
    the client leaving: the body is closed, nothing is logged as an application
    error."""
    record = []
    app = endless_app(record)

    async def main():
        inbox = asyncio.Queue()
        inbox.put_nowait({'type': 'http.request', 'body': b'', 'more_body': False})
        count = []

        async def send(message):
            count.append(message)
            if len(count) > 3:
                raise OSError('client disconnected')

        await asyncio.wait_for(app(scope_for(path), inbox.get, send), 2)

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 1  # (a blocked loop ignores wait_for)
    assert record == [path[1:] + ' closed']


def test_plain_app_served_through_the_adapter_stops_the_server_too(kills):
    """``microdot run app:app --server uvicorn`` with a plain ``microdot.Microdot``:
    its ``shutdown()`` stops the ASGI server, after the response."""
    import microdot
    app = microdot.Microdot()
    log = []

    @app.route('/stop')
    async def stop(req):
        req.app.shutdown()
        return 'bye'

    adapter = asgi_adapter(app)
    assert asgi_adapter(app).app is app  # wrapping again changes nothing
    real_kill = os.kill
    os.kill = lambda pid, sig: (log.append('SIGTERM'), kills.append((pid, sig)))
    try:
        asyncio.run(request(adapter, '/stop', log))
    finally:
        os.kill = real_kill
    assert log[-2:] == ['http.response.body (last)', 'SIGTERM'], log
    stopped = []
    app.server = types.SimpleNamespace(shutdown=lambda: stopped.append('builtin'))
    app.shutdown()  # on the built-in server, the built-in server's shutdown
    assert stopped == ['builtin'] and len(kills) == 1
