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
import logging
import sys
from pathlib import Path
from typing import List

from microdot.wsgi import Microdot

HERE = Path(__file__).resolve().parent
logger = logging.getLogger('autobahn.gunicorn')

sys.path.insert(0, str(HERE))
from autobahn import echo_app  # noqa: E402
from autobahn_common import AutobahnServer, run_suite  # noqa: E402

app = echo_app(Microdot)


WORKER_ARGS = {
    'sync': ['--worker-class', 'sync', '--workers', '2'],
    'gthread': ['--worker-class', 'gthread', '--threads', '8'],
}


class Gunicorn(AutobahnServer):
    """A gunicorn process serving :data:`app` on a free loopback port."""

    name = 'gunicorn'
    agent_prefix = 'gunicorn'

    def __init__(self, worker: str, timeout: int) -> None:
        self.timeout = timeout
        super().__init__(worker)

    def command(self) -> List[str]:
        return [sys.executable, '-m', 'gunicorn', '--bind', '127.0.0.1:%d' % self.port,
                '--chdir', str(HERE), '--timeout', str(self.timeout), '--graceful-timeout',
                '3', '--log-level', 'warning', *WORKER_ARGS[self.label],
                'autobahn_gunicorn:app']


def main(argv: List[str] | None = None) -> int:
    from autobahn import DEFAULT_CASES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', nargs='+', default=DEFAULT_CASES)
    parser.add_argument('--workers', nargs='+', choices=sorted(WORKER_ARGS),
                        default=['sync', 'gthread'])
    parser.add_argument('--timeout', type=int, default=30,
                        help="gunicorn's --timeout (default: 30, its own default)")
    parser.add_argument('--outdir', default=None, help='report folder (default: temporary)')
    args = parser.parse_args(argv)
    return run_suite(Gunicorn, args.workers, args.cases, args.outdir, logger,
                     timeout=args.timeout)


if __name__ == '__main__':
    sys.exit(main())
