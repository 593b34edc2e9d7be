"""The ASGI adapter driven directly with scope / receive / send."""
import asyncio
import logging

import pytest

import microdot
from microdot.asgi import Microdot, asgi_adapter
from microdot.plugins import get_adapter


def run(coro):
    return asyncio.run(coro)


def http_scope(path='/', method='GET', headers=(), query=b'', root_path='', client=('1.2.3.4', 5),
               raw_path=None, **extra):
    scope = {'type': 'http', 'asgi': {'version': '3.0'}, 'http_version': '1.1',
             'method': method, 'scheme': 'http', 'path': path,
             'raw_path': raw_path if raw_path is not None else path.encode(),
             'query_string': query, 'root_path': root_path,
             'headers': [(k.encode('latin-1'), v.encode('latin-1')) for k, v in headers],
             'client': client, 'server': ('127.0.0.1', 8000)}
    if client is None:
        del scope['client']
    scope.update(extra)
    return scope


async def call(app, scope, body_messages=None, disconnect_after=None):
    """Run one HTTP request; returns (status, headers dict, body, messages)."""
    inbox = asyncio.Queue()
    for m in body_messages or [{'type': 'http.request', 'body': b'', 'more_body': False}]:
        inbox.put_nowait(m)
    sent = []

    async def receive():
        return await inbox.get()

    async def send(message):
        sent.append(message)
        if disconnect_after is not None and len(sent) == disconnect_after:
            inbox.put_nowait({'type': 'http.disconnect'})

    await asyncio.wait_for(app(scope, receive, send), 10)
    start = sent[0]
    headers = {}
    for k, v in start['headers']:
        headers.setdefault(k.decode('latin-1'), []).append(v.decode('latin-1'))
    body = b''.join(m.get('body', b'') for m in sent[1:])
    return start['status'], headers, body, sent


def make_app(cls=Microdot):
    app = cls()

    @app.route('/')
    async def index(req):
        return 'Hello, World!'

    @app.route('/info')
    async def info(req):
        return {'path': req.path, 'url': req.url, 'prefix': req.url_prefix,
                'args': req.args.to_dict(), 'client': req.client_addr,
                'cookies': req.cookies, 'x': req.headers.get('X-Multi'),
                'scope_type': req.asgi_scope['type']}

    @app.route('/echo', methods=['POST'])
    async def echo(req):
        if req.body:
            return req.body
        return await req.stream.read()

    @app.route('/u/<name>')
    async def user(req, name):
        return name

    return app


def test_reexports_everything_microdot_exports():
    import microdot.asgi as asgi
    for name in microdot.__all__:
        assert hasattr(asgi, name), name
    assert issubclass(asgi.Microdot, microdot.Microdot)


def test_hello():
    status, headers, body, _ = run(call(make_app(), http_scope('/')))
    assert status == 200 and body == b'Hello, World!'
    assert headers['content-type'] == ['text/plain; charset=UTF-8']
    assert headers['content-length'] == ['13']


def test_plain_app_through_the_adapter_entry_point():
    adapter = get_adapter('asgi')
    assert adapter is asgi_adapter
    app = make_app(microdot.Microdot)
    status, _, body, _ = run(call(adapter(app), http_scope('/u/x')))
    assert (status, body) == (200, b'x')


def test_headers_latin1_and_repeated_kept():
    scope = http_scope('/info', headers=[('X-Multi', 'a'), ('x-multi', 'b'),
                                         ('Cookie', 'a=1'), ('cookie', 'b=2'),
                                         ('X-Latin', 'caf\xe9')])
    status, _, body, _ = run(call(make_app(), scope))
    import json
    data = json.loads(body)
    assert data['x'] == 'a, b'
    assert data['cookies'] == {'a': '1', 'b': '2'}
    assert data['scope_type'] == 'http'


def test_missing_client_is_handled():
    status, _, body, _ = run(call(make_app(), http_scope('/info', client=None)))
    assert status == 200
    import json
    assert json.loads(body)['client'] is None


def test_root_path_is_the_mount_prefix():
    import json
    # servers that include root_path in path (current ASGI) and ones that do not
    for path in ('/api/info', '/info'):
        scope = http_scope(path, root_path='/api', query=b'a=1')
        status, _, body, _ = run(call(make_app(), scope))
        assert status == 200, path
        data = json.loads(body)
        assert data['path'] == '/info' and data['prefix'] == '/api'
        assert data['args'] == {'a': '1'} and data['url'] == '/info?a=1'


def test_percent_encoded_path_arguments_are_decoded_once():
    scope = http_scope('/u/caf\xe9', raw_path=b'/u/caf%C3%A9')
    status, _, body, _ = run(call(make_app(), scope))
    assert body.decode() == 'caf\xe9'


def test_body_with_and_without_content_length():
    app = make_app()
    messages = [{'type': 'http.request', 'body': b'hel', 'more_body': True},
                {'type': 'http.request', 'body': b'lo', 'more_body': False}]
    status, _, body, _ = run(call(app, http_scope('/echo', 'POST',
                                                   headers=[('Content-Length', '5')]),
                                  messages))
    assert body == b'hello'
    status, _, body, _ = run(call(app, http_scope('/echo', 'POST'), list(messages)))
    assert (status, body) == (200, b'hello')  # chunked / HTTP/2: no Content-Length


def test_large_body_read_with_stream_read_without_size():
    app = make_app()
    app.max_content_length = 1 << 20
    chunk = b'x' * 30000
    messages = [{'type': 'http.request', 'body': chunk, 'more_body': True}] * 3 + \
        [{'type': 'http.request', 'body': b'', 'more_body': False}]
    status, _, body, _ = run(call(app, http_scope('/echo', 'POST'), messages))
    assert status == 200 and body == chunk * 3


def test_undeclared_body_over_the_limit_is_413():
    app = make_app()
    messages = [{'type': 'http.request', 'body': b'x' * 10000, 'more_body': True}] * 3 + \
        [{'type': 'http.request', 'body': b'', 'more_body': False}]
    status, _, _, _ = run(call(app, http_scope('/echo', 'POST'), messages))
    assert status == 413
    status, _, _, _ = run(call(app, http_scope('/echo', 'POST',
                                               headers=[('Content-Length', '99999')])))
    assert status == 413


def test_head_sends_no_body():
    status, headers, body, sent = run(call(make_app(), http_scope('/', 'HEAD')))
    assert status == 200 and body == b'' and headers['content-length'] == ['13']


def test_streaming_sends_chunks_and_stops_on_disconnect():
    app = Microdot()

    state = {'closed': False, 'sent': 0}

    @app.route('/stream')
    async def stream(req):
        async def gen():
            try:
                while True:
                    state['sent'] += 1
                    yield 'tick\n'
                    await asyncio.sleep(0.01)
            finally:
                state['closed'] = True
        return gen()

    # disconnect after the start message and two body chunks
    status, _, body, sent = run(call(app, http_scope('/stream'), disconnect_after=3))
    assert status == 200
    assert state['closed'] is True
    assert body.startswith(b'tick\ntick\n')
    assert state['sent'] < 20


def test_idle_generator_is_stopped_on_disconnect():
    app = Microdot()
    state = {'closed': False}

    @app.route('/idle')
    async def idle(req):
        async def gen():
            try:
                yield 'first\n'
                await asyncio.Event().wait()  # never produces again
                yield 'never'
            finally:
                state['closed'] = True
        return gen()

    status, _, body, _ = run(call(app, http_scope('/idle'), disconnect_after=2))
    assert body == b'first\n' and state['closed']


def slow_cleanup_app(log):
    """A stream whose generator needs a few loop turns to clean up (as closing a
    database cursor would), and a shutdown hook: both record into ``log``."""
    app = Microdot()

    @app.route('/stream')
    async def stream(req):
        async def gen():
            try:
                yield 'first\n'
                await asyncio.Event().wait()
            finally:
                for _ in range(5):
                    await asyncio.sleep(0)
                log.append('stream cleaned up')
        return gen()

    @app.on_shutdown
    def bye():
        log.append('shutdown hooks')

    return app


async def start_stream(app):
    """Start ``GET /stream``; returns its task and inbox once the first chunk was sent."""
    first = asyncio.Event()
    inbox = asyncio.Queue()
    inbox.put_nowait({'type': 'http.request', 'body': b'', 'more_body': False})

    async def send(message):
        if message.get('body'):
            first.set()

    task = asyncio.ensure_future(app(http_scope('/stream'), inbox.get, send))
    await asyncio.wait_for(first.wait(), 5)
    return task, inbox


@pytest.mark.parametrize('client_left_first', [False, True])
def test_cancelled_stream_task_ends_cancelled(client_left_first):
    """A server that gives up on a response cancels its task: the body is stopped and
    the cancellation is not swallowed, also while the body is still cleaning up after
    the client left; without that, the body's cleanup runs before the task ends."""
    log = []

    async def main():
        app = slow_cleanup_app(log)
        task, inbox = await start_stream(app)
        if client_left_first:
            inbox.put_nowait({'type': 'http.disconnect'})
            for _ in range(3):  # the adapter is now waiting for the cleanup
                await asyncio.sleep(0)
            assert log == []
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        assert task.cancelled()
        if client_left_first:  # the body's own task finishes the cleanup
            await asyncio.wait(app._asgi.open_tasks, timeout=5)
        assert log == ['stream cleaned up']
        assert not app._asgi.open_tasks

    run(main())


@pytest.mark.parametrize('client_left_first', [False, True])
def test_lifespan_shutdown_waits_for_cancelled_streams(client_left_first):
    """uvicorn with --timeout-graceful-shutdown cancels the open responses, then
    sends lifespan.shutdown at once: the streams' cleanup comes before the hooks."""
    log = []

    async def main():
        app = slow_cleanup_app(log)
        task, inbox = await start_stream(app)
        lifespan_inbox = asyncio.Queue()
        sent = []

        async def lifespan_send(message):
            sent.append(message['type'])

        lifespan_inbox.put_nowait({'type': 'lifespan.startup'})
        lifespan = asyncio.ensure_future(app({'type': 'lifespan', 'asgi': {'version': '3.0'}},
                                             lifespan_inbox.get, lifespan_send))
        while not sent:
            await asyncio.sleep(0)
        if client_left_first:
            inbox.put_nowait({'type': 'http.disconnect'})
            await asyncio.sleep(0)
        task.cancel()
        lifespan_inbox.put_nowait({'type': 'lifespan.shutdown'})
        await asyncio.wait_for(lifespan, 5)
        assert sent == ['lifespan.startup.complete', 'lifespan.shutdown.complete']

    run(main())
    assert log == ['stream cleaned up', 'shutdown hooks']


def test_error_in_a_streamed_body_is_logged(caplog):
    app = Microdot()

    @app.route('/broken')
    async def broken(req):
        async def gen():
            yield 'part\n'
            raise RuntimeError('generator failed (expected by the test)')
        return gen()

    status, _, body, _ = run(call(app, http_scope('/broken')))
    assert (status, body) == (200, b'part\n')
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ['Error while streaming a response']
    assert 'generator failed' in str(errors[0].exc_info[1])


def test_invalid_response_header_gives_500_not_injection(caplog):
    app = Microdot()

    @app.route('/bad')
    async def bad(req):
        return 'x', {'X-Bad': 'a\r\nSet-Cookie: evil=1'}

    with caplog.at_level(logging.ERROR):
        status, headers, body, _ = run(call(app, http_scope('/bad')))
    assert status == 500 and 'set-cookie' not in headers


def test_real_reason_independent_statuses():
    app = Microdot()

    @app.route('/teapot')
    async def teapot(req):
        return 'short and stout', 418

    status, _, body, _ = run(call(app, http_scope('/teapot')))
    assert status == 418


@pytest.mark.parametrize('returned, status, ctype', [
    ('plain', 200, 'text/plain; charset=UTF-8'),
    (('made', 201), 201, 'text/plain; charset=UTF-8'),
    ((b'raw', 418), 418, 'text/plain; charset=UTF-8'),
    ({'a': 1}, 200, 'application/json; charset=UTF-8'),
])
def test_plain_byte_responses_have_exactly_type_and_length(returned, status, ctype):
    app = Microdot()
    app.route('/')(lambda req: returned)
    got, headers, body, sent = run(call(app, http_scope('/')))
    assert got == status and headers == {'content-type': [ctype],
                                         'content-length': [str(len(body))]}
    assert [m['type'] for m in sent] == ['http.response.start', 'http.response.body']
    assert body and not sent[1].get('more_body')


def test_changed_default_content_type_is_used(monkeypatch):
    monkeypatch.setattr(microdot.Response, 'default_content_type', 'text/html')
    app = Microdot()
    app.route('/')(lambda req: '<b>x</b>')
    _, headers, body, _ = run(call(app, http_scope('/')))
    assert headers['content-type'] == ['text/html; charset=UTF-8'] and body == b'<b>x</b>'
    monkeypatch.setattr(microdot.Response, 'default_content_type', 'application/x-thing')
    _, headers, _, _ = run(call(app, http_scope('/')))
    assert headers['content-type'] == ['application/x-thing; charset=UTF-8']


def test_unsendable_default_content_type_gives_500(monkeypatch, caplog):
    monkeypatch.setattr(microdot.Response, 'default_content_type', 'text/plain\r\nX-Evil: 1')
    app = Microdot()
    app.route('/')(lambda req: 'x')
    with caplog.at_level(logging.ERROR):
        status, headers, _, _ = run(call(app, http_scope('/')))
    assert status == 500 and 'x-evil' not in headers
    assert headers['content-type'] == ['text/plain; charset=UTF-8']


def test_headers_are_only_decoded_when_read():
    app = Microdot()
    seen = {}

    @app.route('/')
    async def index(req):
        seen['before'] = req._headers
        return req.headers.get('X-A', '-')

    _, _, body, _ = run(call(app, http_scope('/', headers=[('X-A', 'v')])))
    assert seen['before'] is None and body == b'v'


def lifespan_run(app, fail_startup=False):
    messages = asyncio.Queue()
    sent = []

    async def receive():
        return await messages.get()

    async def send(message):
        sent.append(message['type'])

    async def main():
        messages.put_nowait({'type': 'lifespan.startup'})
        task = asyncio.ensure_future(app({'type': 'lifespan', 'asgi': {'version': '3.0'}},
                                         receive, send))
        while not sent:
            await asyncio.sleep(0)
        if sent[-1] == 'lifespan.startup.complete':
            messages.put_nowait({'type': 'lifespan.shutdown'})
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    return sent


def test_lifespan_hooks_sync_async_and_zero_argument():
    calls = []

    async def startup(scope):
        calls.append(('startup', scope['type']))

    def shutdown():
        calls.append('shutdown')

    app = Microdot(lifespan_startup=startup, lifespan_shutdown=shutdown)

    @app.on_startup
    def core_start():
        calls.append('core-start')

    @app.on_shutdown
    async def core_stop(scope):
        calls.append('core-stop')

    assert lifespan_run(app) == ['lifespan.startup.complete', 'lifespan.shutdown.complete']
    assert calls == [('startup', 'lifespan'), 'core-start', 'core-stop', 'shutdown']


def test_lifespan_startup_failure_is_reported():
    def boom(scope):
        raise RuntimeError('no database')

    app = Microdot(lifespan_startup=boom)
    assert lifespan_run(app) == ['lifespan.startup.failed']


def test_unknown_scope_type_is_refused():
    async def main():
        await make_app()({'type': 'smtp'}, None, None)

    with pytest.raises(ValueError, match="scope type 'smtp'"):
        asyncio.run(main())


def test_scope_without_raw_path_uses_the_decoded_path():
    scope = http_scope('/u/caf\xe9')
    del scope['raw_path']
    status, _, body, _ = run(call(make_app(), scope))
    assert (status, body.decode()) == (200, 'caf\xe9')
