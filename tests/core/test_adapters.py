"""A plain ``microdot.Microdot`` called as an ASGI or WSGI application
(``microdot.adapters``): the protocol told by the call, the adapter found once through
the ``microdot.adapters`` entry points and kept, a one-line error without the plugin.
(Real servers serving a plain application: tests/servers/test_plain_app_servers.py.)"""
import asyncio
import inspect
import subprocess
import sys
import threading

import pytest

from microdot import Microdot, adapters, plugins


def make_app():
    app = Microdot()

    @app.route('/')
    def index(req):
        return 'Hello, World!'
    return app


async def asgi_get(app, path='/'):
    messages = []

    async def receive():
        return {'type': 'http.request', 'body': b'', 'more_body': False}

    async def send(message):
        messages.append(message)

    scope = {'type': 'http', 'method': 'GET', 'path': path, 'raw_path': path.encode(),
             'query_string': b'', 'headers': [(b'host', b'x')], 'http_version': '1.1',
             'scheme': 'http', 'client': ('127.0.0.1', 1), 'server': ('127.0.0.1', 80)}
    await app(scope, receive, send)
    return messages


def wsgi_get(app, path='/'):
    started = []
    environ = {'REQUEST_METHOD': 'GET', 'PATH_INFO': path, 'QUERY_STRING': '',
               'SERVER_PROTOCOL': 'HTTP/1.1', 'wsgi.url_scheme': 'http',
               'REMOTE_ADDR': '127.0.0.1', 'HTTP_HOST': 'x', 'wsgi.input': None}
    body = b''.join(app(environ, lambda status, headers: started.append(status)))
    return started[0], body


def test_asgi_call_is_served_through_the_asgi_plugin():
    app = make_app()
    messages = asyncio.run(asgi_get(app))
    assert messages[0]['status'] == 200
    assert messages[1]['body'] == b'Hello, World!'
    from microdot.asgi import ASGIAdapter
    assert isinstance(app._asgi_adapter, ASGIAdapter)
    assert app._wsgi_adapter is None  # only what was asked for


def test_wsgi_call_is_served_through_the_wsgi_plugin():
    app = make_app()
    assert wsgi_get(app) == ('200 OK', b'Hello, World!')
    from microdot.wsgi import WSGIAdapter
    assert isinstance(app._wsgi_adapter, WSGIAdapter)
    assert app._asgi_adapter is None


def test_adapter_is_made_once_and_kept(monkeypatch):
    app = make_app()
    loads = []
    real_load = adapters._load

    def counting_load(kind):
        loads.append(kind)
        return real_load(kind)

    monkeypatch.setattr(adapters, '_load', counting_load)
    for _ in range(3):
        assert wsgi_get(app)[0] == '200 OK'
        asyncio.run(asgi_get(app))
    assert loads == ['wsgi', 'asgi']
    first = app._wsgi_adapter
    wsgi_get(app)
    assert app._wsgi_adapter is first


def test_threads_asking_at_once_get_one_adapter(monkeypatch):
    app = make_app()
    made = []
    real_load = adapters._load

    def slow_load(kind):
        factory = real_load(kind)

        def make(application):
            made.append(kind)
            return factory(application)
        return make

    monkeypatch.setattr(adapters, '_load', slow_load)
    barrier = threading.Barrier(8)
    results = []

    def call():
        barrier.wait()
        results.append(wsgi_get(app))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [('200 OK', b'Hello, World!')] * 8
    assert made == ['wsgi']


def test_asgi2_single_argument_form_is_served():
    """Servers that cannot tell ASGI 3 from ASGI 2 call ``app(scope)`` first."""
    app = make_app()
    messages = []

    async def run():
        scope = {'type': 'http', 'method': 'GET', 'path': '/', 'query_string': b'',
                 'headers': [], 'http_version': '1.1'}
        instance = app(scope)

        async def receive():
            return {'type': 'http.request', 'body': b''}

        async def send(message):
            messages.append(message)
        await instance(receive, send)

    asyncio.run(run())
    assert messages[0]['status'] == 200


def test_call_is_marked_as_a_coroutine_function_for_asgi_servers():
    app = make_app()
    assert asyncio.iscoroutinefunction(app.__call__)  # uvicorn's check
    if sys.version_info >= (3, 12):  # hypercorn's check honours the mark from 3.12
        assert inspect.iscoroutinefunction(app.__call__)


def test_other_calls_are_refused_with_what_servers_call():
    app = make_app()
    with pytest.raises(TypeError, match=r'app\(scope, receive, send\).*'
                                        r'app\(environ, start_response\).*4 arguments'):
        app(1, 2, 3, 4)
    with pytest.raises(TypeError, match='--interface asgi or --interface wsgi'):
        app(object(), object())  # Granian's RSGI: (scope, protocol)


def test_missing_plugin_is_one_line_naming_what_to_install(monkeypatch):
    infos = plugins.registry._discover()
    monkeypatch.setitem(infos, 'adapters', {})
    app = make_app()
    with pytest.raises(plugins.PluginError) as exc:
        asyncio.run(asgi_get(app))
    assert str(exc.value) == (
        'this Microdot application was called by an ASGI server as app(scope, receive, '
        'send), which needs the microdot-asgi plugin: pip install microdot-asgi')
    with pytest.raises(plugins.PluginError) as exc:
        wsgi_get(app)
    assert str(exc.value).endswith('needs the microdot-wsgi plugin: pip install microdot-wsgi')
    assert '\n' not in str(exc.value)
    assert app._asgi_adapter is None and app._wsgi_adapter is None  # nothing kept


def test_plain_app_shutdown_stops_the_server_it_is_served_by():
    """The adapter made for a plain application gives its shutdown() the adapter's
    way of stopping the server (microdot.shutdown.stop_server_on_shutdown)."""
    app = make_app()
    builtin_shutdown = app.shutdown
    wsgi_get(app)
    assert app.shutdown is not builtin_shutdown
    assert getattr(app.shutdown, 'stops_wsgi_server', False)


def test_seed_imports_keep_their_own_call():
    """``microdot.asgi.Microdot`` and ``microdot.wsgi.Microdot`` are the seed's
    callables, not the plain application's dispatch."""
    code = ('import microdot.asgi, microdot.wsgi, microdot\n'
            'assert microdot.asgi.Microdot.__call__ is not microdot.Microdot.__call__\n'
            'assert microdot.wsgi.Microdot.__call__ is not microdot.Microdot.__call__\n'
            'assert microdot.asgi.Microdot().__class__.__module__ == "microdot.asgi"\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
