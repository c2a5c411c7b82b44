"""パスキーでログイン: a passkey's sign-in on the manual's login page is a
login like the password's, and only a fresh, genuine, verified answer from
this browser's own ceremony opens it."""

from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit

import pytest

from idp.extensions import db
from idp.models import Account, AuditEvent, BackchannelLogout, LoginSession, Passkey
from idp.security import devices

from ..helpers import RelyingParty, csrf_token, enrol_totp, login, query_of
from ..passkeys import SoftAuthenticator, enrol, login_options, passkey_login, post_assertion

REFUSED = "パスキーでログインできませんでした。"


@pytest.fixture
def config_overrides():
    # Back-channel notices are queued, not sent: the test reads them.
    return {"BACKCHANNEL_INLINE": False, "ALLOW_PRIVATE_OUTBOUND": True}


@pytest.fixture
def authenticator(app, account) -> SoftAuthenticator:
    """The demo customer's phone, with a passkey enrolled on the account page
    (in another browser, which then logs out)."""
    phone = SoftAuthenticator()
    browser = app.test_client()
    login(browser)
    assert enrol(browser, phone).status_code == 303
    return phone


def failures(app) -> list[dict]:
    with app.app_context():
        return [{"account_id": e.account_id, **e.details} for e in db.session.scalars(
            db.select(AuditEvent).filter_by(event="login.failure").order_by(AuditEvent.id))]


def last_success(app) -> dict:
    with app.app_context():
        return db.session.scalars(db.select(AuditEvent).filter_by(event="login.success")
                                  .order_by(AuditEvent.id.desc())).first().details


def alert(response) -> str:
    html = response.get_data(as_text=True)
    return html[html.index('role="alert">'):].split("</p>")[0]


def test_the_login_page_offers_passkeys_and_keeps_its_form(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'autocomplete="username webauthn"' in html  # the iTSCOM ID field's autofill offers passkeys
    assert "パスキーでログイン" in html and "/static/passkey.js" in html
    for words in ["ログイン", "リセット", "パスワードを表示", "ID、またはパスワードをお忘れですか？", "iTSCOM IDの新規登録"]:
        assert words in html
    # Without JavaScript nothing of it shows: the passkey form is hidden.
    assert 'id="passkey-login" class="passkey" hidden' in html


@pytest.mark.parametrize("issuer", ["http://127.0.0.1:5000", "http://[::1]:5000"])
def test_an_issuer_at_an_ip_address_offers_no_passkeys(app, client, account, issuer):
    """Browsers refuse passkeys for IP addresses (make run's 127.0.0.1): nothing offers them there."""
    app.config["ISSUER"] = issuer
    html = client.get("/login").get_data(as_text=True)
    assert "パスキーでログイン" not in html and 'autocomplete="username webauthn"' in html
    login(client)
    html = client.get("/account/").get_data(as_text=True)
    assert "パスキーは登録されていません。" in html and "パスキーを登録する</button>" not in html


def test_the_options_ask_for_a_discoverable_passkey_with_user_verification(client):
    options, _ = login_options(client)
    assert options["rpId"] == "id.example.test"  # the issuer's host
    assert options["userVerification"] == "required"
    assert options.get("allowCredentials", []) == []  # the passkey names its account
    first, _ = login_options(client)
    assert first["challenge"] != options["challenge"]


def test_options_need_the_pages_csrf_token(client):
    client.get("/login")
    assert client.post("/login/passkey/options").status_code == 400


def test_a_passkey_login_goes_through_authorize_to_the_site(app, client, authenticator, clock):
    receiver_uri = "https://rp.example.test/backchannel"
    rp = RelyingParty.register(app, client, backchannel_logout_uri=receiver_uri)
    response = rp.authorize()
    assert response.status_code == 303 and urlsplit(response.location).path == "/login"
    key = query_of(response.location)["request"]
    clock.advance(30)
    signed_in = passkey_login(client, authenticator, key)
    assert signed_in.status_code == 303, signed_in.get_data(as_text=True)
    assert any(h.startswith(devices.COOKIE + "=") for h in signed_in.headers.getlist("Set-Cookie"))
    back = client.get(signed_in.location)
    assert back.status_code == 302 and back.location.startswith(rp.redirect_uri)
    code = query_of(back.location)["code"]
    tokens = rp.exchange(code).get_json()
    claims = rp.verify_id_token(tokens["id_token"])
    assert claims["auth_time"] == clock.now() and claims["nonce"] == rp.nonce
    # RFC 8176: a device-bound key, its user verified; two factors in one.
    assert claims["amr"] == ["hwk", "user", "mfa"] and claims["acr"] == "urn:itscom:acr:mfa"
    with app.app_context():
        account = db.session.scalar(db.select(Account))
        assert claims["sub"] == account.subject
        passkey = db.session.scalar(db.select(Passkey))
        assert passkey.last_used_at == clock.now() and passkey.sign_count == 1
    assert last_success(app) == {"method": "passkey", "amr": ["hwk", "user"]}

    # Single sign-on: the site asks again without a login.
    assert query_of(rp.authorize(prompt="none").location).get("code")
    # Logging out tells the site by back channel, as after a password login.
    response = client.get("/session/end?" + urlencode({"id_token_hint": tokens["id_token"]}))
    assert response.status_code == 200
    with app.app_context():
        notice = db.session.scalar(db.select(BackchannelLogout))
        assert notice.uri == receiver_uri and notice.sid == claims["sid"]


def test_the_password_login_is_unchanged_beside_passkeys(client, authenticator):
    assert login(client).status_code == 303


def test_a_replayed_assertion_is_refused(app, client, authenticator):
    options, token = login_options(client)
    answer = authenticator.get(options)
    saved_cookie = client.get_cookie("idp_flow").value
    assert post_assertion(client, answer, token).status_code == 303
    # The same answer again, in the same browser: its ceremony is gone.
    replay = post_assertion(app.test_client(), answer, token)
    assert replay.status_code == 400
    # ... and with a copy of the flow cookie from before it was spent.
    thief = app.test_client()
    thief.set_cookie("idp_flow", saved_cookie, domain="localhost")
    replay = post_assertion(thief, answer, token)
    assert replay.status_code == 400 and REFUSED in replay.get_data(as_text=True)
    assert "idp_session=" not in " ".join(replay.headers.getlist("Set-Cookie"))
    assert [f["reason"] for f in failures(app)][-1] == "replayed"


def test_an_answer_to_a_challenge_this_browser_never_got_is_refused(app, client, authenticator):
    options, _ = login_options(app.test_client())  # another browser's ceremony
    token = csrf_token(client.get("/login").get_data(as_text=True))
    assert post_assertion(client, authenticator.get(options), token).status_code == 400
    assert failures(app)[-1]["reason"] == "challenge"


def test_a_ceremony_expires(app, client, authenticator, clock):
    options, token = login_options(client)
    clock.advance(app.config["PASSKEY_CEREMONY_LIFETIME"] + 1)
    assert post_assertion(client, authenticator.get(options), token).status_code == 400


@pytest.mark.parametrize("answer, detail", [
    ({"origin": "https://evil.example.test"}, "origin"),
    ({"origin": "http://id.example.test"}, "origin"),
    ({"rp_id": "evil.example.test"}, "RP ID"),
    ({"rp_id": "example.test"}, "RP ID"),
    ({"uv": False}, "verification"),
], ids=["other-origin", "http-origin", "other-rp-id", "parent-domain-rp-id", "no-user-verification"])
def test_a_wrong_origin_rp_id_or_unverified_user_is_refused(app, client, authenticator, answer, detail):
    response = passkey_login(client, authenticator, **answer)
    assert response.status_code == 400 and REFUSED in response.get_data(as_text=True)
    assert client.get("/account/").status_code == 303  # not signed in
    refused = failures(app)[-1]
    assert refused["reason"] == "assertion" and detail in refused["detail"]


def test_a_cloned_authenticator_is_refused_and_audited(app, client, authenticator):
    assert passkey_login(client, authenticator).status_code == 303  # counter 1
    assert passkey_login(app.test_client(), authenticator).status_code == 303  # counter 2
    clone = app.test_client()
    response = passkey_login(clone, authenticator, sign_count=2)  # a copy that signed as often as before
    assert response.status_code == 400
    assert passkey_login(clone, authenticator, sign_count=1).status_code == 400
    with app.app_context():
        account_id = db.session.scalar(db.select(Account.id))
        assert db.session.scalar(db.select(Passkey.sign_count)) == 2
    assert failures(app)[-2:] == [{"account_id": account_id, "reason": "sign count", "method": "passkey"}] * 2
    assert passkey_login(app.test_client(), authenticator).status_code == 303  # the original goes on


def test_an_authenticator_that_does_not_count_is_accepted(app, account):
    synced = SoftAuthenticator(backup_eligible=True, counts=False)
    browser = app.test_client()
    login(browser)
    assert enrol(browser, synced, name="同期されたパスキー").status_code == 303
    for _ in range(2):
        assert passkey_login(app.test_client(), synced).status_code == 303
    assert last_success(app) == {"method": "passkey", "amr": ["swk", "user"]}


def test_an_unknown_passkey_is_refused_like_a_bad_signature(app, client, authenticator):
    stranger = passkey_login(client, SoftAuthenticator())
    forged = passkey_login(app.test_client(), SoftAuthenticator(credential_id=authenticator.credential_id,
                                                                  user_handle=authenticator.user_handle))
    assert stranger.status_code == forged.status_code == 400
    assert alert(stranger) == alert(forged) and REFUSED in alert(stranger)
    assert [f["reason"] for f in failures(app)] == ["unknown credential", "assertion"]
    assert "signature" in failures(app)[-1]["detail"]


def test_a_locked_account_or_a_removed_passkey_does_not_open(app, client, authenticator):
    with app.app_context():
        db.session.scalar(db.select(Account)).status = "locked"
        db.session.commit()
    assert passkey_login(client, authenticator).status_code == 400
    assert failures(app)[-1]["reason"] == "locked"
    with app.app_context():
        db.session.scalar(db.select(Account)).status = "active"
        db.session.execute(db.delete(Passkey))
        db.session.commit()
    assert passkey_login(client, authenticator).status_code == 400
    assert failures(app)[-1]["reason"] == "unknown credential"


def test_malformed_answers_are_refused_without_a_500(app, client):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    for credential in ["", "not json", "[]", json.dumps({"id": "x"}), json.dumps({"id": "AA", "rawId": "AA",
                       "type": "public-key", "response": {"clientDataJSON": "!!", "authenticatorData": "",
                                                          "signature": ""}}), "x" * 20000]:
        response = post_assertion(client, credential, token)
        assert response.status_code == 400, credential[:40]
    assert client.post("/login/passkey", data={"credential": "{}"}).status_code == 400  # no CSRF token


def test_failures_are_throttled_per_address(app, client, authenticator, clock):
    free = app.config["LOGIN_FREE_FAILURES_PER_ADDRESS"]
    for _ in range(free):
        assert passkey_login(client, authenticator, rp_id="evil.example.test").status_code == 400
    refused = passkey_login(client, authenticator)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "ログインの試行回数が上限を超えました。" in refused.get_data(as_text=True)
    # Another address is not held back, nor is this one's password login.
    elsewhere = {"environ_base": {"REMOTE_ADDR": "192.0.2.9"}}
    assert passkey_login(app.test_client(), authenticator, request=elsewhere).status_code == 303
    assert login(client).status_code == 303
    clock.advance(int(refused.headers["Retry-After"]))
    assert passkey_login(app.test_client(), authenticator).status_code == 303


def test_the_login_replaces_this_browsers_session(app, client, authenticator):
    login(client)
    before = client.get_cookie("idp_session").value
    assert passkey_login(client, authenticator).status_code == 303
    assert client.get_cookie("idp_session").value != before  # no session fixation
    with app.app_context():
        password_session, passkey_session = db.session.scalars(
            db.select(LoginSession).order_by(LoginSession.id.desc()).limit(2)).all()[::-1]
        assert password_session.ended_at is not None and passkey_session.ended_at is None


def test_a_passkey_login_is_not_asked_the_second_factor(app, client, account, authenticator):
    """The second factor is for password sign-ins: a passkey with user
    verification already is two factors, and opens the session at once."""
    enrol_totp(app, account)
    rp = RelyingParty.register(app, client)
    key = query_of(rp.authorize(acr_values="urn:itscom:acr:mfa").location)["request"]
    signed_in = passkey_login(client, authenticator, key)
    assert signed_in.status_code == 303 and "/login/factor" not in signed_in.location
    back = client.get(signed_in.location)
    assert back.status_code == 302 and back.location.startswith(rp.redirect_uri)
    claims = rp.verify_id_token(rp.exchange(query_of(back.location)["code"]).get_json()["id_token"])
    assert claims["acr"] == "urn:itscom:acr:mfa"
