"""The one kind of in-process cache: values kept per app, loaded on a miss.

Every cache lives in ``app.extensions`` (made in ``create_app``), never at
module level, so two apps in one process (tests, the two-node tests) share
nothing. Underneath is cachetools: a TTLCache when values expire, an
LRUCache when they are kept until cleared. The client JWKS fetcher
(``oauth.client_auth.JwksFetcher``) uses cachetools directly, for what this
class does not do: a size in bytes, stale sets used while refreshed, failures
remembered. The SQL statements tokens.py builds once are memoised with
functools instead: the same for every app, they hold no data.

| extension       | keeps                                   | for                           |
|-----------------|-----------------------------------------|-------------------------------|
| idp.clients     | ``Client.lookup`` by client_id          | IDP_CLIENT_CACHE_SECONDS      |
| idp.origins     | ``Client.origins`` (CORS)               | IDP_CLIENT_CACHE_SECONDS      |
| idp.keys        | ``keys.keyring()``                      | IDP_KEY_CACHE_SECONDS         |
| idp.discovery   | the discovery document's bytes          | the app's life                |
| idp.qr          | the login page's QR code, per language  | the app's life                |
| idp.fernets     | ``sealed.derived_fernet``, per purpose  | the app's life                |
| idp.jwks        | clients' jwks_uri sets (JwksFetcher)    | see oauth/client_auth.py      |
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from cachetools import LRUCache, TTLCache


class Cache:
    """At most ``maxsize`` values, each kept ``seconds`` after it was loaded
    (None: until ``clear``), the least recently used going first when full.

    Safe to share between threads. Concurrent misses share one load: the
    others wait for it rather than load the same thing again. Loads may
    clear this cache (a flush that changes a client does), never read it.
    Expiry follows ``timer``; time.monotonic unless given."""

    def __init__(self, seconds: float | None = None, maxsize: int = 1,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self._values = LRUCache(maxsize) if seconds is None else TTLCache(maxsize, seconds, timer)
        self._lock = threading.Lock()  # guards _values and _cleared; never held during a load
        self._loading = threading.Lock()  # one load at a time
        self._cleared = 0  # clears so far: a load that began before a clear is not kept

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The value under ``key``; on a miss ``load()``'s, kept."""
        with self._lock:
            value = self._peek(key)
        if value is not _MISSING:
            return value
        with self._loading:
            with self._lock:  # another thread may have loaded it meanwhile
                value = self._peek(key)
                cleared = self._cleared
            if value is not _MISSING:
                return value
            value = load()
            with self._lock:
                if self._cleared == cleared:
                    self._values[key] = value
            return value

    def _peek(self, key: Hashable) -> Any:
        try:  # one lookup: an entry may expire between "in" and reading it
            return self._values[key]
        except KeyError:
            return _MISSING

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._cleared += 1


_MISSING = object()
