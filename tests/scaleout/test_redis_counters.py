"""Throttling with counters in Redis, and what happens when Redis is down."""

import pytest

from ..helpers import csrf_token
from ..registration.helpers import Registrant


def login(client, login_id, password):
    page = client.get("/login")
    return client.post("/login", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                       "login_id": login_id, "password": password})


def test_login_budget_in_redis(app, account, redis_url):
    from idp.security.throttle import make_counters

    app.extensions["idp.counters"] = make_counters(redis_url)
    browsers = [app.test_client() for _ in range(2)]
    for i in range(5):
        assert login(browsers[i % 2], "taro.itsu@example.jp", "wrong-pass").status_code == 200
    assert login(browsers[0], "taro.itsu@example.jp", "itscom-demo1").status_code == 429


@pytest.fixture
def redis_down(app):
    """Redis unreachable: nothing listens on port 1."""
    from idp.security.throttle import make_counters

    app.extensions["idp.counters"] = make_counters("redis://127.0.0.1:1/0")


def test_logins_fail_open_without_redis(app, client, account, redis_down):
    assert login(client, "taro.itsu@example.jp", "wrong-pass").status_code == 200
    assert login(client, "taro.itsu@example.jp", "itscom-demo1").status_code == 303


def test_contract_verification_fails_closed_without_redis(app, client, contracts, redis_down):
    response = Registrant(app, client).verify()
    assert response.status_code == 429
    assert "1分後に再度お試しください" in response.get_data(as_text=True)


def test_recovery_fails_closed_without_redis(app, client, account, redis_down):
    page = client.get("/recovery/identify")
    response = client.post("/recovery/identify", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                       "login_id": "taro.itsu@example.jp"})
    assert response.status_code == 429
