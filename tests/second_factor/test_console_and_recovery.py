"""Recovery keeps the second factor; the console can reset it (issue 15, point 5)."""

import re

import pytest

from idp.extensions import db
from idp.mail import read_body
from idp.models import AuditEvent, OutboxMail, TotpFactor

from ..admin.test_console import admin, post, sign_in  # noqa: F401 (the console's fixture)
from ..helpers import csrf_token, enrol_totp, give_factor, login, submit, totp_code
from ..recovery.test_recovery import mailed_link, start_3b, yamada  # noqa: F401 (3-A's customer)


def _mail_bodies(app, kind="second_factor") -> list[str]:
    with app.app_context():
        return [read_body(m) for m in db.session.scalars(db.select(OutboxMail).filter_by(kind=kind).order_by(OutboxMail.id))]


def _factor_on(app) -> bool:
    with app.app_context():
        return db.session.scalar(db.select(TotpFactor)) is not None


def test_the_console_resets_a_customers_factor_after_a_confirmation(app, client, admin, clock, account):  # noqa: F811
    enrol_totp(app, account)
    sign_in(client, admin, clock)
    page = client.get("/admin/accounts?q=taro.itsu@example.jp").get_data(as_text=True)
    assert "2段階認証をリセット" in page and "設定済み" in page
    confirm_page = client.get(f"/admin/accounts/{account}/second-factor")
    assert confirm_page.status_code == 200
    unconfirmed = post(client, f"/admin/accounts/{account}/second-factor")
    assert unconfirmed.status_code == 400 and _factor_on(app)
    done = post(client, f"/admin/accounts/{account}/second-factor", {"confirmed": "y"})
    assert done.status_code == 303 and not _factor_on(app)
    with app.app_context():
        row = db.session.scalar(db.select(AuditEvent).filter_by(event="admin.second_factor_reset"))
        assert row is not None and row.account_id == account and row.details.get("admin_id")
        assert db.session.scalar(db.select(AuditEvent).filter_by(event="second_factor.disabled")) is None
    assert any("当社にて2段階認証を解除しました" in body for body in _mail_bodies(app))
    assert login(app.test_client()).location == app.config["HOME_URL"]
    assert post(client, "/admin/accounts/999999/second-factor", {"confirmed": "y"}).status_code == 404


def test_the_console_reset_needs_an_administrator(app, client, account):
    enrol_totp(app, account)
    response = client.get(f"/admin/accounts/{account}/second-factor")
    assert response.status_code in (302, 303) and _factor_on(app)


@pytest.fixture
def recovered(app, client, account, clock):
    """3-B: the code mailed to the confirmed contact address, then a new password."""
    secret, _ = enrol_totp(app, account)
    assert submit(client, "/recovery/", {"unknown": "password"}).location == "/recovery/identify"
    submit(client, "/recovery/identify", {"login_id": "taro.itsu@example.jp"})
    with app.app_context():
        body = read_body(db.session.scalar(db.select(OutboxMail).filter_by(kind="recovery_code")))
    code = re.search(r"\b(\d{6})\b", body).group(1)
    submit(client, "/recovery/code", {"code": code})
    done = submit(client, "/recovery/password", {"password": "new-pass-42", "password_confirm": "new-pass-42"})
    assert done.status_code == 303, done.get_data(as_text=True)
    return secret


def test_recovery_resets_the_password_and_keeps_the_factor(app, recovered, clock):
    assert _factor_on(app)
    assert any("2段階認証の設定はそのままです" in body for body in _mail_bodies(app))
    browser = app.test_client()
    response = login(browser, password="new-pass-42")
    assert response.status_code == 303 and response.location.split("?")[0].endswith("/login/factor")
    assert give_factor(browser, totp_code(recovered, clock)).status_code == 303


@pytest.fixture
def config_overrides(mail_server):
    return {"MAIL_URL": mail_server.url}


def test_3a_recovery_keeps_the_factor_too(app, client, yamada, mail_server, clock):  # noqa: F811
    with app.app_context():
        from idp.models import Account

        account_id = db.session.scalar(db.select(Account.id).filter_by(login_id="yamada@example.jp"))
    secret, _ = enrol_totp(app, account_id)
    assert start_3b(client, "yamada@example.jp").location == "/recovery/secret"
    submit(client, "/recovery/secret", {"question": "ペットの名前", "answer": "ぽち"})
    path = mailed_link(app, mail_server, "yamada.mobile@example.com")
    form = client.get(path).get_data(as_text=True)
    client.post(path, data={"csrf_token": csrf_token(form), "question": "ペットの名前", "answer": "ぽち"})
    reissue = client.get("/recovery/reissue").get_data(as_text=True)
    done = client.post("/recovery/reissue", data={"csrf_token": csrf_token(reissue), "password": "Yamada-2026",
                                                  "password_confirm": "Yamada-2026"})
    assert done.location == "/recovery/done"
    assert _factor_on(app)
    assert any("2段階認証の設定はそのままです" in body for body in _mail_bodies(app))
    browser = app.test_client()
    response = login(browser, "yamada@example.jp", "Yamada-2026")
    assert response.location.split("?")[0].endswith("/login/factor")
    assert give_factor(browser, totp_code(secret, clock)).status_code == 303
