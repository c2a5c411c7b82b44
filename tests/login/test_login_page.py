"""マイページにログインしよう (manual p.2–3): the login page a customer sees."""

import re
import threading

import pytest

from idp.extensions import db
from idp.models import Account, AuditEvent

from ..helpers import login
from ..roundtrips import RoundTrips

MANUAL_WORDS = [
    "ログイン",
    "iTSCOM ID",
    "パスワード",
    "パスワードを表示",
    "ID、またはパスワードをお忘れですか？",
    "よくあるご質問はこちら",
    "リセット",
    "iTSCOM IDの新規登録",
    "当社WEBサイトをご利用の前に",
    "ご利用の手引き",
    "アカウントログインはこちら",
    "マイページは下記QRコードからもアクセスできます。",
]


def test_login_page_has_the_manuals_words_labels_and_buttons(client):
    html = client.get("/login").get_data(as_text=True)
    for words in MANUAL_WORDS:
        assert words in html, words
    for field_id, words in [("login_id", "iTSCOM ID"), ("password", "パスワード"), ("show-password", "パスワードを表示")]:
        assert re.search(rf'<label[^>]*for="{field_id}"[^>]*>{words}</label>', html), words
        assert f'id="{field_id}"' in html
    assert '<button type="submit" class="button primary">ログイン</button>' in html
    assert '<button type="reset" class="button">リセット</button>' in html
    assert 'href="/recovery/"' in html and 'href="/registration/"' in html
    assert "<svg" in html  # the QR code


def test_login_page_headers(client):
    response = client.get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in response.get_data(as_text=True)


def test_successful_login_redirects_303_and_sets_a_fresh_session_cookie(client, account):
    response = login(client, "taro.itsu@example.jp", "itscom-demo1")
    assert response.status_code == 303
    cookies = response.headers.getlist("Set-Cookie")
    session_cookie = next(c for c in cookies if c.startswith("idp_session="))
    # https issuer: SameSite=None so that POSTed authorization requests keep SSO; always Secure.
    assert "HttpOnly" in session_cookie and "SameSite=None" in session_cookie and "Secure" in session_cookie
    first_value = session_cookie.split(";")[0]
    again = login(client, "taro.itsu@example.jp", "itscom-demo1")
    second_value = next(c for c in again.headers.getlist("Set-Cookie") if c.startswith("idp_session=")).split(";")[0]
    assert first_value != second_value, "the session identifier changes at every login"


def test_a_login_reads_the_account_and_whether_it_has_a_factor_at_once(app, client, account):
    """One SELECT per password login: the account, with whether an
    authenticator must be asked for (the second factor's lookup rides along)."""
    with app.app_context():
        engine = db.engine
    with RoundTrips(engine) as trips:
        assert login(client).status_code == 303
    assert [line for line in trips.log if line.startswith("SELECT") and "(ping)" not in line] == [
        next(line for line in trips.log if line.startswith("SELECT accounts.id"))], trips.log


def test_login_id_is_case_insensitive_but_password_is_exact(client, account):
    assert login(client, "Taro.Itsu@Example.JP", "itscom-demo1").status_code == 303
    assert login(client, "taro.itsu@example.jp", "ITSCOM-DEMO1").status_code == 200


@pytest.mark.parametrize("login_id, password", [("taro.itsu@example.jp", "wrong-pass"), ("nobody@example.jp", "itscom-demo1")])
def test_wrong_password_and_unknown_id_get_the_same_answer(client, account, login_id, password):
    response = login(client, login_id, password)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "iTSCOM IDまたはパスワードが正しくありません。" in html
    assert "itscom-demo1" not in html and "wrong-pass" not in html  # password never echoed
    assert f'value="{login_id}"' in html  # the ID is kept


def test_login_without_csrf_token_is_refused(client, account):
    response = client.post("/login", data={"login_id": "taro.itsu@example.jp", "password": "itscom-demo1"})
    assert response.status_code == 400
    assert "idp_session=" not in " ".join(response.headers.getlist("Set-Cookie"))


def test_failures_are_throttled_with_progressive_delay(app, client, clock, account):
    for _ in range(5):
        assert login(client, "taro.itsu@example.jp", "wrong-pass").status_code == 200
    # The budget is spent: even the right password waits now, and says how long.
    refused = login(client, "taro.itsu@example.jp", "itscom-demo1")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert "1秒後に再度お試しください" in refused.get_data(as_text=True)
    clock.advance(1)
    assert login(client, "taro.itsu@example.jp", "wrong-pass").status_code == 200  # 6th failure
    assert login(client, "taro.itsu@example.jp", "itscom-demo1").status_code == 429
    clock.advance(2)  # the delay doubled
    assert login(client, "taro.itsu@example.jp", "itscom-demo1").status_code == 303
    with app.app_context():
        events = [e.event for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]
    assert events.count("login.failure") == 6 and "login.throttled" in events and events[-1] == "login.success"


def test_unknown_ids_are_throttled_like_known_ones(client, account):
    for _ in range(5):
        login(client, "nobody@example.jp", "wrong-pass")
    assert login(client, "nobody@example.jp", "wrong-pass").status_code == 429


def test_throttle_per_address_across_many_ids(app, client, account):
    app.config["LOGIN_FREE_FAILURES_PER_ADDRESS"] = 3
    for i in range(3):
        login(client, f"user{i}@example.jp", "wrong-pass")
    assert login(client, "taro.itsu@example.jp", "itscom-demo1").status_code == 429


def test_password_hash_is_upgraded_when_parameters_change(app, client, account):
    from argon2 import PasswordHasher

    with app.app_context():
        row = db.session.get(Account, account)
        row.password_hash = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("itscom-demo1")
        db.session.commit()
    assert login(client, "taro.itsu@example.jp", "itscom-demo1").status_code == 303
    with app.app_context():
        assert "m=19456,t=2,p=1" in db.session.get(Account, account).password_hash


def test_locked_account_cannot_log_in_and_gets_the_same_message(app, client, account):
    with app.app_context():
        db.session.get(Account, account).status = "locked"
        db.session.commit()
    response = login(client, "taro.itsu@example.jp", "itscom-demo1")
    assert "iTSCOM IDまたはパスワードが正しくありません。" in response.get_data(as_text=True)


def test_concurrent_wrong_passwords_stay_within_the_budget(app, account):
    def attempt():
        login(app.test_client(), "taro.itsu@example.jp", "wrong-pass")

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with app.app_context():
        checked = db.session.scalar(
            db.select(db.func.count()).select_from(AuditEvent).filter_by(event="login.failure"))
    assert checked <= app.config["LOGIN_FREE_FAILURES_PER_ACCOUNT"]


@pytest.fixture
def behind_one_proxy(config_overrides):
    config_overrides["TRUSTED_PROXIES"] = 1


def test_behind_a_proxy_each_customer_is_throttled_by_their_own_address(behind_one_proxy, app, account):
    attacker, victim = app.test_client(), app.test_client()
    for i in range(20):
        login(attacker, f"nobody{i}@example.jp", "x", headers={"X-Forwarded-For": "198.51.100.7"})
    assert login(attacker, "taro.itsu@example.jp", "itscom-demo1",
                 headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 429
    assert login(victim, "taro.itsu@example.jp", "itscom-demo1",
                 headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 303
