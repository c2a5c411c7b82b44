"""The account page turns the second factor on and off (issue 15, point 3 and 5)."""

import re

import pytest

from idp.extensions import db
from idp.mail import read_body
from idp.models import AuditEvent, OutboxMail, RecoveryCode, TotpFactor

from ..helpers import enrol_totp, give_factor, login, submit, totp_code


@pytest.fixture
def signed_in(client, account):
    login(client)
    return client


def _secret_on_page(html: str) -> str:
    return "".join(re.search(r'<code class="key" translate="no">(.*?)</code>', html).group(1).split("</span>")) \
        .replace("<span>", "").replace(" ", "")


def _mails(app, kind="second_factor") -> list[str]:
    with app.app_context():
        return [read_body(m) for m in db.session.scalars(db.select(OutboxMail).filter_by(kind=kind).order_by(OutboxMail.id))]


def test_turning_the_authenticator_on(signed_in, app, clock, account):
    page = signed_in.get("/account/factor")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<svg" in html
    secret = _secret_on_page(html)
    assert _secret_on_page(signed_in.get("/account/factor").get_data(as_text=True)) == secret, "the same key until confirmed"
    with app.app_context():
        assert db.session.scalar(db.select(TotpFactor)) is None, "nothing stored before the first code"

    wrong = submit(signed_in, "/account/factor", {"code": "000000", "current_password": "itscom-demo1"})
    assert wrong.status_code == 400 and "確認コードが正しくありません" in wrong.get_data(as_text=True)
    bad_password = submit(signed_in, "/account/factor",
                          {"code": totp_code(secret, clock), "current_password": "wrong-one1"})
    assert bad_password.status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(TotpFactor)) is None

    done = submit(signed_in, "/account/factor",
                  {"code": totp_code(secret, clock), "current_password": "itscom-demo1"})
    assert done.status_code == 303 and done.location.endswith("/account/factor/codes")
    shown = signed_in.get("/account/factor/codes").get_data(as_text=True)
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", shown)
    assert len(codes) == 10 and len(set(codes)) == 10
    again = signed_in.get("/account/factor/codes")
    assert again.status_code == 303, "shown once"
    with app.app_context():
        stored = db.session.scalar(db.select(TotpFactor))
        assert secret not in stored.secret, "the secret is stored sealed"
        digests = set(db.session.scalars(db.select(RecoveryCode.code_digest)))
        assert not any(code.replace("-", "") in d for d in digests for code in codes)
        assert len(digests) == 10
        assert db.session.scalar(db.select(AuditEvent).filter_by(event="second_factor.enabled")) is not None
    assert "2段階認証を設定しました。" in _mails(app)[0]
    assert "未使用のリカバリーコード: 10個" in signed_in.get("/account/").get_data(as_text=True)

    # The next sign-in asks for the factor.
    clock.advance(30)
    fresh = app.test_client()
    assert login(fresh).location.split("?")[0].endswith("/login/factor")
    assert give_factor(fresh, codes[3]).status_code == 303
    assert "未使用のリカバリーコード: 9個" in fresh.get("/account/").get_data(as_text=True)


def test_renewing_the_recovery_codes_needs_the_factor(signed_in, app, account, clock):
    secret, old = enrol_totp(app, account)
    refused = submit(signed_in, "/account/factor/codes", {"renew-code": "123456"}, page="/account/")
    assert refused.status_code == 400
    renewed = submit(signed_in, "/account/factor/codes", {"renew-code": totp_code(secret, clock)}, page="/account/")
    assert renewed.status_code == 303
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", signed_in.get(renewed.location).get_data(as_text=True))
    assert len(codes) == 10 and not set(codes) & set(old)
    other = app.test_client()
    login(other)
    assert give_factor(other, old[0]).status_code == 400, "the old codes stop working"
    assert give_factor(other, codes[0]).status_code == 303
    assert any("作り直しました" in body for body in _mails(app))


def test_turning_it_off_needs_the_factor_or_a_recovery_code(signed_in, app, account, clock):
    secret, codes = enrol_totp(app, account)
    refused = submit(signed_in, "/account/factor/off", {"off-code": "654321"}, page="/account/")
    assert refused.status_code == 400 and "確認コードが正しくありません。" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(TotpFactor)) is not None
    done = submit(signed_in, "/account/factor/off", {"off-code": codes[5]}, page="/account/")
    assert done.status_code == 303
    with app.app_context():
        assert db.session.scalar(db.select(TotpFactor)) is None
        assert db.session.scalar(db.select(RecoveryCode)) is None
        assert db.session.scalar(db.select(AuditEvent).filter_by(event="second_factor.disabled")) is not None
    assert any("2段階認証を解除しました。" in body for body in _mails(app))
    assert login(app.test_client()).location == app.config["HOME_URL"], "a password alone signs in again"


def test_guessing_codes_on_the_account_page_is_throttled(signed_in, app, account, clock):
    secret, _ = enrol_totp(app, account)
    for _ in range(app.config["MFA_FREE_FAILURES_PER_DEVICE"]):
        submit(signed_in, "/account/factor/off", {"off-code": "000000"}, page="/account/")
    refused = submit(signed_in, "/account/factor/off", {"off-code": totp_code(secret, clock)}, page="/account/")
    assert refused.status_code == 400 and "しばらくしてから再度お試しください" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(TotpFactor)) is not None


def test_the_factor_pages_need_a_session(client, account):
    for path in ("/account/factor", "/account/factor/codes"):
        response = client.get(path)
        assert response.status_code == 303 and "/login" in response.location
