"""Regressions for defects a security review found (each failed before its fix)."""

import json
import threading
from urllib.parse import urlencode, urlsplit

import pytest

from idp.extensions import db
from idp.models import AuditEvent

from ..helpers import RelyingParty, csrf_token, login, query_of
from .test_consent_and_logout import answer_consent


def test_consent_answers_the_request_its_page_showed(app, client, account):
    good = RelyingParty.register(app, client, first_party=False, redirect_uris=("https://good.example/cb",))
    evil = RelyingParty.register(app, client, first_party=False, redirect_uris=("https://evil.example/cb",))
    good.login()
    page_good = good.authorize(scope="openid").get_data(as_text=True)  # tab 1
    evil.authorize(scope="openid profile email phone contract offline_access")  # tab 2, opened by another site
    back = client.get(answer_consent(good, page_good, "approve").location)
    assert back.location.startswith("https://good.example/cb")
    assert evil.authorize(scope="openid", prompt="none").status_code == 302
    assert query_of(evil.authorize(scope="openid", prompt="none").location)["error"] == "consent_required"


def test_claims_parameter_cannot_exceed_the_clients_scopes(app, client, account):
    rp = RelyingParty.register(app, client, scopes=["openid"])
    claims = json.dumps({"id_token": {"customer_number": None, "phone_number": None, "email": None},
                         "userinfo": {"customer_number": None, "name": None}})
    tokens = rp.tokens(scope="openid", claims=claims)
    id_token = rp.verify_id_token(tokens["id_token"])
    userinfo = client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    assert not {"customer_number", "phone_number", "email"} & set(id_token)
    assert set(userinfo) == {"sub"}


def test_introspection_shows_the_email_only_with_the_email_scope(app, client, account):
    rp = RelyingParty.register(app, client, scopes=["openid"])
    tokens = rp.tokens(scope="openid")
    body = client.post("/introspect", data={"token": tokens["access_token"]}, headers=rp.auth()).get_json()
    assert body["active"] is True and "username" not in body


def test_a_rejected_refresh_does_not_use_up_the_token(rp):
    tokens = rp.tokens(scope="openid profile offline_access")
    wider = rp.token_request({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                              "scope": "openid email"})
    assert wider.get_json()["error"] == "invalid_scope"
    retry = rp.token_request({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert retry.status_code == 200


def test_a_rejected_code_exchange_does_not_use_up_the_code(rp):
    code = rp.sign_in_and_get_code()["code"]
    assert rp.exchange(code, verifier="z" * 50).status_code == 400
    assert rp.exchange(code).status_code == 200


def test_concurrent_refreshes_one_wins_and_the_family_is_revoked(rp, app):
    refresh = rp.tokens()["refresh_token"]
    barrier = threading.Barrier(2)
    results = []

    def use():
        browser = app.test_client()
        barrier.wait()
        results.append(browser.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh},
                                    headers=rp.auth()).status_code)

    threads = [threading.Thread(target=use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) in ([200, 400], [400, 400]), results


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


@pytest.mark.parametrize("overrides", [
    {"redirect_uri": 'https://rp.example.test/cb"'},
    {"redirect_uri": "https://rp.example.test/コールバック"},
    {"response_type": 'code"'},
    {"max_age": "9" * 5000},
    {"claims": "[" * 3000 + "]" * 3000},
])
def test_hostile_authorization_requests_never_500(rp, client, overrides):
    rp.login()  # max_age is only compared with a live session
    response = client.post("/authorize", data=rp.authorize_params(**overrides))
    assert 400 <= response.status_code < 500 or response.status_code == 302


@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect"])
def test_basic_credentials_that_are_not_utf8_are_invalid_client(client, path):
    response = client.post(path, data={"grant_type": "client_credentials", "token": "x"},
                           headers={"Authorization": "Basic //79OmE="})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


def test_prompt_login_without_a_session_asks_once(rp, client):
    assert urlsplit(rp.authorize(prompt="login").location).path == "/login"
    back = client.get(rp.login().location)
    assert back.status_code == 302 and "code" in query_of(back.location)


def test_confirmed_logout_with_client_id_returns_to_the_registered_uri(rp, client):
    rp.login()
    params = {"client_id": rp.client_id, "post_logout_redirect_uri": "https://rp.example.test/bye", "state": "s1"}
    page = client.get("/session/end?" + urlencode(params)).get_data(as_text=True)
    done = client.post("/session/end", data={"csrf_token": csrf_token(page), **params})
    assert done.status_code == 302 and done.location == "https://rp.example.test/bye?state=s1"


def test_confirmed_logout_keeps_a_valid_hint_for_another_customer(app, client, account):
    from idp.accounts import create_account

    with app.app_context():
        create_account("2005128464", "hanako@example.jp", "hanako-pass9")
        db.session.commit()
    rp = RelyingParty.register(app, client)
    hint = rp.tokens()["id_token"]  # taro's
    login(client, "hanako@example.jp", "hanako-pass9")  # the same browser, now hanako
    params = {"id_token_hint": hint, "post_logout_redirect_uri": "https://rp.example.test/bye", "state": "s1"}
    page = client.get("/session/end?" + urlencode(params)).get_data(as_text=True)
    assert "ログアウトしますか" in page
    done = client.post("/session/end", data={"csrf_token": csrf_token(page), **params})
    assert done.status_code == 302 and done.location == "https://rp.example.test/bye?state=s1"


def test_an_access_token_is_no_id_token_hint(rp, client):
    tokens = rp.tokens()
    response = client.get("/session/end", query_string={
        "id_token_hint": tokens["access_token"], "post_logout_redirect_uri": "https://rp.example.test/bye"})
    assert response.status_code == 400


def test_a_refresh_token_revoked_after_it_was_read_is_not_rotated(rp, app, client):
    """The claim that spends a refresh token refuses one revoked meanwhile
    (e.g. by /revoke between the grant's read and its claim), and then
    stores no token in the revoked family."""
    from idp.models import Token
    from idp.tokens import claim_and_store
    from idp.security.secrets import digest

    refresh = rp.tokens()["refresh_token"]
    with app.app_context():
        row = db.session.scalar(db.select(Token).filter_by(refresh_token_digest=digest(refresh)))
        row_id, family = row.id, row.family_id
    assert client.post("/revoke", data={"token": refresh}, headers=rp.auth()).status_code == 200
    with app.app_context():
        before = db.session.scalar(db.select(db.func.count()).select_from(Token).filter_by(family_id=family))
        new_row = {"client_id": rp.client_id, "account_id": None, "scope": "openid", "access_token_digest": "x" * 64,
                   "refresh_token_digest": None, "issued_at": 1, "access_expires_at": 2, "refresh_expires_at": None,
                   "authorization_code_id": None, "sid": None, "auth_time": None, "claims_request": None,
                   "family_id": family, "family_expires_at": 3}
        assert claim_and_store(Token, row_id, "rotated_at", 1, new_row) is False
        db.session.commit()
        after = db.session.scalar(db.select(db.func.count()).select_from(Token).filter_by(family_id=family))
    assert after == before
