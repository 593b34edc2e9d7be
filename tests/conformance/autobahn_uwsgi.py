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
import logging
import os
import sys
from pathlib import Path
from typing import List

from microdot.wsgi import Microdot

HERE = Path(__file__).resolve().parent
logger = logging.getLogger('autobahn.uwsgi')

sys.path.insert(0, str(HERE))
from autobahn import echo_app  # noqa: E402
from autobahn_common import AutobahnServer, run_suite  # noqa: E402

app = echo_app(Microdot)

MODES = {
    'router-threads': ['--http', '{address}', '--http-websockets', '--threads', '8'],
    'router-processes': ['--http', '{address}', '--http-websockets', '--processes', '2'],
    'http-socket': ['--http-socket', '{address}', '--threads', '8'],
}


class Uwsgi(AutobahnServer):
    """A uWSGI instance serving :data:`app` on a free loopback port."""

    name = 'uWSGI'
    agent_prefix = 'uwsgi'

    def command(self) -> List[str]:
        from microdot.wsgi_uwsgi_server import uwsgi_binary
        address = '127.0.0.1:%d' % self.port
        cmd = [uwsgi_binary(), '--master', '--die-on-term', '--need-app',
               '--enable-threads', '--single-interpreter', '--chdir', str(HERE),
               '--module', 'autobahn_uwsgi:app', '--disable-logging',
               *[arg.format(address=address) for arg in MODES[self.label]]]
        if sys.prefix != sys.base_prefix:
            cmd += ['--virtualenv', sys.prefix]
        return cmd

    def kill(self) -> None:
        os.killpg(self.proc.pid, 9)  # the master and its workers


def main(argv: List[str] | None = None) -> int:
    from autobahn import DEFAULT_CASES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', nargs='+', default=DEFAULT_CASES)
    parser.add_argument('--modes', nargs='+', choices=sorted(MODES), default=list(MODES))
    parser.add_argument('--outdir', default=None, help='report folder (default: temporary)')
    args = parser.parse_args(argv)
    return run_suite(Uwsgi, args.modes, args.cases, args.outdir, logger)


if __name__ == '__main__':
    sys.exit(main())
