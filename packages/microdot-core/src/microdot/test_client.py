"""An in-process client for unit tests, without a socket.

Requests go through the HTTP/1.1 parser and the application's dispatch, as they do
on the built-in server.
"""
from __future__ import annotations

import json as _json
from typing import (TYPE_CHECKING, Any, AsyncGenerator, Callable, Dict, Generator, List,
                    Mapping, Optional, Tuple, Union, cast)

from . import ws_protocol as _wsp
from .requests import Request, parse_cookies
from .responses import Response, close_body
from .responses import dumps as _dumps
from .streams import AsyncBytesIO
from .structures import NoCaseDict

if TYPE_CHECKING:
    from .app import Microdot

#: The client of :meth:`TestClient.websocket`: a generator function, sync or async.
WebSocketClient = Callable[[], Union[Generator[Any, Any, Any], AsyncGenerator[Any, Any]]]


class TestResponse:
    """What the application answered: status, headers, body, and decoded forms.

    Attributes:
        status_code: The status (``None`` after a WebSocket session the
            application ended).
        reason: The reason phrase the application gave, else ``None``.
        headers: The response headers.
        body: The body (``None`` for HEAD).
        text: The body decoded as UTF-8 (``None`` if it is not UTF-8).
        json: The decoded body of an ``application/json`` answer.
        events: The events of a ``text/event-stream`` answer (see
            :func:`parse_sse`).
        close_code: For :meth:`TestClient.websocket`: the code of the server's Close
            frame (``None`` if it sent none).
        close_reason: Its reason.
    """

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.status_code: Optional[int] = None
        self.reason: Optional[str] = None
        self.headers: NoCaseDict[Any] = NoCaseDict()
        self.body: Optional[bytes] = None
        self.text: Optional[str] = None
        self.json: Any = None
        self.events: Optional[List[Dict[str, Any]]] = None
        #: For :meth:`TestClient.websocket`: the code and reason of the server's Close
        #: frame (``None`` if it sent none).
        self.close_code: Optional[int] = None
        self.close_reason: Optional[str] = None

    @classmethod
    async def create(cls, res: Response) -> 'TestResponse':
        """Read a response in full.

        For a HEAD request the body is not read and ``body``, ``text``, ``json`` and
        ``events`` stay ``None``, as in Microdot.

        Args:
            res: The response the application returned.

        Returns:
            The test response.
        """
        self = cls()
        self.status_code = res.status_code
        self.reason = res.reason  # None unless the application gave one, as in Microdot
        res.complete()
        self.headers = NoCaseDict(res.headers)
        if res.is_head:
            close_body(res.body)
            return self
        chunks: List[bytes] = []
        async for chunk in res.body_iter():
            chunks.append(chunk)
        self.body = b''.join(chunks)
        try:
            self.text = self.body.decode()
        except UnicodeDecodeError:
            self.text = None
        ctype = (self.headers.get('Content-Type') or '').split(';')[0].strip()
        if ctype == 'application/json' and self.body:
            self.json = _json.loads(self.body)
        elif ctype == 'text/event-stream' and self.text is not None:
            self.events = parse_sse(self.text)
        return self


def parse_sse(text: str) -> List[Dict[str, Any]]:
    """Parse a ``text/event-stream`` body into events, as Microdot's test client does.

    Several ``data:`` lines are joined with newlines; events without data (comments,
    bare fields) are skipped.

    Args:
        text: The body.

    Returns:
        One dict per event: ``{'data': bytes, 'data_json': decoded JSON or None,
        'event': str or None, 'event_id': str or None, 'retry': seconds or None}``.
    """
    events: List[Dict[str, Any]] = []
    fields: Dict[str, Any] = {}
    data: List[str] = []
    for line in text.replace('\r\n', '\n').replace('\r', '\n').split('\n') + ['']:
        if not line:
            if data:
                joined = '\n'.join(data).encode()
                try:
                    data_json = _json.loads(joined)
                except ValueError:
                    data_json = None
                retry = fields.get('retry')
                events.append({'data': joined, 'data_json': data_json,
                               'event': fields.get('event'), 'event_id': fields.get('id'),
                               'retry': int(retry) / 1000 if retry and retry.isdigit()
                               else None})
            fields, data = {}, []
            continue
        if line.startswith(':'):
            continue
        name, _, value = line.partition(':')
        if value.startswith(' '):
            value = value[1:]
        if name == 'data':
            data.append(value)
        elif name in ('event', 'id', 'retry'):
            fields[name] = value
    return events


class _WebSocketPeer:
    """The client end of an in-process WebSocket: masked frames to the application,
    driven by a (sync or async) generator, as Microdot's test client does.

    The application reading with nothing pending advances the generator with
    ``None``; each message the application sends is passed in as the value of the
    pending ``yield``. Whatever the generator yields (other than ``None``) is sent.
    """

    def __init__(self, client: WebSocketClient, key: str, subprotocols: List[str]) -> None:
        self.gen: Any = client()
        self.is_async = hasattr(self.gen, 'asend')
        self.key = key
        self.subprotocols = subprotocols
        self.conn = _wsp.WebSocketConnection(is_client=True, max_message_size=None)
        self.outgoing = bytearray()
        self.head = b''
        self.head_done = False
        self.status_code: Optional[int] = None
        self.reason: Optional[str] = None
        self.headers: NoCaseDict[str] = NoCaseDict()
        self.started = False
        self.finished = False
        self.eof = False
        self.close_code: Optional[int] = None
        self.close_reason: Optional[str] = None
        self.error: Optional[BaseException] = None

    async def _advance(self, value: Any, delivery: bool = False) -> None:
        """Resume the client generator with ``value`` (a server message if
        ``delivery``); queue what it yields."""
        if self.finished:
            return
        if not self.started and delivery:  # a message before the first read: start first
            await self._advance(None)
            if self.finished:
                return
        try:
            if self.is_async:
                msg = await self.gen.asend(value if self.started else None)
            else:
                msg = self.gen.send(value if self.started else None)
            self.started = True
        except (StopIteration, StopAsyncIteration):
            self.finished = True
            self.outgoing += self.conn.close(_wsp.CLOSE_NORMAL)
            return
        except Exception as exc:  # a failed assertion in the client: re-raised later
            self.finished = True
            self.error = exc
            self.eof = True
            return
        if msg is not None:
            if isinstance(msg, (bytearray, memoryview)):
                msg = bytes(cast(Any, msg))
            try:
                self.outgoing += self.conn.send(msg)
            except _wsp.ConnectionClosed:
                pass

    async def read(self, n: Optional[int] = -1) -> bytes:
        while not self.outgoing and not self.eof:
            if self.finished or self.conn.close_sent:
                self.eof = True
                break
            await self._advance(None)
        if n is None or n < 0:
            n = len(self.outgoing)
        data = bytes(self.outgoing[:n])
        del self.outgoing[:n]
        return data

    async def readexactly(self, n: int) -> bytes:
        data = await self.read(n)
        if len(data) < n:
            raise EOFError('expected %d bytes, got %d' % (n, len(data)))
        return data

    def _parse_head(self, data: bytes) -> bytes:
        self.head += data
        end = self.head.find(b'\r\n\r\n')
        if end < 0:
            return b''
        head, rest = self.head[:end], self.head[end + 4:]
        self.head_done = True
        lines = head.decode('latin-1').split('\r\n')
        _, status, reason = (lines[0].split(' ', 2) + [''])[:3]
        self.status_code = int(status)
        self.reason = reason
        for line in lines[1:]:
            name, _, value = line.partition(':')
            self.headers[name.strip()] = value.strip()
        try:
            _wsp.check_handshake_response(self.status_code, self.headers.get, self.key,
                                          self.subprotocols)
        except _wsp.HandshakeError as exc:
            self.error = exc
            self.eof = True
        return rest

    async def awrite(self, data: bytes) -> None:
        if not self.head_done:
            data = self._parse_head(bytes(data))
            if not data:
                return
        self.conn.receive_data(bytes(data))
        try:
            for event in self.conn.events():
                if isinstance(event, _wsp.Message):
                    await self._advance(event.data, delivery=True)
                elif isinstance(event, _wsp.Ping):
                    if not self.conn.close_sent:
                        self.outgoing += self.conn.pong(event.data)
                elif isinstance(event, _wsp.Close) and event.code != _wsp.CLOSE_ABNORMAL:
                    self.close_code = event.code
                    self.close_reason = event.reason
                    self.outgoing += self.conn.answer_close()
        except _wsp.ProtocolError as exc:  # the application broke the protocol
            self.error = exc
            self.eof = True

    async def aclose(self) -> None:
        self.eof = True

    async def close_generator(self) -> None:
        if self.is_async:
            await self.gen.aclose()
        else:
            self.gen.close()


def _path_matches(request_path: str, cookie_path: str) -> bool:
    """RFC 6265 path matching: is ``request_path`` inside ``cookie_path``?"""
    if request_path == cookie_path or cookie_path == '/':
        return True
    return request_path.startswith(cookie_path.rstrip('/') + '/')


class TestClient:
    """Send requests to an application in-process; cookies set by responses are kept.

    Args:
        app: The application.
        cookies: The cookie jar to start with, as Microdot keeps it: ``name ->
            value``, or ``name -> (value, path)`` for a cookie whose path is not
            ``/``; the dict given is used (and updated) as it is.
        scheme: The request scheme (``'https'`` for the application to see secure
            requests).
        host: The ``Host`` header sent.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, app: Microdot,
                 cookies: Optional[Dict[str, Union[str, Tuple[str, str]]]] = None,
                 scheme: Optional[str] = None, host: Optional[str] = None) -> None:
        self.app = app
        #: The cookie jar, as Microdot keeps it: ``name -> value``, or ``name ->
        #: (value, path)`` for a cookie whose path is not ``/``. The dict given is used
        #: (and updated) as it is.
        self.cookies: Dict[str, Union[str, Tuple[str, str]]] = cookies or {}
        self.scheme = scheme
        self.host = host or 'example.com:1234'

    def _request_bytes(self, method: str, path: str,
                       headers: Optional[Mapping[str, Any]], body: Any) -> bytes:
        fields: NoCaseDict[Any] = NoCaseDict(headers or {})
        if body is None:
            body = b''
        elif isinstance(body, (dict, list)):
            body = _dumps(body)  # orjson's compact output when installed, as Microdot
            fields.setdefault('Content-Type', 'application/json')
        elif isinstance(body, str):
            body = body.encode()
        if body:  # (as Microdot: no Content-Length for an empty body)
            fields.setdefault('Content-Length', str(len(body)))
        request_path = path.partition('?')[0]
        pairs: List[str] = []
        for name, cookie in self.cookies.items():
            cookie_path = '/'
            if isinstance(cookie, tuple):
                cookie, cookie_path = cookie
            if _path_matches(request_path, cookie_path):
                pairs.append('%s=%s' % (name, cookie))
        jar = '; '.join(pairs)
        if jar:
            if 'Cookie' in fields:
                fields['Cookie'] = fields['Cookie'] + '; ' + jar
            else:
                fields['Cookie'] = jar
        lines = ['%s %s HTTP/1.1' % (method, path)]
        if 'Host' not in fields:  # first, as Microdot sends it
            lines.append('Host: ' + self.host)
        for name, value in fields.items():
            if value is None:
                continue
            text = str(value).strip()  # e.g. base64 helpers that end in a newline
            if '\r' in text or '\n' in text:
                raise ValueError('header %r may not contain CR or LF' % name)
            lines.append('%s: %s' % (name, text))
        head = ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1')
        data: bytes = head + body
        return data

    def _update_cookies(self, res: Response) -> None:
        values: Any = res.headers.get('Set-Cookie') or []
        if isinstance(values, str):
            values = [values]
        for value in values:
            pair, _, attrs = value.partition(';')
            name, _, cookie_value = pair.strip().partition('=')
            attributes = parse_cookies(attrs)
            lower = {k.lower(): v for k, v in attributes.items()}
            max_age = lower.get('max-age', '').strip()
            delete = (max_age.lstrip('-').isdigit() and int(max_age) <= 0) or \
                'jan 1970' in lower.get('expires', '').lower()
            path = lower.get('path') or '/'
            if delete:
                current = self.cookies.get(name)
                if current is not None and \
                        (current[1] if isinstance(current, tuple) else '/') == path:
                    del self.cookies[name]
            else:
                self.cookies[name] = cookie_value if path == '/' else (cookie_value, path)

    async def request(self, method: str, path: str, headers: Optional[Dict[str, str]] = None,
                      body: Any = None, sock: Any = None) -> TestResponse:
        """Send one request.

        Args:
            method: The HTTP method.
            path: The path, with its query string.
            headers: Request headers (a ``None`` value sends no such header).
            body: The body: bytes, ``str``, or a ``dict``/``list`` sent as JSON.
            sock: The ``(reader, writer)`` pair the application sees as
                ``request.sock`` (default: in-memory ones).

        Returns:
            The application's answer.

        Raises:
            ValueError: If a header value holds CR or LF.
        """
        raw = self._request_bytes(method, path, headers, body)
        reader = AsyncBytesIO(raw)
        if sock is None:
            sock = (reader, AsyncBytesIO(b''))
        try:
            req = await Request.create(self.app, reader, sock[1], ('127.0.0.1', 1234),
                                       scheme=self.scheme)
        except Exception:
            req = None
        if req is not None:
            req.sock = sock
        res = await self.app.dispatch_request(req)
        if res is Response.already_handled:
            return TestResponse()
        self._update_cookies(res)
        return await TestResponse.create(res)

    async def get(self, path: str, headers: Optional[Dict[str, str]] = None) -> TestResponse:
        """Send a GET request.

        Args:
            path: The path, with its query string.
            headers: Request headers.

        Returns:
            The application's answer.
        """
        return await self.request('GET', path, headers=headers)

    async def post(self, path: str, headers: Optional[Dict[str, str]] = None,
                   body: Any = None) -> TestResponse:
        """Send a POST request.

        Args:
            path: The path, with its query string.
            headers: Request headers.
            body: The body: bytes, ``str``, or a ``dict``/``list`` sent as JSON.

        Returns:
            The application's answer.
        """
        return await self.request('POST', path, headers=headers, body=body)

    async def put(self, path: str, headers: Optional[Dict[str, str]] = None,
                  body: Any = None) -> TestResponse:
        """Send a PUT request.

        Args:
            path: The path, with its query string.
            headers: Request headers.
            body: The body: bytes, ``str``, or a ``dict``/``list`` sent as JSON.

        Returns:
            The application's answer.
        """
        return await self.request('PUT', path, headers=headers, body=body)

    async def patch(self, path: str, headers: Optional[Dict[str, str]] = None,
                    body: Any = None) -> TestResponse:
        """Send a PATCH request.

        Args:
            path: The path, with its query string.
            headers: Request headers.
            body: The body: bytes, ``str``, or a ``dict``/``list`` sent as JSON.

        Returns:
            The application's answer.
        """
        return await self.request('PATCH', path, headers=headers, body=body)

    async def delete(self, path: str, headers: Optional[Dict[str, str]] = None) -> TestResponse:
        """Send a DELETE request.

        Args:
            path: The path, with its query string.
            headers: Request headers.

        Returns:
            The application's answer.
        """
        return await self.request('DELETE', path, headers=headers)

    async def query(self, path: str, headers: Optional[Dict[str, str]] = None,
                    body: Any = None) -> TestResponse:
        """Send a QUERY request.

        Args:
            path: The path, with its query string.
            headers: Request headers.
            body: The body: bytes, ``str``, or a ``dict``/``list`` sent as JSON.

        Returns:
            The application's answer.
        """
        return await self.request('QUERY', path, headers=headers, body=body)

    async def head(self, path: str, headers: Optional[Dict[str, str]] = None) -> TestResponse:
        """Send a HEAD request.

        Args:
            path: The path, with its query string.
            headers: Request headers.

        Returns:
            The application's answer.
        """
        return await self.request('HEAD', path, headers=headers)

    async def options(self, path: str, headers: Optional[Dict[str, str]] = None) -> TestResponse:
        """Send a OPTIONS request.

        Args:
            path: The path, with its query string.
            headers: Request headers.

        Returns:
            The application's answer.
        """
        return await self.request('OPTIONS', path, headers=headers)

    async def websocket(self, path: str, client: WebSocketClient,
                        headers: Optional[Dict[str, Optional[str]]] = None) -> TestResponse:
        """Open a WebSocket on a path and talk to it with a generator.

        ``client`` is a (sync or async) generator function: each value it yields is
        sent, and ``x = yield msg`` receives the application's next message. Frames are
        masked and go through the real handshake. Returns when the generator or the
        handler ends.

        Args:
            path: The path of the WebSocket route.
            client: The generator function.
            headers: More handshake headers; a ``None`` value removes that handshake
                header.

        Returns:
            The answer: the handshake status, and ``close_code``/``close_reason``.

        Raises:
            HandshakeError: If the application's handshake answer is not valid.
            Exception: What the client generator raised (a failed assertion...).
        """
        pairs, key = _wsp.client_handshake_headers()
        ws_headers: Dict[str, Optional[str]] = dict(pairs)
        ws_headers.update(headers or {})
        final = {k: v for k, v in ws_headers.items() if v is not None}
        offered = NoCaseDict(final).get('Sec-WebSocket-Protocol') or ''
        peer = _WebSocketPeer(client, NoCaseDict(final).get('Sec-WebSocket-Key') or key,
                              [p.strip() for p in offered.split(',') if p.strip()])
        try:
            res = await self.request('GET', path, headers=final, sock=(peer, peer))
        finally:
            await peer.close_generator()
        if res.status_code is None and peer.status_code is not None:
            res.status_code = peer.status_code
            res.reason = peer.reason
            res.headers = peer.headers  # body, text and json stay None, as in Microdot
        res.close_code = peer.close_code
        res.close_reason = peer.close_reason
        if peer.error is not None:
            raise peer.error
        return res
