"""Shared stores for several OP nodes: Redis (and PostgreSQL for the two-node test)."""

import os
import socket
import threading

import pytest

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


class SilentServer:
    """A hung Redis: accepts connections and never answers."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.url = f"redis://127.0.0.1:{self.socket.getsockname()[1]}/0"
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.connections.append(connection)  # kept open, never read from or written to

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for connection in [self.socket, *self.connections]:
            connection.close()


@pytest.fixture
def silent_redis():
    server = SilentServer()
    yield server
    server.close()
