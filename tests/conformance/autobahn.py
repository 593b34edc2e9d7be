"""Run the Autobahn|Testsuite fuzzing client against an echo app on the built-in server.

Not part of the pytest run (the file name does not match ``test_*.py``). Usage, from
the repository root::

    hatch run hatch-test.py3.12:python tests/conformance/autobahn.py [--cases 1.* 2.*]

The test suite runs on Python 2.7 only; it is installed (once) with
``python2.7 -m pip install --target DIR autobahntestsuite==25.10.1``, which pulls its
pinned requirements. Set ``AUTOBAHN_PYTHON2`` to the interpreter (default: pyenv's
2.7.18) and ``AUTOBAHN_DIR`` to the install folder (default under /tmp). Prints the
number of cases per behaviour and exits 1 if any case FAILED.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[2]
try:
    import microdot  # noqa: F401
except ImportError:  # run outside the hatch environment: use the source tree
    sys.path.insert(0, str(ROOT / 'packages' / 'microdot-core' / 'src'))

from microdot import Microdot  # noqa: E402
from microdot.websocket import WebSocketError, with_websocket  # noqa: E402

sys.path.insert(0, str(ROOT / 'tests'))
from support import live_server  # noqa: E402  (the built-in server in a thread)

logger = logging.getLogger('autobahn')

PYTHON2 = os.environ.get('AUTOBAHN_PYTHON2',
                         os.path.expanduser('~/.pyenv/versions/2.7.18/bin/python2.7'))
INSTALL_DIR = Path(os.environ.get('AUTOBAHN_DIR', '/tmp/autobahn-testsuite'))
VERSION = '25.10.1'
DEFAULT_CASES = ['1.*', '2.*', '3.*', '4.*', '5.*', '6.*', '7.*', '10.*']
BEHAVIOURS = ['OK', 'NON-STRICT', 'INFORMATIONAL', 'UNIMPLEMENTED', 'FAILED']

WRAPPER = '''\
import site, sys
site.addsitedir(%r)
from autobahntestsuite.wstest import run
sys.exit(run())
'''


def install() -> Path:
    """Install the test suite for Python 2.7 into INSTALL_DIR; return the wstest wrapper."""
    site_dir = INSTALL_DIR / 'site'
    wrapper = INSTALL_DIR / 'wstest.py'
    if not (site_dir / 'autobahntestsuite').is_dir():
        if not os.path.exists(PYTHON2):
            raise SystemExit('Python 2.7 not found at %s (set AUTOBAHN_PYTHON2)' % PYTHON2)
        logger.info('Installing autobahntestsuite %s into %s', VERSION, site_dir)
        subprocess.run([PYTHON2, '-m', 'pip', 'install', '--disable-pip-version-check',
                        '--target', str(site_dir), 'autobahntestsuite==' + VERSION],
                       check=True)
    wrapper.write_text(WRAPPER % str(site_dir))
    return wrapper


def echo_app(cls: Any = Microdot) -> Any:
    """An application of class ``cls`` that echoes WebSocket messages at ``/echo``."""
    app = cls()

    @app.route('/echo')
    @with_websocket(max_message_length=0)  # the cases send messages of up to 16 MiB
    async def echo(request: Any, ws: Any) -> None:
        try:
            while True:
                await ws.send(await ws.receive())
        except WebSocketError:
            pass

    return app


def summarise(index: Dict[str, Any]) -> Counter:
    counts: Counter = Counter()
    for agent, cases in index.items():
        for case_id, result in sorted(cases.items(), key=lambda kv: [
                int(p) for p in kv[0].split('.')]):
            behaviour = result['behavior']
            counts[behaviour] += 1
            if behaviour != 'OK' or result.get('behaviorClose') not in ('OK', 'INFORMATIONAL'):
                print('  %-8s %-14s close=%s' % (case_id, behaviour,
                                                  result.get('behaviorClose')))
    return counts


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', nargs='+', default=DEFAULT_CASES)
    parser.add_argument('--outdir', default=None, help='report folder (default: temporary)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')
    logging.getLogger('microdot.websocket').setLevel(logging.WARNING)
    wrapper = install()
    outdir = Path(args.outdir or tempfile.mkdtemp(prefix='autobahn-report-'))
    with live_server(echo_app()) as server:
        spec = {'outdir': str(outdir),
                'servers': [{'agent': 'microdot',
                             'url': 'ws://127.0.0.1:%d/echo' % server.port}],
                'cases': args.cases, 'exclude-cases': [], 'exclude-agent-cases': {}}
        spec_file = outdir / 'fuzzingclient.json'
        outdir.mkdir(parents=True, exist_ok=True)
        spec_file.write_text(json.dumps(spec, indent=2))
        logger.info('Running cases %s against port %d', ' '.join(args.cases), server.port)
        subprocess.run([PYTHON2, str(wrapper), '-m', 'fuzzingclient', '-s', str(spec_file)],
                       cwd=str(outdir), check=True, stdout=subprocess.DEVNULL)
    index = json.loads((outdir / 'index.json').read_text())
    print('Cases not plainly OK (behaviour, close behaviour):')
    counts = summarise(index)
    total = sum(counts.values())
    print('Autobahn summary (%d cases; report in %s):' % (total, outdir / 'index.html'))
    for name in BEHAVIOURS:
        print('  %-14s %d' % (name, counts.get(name, 0)))
    return 1 if counts.get('FAILED') else 0


if __name__ == '__main__':
    sys.exit(main())
