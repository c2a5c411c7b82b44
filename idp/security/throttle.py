"""Failure budgets with progressive delay, behind one small interface.

A key (an account's login ID, a client address, a contract identity) may fail
``free`` times within ``window`` seconds; after that each further attempt must
wait twice as long as the one before (1 s, 2 s, 4 s … up to ``max_delay``)
counted from the last failure, or, for a ``hard`` budget, until the window has
passed. Nothing is locked permanently: the count expires with the window, so a
stranger cannot lock a customer out for good.

Counters live in this process (``MemoryCounters``, one node) or in Redis
(``RedisCounters``, several nodes), chosen by ``IDP_REDIS_URL``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol


class Counters(Protocol):
    def read(self, key: str, now: int) -> tuple[int, int]:
        """(failures within the window, time of the last one); (0, 0) when none."""

    def add(self, key: str, now: int, window: int) -> None:
        """Count one failure at ``now``; the key expires ``window`` s after it."""

    def clear(self, key: str) -> None: ...


class MemoryCounters:
    def __init__(self) -> None:
        self._data: dict[str, tuple[int, int, int]] = {}
        self._lock = threading.Lock()

    def read(self, key: str, now: int) -> tuple[int, int]:
        count, last, expires = self._data.get(key, (0, 0, 0))
        return (count, last) if now < expires else (0, 0)

    def add(self, key: str, now: int, window: int) -> None:
        with self._lock:
            count = self.read(key, now)[0]
            self._data[key] = (count + 1, now, now + window)
            if len(self._data) > 100_000:  # bound memory under a spray of keys
                self._data = {k: v for k, v in self._data.items() if v[2] > now}

    def clear(self, key: str) -> None:
        self._data.pop(key, None)


class RedisCounters:
    def __init__(self, client) -> None:
        self._redis = client

    def read(self, key: str, now: int) -> tuple[int, int]:
        values = self._redis.hmget(f"throttle:{key}", "count", "last")
        if values[0] is None:
            return 0, 0
        return int(values[0]), int(values[1] or 0)

    def add(self, key: str, now: int, window: int) -> None:
        pipe = self._redis.pipeline()
        pipe.hincrby(f"throttle:{key}", "count", 1)
        pipe.hset(f"throttle:{key}", "last", now)
        pipe.expire(f"throttle:{key}", window)
        pipe.execute()

    def clear(self, key: str) -> None:
        self._redis.delete(f"throttle:{key}")


@dataclass(frozen=True)
class Budget:
    free: int
    window: int
    max_delay: int
    # hard: once the budget is spent, refuse until the window has passed
    # since the last failure (for guessable secrets such as 4 digits).
    hard: bool = False

    def retry_after(self, failures: int, last: int, now: int) -> int:
        """Seconds until the next attempt is allowed; 0 when it is allowed now."""
        if failures < self.free:
            return 0
        if self.hard:
            return max(0, last + self.window - now)
        delay = min(self.max_delay, 2 ** min(failures - self.free, 30))
        return max(0, last + delay - now)


class Throttle:
    def __init__(self, counters: Counters, budget: Budget) -> None:
        self.counters = counters
        self.budget = budget

    def retry_after(self, key: str, now: int) -> int:
        failures, last = self.counters.read(key, now)
        return self.budget.retry_after(failures, last, now)

    def fail(self, key: str, now: int) -> None:
        self.counters.add(key, now, self.budget.window)

    def clear(self, key: str) -> None:
        self.counters.clear(key)


def make_counters(redis_url: str | None) -> Counters:
    if not redis_url:
        return MemoryCounters()
    import redis

    return RedisCounters(redis.Redis.from_url(redis_url, socket_timeout=1.0))
