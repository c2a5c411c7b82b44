"""A password sign-in of an account with a second factor asks for it (issue 15)."""

from urllib.parse import urlsplit

import pytest

from idp.extensions import db
from idp.models import AuditEvent, LoginSession

from ..helpers import csrf_token, enrol_totp, give_factor, login, totp_code


@pytest.fixture
def factor(app, account):
    return enrol_totp(app, account)


def _sessions(app) -> list[LoginSession]:
    with app.app_context():
        return db.session.scalars(db.select(LoginSession).order_by(LoginSession.id)).all()


def test_without_a_factor_the_password_signs_in(client, account, app):
    response = login(client)
    assert response.status_code == 303 and urlsplit(response.location).path != "/login/factor"
    assert [s.amr for s in _sessions(app)] == ["pwd"]


def test_a_right_password_asks_for_the_factor_before_any_session(client, factor, app, clock):
    secret, _ = factor
    response = login(client)
    assert response.status_code == 303 and urlsplit(response.location).path == "/login/factor"
    assert not any(c.startswith("idp_session=") for c in response.headers.getlist("Set-Cookie"))
    assert _sessions(app) == []
    page = client.get(response.location)
    assert page.status_code == 200 and "2段階認証" in page.get_data(as_text=True)

    done = give_factor(client, totp_code(secret, clock), response.location)
    assert done.status_code == 303 and done.location == app.config["HOME_URL"]
    assert any(c.startswith("idp_session=") for c in done.headers.getlist("Set-Cookie"))
    assert [s.amr for s in _sessions(app)] == ["pwd otp mfa"]


def test_a_wrong_code_signs_nobody_in(client, factor, app, clock):
    secret, _ = factor
    login(client)
    wrong = str((int(totp_code(secret, clock)) + 1) % 1_000_000).zfill(6)
    response = give_factor(client, wrong)
    assert response.status_code == 400 and "確認コードが正しくありません。" in response.get_data(as_text=True)
    assert _sessions(app) == []
    for junk in ("", "12345", "1234567", "abcdef", "１２３４５６", "x" * 70):
        assert give_factor(client, junk).status_code in (200, 400)
    assert _sessions(app) == []


def test_the_same_code_works_once(client, app, factor, clock):
    secret, _ = factor
    code = totp_code(secret, clock)
    login(client)
    assert give_factor(client, code).status_code == 303
    other = app.test_client()
    login(other)
    replay = give_factor(other, code)
    assert replay.status_code == 400, "a code already used is refused (replay)"
    clock.advance(30)
    assert give_factor(other, totp_code(secret, clock)).status_code == 303


@pytest.mark.parametrize("offset, accepted", [(-1, True), (1, True), (-2, False), (2, False)])
def test_one_step_of_skew_either_side(client, factor, clock, offset, accepted):
    secret, _ = factor
    clock.advance(30 - clock.now() % 30)  # the start of a step: the edges are exact
    login(client)
    response = give_factor(client, totp_code(secret, clock, offset))
    assert (response.status_code == 303) is accepted


def test_the_step_edge_follows_the_clock(client, factor, clock):
    secret, _ = factor
    clock.advance(30 - clock.now() % 30 + 29)  # the last second of a step
    code = totp_code(secret, clock, -1)  # the step before: still within the skew
    clock.advance(1)  # now two steps on
    login(client)
    assert give_factor(client, code).status_code == 400


def test_the_waiting_sign_in_expires(client, factor, app, clock):
    secret, _ = factor
    login(client)
    page = client.get("/login/factor").get_data(as_text=True)
    clock.advance(app.config["MFA_PENDING_LIFETIME"] + 1)
    response = client.post("/login/factor", data={"csrf_token": csrf_token(page), "code": totp_code(secret, clock)})
    assert response.status_code == 400 and "ログインからやり直してください" in response.get_data(as_text=True)
    assert _sessions(app) == []


def test_the_factor_page_needs_a_right_password_first(client, factor, app, clock):
    secret, _ = factor
    assert client.get("/login/factor").status_code == 400
    page = login(client, password="wrong-password1").get_data(as_text=True)
    assert client.get("/login/factor").status_code == 400
    response = client.post("/login/factor", data={"csrf_token": csrf_token(page), "code": totp_code(secret, clock)})
    assert response.status_code == 400 and _sessions(app) == []


def test_the_waiting_sign_in_is_taken_once(client, factor, app, clock):
    secret, _ = factor
    login(client)
    page = client.get("/login/factor").get_data(as_text=True)
    assert give_factor(client, totp_code(secret, clock)).status_code == 303
    clock.advance(30)
    again = client.post("/login/factor", data={"csrf_token": csrf_token(page), "code": totp_code(secret, clock)})
    assert again.status_code == 400, "the factor page of a finished sign-in is over"


def test_a_recovery_code_stands_in_once(client, factor, app):
    _, codes = factor
    login(client)
    response = give_factor(client, codes[0].upper().replace("-", " "))
    assert response.status_code == 303
    assert [s.amr for s in _sessions(app)] == ["pwd otp mfa"]
    other = app.test_client()
    login(other)
    assert give_factor(other, codes[0]).status_code == 400, "a recovery code is single-use"
    assert give_factor(other, codes[1]).status_code == 303
    with app.app_context():
        kinds = [e.details.get("kind") for e in db.session.scalars(
            db.select(AuditEvent).filter_by(event="second_factor.verified").order_by(AuditEvent.id))]
    assert kinds == ["recovery", "recovery"]


def _wrong(secret, clock) -> str:
    return str((int(totp_code(secret, clock)) + 1) % 1_000_000).zfill(6)


def test_wrong_codes_are_throttled_per_account(client, factor, app, clock):
    secret, _ = factor
    login(client)
    for _ in range(app.config["MFA_FREE_FAILURES_PER_ACCOUNT"]):
        assert give_factor(client, _wrong(secret, clock)).status_code == 400
    refused = give_factor(client, totp_code(secret, clock))
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert "確認コードの入力回数が上限を超えました。" in refused.get_data(as_text=True)
    assert _sessions(app) == []
    clock.advance(1)
    assert give_factor(client, totp_code(secret, clock)).status_code == 303


def test_a_strangers_guesses_never_lock_the_owner_out(app, factor, clock):
    """Someone who has the password guesses codes from a browser of their
    own; the owner's browser, which signed in before, is held to its own budget."""
    secret, _ = factor
    owner = app.test_client()
    login(owner)
    assert give_factor(owner, totp_code(secret, clock)).status_code == 303  # the owner's device cookie
    clock.advance(30)
    thief = app.test_client()
    login(thief, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    for _ in range(app.config["MFA_FREE_FAILURES_PER_ACCOUNT"] + 3):
        give_factor(thief, _wrong(secret, clock), environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert give_factor(thief, totp_code(secret, clock),
                       environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code == 429
    assert login(owner).status_code == 303
    assert give_factor(owner, totp_code(secret, clock)).status_code == 303


def test_one_customers_guesses_leave_another_customer_alone(app, factor, contracts, clock):
    from idp.accounts import create_account

    with app.app_context():
        other = create_account("2005128463", "hanako@example.jp", "hanako-pass1")
        db.session.commit()
        other_id = other.id
    other_secret, _ = enrol_totp(app, other_id)
    secret, _ = factor
    guesser = app.test_client()
    login(guesser)
    for _ in range(app.config["MFA_FREE_FAILURES_PER_ACCOUNT"] + 1):
        give_factor(guesser, _wrong(secret, clock))
    assert give_factor(guesser, totp_code(secret, clock)).status_code == 429
    neighbour = app.test_client()  # another customer behind the same address
    login(neighbour, "hanako@example.jp", "hanako-pass1")
    assert give_factor(neighbour, totp_code(other_secret, clock)).status_code == 303


def test_a_secret_sealed_under_another_key_matches_no_code(app, factor, clock):
    """IDP_SECRET_KEY rotated: the stored secret cannot be read; a refusal, not a 500."""
    from idp.models import TotpFactor
    from idp.security import sealed

    secret, _ = factor
    original = app.secret_key
    with app.test_request_context():
        app.secret_key = "another-secret-" + "y" * 32
        db.session.execute(db.update(TotpFactor).values(secret=sealed.seal_text(secret)))
        db.session.commit()
    app.secret_key = original
    browser = app.test_client()
    login(browser)
    assert give_factor(browser, totp_code(secret, clock)).status_code == 400
