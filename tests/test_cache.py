"""The one cache helper (idp/cache.py): expiry, size, clearing, one per app."""

from __future__ import annotations

from idp.cache import Cache


class Timer:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Loads:
    """A load function that counts its calls and returns the count."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


def test_a_value_is_loaded_once_until_it_expires():
    timer, load = Timer(), Loads()
    cache = Cache(5, timer=timer)
    assert cache.get("k", load) == 1
    timer.t = 4.9
    assert cache.get("k", load) == 1
    timer.t = 5
    assert cache.get("k", load) == 2


def test_without_seconds_a_value_stays_until_cleared():
    timer, load = Timer(), Loads()
    cache = Cache(timer=timer)
    cache.get("k", load)
    timer.t = 10**9
    assert cache.get("k", load) == 1
    cache.clear()
    assert cache.get("k", load) == 2


def test_none_is_kept_like_any_value():
    # An unknown client_id is remembered too: it costs no query per request.
    loads = []
    cache = Cache(5)
    assert cache.get("nobody", lambda: loads.append(1)) is None
    assert cache.get("nobody", lambda: loads.append(2)) is None
    assert loads == [1]


def test_the_least_recently_used_goes_first_when_full():
    cache = Cache(maxsize=2)
    cache.get("a", lambda: "a")
    cache.get("b", lambda: "b")
    cache.get("a", lambda: "a again")  # a was used last: b goes
    cache.get("c", lambda: "c")
    assert cache.get("a", lambda: "a reloaded") == "a"
    assert cache.get("b", lambda: "b reloaded") == "b reloaded"


def test_a_load_that_saw_a_clear_is_not_kept():
    # A flush during the load (a client changed) clears the cache: what the
    # load read may predate the change, so the next get loads again.
    cache = Cache(5)

    def load_while_changed():
        cache.clear()
        return "old"

    assert cache.get("k", load_while_changed) == "old"
    assert cache.get("k", lambda: "new") == "new"


def test_each_app_has_its_own_caches(app, _schema):
    from idp import create_app

    other = create_app({"DATABASE_URL": _schema, "SECRET_KEY": "y" * 40, "ISSUER": app.config["ISSUER"]})
    for name in ("idp.clients", "idp.origins", "idp.keys", "idp.discovery", "idp.qr", "idp.fernets", "idp.jwks"):
        assert app.extensions[name] is not other.extensions[name], name
