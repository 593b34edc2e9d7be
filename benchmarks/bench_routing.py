"""Micro-benchmark of route lookup: is it fast, and flat in the number of routes?

Run with ``PYTHONPATH=packages/microdot-core/src python3 benchmarks/bench_routing.py``.

Builds applications with 10, 100 and 1,000 routes (a mix of static paths, one-argument
and two-argument dynamic routes) and measures, in microseconds per lookup, finding the
LAST registered route of each kind: through the compiled router
(``app._compile().match(path)``) and through ``app.find_route(request)``, which also
picks the route for the method and stores the URL arguments on the request.
Timings are the best of several ``timeit`` repeats, in process CPU time. Runs in a
few seconds.
"""
from __future__ import annotations

import os
import sys
import time
import timeit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'packages', 'microdot-core', 'src'))

from microdot import Microdot, Request  # noqa: E402

SIZES = (10, 100, 1000)
NUMBER = 500       # lookups per timing
REPEAT = 200       # timings; the best one is reported


def _handler(req, **kwargs):  # pragma: no cover - never called
    return 'x'


def build_app(n: int):
    """An app with ``n`` routes, cycling through six realistic shapes.

    Returns the app and, for each kind, the path of the last route of that kind.
    """
    app = Microdot()
    last = {}
    for i in range(n):
        kind = i % 6
        if kind == 0:
            app.route('/static%d' % i)(_handler)
            last['static'] = '/static%d' % i
        elif kind == 1:
            app.route('/api/v1/resource%d/list' % i)(_handler)
            last['static'] = '/api/v1/resource%d/list' % i
        elif kind == 2:
            app.route('/items%d/<int:id>' % i, methods=['GET', 'PUT'])(_handler)
            last['dynamic 1 arg'] = '/items%d/42' % i
        elif kind == 3:
            app.route('/users/<id>/posts%d' % i)(_handler)
            last['dynamic 1 arg'] = '/users/alice/posts%d' % i
        elif kind == 4:
            app.route('/users/<int:uid>/things%d/<slug>' % i)(_handler)
            last['dynamic 2 args'] = '/users/7/things%d/hello-world' % i
        else:
            app.route('/org%d/<org>/repo/<repo>' % i, methods=['GET', 'POST'])(_handler)
            last['dynamic 2 args'] = '/org%d/acme/repo/widgets' % i
    # the last route registered is a dynamic one with two arguments
    return app, last


def best_per_lookup_us(funcs):
    """Best time of each function, in microseconds per call.

    The repeats are interleaved (every function once per round) so that a busy spell
    of other processes on the machine does not spoil all timings of one function;
    time is this process's CPU time, which such processes disturb less than wall time.
    """
    best = [float('inf')] * len(funcs)
    for _ in range(REPEAT):
        for k, func in enumerate(funcs):
            t = timeit.timeit(func, number=NUMBER, timer=time.process_time)
            best[k] = min(best[k], t)
    return [t / NUMBER * 1e6 for t in best]


def main() -> None:
    cases = []
    funcs = []
    for n in SIZES:
        app, last = build_app(n)
        router = app._compile()
        for kind in ('static', 'dynamic 1 arg', 'dynamic 2 args'):
            path = last[kind]
            matches = router.match(path)
            assert matches and matches[0][0].handler is _handler, path
            req = Request(app, ('127.0.0.1', 0), 'GET', path, '1.1', {})
            assert app.find_route(req) is _handler
            cases.append((n, kind, path))
            funcs.append(lambda app=app, path=path: app._compile().match(path))
            funcs.append(lambda app=app, req=req: app.find_route(req))
    times = best_per_lookup_us(funcs)
    rows = [case + (times[2 * k], times[2 * k + 1]) for k, case in enumerate(cases)]

    print('Route lookup, microseconds per lookup of the last registered route '
          '(best of %d x %d)' % (REPEAT, NUMBER))
    print()
    print('%7s  %-15s %-32s %14s %12s' % ('routes', 'kind', 'path', 'router.match', 'find_route'))
    for n, kind, path, router_us, find_us in rows:
        print('%7d  %-15s %-32s %14.2f %12.2f' % (n, kind, path, router_us, find_us))
    worst = max(max(r[3], r[4]) for r in rows)
    print()
    print('worst: %.2f us (target < 2 us, flat from %d to %d routes)'
          % (worst, SIZES[0], SIZES[-1]))


if __name__ == '__main__':
    main()
