"""Serve the same Microdot applications with upstream Microdot and with this family, and
compare the answers byte for byte.

Usage (upstream Microdot 2.7 installed in a scratch virtualenv, never in ours)::

    python -m venv /tmp/up && /tmp/up/bin/pip install microdot==2.7.0 uvicorn gunicorn jinja2
    python tests/conformance/compare_upstream.py --upstream /tmp/up/bin/python \\
        [--utemplate /path/to/utemplate-1.4.1] [--servers builtin,uvicorn,gunicorn]

Each application in ``microdot_apps/`` runs under each server twice: once with the
interpreter running this script (this family) and once with ``--upstream``. Every request
of ``REQUESTS`` is sent on a fresh raw connection (``Connection: close``) and the two
answers are compared: status code, reason, each header except ``Date`` and ``Server``,
and the body (chunked bodies are de-chunked first; the framing is reported apart). The
script prints every difference and exits 1 if there is one that ``--allow`` does not
name. ``--allow`` takes ``server:header`` pairs for the deliberate differences listed in
``docs/migrating.md``.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, 'microdot_apps')
sys.path.insert(0, os.path.dirname(HERE))
from support import free_port, wait_for_port  # noqa: E402

BOUNDARY = 'XyZbOuNdArY'
UPLOAD = (
    '--{b}\r\nContent-Disposition: form-data; name="title"\r\n\r\nholiday\r\n'
    '--{b}\r\nContent-Disposition: form-data; name="photo"; filename="p.txt"\r\n'
    'Content-Type: text/plain\r\n\r\nhello file\r\n--{b}--\r\n'
).format(b=BOUNDARY).encode()

Req = Tuple[str, str, Dict[str, str], bytes]
REQUESTS: Dict[str, List[Req]] = {
    'app': [
        ('GET', '/', {}, b''),
        ('GET', '/sync', {}, b''),
        ('HEAD', '/', {}, b''),
        ('GET', '/html', {}, b''),
        ('GET', '/json', {}, b''),
        ('GET', '/list', {}, b''),
        ('GET', '/status', {}, b''),
        ('GET', '/status-headers', {}, b''),
        ('GET', '/empty', {}, b''),
        ('GET', '/bytes', {}, b''),
        ('GET', '/abort', {}, b''),
        ('GET', '/abort-reason', {}, b''),
        ('GET', '/crash', {}, b''),
        ('GET', '/zero', {}, b''),
        ('GET', '/blocked', {}, b''),
        ('GET', '/nowhere', {}, b''),
        ('GET', '/redirect', {}, b''),
        ('GET', '/response', {}, b''),
        ('GET', '/delete-cookie', {}, b''),
        ('GET', '/args?a=1&b=2&a=3&c=%C3%A9+x', {}, b''),
        ('GET', '/headers', {'X-Test': 'v', 'Cookie': 'a=1; b=2'}, b''),
        ('GET', '/headers', {'Cookie': 'a=1;flag;b=2'}, b''),
        ('GET', '/users/42/susan', {}, b''),
        ('GET', '/users/x/susan', {}, b''),
        ('GET', '/files/a/b/c.txt', {}, b''),
        ('GET', '/re/abc', {}, b''),
        ('GET', '/re/ABC', {}, b''),
        ('GET', '/methods', {}, b''),
        ('POST', '/methods', {}, b''),
        ('DELETE', '/methods', {}, b''),
        ('OPTIONS', '/methods', {}, b''),
        ('OPTIONS', '/', {}, b''),
        ('POST', '/echo-json', {'Content-Type': 'application/json'}, b'{"a": [1, 2]}'),
        ('POST', '/echo-json', {'Content-Type': 'application/json'}, b'{bad json'),
        ('POST', '/echo-form', {'Content-Type': 'application/x-www-form-urlencoded'},
         b'x=1&y=hello+world&x=2'),
        ('POST', '/echo-body', {'Content-Type': 'application/octet-stream'}, b'raw bytes'),
        ('POST', '/echo-body', {}, b'x' * 20000),
        ('POST', '/upload', {'Content-Type': 'multipart/form-data; boundary=' + BOUNDARY},
         UPLOAD),
        ('GET', '/session/set', {}, b''),
        ('GET', '/session/get', {}, b''),
        ('GET', '/static/style.css', {}, b''),
        ('GET', '/static/index.html', {}, b''),
        ('GET', '/static/notes.txt', {}, b''),
        ('GET', '/static/app.js', {}, b''),
        ('GET', '/static/data.json', {}, b''),
        ('GET', '/static/pixel.png', {}, b''),
        ('GET', '/static/file.xyz', {}, b''),
        ('GET', '/static/missing.txt', {}, b''),
        ('GET', '/send-file-type', {}, b''),
        ('GET', '/stream', {}, b''),
        ('GET', '/stream-sync', {}, b''),
        ('GET', '/video', {}, b''),
        ('GET', '/sse', {}, b''),
        ('GET', '/ws', {}, b''),
        ('GET', '/ws', {'Upgrade': 'websocket', 'Connection': 'Upgrade',
                        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
                        'Sec-WebSocket-Version': '13'}, b''),
        ('GET', '/api/data', {}, b''),
        ('GET', '/api/data', {'Origin': 'https://example.org'}, b''),
        ('OPTIONS', '/api/data', {'Origin': 'https://example.org',
                                  'Access-Control-Request-Method': 'POST'}, b''),
        ('GET', '/api/fail', {'Origin': 'https://example.org'}, b''),
        ('GET', '/api/nowhere', {'Origin': 'https://example.org'}, b''),
        ('PUT', '/api/data', {}, b''),
    ],
    'auth_app': [
        ('GET', '/basic', {}, b''),
        ('GET', '/basic', {'Authorization': 'Basic c3VzYW46aGVsbG8='}, b''),
        ('GET', '/basic', {'Authorization': 'Basic c3VzYW46d3Jvbmc='}, b''),
        ('GET', '/basic', {'Authorization': 'Basic !!!'}, b''),
        ('GET', '/basic-optional', {}, b''),
        ('GET', '/token', {}, b''),
        ('GET', '/token', {'Authorization': 'Bearer secret-token'}, b''),
        ('GET', '/token', {'Authorization': 'Bearer nope'}, b''),
        ('GET', '/me', {}, b''),
        ('GET', '/login', {}, b''),
        ('POST', '/login', {'Content-Type': 'application/x-www-form-urlencoded'},
         b'name=nobody'),
        ('POST', '/login', {'Content-Type': 'application/x-www-form-urlencoded'},
         b'name=susan'),
        ('POST', '/login?next=/me', {'Content-Type': 'application/x-www-form-urlencoded'},
         b'name=susan'),
        ('POST', '/submit', {'Sec-Fetch-Site': 'cross-site'}, b''),
        ('POST', '/submit', {'Sec-Fetch-Site': 'same-origin'}, b''),
        ('POST', '/submit', {'Origin': 'https://evil.example'}, b''),
        ('POST', '/submit', {'Origin': 'http://127.0.0.1'}, b''),
        ('POST', '/submit', {}, b''),
    ],
    'templates_app': [
        ('GET', '/jinja', {}, b''),
        ('GET', '/jinja-stream', {}, b''),
        ('GET', '/utemplate', {}, b''),
        ('GET', '/utemplate-empty', {}, b''),
        ('GET', '/utemplate-stream', {}, b''),
    ],
}

SERVERS = {
    'builtin': ('builtin', lambda mod, port: [
        '-c', 'import %s as m; m.app.run(host="127.0.0.1", port=%d)' % (mod, port)]),
    'uvicorn': ('asgi', lambda mod, port: [
        '-m', 'uvicorn', '%s:app' % mod, '--host', '127.0.0.1', '--port', str(port),
        '--log-level', 'warning']),
    'gunicorn': ('wsgi', lambda mod, port: [
        '-m', 'gunicorn', '-b', '127.0.0.1:%d' % port, '--log-level', 'warning',
        '%s:app' % mod]),
}
IGNORED = {'date', 'server'}


class Answer:
    """One HTTP answer, split into its parts."""

    def __init__(self, raw: bytes) -> None:
        head, _, body = raw.partition(b'\r\n\r\n')
        lines = head.decode('latin-1').split('\r\n')
        self.status_line = lines[0]
        parts = self.status_line.split(' ', 2)
        self.status = parts[1] if len(parts) > 1 else '?'
        self.reason = parts[2] if len(parts) > 2 else ''
        self.headers: List[Tuple[str, str]] = []
        for line in lines[1:]:
            name, _, value = line.partition(':')
            self.headers.append((name.strip().lower(), value.strip()))
        self.chunked = ('transfer-encoding', 'chunked') in self.headers
        self.body = dechunk(body) if self.chunked else body

    def header_map(self) -> Dict[str, List[str]]:
        out: Dict[str, List[str]] = {}
        for name, value in self.headers:
            if name not in IGNORED:
                out.setdefault(name, []).append(value)
        return out


def dechunk(data: bytes) -> bytes:
    out = b''
    while data:
        size_line, _, data = data.partition(b'\r\n')
        size = int(size_line.split(b';')[0] or b'0', 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out


def fetch(port: int, req: Req, timeout: float = 10.0) -> bytes:
    method, path, headers, body = req
    lines = ['%s %s HTTP/1.1' % (method, path), 'Host: 127.0.0.1:%d' % port]
    if 'Connection' not in headers:
        lines.append('Connection: close')
    for k, v in headers.items():
        lines.append('%s: %s' % (k, v))
    if body:
        lines.append('Content-Length: %d' % len(body))
    data = ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + body
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if 'Upgrade' in headers and b'\r\n\r\n' in b''.join(chunks):
                break
    return b''.join(chunks)


def serve(python: str, server: str, mod: str, extra_path: Optional[str]
          ) -> Tuple[subprocess.Popen, int]:
    flavour, args = SERVERS[server]
    port = free_port()
    env = dict(os.environ, MICRODOT_FLAVOUR=flavour, PYTHONPATH=APPS
               + (os.pathsep + extra_path if extra_path else ''))
    proc = subprocess.Popen([python] + args(mod, port), cwd=APPS, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_port('127.0.0.1', port, proc)
    return proc, port


def stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err.decode(errors='replace')


def websocket_session(port: int) -> bytes:
    """Echo a text and a binary message on ``/ws`` and close: what came back."""
    from websockets.sync.client import connect
    try:
        with connect('ws://127.0.0.1:%d/ws' % port, open_timeout=10,
                     close_timeout=5) as ws:
            ws.send('hello é')
            first = ws.recv(timeout=10)
            ws.send(b'\x00\x01')
            second = ws.recv(timeout=10)
        return repr((first, second, ws.close_code)).encode()
    except Exception as exc:
        return ('failed: %r' % exc).encode()


def collect(python: str, server: str, mod: str, extra_path: Optional[str]
            ) -> Tuple[List[bytes], str]:
    proc, port = serve(python, server, mod, extra_path)
    try:
        answers = [fetch(port, req) for req in REQUESTS[mod]]
        if mod == 'app':
            answers.append(b'HTTP/1.1 999 WS\r\n\r\n' + websocket_session(port))
    finally:
        log = stop(proc)
    return answers, log


def compare(a: Answer, b: Answer) -> List[str]:
    """The differences between our answer ``a`` and upstream's ``b``."""
    diffs = []
    if a.status != b.status:
        diffs.append('status: ours %s, upstream %s' % (a.status, b.status))
    if a.reason != b.reason:
        diffs.append('reason: ours %r, upstream %r' % (a.reason, b.reason))
    ha, hb = a.header_map(), b.header_map()
    for name in sorted(set(ha) | set(hb)):
        if ha.get(name) != hb.get(name):
            diffs.append('header %s: ours %r, upstream %r' % (name, ha.get(name),
                                                               hb.get(name)))
    if a.body != b.body:
        diffs.append('body: ours %r, upstream %r' % (a.body[:300], b.body[:300]))
    return diffs


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--ours', default=sys.executable)
    parser.add_argument('--upstream', required=True)
    parser.add_argument('--utemplate', help='folder holding the original utemplate '
                        'package, for upstream')
    parser.add_argument('--servers', default='builtin,uvicorn,gunicorn')
    parser.add_argument('--apps', default=','.join(REQUESTS))
    parser.add_argument('--allow', default='', help='comma-separated server:header '
                        'pairs (or server:status, server:reason) not to count')
    args = parser.parse_args(argv)
    allowed = set(filter(None, args.allow.split(',')))
    failures = 0
    for server in args.servers.split(','):
        for mod in args.apps.split(','):
            ours, our_log = collect(args.ours, server, mod, None)
            theirs, _ = collect(args.upstream, server, mod, args.utemplate)
            print('== %s, %s: %d requests' % (server, mod, len(ours)))
            reqs = REQUESTS[mod] + [('WEBSOCKET', '/ws', {}, b'')]
            for req, a, b in zip(reqs, ours, theirs):
                diffs = compare(Answer(a), Answer(b))
                shown = [d for d in diffs
                         if '%s:%s' % (server, d.split(':')[0].replace('header ', ''))
                         not in allowed]
                if shown:
                    failures += 1
                    print('-- %s %s %s' % (req[0], req[1], req[2] or ''))
                    for d in shown:
                        print('   ' + d)
            if 'Traceback' in our_log:
                print('!! our server logged a traceback:\n' + our_log[-2000:])
    print('%d answers differ' % failures)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
