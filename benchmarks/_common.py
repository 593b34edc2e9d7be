"""Helpers shared by the benchmark scripts: competitor virtualenvs and server processes."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


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
            raise RuntimeError('server exited early: %s' % proc.stdout.read())
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
