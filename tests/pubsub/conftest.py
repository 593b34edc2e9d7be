"""Fixtures of the publish/subscribe tests: a real ``redis-server`` on a free loopback
port, persistence off, always stopped by pid.

``redis-server`` comes from the Debian package of that name, which ``.ci/run``
installs: in CI (``CI`` set) a missing server fails the tests instead of skipping them.
"""
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pubsub_redis import RedisServer  # noqa: E402


@pytest.fixture(scope='session')
def redis_server(tmp_path_factory):
    """One Redis for the session (tests use channel names of their own)."""
    server = RedisServer(tmp_path_factory.mktemp('redis')).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of the test's own, which it may kill and restart."""
    server = RedisServer(tmp_path, unix_socket=tmp_path / 'redis.sock').start()
    try:
        yield server
    finally:
        server.stop()
