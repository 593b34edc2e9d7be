"""Micro-benchmark of microdot.http11: parse a typical GET and a chunked POST.

Run with ``python benchmarks/bench_http11.py``; prints microseconds per
request for a fresh parser per request and for a parser reused on a
keep-alive connection, plus response-head serialisation.
"""

from __future__ import annotations

import os
import sys
import timeit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'packages', 'microdot-core', 'src'))

from microdot.http11 import (  # noqa: E402
    EndOfMessage, RequestParser, serialize_response_head)

GET = (b'GET /api/items?page=2&sort=name HTTP/1.1\r\n'
       b'Host: localhost:8000\r\n'
       b'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) '
       b'Gecko/20100101 Firefox/128.0\r\n'
       b'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,'
       b'*/*;q=0.8\r\n'
       b'Accept-Language: en-US,en;q=0.5\r\n'
       b'Accept-Encoding: gzip, deflate, br\r\n'
       b'Connection: keep-alive\r\n'
       b'\r\n')

CHUNKED_POST = (b'POST /upload HTTP/1.1\r\n'
                b'Host: localhost:8000\r\n'
                b'Content-Type: application/json\r\n'
                b'Transfer-Encoding: chunked\r\n'
                b'\r\n'
                b'10\r\n{"name": "abc", \r\n'
                b'e\r\n"value": 12345\r\n'
                b'1\r\n}\r\n'
                b'0\r\n\r\n')

RESPONSE_HEADERS = [('Content-Type', 'text/plain; charset=UTF-8'),
                    ('Content-Length', '13'),
                    ('Date', 'Mon, 01 Jan 2024 00:00:00 GMT'),
                    ('Server', 'microdot')]


def parse_fresh(data: bytes) -> None:
    """One request on a new connection (new parser)."""
    parser = RequestParser()
    parser.feed(data)
    next_event = parser.next_event
    while type(next_event()) is not EndOfMessage:
        pass


def make_keepalive(data: bytes):
    """One request on an existing keep-alive connection (parser reused)."""
    parser = RequestParser()
    feed = parser.feed
    next_event = parser.next_event
    start_next_request = parser.start_next_request

    def run() -> None:
        feed(data)
        while type(next_event()) is not EndOfMessage:
            pass
        next_event()  # PAUSED
        start_next_request()
    return run


def bench(label: str, func, number: int = 100_000) -> None:
    best = min(timeit.repeat(func, number=number, repeat=5))
    print(f'{label:<44} {best / number * 1e6:7.2f} µs/request')


def main() -> None:
    print(f'Python {sys.version.split()[0]}')
    bench('GET, 6 headers, fresh parser', lambda: parse_fresh(GET))
    bench('GET, 6 headers, keep-alive parser', make_keepalive(GET))
    bench('chunked POST, 3 chunks, fresh parser',
          lambda: parse_fresh(CHUNKED_POST))
    bench('chunked POST, 3 chunks, keep-alive parser',
          make_keepalive(CHUNKED_POST))
    bench('serialize_response_head, 4 headers',
          lambda: serialize_response_head(200, None, RESPONSE_HEADERS))


if __name__ == '__main__':
    main()
