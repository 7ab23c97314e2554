"""Fixtures for the realtime integration tests: a real redis-server on a free 127.0.0.1 port.

Each pytest process (xdist worker) starts its own server in its own temp dir, without
persistence, and stops it at the end; every test gets a flushed database.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# the shared contract suite and helpers live beside the unit tests
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "realtime"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for this pytest process."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="brillo-redis-") as directory:
        server = RedisServer(directory)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of a freshly flushed database."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which the test may stop and restart."""
    server = RedisServer(str(tmp_path))
    server.start()
    try:
        yield server
    finally:
        server.stop()
