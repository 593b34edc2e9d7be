"""What the Autobahn runners for servers started as subprocesses share
(``autobahn_gunicorn.py``, ``autobahn_uwsgi.py``): a server process on a free loopback
port, and one fuzzing run against a list of them, summarised per agent.

Not part of the pytest run. Needs ``tests/conformance`` on ``sys.path`` (the runners
put it there) for ``autobahn.py``.
"""
from __future__ import annotations

import json
import logging
import socket
import subprocess
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Type


class AutobahnServer:
    """A server process serving the echo app on a free loopback port, its output in a
    temporary file. Subclasses set :attr:`name` and :attr:`agent_prefix` and build
    the command line in :meth:`command`."""

    name = 'server'
    agent_prefix = 'server'

    def __init__(self, label: str) -> None:
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            self.port = s.getsockname()[1]
        self.label = label
        self.log = tempfile.TemporaryFile(mode='w+')
        self.proc = subprocess.Popen(self.command(), stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def command(self) -> List[str]:
        """The command line serving on :attr:`port`."""
        raise NotImplementedError

    @property
    def agent(self) -> str:
        """The agent name in the report."""
        return '%s-%s' % (self.agent_prefix, self.label)

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Return once the server accepts connections; exit if it does not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit('%s (%s) exited early:\n%s' % (self.name, self.label,
                                                              self.output()))
            try:
                with socket.create_connection(('127.0.0.1', self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit('%s (%s) is not listening' % (self.name, self.label))

    def output(self) -> str:
        """What the server wrote so far."""
        self.log.seek(0)
        return self.log.read()

    def kill(self) -> None:
        """Stop the server at once (after :meth:`stop` waited in vain)."""
        self.proc.kill()

    def stop(self) -> None:
        """SIGTERM, then :meth:`kill` after 15 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
                self.proc.wait(5)


def per_agent(index: Dict[str, Any]) -> Iterator[tuple]:
    """(agent, behaviour counts) for each agent of the report's ``index``."""
    from autobahn import summarise
    for agent in sorted(index):
        print('%s: cases not plainly OK (behaviour, close behaviour):' % agent)
        yield agent, summarise({agent: index[agent]})


def run_suite(server_cls: Type[AutobahnServer], labels: Sequence[str], cases: List[str],
              outdir: str | None, logger: logging.Logger, **server_args: Any) -> int:
    """Serve one ``server_cls(label, **server_args)`` per label, run the fuzzing client
    against all of them in one report (in ``outdir``, default a new temporary folder),
    print the summary; 1 if any case FAILED, else 0."""
    from autobahn import BEHAVIOURS, PYTHON2, install
    logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')
    wrapper = install()
    name = server_cls.name
    report = Path(outdir or tempfile.mkdtemp(prefix='autobahn-%s-' % server_cls.agent_prefix))
    report.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        servers = []
        for label in labels:
            server = server_cls(label, **server_args)
            stack.callback(server.stop)
            server.wait_ready()
            servers.append(server)
        spec = {'outdir': str(report),
                'servers': [{'agent': s.agent, 'url': 'ws://127.0.0.1:%d/echo' % s.port}
                            for s in servers],
                'cases': cases, 'exclude-cases': [], 'exclude-agent-cases': {}}
        spec_file = report / 'fuzzingclient.json'
        spec_file.write_text(json.dumps(spec, indent=2))
        logger.info('Running cases %s against %s (%s)', ' '.join(cases), name,
                    ', '.join(labels))
        subprocess.run([PYTHON2, str(wrapper), '-m', 'fuzzingclient', '-s', str(spec_file)],
                       cwd=str(report), check=True, stdout=subprocess.DEVNULL)
        for server in servers:
            server.stop()
            if 'Traceback' in server.output():
                logger.warning('%s (%s) logged errors:\n%s', server.name, server.label,
                               server.output())
    index = json.loads((report / 'index.json').read_text())
    failed = 0
    totals: Dict[str, Counter] = dict(per_agent(index))
    print('Autobahn summary under %s (report in %s):' % (name, report / 'index.html'))
    for agent, counts in totals.items():
        print('  %s (%d cases)' % (agent, sum(counts.values())))
        for behaviour in BEHAVIOURS:
            print('    %-14s %d' % (behaviour, counts.get(behaviour, 0)))
        failed += counts.get('FAILED', 0)
    return 1 if failed else 0
