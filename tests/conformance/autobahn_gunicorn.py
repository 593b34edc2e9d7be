"""Run the Autobahn|Testsuite fuzzing client against an echo app under gunicorn.

Not part of the pytest run (the file name does not match ``test_*.py``). This module
is also the application gunicorn serves (``autobahn_gunicorn:app``, a
``microdot.wsgi.Microdot`` echo at ``/echo``). Usage, from the repository root::

    hatch run hatch-test.py3.11:python tests/conformance/autobahn_gunicorn.py
    hatch run hatch-test.py3.11:python tests/conformance/autobahn_gunicorn.py \\
        --workers gthread --cases 5.* 6.*

Each worker type (``sync`` with 2 workers, ``gthread`` with 8 threads by default)
gets its own gunicorn process and its own agent in one report. The test suite is
installed and started as ``autobahn.py`` does (same ``AUTOBAHN_PYTHON2`` and
``AUTOBAHN_DIR``). Prints the number of cases per behaviour for each worker type and
exits 1 if any case FAILED.
"""
from __future__ import annotations

import argparse
import json
import logging
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Dict, Iterator, List

from microdot.wsgi import Microdot

HERE = Path(__file__).resolve().parent
logger = logging.getLogger('autobahn.gunicorn')

sys.path.insert(0, str(HERE))
from autobahn import echo_app  # noqa: E402

app = echo_app(Microdot)


WORKER_ARGS = {
    'sync': ['--worker-class', 'sync', '--workers', '2'],
    'gthread': ['--worker-class', 'gthread', '--threads', '8'],
}


class Gunicorn:
    """A gunicorn process serving :data:`app` on a free loopback port."""

    def __init__(self, worker: str, timeout: int) -> None:
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            self.port = s.getsockname()[1]
        self.worker = worker
        self.log = tempfile.TemporaryFile(mode='w+')
        cmd = [sys.executable, '-m', 'gunicorn', '--bind', '127.0.0.1:%d' % self.port,
               '--chdir', str(HERE), '--timeout', str(timeout), '--graceful-timeout', '3',
               '--log-level', 'warning', *WORKER_ARGS[worker], 'autobahn_gunicorn:app']
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit('gunicorn (%s) exited early:\n%s' % (self.worker,
                                                                     self.output()))
            try:
                with socket.create_connection(('127.0.0.1', self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit('gunicorn (%s) is not listening' % self.worker)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def per_agent(index: Dict[str, Any]) -> Iterator[tuple]:
    from autobahn import summarise
    for agent in sorted(index):
        print('%s: cases not plainly OK (behaviour, close behaviour):' % agent)
        yield agent, summarise({agent: index[agent]})


def main(argv: List[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))
    from autobahn import BEHAVIOURS, DEFAULT_CASES, PYTHON2, install
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', nargs='+', default=DEFAULT_CASES)
    parser.add_argument('--workers', nargs='+', choices=sorted(WORKER_ARGS),
                        default=['sync', 'gthread'])
    parser.add_argument('--timeout', type=int, default=30,
                        help="gunicorn's --timeout (default: 30, its own default)")
    parser.add_argument('--outdir', default=None, help='report folder (default: temporary)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')
    wrapper = install()
    outdir = Path(args.outdir or tempfile.mkdtemp(prefix='autobahn-gunicorn-'))
    outdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        servers = []
        for worker in args.workers:
            server = Gunicorn(worker, args.timeout)
            stack.callback(server.stop)
            server.wait_ready()
            servers.append(server)
        spec = {'outdir': str(outdir),
                'servers': [{'agent': 'gunicorn-%s' % s.worker,
                             'url': 'ws://127.0.0.1:%d/echo' % s.port} for s in servers],
                'cases': args.cases, 'exclude-cases': [], 'exclude-agent-cases': {}}
        spec_file = outdir / 'fuzzingclient.json'
        spec_file.write_text(json.dumps(spec, indent=2))
        logger.info('Running cases %s against gunicorn (%s)', ' '.join(args.cases),
                    ', '.join(args.workers))
        subprocess.run([PYTHON2, str(wrapper), '-m', 'fuzzingclient', '-s', str(spec_file)],
                       cwd=str(outdir), check=True, stdout=subprocess.DEVNULL)
        for server in servers:
            server.stop()
            if 'Traceback' in server.output():
                logger.warning('gunicorn (%s) logged errors:\n%s', server.worker,
                               server.output())
    index = json.loads((outdir / 'index.json').read_text())
    failed = 0
    totals: Dict[str, Counter] = dict(per_agent(index))
    print('Autobahn summary under gunicorn (report in %s):' % (outdir / 'index.html'))
    for agent, counts in totals.items():
        print('  %s (%d cases)' % (agent, sum(counts.values())))
        for name in BEHAVIOURS:
            print('    %-14s %d' % (name, counts.get(name, 0)))
        failed += counts.get('FAILED', 0)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
