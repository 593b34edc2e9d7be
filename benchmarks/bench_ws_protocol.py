"""Micro-benchmark of microdot.ws_protocol: frame decoding and masking.

Run with ``python benchmarks/bench_ws_protocol.py``; prints microseconds per
small masked text frame decoded by a server-side connection (all at once and
in 4 KiB socket-sized reads), microseconds per small frame encoded, and
milliseconds to mask/unmask 1 MiB and to decode a 1 MiB message.
"""

from __future__ import annotations

import os
import sys
import timeit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'packages', 'microdot-core', 'src'))

from microdot.ws_protocol import WebSocketConnection, mask  # noqa: E402

FRAMES = 10_000
REPEAT = 5


def best(func, number: int) -> float:
    """Best time in seconds of one call, over REPEAT rounds of ``number``."""
    return min(timeit.repeat(func, number=number, repeat=REPEAT)) / number


def main() -> None:
    client = WebSocketConnection(is_client=True)
    small = '{"type": "chat", "text": "hello, world"}'
    stream = b''.join(client.send(small) for _ in range(FRAMES))

    def decode_all_at_once() -> None:
        server = WebSocketConnection()
        server.receive_data(stream)
        count = sum(1 for _ in server.events())
        assert count == FRAMES

    def decode_in_reads() -> None:
        server = WebSocketConnection()
        count = 0
        for i in range(0, len(stream), 4096):
            server.receive_data(stream[i:i + 4096])
            for _ in server.events():
                count += 1
        assert count == FRAMES

    t = best(decode_all_at_once, 1)
    print(f'decode small masked text frame ({len(small)} chars), '
          f'one buffer:  {t / FRAMES * 1e6:6.2f} us/frame')
    t = best(decode_in_reads, 1)
    print(f'decode small masked text frame, 4 KiB reads:     '
          f'{t / FRAMES * 1e6:6.2f} us/frame')

    server = WebSocketConnection()
    t = best(lambda: server.send(small), 10_000)
    print(f'encode small text frame (server, unmasked):      '
          f'{t * 1e6:6.2f} us/frame')
    t = best(lambda: client.send(small), 10_000)
    print(f'encode small text frame (client, masked):        '
          f'{t * 1e6:6.2f} us/frame')

    payload = os.urandom(1 << 20)
    key = os.urandom(4)
    t = best(lambda: mask(payload, key), 20)
    print(f'mask/unmask 1 MiB:                               '
          f'{t * 1e3:6.2f} ms')

    big = client.send(payload)

    def decode_big() -> None:
        conn = WebSocketConnection()
        conn.receive_data(big)
        assert len(next(conn.events()).data) == 1 << 20

    t = best(decode_big, 5)
    print(f'decode 1 MiB masked binary message, one buffer:  '
          f'{t * 1e3:6.2f} ms')

    def decode_big_in_reads() -> None:
        conn = WebSocketConnection()
        view = memoryview(big)
        for i in range(0, len(big), 65536):
            conn.receive_data(view[i:i + 65536])
            for event in conn.events():
                assert len(event.data) == 1 << 20

    t = best(decode_big_in_reads, 5)
    print(f'decode 1 MiB masked binary message, 64 KiB reads: '
          f'{t * 1e3:5.2f} ms')


if __name__ == '__main__':
    main()
