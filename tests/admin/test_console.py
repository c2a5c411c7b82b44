"""管理コンソール: administrators, TOTP, and each page's action, audited."""

import re

import pyotp
import pytest

from idp.extensions import db
from idp.models import Account, AuditEvent, Contract

from ..conftest import FIXTURE_CONTRACTS
from ..helpers import RelyingParty


@pytest.fixture
def admin(app, runner):
    result = runner.invoke(args=["admins", "create", "--username", "ops", "--password", "Correct-horse-77"])
    assert result.exit_code == 0, result.output
    return re.search(r"TOTP secret: (\w+)", result.output).group(1)


def code_at(secret, clock, offset=0):
    return pyotp.TOTP(secret).at(clock.now() + offset)


def sign_in(client, secret, clock, **overrides):
    page = client.get("/admin/login").get_data(as_text=True)
    data = {"csrf_token": csrf_token_plain(page), "username": "ops", "password": "Correct-horse-77",
            "code": code_at(secret, clock), **overrides}
    return client.post("/admin/login", data=data)


def csrf_token_plain(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def post(client, path, data=None, files=None):
    token = csrf_token_plain(client.get("/admin/").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **(data or {})}, content_type="multipart/form-data"
                       if files else None)


def events(app):
    with app.app_context():
        return [e.event for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]


def test_admins_need_a_strong_password(runner):
    weak = runner.invoke(args=["admins", "create", "--username", "ops", "--password", "short"])
    assert weak.exit_code != 0 and "12 characters" in weak.output


def test_password_and_totp_are_both_required(app, client, admin, clock):
    assert client.get("/admin/").location == "/admin/login"
    assert sign_in(client, admin, clock, password="wrong-password-1").status_code == 401
    wrong_code = f"{(int(code_at(admin, clock)) + 1) % 10**6:06d}"
    assert sign_in(client, admin, clock, code=wrong_code).status_code == 401
    assert sign_in(client, admin, clock, password="").status_code == 401
    assert sign_in(client, admin, clock).status_code == 303
    assert client.get("/admin/").status_code == 200
    assert "admin.login" in events(app) and "admin.login_failure" in events(app)


def test_a_totp_code_works_once(app, client, admin, clock):
    assert sign_in(client, admin, clock).status_code == 303
    other = app.test_client()
    assert sign_in(other, admin, clock).status_code == 401


def test_a_customer_session_is_no_admin_session(app, client, rp):
    rp.login()
    assert client.get("/admin/clients").location == "/admin/login"


def test_idle_admin_session_ends(app, client, admin, clock):
    sign_in(client, admin, clock)
    clock.advance(15 * 60 + 1)
    assert client.get("/admin/").location == "/admin/login"


def test_admin_forms_need_csrf(app, client, admin, clock):
    sign_in(client, admin, clock)
    assert client.post("/admin/clients/new", data={"name": "X"}).status_code == 400


def test_client_created_in_the_console_logs_a_customer_in(app, client, admin, clock, account):
    sign_in(client, admin, clock)
    response = post(client, "/admin/clients/new", {
        "name": "Partner", "redirect_uris": "https://partner.example/cb", "grant_types": "authorization_code",
        "scope": "openid email", "auth_method": "client_secret_basic", "first_party": "1",
    })
    html = response.get_data(as_text=True)
    client_id = re.search(r"client_id: <code>([^<]+)</code>", html).group(1)
    secret = re.search(r"client_secret: <code>([^<]+)</code>", html).group(1)
    rp = RelyingParty(app, app.test_client(), client_id, secret, "https://partner.example/cb")
    assert rp.tokens(scope="openid email")["access_token"]
    bad = post(client, f"/admin/clients/{client_id}", {"name": "Partner", "redirect_uris": "http://evil.example/cb",
                                                       "grant_types": "authorization_code", "scope": "openid"})
    assert bad.status_code == 400
    assert post(client, f"/admin/clients/{client_id}/disable").status_code == 303
    assert rp.token_request({"grant_type": "client_credentials"}).status_code == 401
    assert {"admin.client_created", "admin.client_disabled"} <= set(events(app))


def test_the_console_refuses_a_back_channel_uri_inside_our_network(app, client, admin, clock):
    sign_in(client, admin, clock)
    response = post(client, "/admin/clients/new", {
        "name": "Partner", "redirect_uris": "https://partner.example/cb", "grant_types": "authorization_code",
        "scope": "openid", "auth_method": "client_secret_basic",
        "backchannel_logout_uri": "https://169.254.169.254/latest/meta-data/",
    })
    assert response.status_code == 400
    assert "must be on a public address: 169.254.169.254 is link-local" in response.get_data(as_text=True)
    assert "admin.client_created" not in events(app)


def test_contract_import_previews_then_imports(app, client, admin, clock):
    sign_in(client, admin, clock)
    from io import BytesIO

    token = csrf_token_plain(client.get("/admin/contracts").get_data(as_text=True))
    csv = FIXTURE_CONTRACTS.read_bytes()
    preview = client.post("/admin/contracts", data={"csrf_token": token, "csv": (BytesIO(csv), "c.csv")},
                          content_type="multipart/form-data").get_data(as_text=True)
    assert "新規 8件 / 更新 0件" in preview
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Contract)) == 0
    text = re.search(r"<textarea name=\"csv_text\" hidden>(.*?)</textarea>", preview, re.S).group(1)
    import html as html_lib

    done = client.post("/admin/contracts", data={"csrf_token": token, "csv_text": html_lib.unescape(text),
                                                 "confirm": "1"})
    assert done.status_code == 303
    found = client.get("/admin/contracts?customer_number=2005128462").get_data(as_text=True)
    assert "逸 太郎" in found
    bad = client.post("/admin/contracts", data={"csrf_token": token, "csv": (BytesIO(csv + b"1,x,y,z,,,,,maybe\n"),
                                                "c.csv")}, content_type="multipart/form-data")
    assert "line 10" in bad.get_data(as_text=True)


def test_account_lock_and_revoke(app, client, admin, clock, rp):
    tokens = rp.tokens()
    sign_in(client, admin, clock)
    page = client.get("/admin/accounts?q=2005128462").get_data(as_text=True)
    assert "taro.itsu@example.jp" in page
    with app.app_context():
        account_id = db.session.scalar(db.select(Account.id))
    post(client, f"/admin/accounts/{account_id}/lock")
    assert rp.login().status_code == 200  # locked: refused
    assert client.post("/introspect", data={"token": tokens["access_token"]},
                       headers=rp.auth()).get_json()["active"] is False
    post(client, f"/admin/accounts/{account_id}/lock")  # unlock
    assert rp.login().status_code == 303
    assert {"admin.account_locked", "admin.account_unlocked"} <= set(events(app))


def test_keys_page_rotates(app, client, admin, clock):
    sign_in(client, admin, clock)
    assert post(client, "/admin/keys", {"alg": "ES256"}).status_code == 303
    assert "next" in client.get("/admin/keys").get_data(as_text=True)
    assert "key.rotated" in events(app)
    with app.app_context():
        from idp.models import SigningKey

        db.session.execute(db.delete(SigningKey))
        db.session.commit()


def test_audit_log_filters_and_pages(app, client, admin, clock, rp):
    rp.tokens()
    sign_in(client, admin, clock)
    page = client.get("/admin/audit?event=login.success").get_data(as_text=True)
    assert "login.success" in page and "token.issued" not in page
    assert "admin.login" in client.get("/admin/audit").get_data(as_text=True)


def test_logout_ends_every_copy_of_the_session(app, client, admin, clock):
    sign_in(client, admin, clock)
    copied = client.get_cookie("idp_flow").value
    token = csrf_token_plain(client.get("/admin/").get_data(as_text=True))
    client.post("/admin/logout", data={"csrf_token": token})
    thief = app.test_client()
    thief.set_cookie("idp_flow", copied)
    assert thief.get("/admin/").location == "/admin/login"


def test_a_disabled_admin_is_out_at_once(app, client, admin, clock):
    from idp.models import Admin

    sign_in(client, admin, clock)
    with app.app_context():
        db.session.scalar(db.select(Admin)).disabled = True
        db.session.commit()
    assert client.get("/admin/").location == "/admin/login"


def test_sessions_end_after_their_lifetime_even_when_busy(app, client, admin, clock):
    sign_in(client, admin, clock)
    for _ in range(40):  # busy every 14 minutes for over 9 hours
        clock.advance(14 * 60)
        response = client.get("/admin/")
        if response.status_code != 200:
            break
    assert response.location == "/admin/login"


def test_username_variants_share_one_budget(app, admin, clock):
    for n in range(5):
        sign_in(app.test_client(), admin, clock, username="ops" + " " * n, password="wrong-password-1",
                **{})
    assert sign_in(app.test_client(), admin, clock, username=" OPS ").status_code == 429
