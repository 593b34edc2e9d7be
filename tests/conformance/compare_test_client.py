"""Drive the applications of ``microdot_apps/`` through ``microdot.test_client`` with
upstream Microdot and with this family, and compare what the test client returns.

Usage::

    python tests/conformance/compare_test_client.py --upstream /tmp/up/bin/python \\
        [--utemplate /path/to/utemplate-1.4.1]

Application test suites assert on ``TestResponse`` (``status_code``, ``reason``,
``headers``, ``body``, ``text``, ``json``, ``events``), so these must match as well as
the bytes on the wire do (``compare_upstream.py``). Each implementation runs the same
requests in a child process that prints its results as JSON; the script prints every
field that differs and exits 1 if one does.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any, Dict, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, 'microdot_apps')
sys.path.insert(0, HERE)
from compare_upstream import REQUESTS  # noqa: E402

CHILD = r'''
import asyncio, base64, importlib, json, sys
from microdot.test_client import TestClient

def plain(value):
    if isinstance(value, bytes):
        return {'bytes': base64.b64encode(value).decode()}
    return value

async def main(mod, requests):
    app = importlib.import_module(mod).app
    client = TestClient(app)
    out = []
    for method, path, headers, body in requests:
        body = base64.b64decode(body)
        try:
            res = await client.request(method, path, headers=dict(headers),
                                       body=body or None)
        except BaseException as exc:
            out.append({'raised': type(exc).__name__})
            continue
        out.append({
            'status_code': res.status_code, 'reason': getattr(res, 'reason', None),
            'headers': {k: plain(v) for k, v in res.headers.items()
                        if k.lower() not in ('date', 'etag', 'last-modified')},
            'body': plain(res.body), 'text': res.text,
            'json': res.json if not isinstance(res.json, bytes) else None,
            'events': res.events,
        })
    print(json.dumps(out, default=lambda v: {'repr': repr(v)}))

asyncio.run(main(sys.argv[1], json.loads(sys.stdin.read())))
'''


def run(python: str, mod: str, extra_path: Optional[str]) -> List[Dict[str, Any]]:
    import base64
    reqs = [(m, p, h, base64.b64encode(b).decode()) for m, p, h, b in REQUESTS[mod]]
    env = dict(os.environ, MICRODOT_FLAVOUR='builtin', PYTHONPATH=APPS
               + (os.pathsep + extra_path if extra_path else ''))
    proc = subprocess.run([python, '-c', CHILD, mod], input=json.dumps(reqs), cwd=APPS,
                          env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode:
        raise SystemExit('%s failed:\n%s' % (python, proc.stderr[-3000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--ours', default=sys.executable)
    parser.add_argument('--upstream', required=True)
    parser.add_argument('--utemplate')
    parser.add_argument('--apps', default=','.join(REQUESTS))
    args = parser.parse_args(argv)
    failures = 0
    for mod in args.apps.split(','):
        ours = run(args.ours, mod, None)
        theirs = run(args.upstream, mod, args.utemplate)
        print('== test client, %s: %d requests' % (mod, len(ours)))
        for req, a, b in zip(REQUESTS[mod], ours, theirs):
            diffs = []
            for key in sorted(set(a) | set(b)):
                if key == 'headers':
                    ha = {k.lower(): v for k, v in (a.get(key) or {}).items()}
                    hb = {k.lower(): v for k, v in (b.get(key) or {}).items()}
                    for name in sorted(set(ha) | set(hb)):
                        if ha.get(name) != hb.get(name):
                            diffs.append('header %s: ours %r, upstream %r'
                                         % (name, ha.get(name), hb.get(name)))
                elif a.get(key) != b.get(key):
                    diffs.append('%s: ours %.300r, upstream %.300r'
                                 % (key, a.get(key), b.get(key)))
            if diffs:
                failures += 1
                print('-- %s %s %s' % (req[0], req[1], req[2] or ''))
                for d in diffs:
                    print('   ' + d)
    print('%d results differ' % failures)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
