"""Shared stores for several OP nodes: Redis (and PostgreSQL for the two-node test)."""

import os

import pytest

from ..servers import SilentServer

REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_url():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.flushdb()
    except redis.RedisError as error:
        message = f"Redis at {REDIS_URL} is not reachable: {error}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def silent_redis():
    server = SilentServer()
    yield server
    server.close()
