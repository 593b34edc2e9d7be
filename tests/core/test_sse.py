"""microdot.sse: the event-stream format, keep-alives and the event task's lifetime."""
import asyncio
import logging

import pytest

from microdot import Microdot, Request, Response
from microdot.sse import SSE, sse_response, with_sse
from microdot.test_client import TestClient



def values(res):
    """Event data as the app sent it: decoded JSON, else text (upstream's shape)."""
    return [e['data_json'] if e['data_json'] is not None else e['data'].decode()
            for e in res.events]

def run(coro):
    return asyncio.run(coro)


def app_with(event_function, **options):
    app = Microdot()
    app.route('/events')(with_sse(**options)(event_function) if options
                         else with_sse(event_function))
    return app


def get(app, path='/events'):
    return run(TestClient(app).get(path))


def test_headers_and_plain_event():
    async def events(request, sse):
        await sse.send('hello')

    res = get(app_with(events))
    assert res.status_code == 200
    assert res.headers['Content-Type'] == 'text/event-stream'
    assert res.headers['Cache-Control'] == 'no-cache'
    assert res.headers['X-Accel-Buffering'] == 'no'
    assert res.body == b'data: hello\n\n'
    assert values(res) == ['hello']


def test_every_line_break_starts_a_data_line():
    async def events(request, sse):
        await sse.send('a\nb\r\nc\rd')
        await sse.send(b'x\r\ny\n')

    res = get(app_with(events))
    assert res.body == (b'data: a\ndata: b\ndata: c\ndata: d\n\n'
                        b'data: x\ndata: y\ndata: \n\n')
    assert values(res) == ['a\nb\nc\nd', 'x\ny\n']


def test_data_cannot_inject_fields_or_events():
    attack = 'x\n\nevent: admin\nid: 666\nretry: 1\ndata: injected\r\rdata: more'

    async def events(request, sse):
        await sse.send(attack)

    res = get(app_with(events))
    assert len(res.events) == 1
    event = res.events[0]
    # no event, id or retry field got through
    assert (event['event'], event['event_id'], event['retry']) == (None, None, None)
    for line in res.body.split(b'\n'):
        assert line == b'' or line.startswith(b'data: ')
    assert event['data'] == attack.replace('\r', '\n').encode()


def test_json_data():
    async def events(request, sse):
        await sse.send({'a': 1, 'b': [1, 2]})
        await sse.send([1, 'two'])
        await sse.send({'text': 'multi\nline'})  # JSON escapes the newline: one line

    res = get(app_with(events))
    assert values(res) == [{'a': 1, 'b': [1, 2]}, [1, 'two'],
                                              {'text': 'multi\nline'}]
    assert res.body.count(b'data: ') == 3


def test_event_id_retry_and_comment_fields():
    async def events(request, sse):
        await sse.send('one', event='greeting', event_id='42', retry=2.5)
        await sse.send('ping', comment=True)
        await sse.send('two\nlines', comment=True)
        await sse.send('two', event_id=7)

    res = get(app_with(events))
    assert res.body == (b'retry: 2500\nevent: greeting\nid: 42\ndata: one\n\n'
                        b': ping\n\n: two\n: lines\n\n'
                        b'id: 7\ndata: two\n\n')
    assert res.events == [
        {'event': 'greeting', 'event_id': '42', 'retry': 2.5, 'data': b'one',
         'data_json': None},
        {'event': None, 'event_id': '7', 'retry': None, 'data': b'two', 'data_json': None}]


@pytest.mark.parametrize('kwargs', [
    {'event': 'bad\rname'}, {'event': 'bad\nname'}, {'event': 'nul\0'},
    {'event_id': '1\n2'}, {'event_id': '1\r'}, {'event_id': '\0'},
    {'retry': -1}, {'retry': 'soon'},
])
def test_invalid_fields_are_refused(kwargs):
    with pytest.raises(ValueError):
        SSE.format('data', **kwargs)

    async def main():
        sse = SSE()
        with pytest.raises(ValueError):
            await sse.send('data', **kwargs)
        assert not sse.queue

    run(main())


def test_sse_response_is_a_tuple_as_in_microdot():
    async def events(request, sse):
        await sse.send('x')

    req = Request(None, ('127.0.0.1', 1), 'GET', '/events', '1.1', {})
    body, status, headers = sse_response(req, events)
    assert status == 200
    assert headers['Content-Type'] == 'text/event-stream'
    assert hasattr(body, '__aiter__')
    run(body.aclose())


def test_sse_response_passes_arguments():
    app = Microdot()

    async def stream(request, sse, start, step=1):
        for i in range(start, start + 3 * step, step):
            await sse.send(i)

    @app.route('/count/<int:start>')
    async def count(request, start):
        return sse_response(request, stream, start, step=2)

    res = get(app, '/count/10')
    assert values(res) == [10, 12, 14]


def test_url_arguments_reach_the_event_function():
    app = Microdot()

    @app.route('/room/<name>')
    @with_sse
    async def room(request, sse, name):
        await sse.send('welcome to ' + name)

    assert get(app, '/room/lobby').events[0]['data'] == b'welcome to lobby'


def test_keepalive_comment_while_idle():
    async def events(request, sse):
        await asyncio.sleep(0.2)
        await sse.send('late')

    res = get(app_with(events, keepalive=0.03))
    assert res.body.startswith(b': keep-alive\n\n')
    assert res.body.endswith(b'data: late\n\n')
    assert values(res) == ['late']


def test_keepalive_disabled_and_class_default(monkeypatch):
    async def events(request, sse):
        await asyncio.sleep(0.1)
        await sse.send('x')

    assert get(app_with(events, keepalive=None)).body == b'data: x\n\n'
    monkeypatch.setattr(SSE, 'keepalive_interval', 0.02)
    assert get(app_with(events)).body.startswith(b': keep-alive')
    assert SSE().keepalive_interval == 0.02


def test_event_function_error_propagates_after_queued_events():
    async def events(request, sse):
        await sse.send('before')
        raise RuntimeError('broken feed')

    async def main():
        req = Request(None, ('127.0.0.1', 1), 'GET', '/events', '1.1', {})
        iterator = Response(*sse_response(req, events)).body_iter()
        assert await iterator.__anext__() == b'data: before\n\n'
        with pytest.raises(RuntimeError, match='broken feed'):
            await iterator.__anext__()

    run(main())
    with pytest.raises(RuntimeError, match='broken feed'):  # out of the test client
        get(app_with(events))


def test_event_function_error_after_the_client_left_is_logged(caplog):
    async def events(request, sse):
        await sse.send('first')
        raise RuntimeError('late failure')

    async def main():
        req = Request(None, ('127.0.0.1', 1), 'GET', '/events', '1.1', {})
        iterator = Response(*sse_response(req, events)).body_iter()
        assert await iterator.__anext__() == b'data: first\n\n'
        await asyncio.sleep(0)  # the event function fails while nobody reads
        await iterator.aclose()  # the client left: the error is only logged

    with caplog.at_level(logging.ERROR, logger='microdot.sse'):
        run(main())
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)


def test_closing_the_stream_cancels_the_event_function():
    state = []

    async def events(request, sse):
        try:
            for i in range(1000):
                await sse.send(i)
                await asyncio.sleep(0)
        finally:
            state.append('finally')

    async def main():
        app = app_with(events)
        req = Request(app, ('127.0.0.1', 1), 'GET', '/events', '1.1', {})
        res = await app.dispatch_request(req)
        body = res.body_iter()
        first = await body.__anext__()
        await body.aclose()
        return first

    assert run(main()) == b'data: 0\n\n'
    assert state == ['finally']


def test_server_shutdown_ends_the_stream_after_what_was_queued():
    state = []

    async def events(request, sse):
        try:
            await sse.send('start')
            await asyncio.Event().wait()  # nothing more until cancelled
        finally:
            state.append('finally')
            await sse.send('goodbye')  # queued on the way out: still delivered

    async def main():
        app = app_with(events, keepalive=None)
        req = Request(app, ('127.0.0.1', 1), 'GET', '/events', '1.1', {})
        res = await app.dispatch_request(req)
        body = res.body_iter()
        chunks = [await body.__anext__()]
        res.body.on_server_shutdown()
        chunks += [chunk async for chunk in body]
        return chunks

    assert run(asyncio.wait_for(main(), 10)) == [b'data: start\n\n', b'data: goodbye\n\n']
    assert state == ['finally']


def test_server_shutdown_before_the_stream_starts_sends_nothing():
    started = []

    async def events(request, sse):
        started.append(True)

    async def main():
        app = app_with(events)
        req = Request(app, ('127.0.0.1', 1), 'GET', '/events', '1.1', {})
        res = await app.dispatch_request(req)
        res.body.on_server_shutdown()
        return [chunk async for chunk in res.body_iter()]

    assert run(main()) == []
    assert started == []


def test_head_request_starts_no_task():
    started = []

    async def events(request, sse):
        started.append(True)
        await sse.send('x')

    res = run(TestClient(app_with(events)).head('/events'))
    assert res.status_code == 200
    assert started == []


def test_backpressure_bounds_the_queue(monkeypatch):
    monkeypatch.setattr(SSE, 'max_pending', 2)
    high = []

    async def events(request, sse):
        for i in range(20):
            await sse.send(i)
            high.append(len(sse.queue))

    res = get(app_with(events))
    assert values(res) == list(range(20))
    assert max(high) <= 2
