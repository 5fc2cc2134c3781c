"""pytest fixtures for the gateway and its plugins (registered through the ``pytest11`` entry
point, so every plugin's tests get them): a real redis-server, flushed between tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from gateway.embedded_redis import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One embedded redis-server for the test session."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    """A client of the session's redis-server, emptied before the test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()
