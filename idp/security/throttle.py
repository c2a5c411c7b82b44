"""Failure budgets with progressive delay, counted in one store that every
worker and node shares.

A key (an account's login ID, a client address, a device cookie, a contract
identity) may fail ``free`` times within ``window`` seconds; after that each
further attempt must wait twice as long as the one before (1 s, 2 s, 4 s … up
to ``max_delay``) counted from the last failure, or, for a ``hard`` budget,
until the window has passed. Nothing is locked permanently: the count expires
with the window, so a stranger cannot lock a customer out for good.

Counters live in Redis when ``IDP_REDIS_URL`` is set (``RedisCounters``),
otherwise in the database (``DatabaseCounters``); never in a process, since a
budget counted per worker multiplies with the workers. While Redis does not
answer, a circuit breaker sends the counts to the database, so that budgets
keep holding (their counts restart there) and a silent Redis costs one
timeout per ``IDP_REDIS_BREAKER_RESET`` seconds and process, not one per call.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pybreaker
import redis
from flask import current_app
from flask_babel import ngettext
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import bindparam, case, delete, update

from ..extensions import db, upsert
from ..models import ThrottleCounter
from .clock import now
from .secrets import digest

log = logging.getLogger(__name__)


class Counters(Protocol):
    def add(self, keys: Sequence[tuple[str, int]], now: int) -> list[tuple[int, int]]:
        """Atomically count one attempt at ``now`` for each (key, window) and
        return each key's (count, last) as they were before it; (0, 0) when
        none. A key expires ``window`` seconds after its last attempt."""

    def undo(self, counted: Sequence[tuple[str, int]]) -> None:
        """Take back one counted attempt per (key, its last before the attempt)."""

    def clear(self, keys: Sequence[str]) -> None: ...

    def settle(self, counted: Sequence[tuple[str, int]], clear: Sequence[str]) -> None:
        """``undo(counted)`` and ``clear(clear)``, as one call where the store allows."""


class DatabaseCounters:
    """Counters in the ``throttle_counters`` table.

    Each call is one statement on its own connection in autocommit: a count
    is durable and visible to every process at once, and stays counted when
    the request's own transaction rolls back. Expired rows are
    removed every ``PRUNE_EVERY`` counts of a process (and by
    ``flask audit prune``), so a spray of keys cannot grow the table beyond
    what one window holds.
    """

    PRUNE_EVERY = 1000

    def __init__(self) -> None:
        self._adds = itertools.count(1)

    def add(self, keys: Sequence[tuple[str, int]], now: int) -> list[tuple[int, int]]:
        table = ThrottleCounter.__table__
        insert = upsert(table)
        expired = table.c.expires_at <= insert.excluded.last
        statement = (
            # Rows in one order, so that two attempts sharing keys cannot deadlock.
            insert.values([{"key": _stored(key), "count": 1, "last": now, "prev_last": 0, "expires_at": now + window}
                           for key, window in sorted(keys)])
            .on_conflict_do_update(index_elements=[table.c.key], set_={
                "count": case((expired, 1), else_=table.c.count + 1),
                "prev_last": case((expired, 0), else_=table.c.last),
                "last": insert.excluded.last,
                "expires_at": insert.excluded.expires_at,
            })
            .returning(table.c.key, table.c.count, table.c.prev_last)
        )
        with _autocommit() as connection:
            rows = {key: (count - 1, prev_last) for key, count, prev_last in connection.execute(statement)}
        if next(self._adds) % self.PRUNE_EVERY == 0:
            self.prune(now)
        return [rows[_stored(key)] for key, _ in keys]

    def undo(self, counted: Sequence[tuple[str, int]]) -> None:
        table = ThrottleCounter.__table__
        statement = (
            update(table)
            .where(table.c.key == bindparam("counter"))
            .values(count=case((table.c.count > 0, table.c.count - 1), else_=0), last=bindparam("last_before"))
        )
        with _autocommit() as connection:
            connection.execute(statement, [{"counter": _stored(key), "last_before": last}
                                           for key, last in sorted(counted)])

    def clear(self, keys: Sequence[str]) -> None:
        table = ThrottleCounter.__table__
        with _autocommit() as connection:
            connection.execute(delete(table).where(table.c.key.in_([_stored(key) for key in keys])))

    def settle(self, counted: Sequence[tuple[str, int]], clear: Sequence[str]) -> None:
        if counted:
            self.undo(counted)
        if clear:
            self.clear(clear)

    @staticmethod
    def prune(now: int) -> int:
        """Remove expired counters; returns how many."""
        table = ThrottleCounter.__table__
        with _autocommit() as connection:
            return connection.execute(delete(table).where(table.c.expires_at <= now)).rowcount


def _autocommit():
    return db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def _stored(key: str) -> str:
    """Keys carry client addresses, which a proxy header can make long."""
    return key if len(key) <= 160 else digest(key)


# One script per call: atomic in Redis, and expiry follows the app's clock
# (``now``) like the database's; the TTL only frees memory.
_ADD = """
local now = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[i + 1])
  local v = redis.call('HMGET', key, 'count', 'last', 'expires')
  local count, last = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  if (tonumber(v[3]) or 0) <= now then count, last = 0, 0 end
  redis.call('HSET', key, 'count', count + 1, 'last', now, 'expires', now + window)
  redis.call('EXPIRE', key, window)
  out[2 * i - 1] = count
  out[2 * i] = last
end
return out
"""
# The first ARGV[1] keys counted down (their lasts after it: a counted attempt
# taken back), then DEL for the rest: undo, or a success's undo and clear, in one call.
_SETTLE = """
local undone = tonumber(ARGV[1])
for i = 1, undone do
  local count = tonumber(redis.call('HGET', KEYS[i], 'count'))
  if count then redis.call('HSET', KEYS[i], 'count', math.max(count - 1, 0), 'last', ARGV[i + 1]) end
end
for i = undone + 1, #KEYS do redis.call('DEL', KEYS[i]) end
"""


class RedisCounters:
    """Counters in Redis; in ``fallback`` while a circuit breaker is open.

    One failed call (refused, or no answer within the socket timeout) opens
    the breaker for ``reset_timeout`` seconds; then one call tries Redis
    again. pybreaker runs calls one at a time per process, which costs
    nothing with one request thread per worker and means that requests
    queued behind a hanging call fail over at once when it times out.
    """

    def __init__(self, client: redis.Redis, fallback: Counters, reset_timeout: int) -> None:
        self._redis, self._fallback = client, fallback
        self._add, self._settle = client.register_script(_ADD), client.register_script(_SETTLE)
        self._breaker = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=reset_timeout, listeners=[_LogState()],
                                                 name="redis throttle counters")

    def add(self, keys: Sequence[tuple[str, int]], now: int) -> list[tuple[int, int]]:
        names = [f"throttle:{key}" for key, _ in keys]
        try:
            flat = self._breaker.call(self._add, keys=names, args=[now, *(window for _, window in keys)])
        except (redis.RedisError, pybreaker.CircuitBreakerError):
            return self._fallback.add(keys, now)
        return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]

    def undo(self, counted: Sequence[tuple[str, int]]) -> None:
        self.settle(counted, ())

    def clear(self, keys: Sequence[str]) -> None:
        try:
            self._breaker.call(self._redis.delete, *(f"throttle:{key}" for key in keys))
        except (redis.RedisError, pybreaker.CircuitBreakerError):
            self._fallback.clear(keys)

    def settle(self, counted: Sequence[tuple[str, int]], clear: Sequence[str]) -> None:
        keys = [f"throttle:{key}" for key, _ in counted] + [f"throttle:{key}" for key in clear]
        try:
            self._breaker.call(self._settle, keys=keys, args=[len(counted), *(last for _, last in counted)])
        except (redis.RedisError, pybreaker.CircuitBreakerError):
            self._fallback.settle(counted, clear)


class _LogState(pybreaker.CircuitBreakerListener):
    def state_change(self, breaker, old_state, new_state) -> None:
        if new_state.name == pybreaker.STATE_OPEN:
            log.warning("Redis did not answer: throttle counters in the database for %d s", breaker.reset_timeout)
        elif new_state.name == pybreaker.STATE_CLOSED:
            log.warning("Redis answers again: throttle counters back in Redis")


def redis_client(config) -> redis.Redis:
    """A client of IDP_REDIS_URL that gives up after REDIS_TIMEOUT_MS, without
    retries: its user's circuit breaker decides when Redis is worth another try."""
    timeout = config["REDIS_TIMEOUT_MS"] / 1000
    return redis.Redis.from_url(config["REDIS_URL"], socket_timeout=timeout, socket_connect_timeout=timeout,
                                retry=Retry(NoBackoff(), 0))


def make_counters(config) -> Counters:
    database = DatabaseCounters()
    if not config["REDIS_URL"]:
        return database
    return RedisCounters(redis_client(config), database, config["REDIS_BREAKER_RESET"])


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


class Throttled(Exception):
    """An attempt refused by its throttle gate before anything was checked:
    the one shape every flow answers with, carrying how many seconds to
    wait (``retry_after``, for the message and the Retry-After header)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"try again in {retry_after} s")
        self.retry_after = retry_after


class Attempt:
    """One guarded attempt, counted against every gate (a budget and a key)
    before the check it guards, so that concurrent requests cannot all slip
    through a nearly spent budget.

    ``begin()`` counts the attempt and returns how long to wait, the longest
    any gate asks (refused attempts are taken back: waiting is not failing;
    ``refused`` names the keys that refused). A counted attempt stays counted
    (a failure, or a request that every time costs, like a mail sent) unless
    ``succeeded()`` takes it back, clearing chosen keys too.
    """

    def __init__(self, counters: Counters, gates: Sequence[tuple[Budget, str]], now: int) -> None:
        if len({key for _, key in gates}) != len(gates):
            raise ValueError("each gate of an attempt needs its own key")
        self.counters, self.gates, self.now = counters, list(gates), now
        self.refused: tuple[str, ...] = ()
        self._counted: list[tuple[str, int]] = []

    def begin(self) -> int:
        counts = self.counters.add([(key, budget.window) for budget, key in self.gates], self.now)
        self._counted = [(key, last) for (_, key), (_, last) in zip(self.gates, counts)]
        waits = {key: budget.retry_after(failures, last, self.now)
                 for (budget, key), (failures, last) in zip(self.gates, counts)}
        self.refused = tuple(key for key, wait in waits.items() if wait)
        if self.refused:
            self._take_back()
            return max(waits.values())
        return 0

    def succeeded(self, clear: Sequence[str] = ()) -> None:
        counted, self._counted = [(key, last) for key, last in self._counted if key not in clear], []
        if counted or clear:
            self.counters.settle(counted, list(clear))  # one call to Redis

    def _take_back(self) -> None:
        counted, self._counted = self._counted, []
        if counted:
            self.counters.undo(counted)


def budget(free: str | int, window: str, max_delay: str | None = None, *, hard: bool = False) -> Budget:
    """A budget declared by the names of its settings (config.py): ``free``
    failures (a setting's name, or a number) within the ``window`` setting,
    then delays up to the ``max_delay`` setting (by default the window)."""
    config = current_app.config
    return Budget(config[free] if isinstance(free, str) else free, config[window], config[max_delay or window], hard)


def attempt(gates: Sequence[tuple[Budget, str]]) -> Attempt:
    """The one way a flow builds its throttle gate: an attempt against
    these (budget, key) gates, in the app's shared counters, at the app's clock."""
    return Attempt(current_app.extensions["idp.counters"], gates, now())


def retry_after_text(seconds: int) -> str:
    """How long to wait, as the customer pages say it: 「30秒後」, 「15分後」,
    「3時間後」, 「30日後」 (rounded up); in English "in 15 minutes"."""
    if seconds >= 2 * 86400:
        return ngettext("%(num)d日後", "%(num)d日後", -(-seconds // 86400))
    if seconds >= 2 * 3600:
        return ngettext("%(num)d時間後", "%(num)d時間後", -(-seconds // 3600))
    if seconds >= 60:
        return ngettext("%(num)d分後", "%(num)d分後", -(-seconds // 60))
    return ngettext("%(num)d秒後", "%(num)d秒後", seconds)


def retry_after_header(seconds: int) -> dict[str, str]:
    """The Retry-After header of a refused (429) answer; none when not refused."""
    return {"Retry-After": str(seconds)} if seconds else {}
