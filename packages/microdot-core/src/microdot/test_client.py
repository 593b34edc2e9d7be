"""An in-process client for unit tests: requests go through the HTTP/1.1 parser and
the application's dispatch, without a socket."""
from __future__ import annotations

import json as _json
from typing import Any, Dict, List, Optional, Union

from .requests import Request, parse_cookies
from .responses import Response
from .streams import AsyncBytesIO
from .structures import NoCaseDict


class TestResponse:
    """What the application answered: status, headers, body, and decoded forms."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.status_code: Optional[int] = None
        self.reason: Optional[str] = None
        self.headers: NoCaseDict = NoCaseDict()
        self.body: Optional[bytes] = None
        self.text: Optional[str] = None
        self.json: Any = None
        self.events: Optional[List[Dict[str, Any]]] = None

    @classmethod
    async def create(cls, res: Response) -> 'TestResponse':
        self = cls()
        self.status_code = res.status_code
        self.reason = res.reason_phrase()
        res.complete()
        self.headers = NoCaseDict(res.headers)
        chunks = []
        if not res.is_head:
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
    """Parse a ``text/event-stream`` body into events (``data``, ``event``, ``id``...)."""
    events: List[Dict[str, Any]] = []
    event: Dict[str, Any] = {}
    data: List[str] = []
    for line in text.replace('\r\n', '\n').split('\n'):
        if not line:
            if data or event:
                if data:
                    joined = '\n'.join(data)
                    try:
                        event['data'] = _json.loads(joined)
                    except ValueError:
                        event['data'] = joined
                events.append(event)
            event, data = {}, []
            continue
        if line.startswith(':'):
            continue
        name, _, value = line.partition(':')
        if value.startswith(' '):
            value = value[1:]
        if name == 'data':
            data.append(value)
        elif name in ('event', 'id', 'retry'):
            event[name] = value
    return events


class TestClient:
    """Send requests to ``app`` in-process; cookies set by responses are kept."""

    __test__ = False  # not a pytest test class

    def __init__(self, app: Any, cookies: Optional[Dict[str, str]] = None,
                 scheme: Optional[str] = None, host: Optional[str] = None) -> None:
        self.app = app
        self.cookies: Dict[str, str] = dict(cookies or {})
        self.scheme = scheme
        self.host = host or 'example.com:1234'

    def _request_bytes(self, method: str, path: str, headers: Optional[Dict[str, str]],
                       body: Any) -> bytes:
        headers = NoCaseDict(headers or {})
        if body is None:
            body = b''
        elif isinstance(body, (dict, list)):
            body = _json.dumps(body).encode()
            headers.setdefault('Content-Type', 'application/json')
        elif isinstance(body, str):
            body = body.encode()
        if body or method in ('POST', 'PUT', 'PATCH', 'QUERY'):
            headers.setdefault('Content-Length', str(len(body)))
        headers.setdefault('Host', self.host)
        if self.cookies:
            jar = '; '.join('%s=%s' % kv for kv in self.cookies.items())
            if 'Cookie' in headers:
                headers['Cookie'] = headers['Cookie'] + '; ' + jar
            else:
                headers['Cookie'] = jar
        lines = ['%s %s HTTP/1.1' % (method, path)]
        for name, value in headers.items():
            lines.append('%s: %s' % (name, value))
        return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + body

    def _update_cookies(self, res: Response) -> None:
        values = res.headers.get('Set-Cookie') or []
        if isinstance(values, str):
            values = [values]
        for value in values:
            pair, _, attrs = value.partition(';')
            name, _, cookie_value = pair.strip().partition('=')
            attributes = parse_cookies(attrs)
            lower = {k.lower(): v for k, v in attributes.items()}
            delete = lower.get('max-age', '1').strip() in ('0', '-1') or \
                'Jan 1970' in lower.get('expires', '') or \
                'Thu, 01 Jan 1970' in attrs
            if delete:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie_value

    async def request(self, method: str, path: str, headers: Optional[Dict[str, str]] = None,
                      body: Any = None, sock: Any = None) -> TestResponse:
        """Send one request; ``body`` may be bytes, str, or a dict/list (sent as JSON)."""
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
        return await self.request('GET', path, headers=headers)

    async def post(self, path: str, headers: Optional[Dict[str, str]] = None,
                   body: Any = None) -> TestResponse:
        return await self.request('POST', path, headers=headers, body=body)

    async def put(self, path: str, headers: Optional[Dict[str, str]] = None,
                  body: Any = None) -> TestResponse:
        return await self.request('PUT', path, headers=headers, body=body)

    async def patch(self, path: str, headers: Optional[Dict[str, str]] = None,
                    body: Any = None) -> TestResponse:
        return await self.request('PATCH', path, headers=headers, body=body)

    async def delete(self, path: str, headers: Optional[Dict[str, str]] = None) -> TestResponse:
        return await self.request('DELETE', path, headers=headers)

    async def query(self, path: str, headers: Optional[Dict[str, str]] = None,
                    body: Any = None) -> TestResponse:
        return await self.request('QUERY', path, headers=headers, body=body)

    async def head(self, path: str, headers: Optional[Dict[str, str]] = None) -> TestResponse:
        return await self.request('HEAD', path, headers=headers)

    async def options(self, path: str, headers: Optional[Dict[str, str]] = None) -> TestResponse:
        return await self.request('OPTIONS', path, headers=headers)
