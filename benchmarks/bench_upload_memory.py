"""Memory used by the built-in server while it receives a 100 MB multipart upload.

Run with ``python benchmarks/bench_upload_memory.py [--size-mb 100]``. It starts the
built-in server in a subprocess on 127.0.0.1 (an app whose ``with_form_data`` route
saves the file to a temporary directory, ``max_content_length`` raised to 200 MB),
streams the upload to it from a generator (neither side holds the body in memory),
checks the saved file's SHA-256, and reports the server's RSS (``/proc/PID/status``
VmRSS, and the peak VmHWM) before and after. Target: RSS growth under 10 MB.
Bounded in time (about two minutes at most); the server is always stopped.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, Iterator, Optional, Tuple

from _common import free_port, wait_port  # noqa: E402

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'packages',
                   'microdot-core', 'src')
BOUNDARY = 'bench-boundary-7d1f0c'
CHUNK = 64 * 1024
TARGET_MB = 10.0
DEADLINE = 110.0  # seconds for the whole run

logger = logging.getLogger('bench_upload_memory')


# -- the server (runs in the subprocess) -----------------------------------------------

def serve(port: int, dest: str) -> None:
    """Serve the upload app on 127.0.0.1:``port`` until SIGTERM."""
    sys.path.insert(0, SRC)
    from microdot import Microdot
    from microdot.multipart import with_form_data

    app = Microdot()
    app.max_content_length = 200 * 1024 * 1024

    @app.post('/upload')
    @with_form_data
    async def upload(request):
        f = request.files['file']
        target = os.path.join(dest, 'upload.bin')
        await f.save(target)
        digest = hashlib.sha256()
        with open(target, 'rb') as saved:
            for block in iter(lambda: saved.read(1024 * 1024), b''):
                digest.update(block)
        size = os.path.getsize(target)
        os.unlink(target)
        return {'size': size, 'sha256': digest.hexdigest(), 'filename': f.filename}

    app.run(host='127.0.0.1', port=port)


# -- the client (the benchmark process) ------------------------------------------------

def proc_status(pid: int) -> Dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in kB."""
    values = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            key, _, rest = line.partition(':')
            if key in ('VmRSS', 'VmHWM'):
                values[key] = int(rest.split()[0])
    return values


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5); False if not allowed."""
    try:
        with open('/proc/%d/clear_refs' % pid, 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def multipart_body(size: int, digest) -> Tuple[int, Iterator[bytes]]:
    """Length and chunks of a multipart body with one ``size``-byte file."""
    head = ('--%s\r\nContent-Disposition: form-data; name="note"\r\n\r\nbenchmark\r\n'
            '--%s\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
            'Content-Type: application/octet-stream\r\n\r\n' % (BOUNDARY, BOUNDARY)).encode()
    tail = ('\r\n--%s--\r\n' % BOUNDARY).encode()
    block = os.urandom(1024 * 1024 + 7)  # odd size: chunks do not line up with reads

    def chunks() -> Iterator[bytes]:
        yield head
        sent = 0
        pos = 0
        while sent < size:
            n = min(CHUNK, size - sent)
            piece = block[pos:pos + n]
            if len(piece) < n:
                piece += block[:n - len(piece)]
            pos = (pos + n) % len(block)
            digest.update(piece)
            sent += n
            yield piece
        yield tail

    return len(head) + size + len(tail), chunks()


def upload(port: int, size: int, timeout: float) -> Tuple[dict, str, float]:
    """Send one upload; returns the server's JSON answer, our SHA-256, and seconds."""
    digest = hashlib.sha256()
    length, body = multipart_body(size, digest)
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    start = time.monotonic()
    try:
        conn.request('POST', '/upload', body=body, headers={
            'Content-Type': 'multipart/form-data; boundary=%s' % BOUNDARY,
            'Content-Length': str(length)})
        res = conn.getresponse()
        data = res.read()
    finally:
        conn.close()
    elapsed = time.monotonic() - start
    if res.status != 200:
        raise RuntimeError('upload answered %d: %r' % (res.status, data[:200]))
    return json.loads(data), digest.hexdigest(), elapsed


class Sampler(threading.Thread):
    """Samples the server's VmRSS every 20 ms; keeps the largest value."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.max_rss = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.max_rss = max(self.max_rss, proc_status(self.pid)['VmRSS'])
            except (OSError, KeyError):
                return
            self.stop.wait(0.02)


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size-mb', type=int, default=100, help='upload size (MB)')
    parser.add_argument('--serve', nargs=2, metavar=('PORT', 'DEST'), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
        return 0

    started = time.monotonic()
    size = args.size_mb * 1024 * 1024
    dest = tempfile.mkdtemp(prefix='microdot-bench-')
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--serve',
                             str(port), dest], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_port(port, proc, timeout=20)
        # warm up: imports, the temporary-file path, buffers
        for warm in (1024, 2 * 1024 * 1024):
            upload(port, warm, timeout=30)
        before = proc_status(proc.pid)
        peak_reset = reset_peak(proc.pid)
        sampler = Sampler(proc.pid)
        sampler.start()
        remaining = DEADLINE - (time.monotonic() - started)
        answer, sent_digest, elapsed = upload(port, size, timeout=max(remaining, 5))
        sampler.stop.set()
        sampler.join()
        after = proc_status(proc.pid)
    except Exception:
        logger.exception('benchmark failed')
        stop_server(proc)
        if proc.stdout:
            logger.error('server output:\n%s', proc.stdout.read())
        shutil.rmtree(dest, ignore_errors=True)
        return 2
    stop_server(proc)
    shutil.rmtree(dest, ignore_errors=True)

    ok_data = answer['size'] == size and answer['sha256'] == sent_digest
    peak = after['VmHWM'] if peak_reset else max(after['VmHWM'], sampler.max_rss)
    growth_mb = (max(peak, sampler.max_rss) - before['VmRSS']) / 1024
    logger.info('upload: %d MB in %.2f s (%.0f MB/s), checksum %s',
                args.size_mb, elapsed, args.size_mb / elapsed,
                'OK' if ok_data else 'MISMATCH')
    logger.info('server RSS before:  %7.1f MB (peak so far %.1f MB)',
                before['VmRSS'] / 1024, before['VmHWM'] / 1024)
    logger.info('server RSS after:   %7.1f MB', after['VmRSS'] / 1024)
    logger.info('server RSS peak:    %7.1f MB (VmHWM%s; sampled max %.1f MB)',
                peak / 1024, ' reset before the upload' if peak_reset else
                ' since start', sampler.max_rss / 1024)
    logger.info('peak RSS growth:    %7.1f MB (target < %.0f MB): %s', growth_mb,
                TARGET_MB, 'PASS' if growth_mb < TARGET_MB else 'FAIL')
    return 0 if ok_data and growth_mb < TARGET_MB else 1


if __name__ == '__main__':
    sys.exit(main())
