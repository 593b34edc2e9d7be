"""Run the Autobahn|Testsuite fuzzing client against an echo app under uWSGI.

Not part of the pytest run (the file name does not match ``test_*.py``). This module
is also the application uWSGI serves (``autobahn_uwsgi:app``, a
``microdot.wsgi.Microdot`` echo at ``/echo``). Usage, from the repository root::

    hatch run hatch-test.py3.11:python tests/conformance/autobahn_uwsgi.py
    hatch run hatch-test.py3.11:python tests/conformance/autobahn_uwsgi.py \\
        --modes router-threads --cases 5.* 6.*

Each mode gets its own uWSGI instance and its own agent in one report:

* ``router-threads``: the HTTP router (``--http`` with ``--http-websockets``), one
  worker of 8 threads; the frames pass through the router process.
* ``router-processes``: the same router, 2 single-threaded worker processes.
* ``http-socket``: no router, the workers speak HTTP themselves (``--http-socket``),
  as behind a proxy; 8 threads.

The test suite is installed and started as ``autobahn.py`` does (same
``AUTOBAHN_PYTHON2`` and ``AUTOBAHN_DIR``). Prints the number of cases per behaviour
for each mode and exits 1 if any case FAILED.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Dict, List

from microdot.wsgi import Microdot

HERE = Path(__file__).resolve().parent
logger = logging.getLogger('autobahn.uwsgi')

sys.path.insert(0, str(HERE))
from autobahn import echo_app  # noqa: E402

app = echo_app(Microdot)

MODES = {
    'router-threads': ['--http', '{address}', '--http-websockets', '--threads', '8'],
    'router-processes': ['--http', '{address}', '--http-websockets', '--processes', '2'],
    'http-socket': ['--http-socket', '{address}', '--threads', '8'],
}


class Uwsgi:
    """A uWSGI instance serving :data:`app` on a free loopback port."""

    def __init__(self, mode: str) -> None:
        from microdot.wsgi_uwsgi_server import uwsgi_binary
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            self.port = s.getsockname()[1]
        self.mode = mode
        self.log = tempfile.TemporaryFile(mode='w+')
        address = '127.0.0.1:%d' % self.port
        cmd = [uwsgi_binary(), '--master', '--die-on-term', '--need-app',
               '--enable-threads', '--single-interpreter', '--chdir', str(HERE),
               '--module', 'autobahn_uwsgi:app', '--disable-logging',
               *[arg.format(address=address) for arg in MODES[mode]]]
        if sys.prefix != sys.base_prefix:
            cmd += ['--virtualenv', sys.prefix]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit('uWSGI (%s) exited early:\n%s' % (self.mode, self.output()))
            try:
                with socket.create_connection(('127.0.0.1', self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit('uWSGI (%s) is not listening' % self.mode)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # --die-on-term: stop
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)


def main(argv: List[str] | None = None) -> int:
    from autobahn import BEHAVIOURS, DEFAULT_CASES, PYTHON2, install
    from autobahn_gunicorn import per_agent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', nargs='+', default=DEFAULT_CASES)
    parser.add_argument('--modes', nargs='+', choices=sorted(MODES), default=list(MODES))
    parser.add_argument('--outdir', default=None, help='report folder (default: temporary)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')
    wrapper = install()
    outdir = Path(args.outdir or tempfile.mkdtemp(prefix='autobahn-uwsgi-'))
    outdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        servers = []
        for mode in args.modes:
            server = Uwsgi(mode)
            stack.callback(server.stop)
            server.wait_ready()
            servers.append(server)
        spec = {'outdir': str(outdir),
                'servers': [{'agent': 'uwsgi-%s' % s.mode,
                             'url': 'ws://127.0.0.1:%d/echo' % s.port} for s in servers],
                'cases': args.cases, 'exclude-cases': [], 'exclude-agent-cases': {}}
        spec_file = outdir / 'fuzzingclient.json'
        spec_file.write_text(json.dumps(spec, indent=2))
        logger.info('Running cases %s against uWSGI (%s)', ' '.join(args.cases),
                    ', '.join(args.modes))
        subprocess.run([PYTHON2, str(wrapper), '-m', 'fuzzingclient', '-s', str(spec_file)],
                       cwd=str(outdir), check=True, stdout=subprocess.DEVNULL)
        for server in servers:
            server.stop()
            if 'Traceback' in server.output():
                logger.warning('uWSGI (%s) logged errors:\n%s', server.mode, server.output())
    index = json.loads((outdir / 'index.json').read_text())
    failed = 0
    totals: Dict[str, Counter] = dict(per_agent(index))
    print('Autobahn summary under uWSGI (report in %s):' % (outdir / 'index.html'))
    for agent, counts in totals.items():
        print('  %s (%d cases)' % (agent, sum(counts.values())))
        for name in BEHAVIOURS:
            print('    %-14s %d' % (name, counts.get(name, 0)))
        failed += counts.get('FAILED', 0)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
