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

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)
UNAVAILABLE_WAIT = 60


class CountersUnavailable(Exception):
    """The shared counter store cannot be reached."""


class Counters(Protocol):
    def add(self, key: str, now: int, window: int) -> tuple[int, int]:
        """Atomically count one attempt at ``now`` and return (count, last)
        as they were before it; (0, 0) when none. The key expires ``window``
        seconds after its last attempt."""

    def undo(self, key: str, last_before: int) -> None:
        """Take back one counted attempt (it was refused, or it succeeded)."""

    def clear(self, key: str) -> None: ...


class MemoryCounters:
    def __init__(self) -> None:
        self._data: dict[str, tuple[int, int, int]] = {}
        self._lock = threading.Lock()

    def add(self, key: str, now: int, window: int) -> tuple[int, int]:
        with self._lock:
            count, last, expires = self._data.get(key, (0, 0, 0))
            if now >= expires:
                count, last = 0, 0
            self._data[key] = (count + 1, now, now + window)
            if len(self._data) > 100_000:  # bound memory under a spray of keys
                self._data = {k: v for k, v in self._data.items() if v[2] > now}
            return count, last

    def undo(self, key: str, last_before: int) -> None:
        with self._lock:
            if key in self._data:
                count, _, expires = self._data[key]
                self._data[key] = (max(0, count - 1), last_before, expires)

    def clear(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)


class RedisCounters:
    def __init__(self, client) -> None:
        self._redis = client

    def add(self, key: str, now: int, window: int) -> tuple[int, int]:
        name = f"throttle:{key}"
        pipe = self._redis.pipeline(transaction=True)  # MULTI/EXEC: one atomic step
        pipe.hmget(name, "count", "last")
        pipe.hincrby(name, "count", 1)
        pipe.hset(name, "last", now)
        pipe.expire(name, window)
        (count, last), *_ = self._run(pipe)
        return int(count or 0), int(last or 0)

    def undo(self, key: str, last_before: int) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hincrby(f"throttle:{key}", "count", -1)
        pipe.hset(f"throttle:{key}", "last", last_before)
        self._run(pipe)

    def clear(self, key: str) -> None:
        self._run(self._redis.pipeline().delete(f"throttle:{key}"))

    @staticmethod
    def _run(pipe):
        import redis

        try:
            return pipe.execute()
        except redis.RedisError as error:
            raise CountersUnavailable(str(error)) from error


@dataclass(frozen=True)
class Budget:
    free: int
    window: int
    max_delay: int
    # hard: once the budget is spent, refuse until the window has passed
    # since the last failure (for guessable secrets such as 4 digits).
    hard: bool = False
    # When the shared counter store is down: let the attempt through (open),
    # or refuse it for UNAVAILABLE_WAIT seconds (closed). See README.
    fail_open: bool = False

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


class Attempt:
    """One guarded attempt, counted before the check it guards, so that
    concurrent requests cannot all slip through a nearly spent budget.

    ``begin()`` counts the attempt against every gate and returns how long
    to wait (refused attempts are taken back: waiting is not failing).
    Then ``succeeded()`` takes the attempt back and clears chosen keys, or
    ``failed()`` leaves it counted.
    """

    def __init__(self, gates: list[tuple[Throttle, str]], now: int) -> None:
        self.gates, self.now = gates, now
        self._counted: list[tuple[Throttle, str, int]] = []
        self.unavailable = False

    def begin(self) -> int:
        try:
            for throttle, key in self.gates:
                failures, last = throttle.counters.add(key, self.now, throttle.budget.window)
                self._counted.append((throttle, key, last))
                wait = throttle.budget.retry_after(failures, last, self.now)
                if wait:
                    self._take_back()
                    return wait
        except CountersUnavailable:
            self._counted = []
            self.unavailable = True
            if all(throttle.budget.fail_open for throttle, _ in self.gates):
                log.warning("throttle counters unavailable: letting %s through", self.gates[0][1].split(":")[0])
                return 0
            log.warning("throttle counters unavailable: refusing %s", self.gates[0][1].split(":")[0])
            return UNAVAILABLE_WAIT
        return 0

    def succeeded(self, clear: tuple[str, ...] = ()) -> None:
        try:
            self._take_back()
            for throttle, key in self.gates:
                if key in clear:
                    throttle.counters.clear(key)
        except CountersUnavailable:
            pass  # nothing to take back that the store still holds

    def failed(self) -> None:
        self._counted = []

    def _take_back(self) -> None:
        counted, self._counted = self._counted, []
        for throttle, key, last in counted:
            throttle.counters.undo(key, last)


def make_counters(redis_url: str | None) -> Counters:
    if not redis_url:
        return MemoryCounters()
    import redis

    return RedisCounters(redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5))
