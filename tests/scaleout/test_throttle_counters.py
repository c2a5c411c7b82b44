"""Throttle budgets count the same however many processes serve: in the
database without Redis, in Redis with it, and in the database again while
Redis is down or silent."""

import time

import pytest
import redis

from idp import create_app
from idp.extensions import db
from idp.models import AuditEvent, ThrottleCounter
from idp.security.throttle import Attempt, Budget, DatabaseCounters, make_counters

from ..helpers import login
from ..registration.helpers import Registrant

RIGHT, WRONG = "itscom-demo1", "wrong-pass"


def count_events(app, event):
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(AuditEvent).filter_by(event=event))


@pytest.fixture
def second_node(app, clock):
    """Another OP on the same database, with its own engine and counters: a
    second worker process or node."""
    other = create_app({"DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": app.secret_key,
                        "ISSUER": app.config["ISSUER"]}, clock=clock)
    yield other
    with other.app_context():
        db.engine.dispose()


# --- without Redis: counters in the database ----------------------------

def test_two_nodes_without_redis_hold_one_login_budget(app, second_node, account):
    browsers = [app.test_client(), second_node.test_client()]
    for i in range(5):
        assert login(browsers[i % 2], password=WRONG).status_code == 200
    for browser in browsers:
        refused = login(browser, password=RIGHT)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert count_events(app, "login.failure") == 5


def test_two_nodes_without_redis_allow_exactly_five_guesses_of_four_digits(app, second_node, contracts):
    registrants = [Registrant(node, node.test_client()) for node in (app, second_node)]
    statuses = [registrants[n % 2].verify(payment_value=f"{n:04d}").status_code for n in range(1, 11)]
    assert statuses == [200] * 5 + [429] * 5
    assert count_events(app, "registration.verify_failed") == 5


def test_a_count_survives_the_requests_rollback(app, clock):
    with app.test_request_context():
        attempt = Attempt(app.extensions["idp.counters"], [(Budget(1, 60, 60, hard=True), "test:key")], clock.now())
        assert attempt.begin() == 0
        db.session.rollback()
        again = Attempt(app.extensions["idp.counters"], [(Budget(1, 60, 60, hard=True), "test:key")], clock.now())
        assert again.begin() == 60


def test_expired_counters_are_pruned_as_keys_are_sprayed(app, clock):
    counters = DatabaseCounters()
    counters.PRUNE_EVERY = 50
    with app.app_context():
        for i in range(50):
            counters.add([(f"login:addr:198.51.100.{i}", 60)], clock.now())
        clock.advance(60)
        for i in range(50):
            counters.add([(f"login:addr:203.0.113.{i}", 60)], clock.now())
        assert db.session.scalar(db.select(db.func.count()).select_from(ThrottleCounter)) == 50


def test_audit_prune_removes_expired_counters(app, runner, clock):
    with app.app_context():
        DatabaseCounters().add([("a", 60), ("b", 600)], clock.now())
    clock.advance(60)
    result = runner.invoke(args=["audit", "prune"])
    assert "removed 1 expired throttle counters" in result.output
    with app.app_context():
        assert db.session.scalars(db.select(ThrottleCounter.key)).all() == ["b"]


# --- with Redis ----------------------------------------------------------

def use_redis(app, url, **settings):
    app.extensions["idp.counters"] = make_counters({**app.config, "REDIS_URL": url, **settings})


def test_two_nodes_hold_one_login_budget_in_redis(app, second_node, account, redis_url):
    for node in (app, second_node):
        use_redis(node, redis_url)
    browsers = [app.test_client(), second_node.test_client()]
    for i in range(5):
        assert login(browsers[i % 2], password=WRONG).status_code == 200
    assert login(browsers[0], password=RIGHT).status_code == 429
    assert redis.Redis.from_url(redis_url).keys("throttle:login:*")
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ThrottleCounter)) == 0


def test_a_refused_attempt_is_taken_back_in_redis(app, account, redis_url):
    """A login the budget refuses is not counted: its count and the time of
    the last failure go back to what they were (the settle script's undo)."""
    use_redis(app, redis_url)
    for _ in range(5):
        assert login(app.test_client(), password=WRONG).status_code == 200
    store = redis.Redis.from_url(redis_url)
    (key,) = store.keys("throttle:login:id:*")
    before = store.hmget(key, "count", "last")
    assert int(before[0]) == 5
    assert login(app.test_client(), password=RIGHT).status_code == 429
    assert store.hmget(key, "count", "last") == before


def test_a_successful_login_settles_its_counts_in_one_call_to_redis(app, account, redis_url, monkeypatch):
    """The attempt is counted (one script), then its address count taken
    back and the ID's failures forgiven together (one more), not in two."""
    use_redis(app, redis_url)
    assert login(app.test_client(), password=RIGHT).status_code == 303  # Redis has the scripts now
    for _ in range(4):
        assert login(app.test_client(), password=WRONG).status_code == 200
    client = app.extensions["idp.counters"]._redis
    send, sent = client.execute_command, []
    monkeypatch.setattr(client, "execute_command", lambda *args, **options: sent.append(args[0]) or send(*args, **options))
    assert login(app.test_client(), password=RIGHT).status_code == 303
    assert sent == ["EVALSHA", "EVALSHA"]
    store = redis.Redis.from_url(redis_url)
    assert not store.keys("throttle:login:id:*")  # the ID's failures are forgiven
    (address,) = store.keys("throttle:login:addr:*")
    assert int(store.hget(address, "count")) == 4  # the address keeps its failures, not the success
    for _ in range(5):
        assert login(app.test_client(), password=WRONG).status_code == 200  # the ID's budget is whole again


def test_while_redis_is_down_budgets_hold_in_the_database(app, client, account, contracts):
    use_redis(app, "redis://127.0.0.1:1/0")  # nothing listens on port 1
    for _ in range(5):
        assert login(client, password=WRONG).status_code == 200
    assert login(client, password=RIGHT).status_code == 429
    # Nothing refuses for want of a counter store: registration goes on.
    assert Registrant(app, app.test_client()).verify().location == "/registration/terms"


def test_a_silent_redis_costs_one_timeout_not_one_per_login(app, client, account, silent_redis):
    timeout = 0.5
    logins = 8
    started = time.monotonic()
    for i in range(logins):  # the same work with counters in the database
        login(app.test_client(), password=WRONG, login_id=f"nobody{i}@example.jp")
    baseline = time.monotonic() - started

    use_redis(app, f"redis://127.0.0.1:{silent_redis.port}/0", REDIS_TIMEOUT_MS=int(timeout * 1000))
    started = time.monotonic()
    statuses = [login(client, password=WRONG if i < 5 else RIGHT).status_code for i in range(logins)]
    extra = time.monotonic() - started - baseline

    # The budget still holds, counted in the database ...
    assert statuses == [200] * 5 + [429] * (logins - 5)
    # ... and Redis was asked once: one timeout, then the breaker stayed open.
    assert len(silent_redis.connections) == 1
    assert extra < logins * timeout / 2, f"{extra:.2f} s more than with the database alone"
