"""パスキーで確認: a passkey as the second factor of a password sign-in
(issue 15 point 3): on the factor page, one of the held account's passkeys,
verified by idp/passkeys.py's ceremony rules, gives the factor."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest

from idp.extensions import db
from idp.mail import read_body
from idp.models import Account, AuditEvent, LoginSession, OutboxMail, Passkey, RecoveryCode

from ..helpers import csrf_token, enrol_totp, give_factor, login, query_of, submit, totp_code
from ..passkeys import SoftAuthenticator, b64, enrol, login_options

MFA = "urn:itscom:acr:mfa"
OTHER = {"login_id": "yamada@example.jp", "password": "Yamada-2026"}


@pytest.fixture
def second_account(app, account):
    from idp.accounts import create_account

    with app.app_context():
        create_account("2005128463", "yamada@example.jp", "Yamada-2026")
        db.session.commit()


@pytest.fixture
def phone(app, account) -> SoftAuthenticator:
    """The demo customer's passkey, enrolled on the account page in another browser."""
    phone = SoftAuthenticator()
    browser = app.test_client()
    login(browser)
    assert enrol(browser, phone).status_code == 303
    return phone


@pytest.fixture
def totp_on(app, account, phone):
    """The factor is on (TOTP), and the account has a passkey."""
    return enrol_totp(app, account)


def factor_options(client, path: str = "/login/factor") -> tuple[dict, str]:
    """What passkey.js does on the factor page: its options (and the page's CSRF token)."""
    page = client.get(path).get_data(as_text=True)
    token = csrf_token(page)
    response = client.post("/login/factor/passkey/options", headers={"X-CSRFToken": token})
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json(), token


def answer(client, credential: str, token: str, path: str = "/login/factor"):
    query = urlsplit(path).query
    return client.post("/login/factor/passkey" + (f"?{query}" if query else ""),
                       data={"csrf_token": token, "credential": credential})


def confirm(client, authenticator: SoftAuthenticator, path: str = "/login/factor", **options):
    """パスキーで確認 on the factor page at ``path``."""
    request, token = factor_options(client, path)
    return answer(client, authenticator.get(request, **options), token, path)


def sessions(app) -> list[str]:
    with app.app_context():
        return [s.amr for s in db.session.scalars(db.select(LoginSession).order_by(LoginSession.id))]


def factor_events(app) -> list[tuple[str, dict]]:
    with app.app_context():
        return [(e.event, e.details) for e in db.session.scalars(
            db.select(AuditEvent).where(AuditEvent.event.like("second_factor.%")).order_by(AuditEvent.id))]


def test_the_factor_page_offers_the_passkey(client, totp_on):
    response = login(client)
    page = client.get(response.location).get_data(as_text=True)
    assert "パスキーで確認" in page and 'id="passkey-factor" class="passkey" hidden' in page
    assert "/static/passkey.js" in page
    assert "認証アプリに表示されている6桁の確認コードを入力してください。" in page, "both are offered"


def test_without_passkeys_the_factor_page_is_as_before(app, client, account):
    enrol_totp(app, account)
    page = client.get(login(client).location).get_data(as_text=True)
    assert "パスキーで確認" not in page and "passkey.js" not in page


def test_the_options_list_the_held_accounts_passkeys(client, phone, totp_on):
    login(client)
    options, _ = factor_options(client)
    assert [c["id"] for c in options["allowCredentials"]] == [b64(phone.credential_id)]
    assert options["userVerification"] == "required" and options["rpId"] == "id.example.test"


def test_options_need_a_held_sign_in(client, phone, totp_on):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    assert client.post("/login/factor/passkey/options", headers={"X-CSRFToken": token}).status_code == 400


def test_the_passkey_gives_the_factor_and_the_id_token_says_so(rp, app, phone, totp_on, clock):
    response = rp.authorize(acr_values=MFA)
    assert urlsplit(response.location).path == "/login"
    factor_page = rp.login()
    assert urlsplit(factor_page.location).path == "/login/factor"
    done = confirm(rp.client, phone, factor_page.location)
    assert done.status_code == 303 and urlsplit(done.location).path == "/authorize", done.get_data(as_text=True)
    back = rp.client.get(done.location)
    exchanged = rp.exchange(query_of(back.location)["code"]).get_json()
    claims = rp.verify_id_token(exchanged["id_token"])
    assert claims["amr"] == ["pwd", "hwk", "user", "mfa"] and claims["acr"] == MFA
    assert factor_events(app)[-1] == ("second_factor.verified", {"kind": "passkey", "amr": ["hwk", "user"]})
    # The held sign-in is over: the page says so, and the answer cannot be given again.
    assert rp.client.get("/login/factor").status_code == 400


def test_a_replayed_answer_is_refused(app, client, phone, totp_on):
    login(client)
    options, token = factor_options(client)
    credential = phone.get(options)
    saved_cookie = client.get_cookie("idp_flow").value  # holds the sign-in and the challenge
    assert answer(client, credential, token).status_code == 303
    # Again in the same browser: the sign-in is over.
    assert answer(client, credential, token).status_code == 400
    # With a copy of the flow cookie from before: the challenge is spent.
    thief = app.test_client()
    thief.set_cookie("idp_flow", saved_cookie, domain="localhost")
    refused = answer(thief, credential, token)
    assert refused.status_code == 400 and "パスキーで確認できませんでした。" in refused.get_data(as_text=True)
    assert "idp_session=" not in " ".join(refused.headers.getlist("Set-Cookie"))
    assert factor_events(app)[-1][1]["reason"] == "replayed"
    assert sessions(app) == ["pwd", "pwd hwk user mfa"]  # the enrolling browser's, and this sign-in


def test_another_accounts_passkey_is_refused(app, client, phone, totp_on, second_account):
    """The other customer's passkey answers their held sign-in's challenge: not the demo customer's."""
    theirs = SoftAuthenticator()
    browser = app.test_client()
    login(browser, **OTHER)
    assert enrol(browser, theirs, password=OTHER["password"]).status_code == 303
    login(client)
    options, token = factor_options(client)
    options["allowCredentials"] = []
    refused = answer(client, theirs.get(options), token)
    assert refused.status_code == 400 and "パスキーで確認できませんでした。" in refused.get_data(as_text=True)
    assert sessions(app) == ["pwd", "pwd"], "only the enrolling browsers' sessions"
    assert factor_events(app)[-1][1]["reason"] == "another account"


@pytest.mark.parametrize("options, reason", [
    ({"origin": "https://evil.example.test"}, "assertion"),
    ({"rp_id": "evil.example.test"}, "assertion"),
    ({"uv": False}, "assertion"),
])
def test_a_wrong_origin_rp_id_or_unverified_user_is_refused(app, client, phone, totp_on, options, reason):
    login(client)
    refused = confirm(client, phone, **options)
    assert refused.status_code == 400 and "パスキーで確認できませんでした。" in refused.get_data(as_text=True)
    assert factor_events(app)[-1][0] == "second_factor.failure"
    assert factor_events(app)[-1][1]["reason"] == reason
    assert sessions(app) == ["pwd"]  # the enrolling browser's
    # The sign-in still waits: the right passkey gives the factor.
    assert confirm(client, phone).status_code == 303


def test_a_login_pages_challenge_does_not_answer_the_factor(app, client, phone, totp_on):
    options, _ = login_options(client)
    login(client)
    _, token = factor_options(client)
    assert answer(client, phone.get(options), token).status_code == 400
    assert factor_events(app)[-1][1]["reason"] == "challenge"


def test_malformed_answers_are_refused_without_a_500(client, phone, totp_on):
    login(client)
    _, token = factor_options(client)
    for junk in ("", "{}", "[]", "null", "x" * 20000, json.dumps({"response": {"clientDataJSON": "!!"}})):
        assert answer(client, junk, token).status_code == 400
    assert client.post("/login/factor/passkey", data={"credential": "{}"}).status_code == 400  # no CSRF token


def test_failures_are_throttled_like_the_code(app, client, phone, totp_on, clock):
    secret, _ = totp_on
    login(client)
    free = app.config["MFA_FREE_FAILURES_PER_ACCOUNT"]
    for _ in range(free):
        assert confirm(client, phone, rp_id="evil.example.test").status_code == 400
    refused = confirm(client, phone)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert factor_events(app)[-1][0] == "second_factor.throttled"
    # The same budget as the code's.
    assert give_factor(client, totp_code(secret, clock)).status_code == 429
    clock.advance(int(refused.headers["Retry-After"]))
    assert confirm(client, phone).status_code == 303


def test_a_throttled_try_speaks_of_what_was_tried(app, client, phone, totp_on, clock):
    """The budget is the code's and the passkey's alike, but each refusal
    names what the customer just tried: パスキーで確認 is not told of codes."""
    login(client)
    for _ in range(app.config["MFA_FREE_FAILURES_PER_ACCOUNT"]):
        confirm(client, phone, rp_id="evil.example.test")
    by_passkey = confirm(client, phone)
    assert by_passkey.status_code == 429
    page = by_passkey.get_data(as_text=True)
    assert "パスキーでの確認の試行回数が上限を超えました。" in page and "確認コードの入力回数" not in page
    by_code = give_factor(client, totp_code(totp_on[0], clock))
    assert by_code.status_code == 429
    assert "確認コードの入力回数が上限を超えました。" in by_code.get_data(as_text=True)


def test_a_step_up_with_the_passkey(rp, app, account, phone, clock):
    first = rp.verify_id_token(rp.tokens()["id_token"])  # signed in before the factor was set up
    enrol_totp(app, account)
    clock.advance(40)
    response = rp.authorize(acr_values=MFA)
    assert response.status_code == 303 and urlsplit(response.location).path == "/login/factor"
    done = confirm(rp.client, phone, response.location)
    assert done.status_code == 303
    back = rp.client.get(done.location)
    claims = rp.verify_id_token(rp.exchange(query_of(back.location)["code"]).get_json()["id_token"])
    assert claims["acr"] == MFA and claims["amr"] == ["pwd", "hwk", "user", "mfa"]
    assert claims["sid"] == first["sid"] and claims["auth_time"] == first["auth_time"] + 40


# --- 2段階認証（パスキー）: turned on and off on the account page ---------------------


def mails(app) -> list[str]:
    with app.app_context():
        return [read_body(m) for m in db.session.scalars(db.select(OutboxMail).filter_by(kind="second_factor")
                                                              .order_by(OutboxMail.id))]


def turn_on(client, password: str = "itscom-demo1"):
    return submit(client, "/account/factor/passkey", {"current_password": password}, page="/account/")


@pytest.fixture
def passkey_factor(app, client, account, phone) -> list[str]:
    """The demo customer turned on 2段階認証（パスキー） in ``client``; the recovery codes shown."""
    login(client)
    done = turn_on(client)
    assert done.status_code == 303 and done.location.endswith("/account/factor/codes")
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", client.get(done.location).get_data(as_text=True))
    assert len(codes) == 10
    return codes


def test_turning_the_passkey_factor_on(app, client, account, phone, clock):
    login(client)
    page = client.get("/account/").get_data(as_text=True)
    assert "2段階認証（パスキー）を設定する" in page
    assert turn_on(client, "wrong-one1").status_code == 400
    with app.app_context():
        assert not db.session.get(Account, account).passkey_factor
    done = turn_on(client)
    assert done.status_code == 303 and done.location.endswith("/account/factor/codes")
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", client.get(done.location).get_data(as_text=True))
    assert len(codes) == 10
    assert client.get("/account/factor/codes").status_code == 303, "shown once"
    assert "2段階認証（パスキー）を設定しました。" in mails(app)[0]
    page = client.get("/account/").get_data(as_text=True)
    assert "2段階認証（パスキー）は設定済みです。" in page and "未使用のリカバリーコード: 10個" in page
    assert "パスキーで確認して解除する" in page

    # The next password sign-in asks for the factor: the page offers the passkey, not an app.
    clock.advance(30)
    fresh = app.test_client()
    asked = login(fresh)
    assert asked.location.split("?")[0].endswith("/login/factor")
    page = fresh.get(asked.location).get_data(as_text=True)
    assert "パスキーで確認" in page and "認証アプリに表示されている6桁" not in page
    assert confirm(fresh, phone).status_code == 303
    # A recovery code works too.
    other = app.test_client()
    login(other)
    assert give_factor(other, codes[2]).status_code == 303


def test_without_a_passkey_it_cannot_be_turned_on(app, client, account):
    login(client)
    assert "2段階認証（パスキー）を設定する" not in client.get("/account/").get_data(as_text=True)
    refused = turn_on(client)
    assert refused.status_code == 400 and "先にパスキーを登録してください。" in refused.get_data(as_text=True)
    with app.app_context():
        assert not db.session.get(Account, account).passkey_factor
    assert login(app.test_client()).location == app.config["HOME_URL"]


def test_the_password_login_with_the_passkey_factor_gives_mfa(rp, app, phone, passkey_factor):
    response = rp.authorize(acr_values=MFA)
    factor_page = rp.login()
    assert urlsplit(factor_page.location).path == "/login/factor"
    done = confirm(rp.client, phone, factor_page.location)
    back = rp.client.get(done.location)
    claims = rp.verify_id_token(rp.exchange(query_of(back.location)["code"]).get_json()["id_token"])
    assert claims["amr"] == ["pwd", "hwk", "user", "mfa"] and claims["acr"] == MFA


def test_turning_it_off_with_a_recovery_code(app, client, account, passkey_factor):
    assert submit(client, "/account/factor/off", {"off-code": "x" * 16}, page="/account/").status_code == 400
    done = submit(client, "/account/factor/off", {"off-code": passkey_factor[0]}, page="/account/")
    assert done.status_code == 303
    with app.app_context():
        assert not db.session.get(Account, account).passkey_factor
        assert db.session.scalar(db.select(RecoveryCode)) is None
        assert db.session.scalar(db.select(Passkey)) is not None, "the passkey stays, for passkey sign-ins"
    assert "2段階認証を解除しました。" in mails(app)[-1]
    assert login(app.test_client()).location == app.config["HOME_URL"], "a password alone signs in again"


def off_options(client) -> tuple[dict, str]:
    token = csrf_token(client.get("/account/").get_data(as_text=True))
    response = client.post("/account/factor/off/passkey/options", headers={"X-CSRFToken": token})
    assert response.status_code == 200
    return response.get_json(), token


def test_turning_it_off_with_the_passkey(app, client, account, phone, passkey_factor):
    options, token = off_options(client)
    refused = client.post("/account/factor/off/passkey",
                          data={"csrf_token": token, "credential": phone.get(options, origin="https://evil.example.test")})
    assert refused.status_code == 400 and "パスキーで確認できませんでした。" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Account, account).passkey_factor
    options, token = off_options(client)
    done = client.post("/account/factor/off/passkey", data={"csrf_token": token, "credential": phone.get(options)})
    assert done.status_code == 303
    with app.app_context():
        assert not db.session.get(Account, account).passkey_factor
    assert "2段階認証を解除しました。" in mails(app)[-1]


def test_the_last_passkey_stays_while_it_is_the_factor(app, client, account, phone, passkey_factor):
    with app.app_context():
        passkey_id = db.session.scalar(db.select(Passkey.id))
    refused = submit(client, f"/account/passkeys/{passkey_id}/remove", page="/account/")
    assert refused.status_code == 303
    assert "最後のパスキーは削除できません" in client.get("/account/").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Passkey, passkey_id) is not None
    # Turned off first, it can go.
    submit(client, "/account/factor/off", {"off-code": passkey_factor[0]}, page="/account/")
    assert submit(client, f"/account/passkeys/{passkey_id}/remove", page="/account/").status_code == 303
    with app.app_context():
        assert db.session.get(Passkey, passkey_id) is None


def test_with_the_authenticator_too_no_new_codes_are_made(app, client, account, phone):
    login(client)
    _, codes = enrol_totp(app, account)
    # (With the app on, the page offers no separate opt-in; a direct POST keeps the app's codes.)
    done = turn_on(client)
    assert done.status_code == 303 and done.location.endswith("/account/")
    with app.app_context():
        assert db.session.get(Account, account).passkey_factor
    other = app.test_client()
    login(other)
    assert give_factor(other, codes[0]).status_code == 303, "the app's recovery codes still work"


def test_a_password_recovery_keeps_the_passkey_factor_and_says_so(app, account, passkey_factor):
    from idp import second_factor

    with app.test_request_context():
        second_factor.keep_notice(db.session.get(Account, account))
        db.session.commit()
    assert "2段階認証（パスキー）の設定はそのままです。" in mails(app)[-1]
    assert "認証アプリ" not in mails(app)[-1]
