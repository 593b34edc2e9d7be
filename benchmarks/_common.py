"""Helpers shared by the benchmark scripts: competitor virtualenvs, server processes,
their memory, and wrk runs."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple


def ensure_venv(venvs: Path, name: str, packages: list) -> Path:
    """Create (once) a virtualenv with ``packages``; return its python."""
    env = venvs / name
    py = env / 'bin' / 'python'
    marker = env / ('.installed-' + re.sub(r'[^A-Za-z0-9]+', '_', ' '.join(packages))[-80:])
    if not py.exists():
        subprocess.run([sys.executable, '-m', 'venv', str(env)], check=True)
    if not marker.exists():
        subprocess.run([str(py), '-m', 'pip', 'install', '-q', *packages], check=True)
        marker.touch()
    return py


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Block until ``proc`` listens on ``port``; stop it and raise if it does not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError('server exited early: %s'
                               % (proc.stdout.read() if proc.stdout else proc.returncode))
        try:
            socket.create_connection(('127.0.0.1', port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise RuntimeError('server did not listen on %d' % port)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def process_tree(pid: int) -> List[int]:
    """``pid`` and all its descendants that are still alive (from /proc, Linux only)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            tasks = os.listdir('/proc/%d/task' % current)
        except OSError:
            continue
        for tid in tasks:
            try:
                children = Path('/proc/%d/task/%s/children' % (current, tid)).read_text()
            except OSError:
                continue
            todo.extend(int(c) for c in children.split())
    return pids


def tree_memory_kib(pid: int) -> Tuple[int, int]:
    """(RSS, PSS) in KiB summed over the process tree of ``pid``.

    The RSS sum counts pages that forked workers share with their parent once per
    process; PSS splits each shared page between the processes that map it, so its
    sum is the memory the tree really holds.
    """
    rss = pss = 0
    for member in process_tree(pid):
        try:
            text = Path('/proc/%d/smaps_rollup' % member).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith('Rss:'):
                rss += int(line.split()[1])
            elif line.startswith('Pss:'):
                pss += int(line.split()[1])
    return rss, pss


_UNITS = {'us': 0.001, 'ms': 1.0, 's': 1000.0}


def wrk_command(port: int, duration: float, connections: int, threads: int = 1,
                cpus: Optional[str] = None, path: str = '/') -> List[str]:
    """The wrk command line for a keep-alive GET load with the latency distribution;
    ``cpus`` pins wrk with taskset (e.g. ``'1'``) when taskset exists."""
    cmd = ['wrk', '-t%d' % threads, '-c%d' % connections, '-d%ds' % duration, '--latency',
           'http://127.0.0.1:%d%s' % (port, path)]
    if cpus is not None and shutil.which('taskset'):
        cmd = ['taskset', '-c', cpus] + cmd
    return cmd


def parse_wrk(out: str) -> Dict[str, object]:
    """requests/s, latency percentiles in ms (p50, p75, p90, p99), the count of
    non-2xx/3xx answers and the socket errors line of a ``wrk --latency`` output."""
    found = re.search(r'Requests/sec:\s+([\d.]+)', out)
    if not found:
        raise RuntimeError('no result in wrk output:\n%s' % out)
    result: Dict[str, object] = {'rps': float(found.group(1))}
    for pct in ('50', '75', '90', '99'):
        lat = re.search(r'^\s*%s(?:\.0+)?%%\s+([\d.]+)(us|ms|s)\s*$' % pct, out, re.M)
        result['p' + pct] = float(lat.group(1)) * _UNITS[lat.group(2)] if lat else float('nan')
    errors = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    result['non2xx'] = int(errors.group(1)) if errors else 0
    sock_err = re.search(r'Socket errors: (.*)', out)
    result['socket_errors'] = sock_err.group(1).strip() if sock_err else ''
    return result
