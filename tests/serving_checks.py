"""What the deployment tests check on a running server, with real clients: a page,
a streamed body, Server-Sent Events, a WebSocket echo and worker processes.

The served application is ``tests/apps/granian_app.py`` (or a seed example, for the
page and the echo).
"""
import json
import os
import signal
import subprocess
import sys
import time

import httpx
from websockets.sync.client import connect

from support import ROOT

APPS = str(ROOT / 'tests' / 'apps')
EXAMPLES = str(ROOT / 'examples')


def granian_cmd(interface, port, target, *extra):
    """``granian`` serving ``target`` on 127.0.0.1:``port`` with ``interface``."""
    return [sys.executable, '-m', 'granian', '--interface', interface, '--host', '127.0.0.1',
            '--port', str(port), '--log-level', 'warning', *extra, target]


def microdot_run_cmd(port, target, *extra):
    """``microdot run`` serving ``target`` on 127.0.0.1:``port``."""
    return [sys.executable, '-m', 'microdot', 'run', target, '--host', '127.0.0.1',
            '--port', str(port), *extra]


def check_hello(url):
    res = httpx.get(url + '/', timeout=10)
    assert res.status_code == 200, res.text
    assert res.text == 'Hello, World!'
    assert res.headers['content-type'] == 'text/plain; charset=UTF-8'


def check_stream(url, n=3, delay=0.05):
    """The chunks of ``/stream`` (``delay`` seconds apart) arrive, in order; returns
    them with their arrival times (seconds after the first)."""
    with httpx.stream('GET', url + '/stream?n=%d&delay=%s' % (n, delay), timeout=10) as res:
        assert res.status_code == 200
        assert 'content-length' not in res.headers
        first = time.monotonic()
        chunks = []
        for chunk in res.iter_text():
            if chunk:
                chunks.append((time.monotonic() - first, chunk))
    assert ''.join(c for _, c in chunks) == ''.join('chunk %d\n' % i for i in range(n))
    return chunks


def check_streamed_as_produced(url):
    """The first chunk of a body produced over a second arrives well before the last:
    the server sends it as it is produced."""
    chunks = check_stream(url, n=3, delay=0.5)
    assert chunks[-1][0] - chunks[0][0] >= 0.5, chunks


def read_sse(res):
    """The events of an SSE response, as (event, data) pairs."""
    events, event, data = [], None, []
    for line in res.iter_lines():
        if line.startswith('event:'):
            event = line[6:].strip()
        elif line.startswith('data:'):
            data.append(line[5:].strip())
        elif not line and data:
            events.append((event, '\n'.join(data)))
            event, data = None, []
    return events


def check_sse(url, n=3):
    with httpx.stream('GET', url + '/sse?n=%d' % n, timeout=10) as res:
        assert res.status_code == 200
        assert res.headers['content-type'].startswith('text/event-stream')
        events = read_sse(res)
    assert events == [('count', json.dumps({'left': i})) for i in range(n, 0, -1)]


def check_echo(ws_url, path='/echo'):
    """A real WebSocket client: text and binary messages come back unchanged."""
    with connect(ws_url + path, open_timeout=10, close_timeout=5) as ws:
        for message in ('hello', 'ünïcode ✓', b'\x00\x01binary\xff', 'x' * 10000):
            ws.send(message)
            assert ws.recv(timeout=10) == message


def worker_pids(url, want, attempts=400):
    """The pids that answer ``/pid`` over fresh connections, until ``want`` distinct
    ones were seen (bounded)."""
    seen = set()
    for _ in range(attempts):
        with httpx.Client(timeout=10) as client:  # a new connection each time
            seen.add(client.get(url + '/pid').json()['pid'])
        if len(seen) >= want:
            break
    return seen


def hook_pids(path, kind):
    """The pids that recorded ``kind`` (``startup``/``shutdown``) in the events file."""
    if not os.path.exists(path):
        return []
    return [int(line.split()[1]) for line in open(path).read().splitlines()
            if line.startswith(kind + ' ')]


def wait_for_hooks(path, kind, count, timeout=15):
    """Poll the events file until ``count`` ``kind`` hooks ran (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(hook_pids(path, kind)) >= count:
            break
        time.sleep(0.05)
    return hook_pids(path, kind)


def interrupt_group(server, timeout=20):
    """Press Ctrl+C: SIGINT to the server's whole process group, workers included.
    Returns the exit status, or None if the server did not stop in time."""
    os.killpg(server.proc.pid, signal.SIGINT)
    try:
        return server.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
