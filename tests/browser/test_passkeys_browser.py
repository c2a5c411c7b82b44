"""Passkeys in Chromium, with its virtual authenticator (DevTools protocol
WebAuthn domain) standing in for a phone's fingerprint reader: enrol on the
account page, log out, sign in with 「パスキーでログイン」 and through the
iTSCOM ID field's autofill (conditional mediation), on a phone and on a
desktop, each page checked like every customer page (customer_pages).

WebAuthn refuses IP addresses as RP IDs, so here the OP's issuer is
http://localhost:PORT (a secure context, like https)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from idp.extensions import db
from idp.models import AuditEvent, Passkey

from .customer_pages import sign_in
from .test_keyboard import Keyboard


@pytest.fixture
def config_overrides(_port, mail_server):
    base = f"http://localhost:{_port}"
    return {"ISSUER": base, "MAIL_URL": mail_server.url, "ALLOW_PRIVATE_OUTBOUND": True, "HOME_URL": f"{base}/account/"}


@pytest.fixture
def op(live_server) -> str:
    return live_server.replace("127.0.0.1", "localhost")


# Notes, in the tab's sessionStorage, how each navigator.credentials.get()
# was asked ("conditional" for the autofill, "modal" for the button); with
# sessionStorage "autofill" = "off" the browser says it has no passkey
# autofill, as browsers without conditional mediation do.
WATCH_REQUESTS = """
if (window.PublicKeyCredential) {
  const get = navigator.credentials.get.bind(navigator.credentials);
  navigator.credentials.get = (options) => {
    const seen = JSON.parse(sessionStorage.getItem("mediations") || "[]");
    seen.push(options.mediation || "modal");
    sessionStorage.setItem("mediations", JSON.stringify(seen));
    return get(options);
  };
  if (sessionStorage.getItem("autofill") === "off") {
    PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);
  }
}
"""


def virtual_authenticator(page):
    """A platform authenticator that keeps discoverable credentials and
    verifies its user (a fingerprint) without asking. With the WebAuthn UI
    disabled, Chromium hands every request to it at once: a conditional
    request resolves as the page makes it, as if the customer had picked the
    passkey in the iTSCOM ID field's autofill."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp, added["authenticatorId"]


def autofill(page, state: str) -> None:
    page.evaluate("state => { sessionStorage.setItem('autofill', state); sessionStorage.removeItem('mediations'); }",
                  state)


def mediations(page) -> list[str]:
    return page.evaluate("JSON.parse(sessionStorage.getItem('mediations') || '[]')")


def log_out_here(page):
    """「ログアウトする」 on the account page: this browser's session ends."""
    page.locator("tr.current").get_by_role("button", name="ログアウトする").click()
    page.wait_for_url("**/login")


def login_methods(app) -> list[str | None]:
    with app.app_context():
        return [e.details.get("method") for e in db.session.scalars(
            db.select(AuditEvent).filter_by(event="login.success").order_by(AuditEvent.id))]


def test_enrol_then_sign_in_with_the_button_and_with_autofill(app, device_page, pages, op, account, mail_server):
    page = device_page
    page.add_init_script(WATCH_REQUESTS)
    cdp, authenticator_id = virtual_authenticator(page)

    page.goto(f"{op}/healthz")  # a page of the OP's origin that asks for no passkey
    autofill(page, "off")
    page.goto(f"{op}/login")
    expect(page.get_by_role("button", name="パスキーでログイン")).to_be_visible()
    assert page.get_by_label("iTSCOM ID").get_attribute("autocomplete") == "username webauthn"
    pages.check(page)
    sign_in(page)
    page.wait_for_url(f"{op}/account/")
    expect(page.get_by_text("パスキーは登録されていません。")).to_be_visible()

    page.get_by_label("パスキーの名前").fill("このスマートフォン")
    page.locator("#passkey_current_password").fill("itscom-demo1")
    page.get_by_role("button", name="パスキーを登録する").click()
    expect(page.get_by_role("heading", name="パスキーの登録")).to_be_visible()
    pages.check(page)
    page.get_by_role("button", name="パスキーを作成する").click()
    page.wait_for_url(f"{op}/account/")
    expect(page.get_by_role("status")).to_have_text("パスキー「このスマートフォン」を登録しました。")
    expect(page.get_by_role("cell", name="このスマートフォン", exact=True)).to_be_visible()
    pages.check(page)  # the account page with its passkey listed
    [credential] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    assert credential["isResidentCredential"]
    with app.app_context():
        assert db.session.scalar(db.select(Passkey.name)) == "このスマートフォン"

    # パスキーでログイン: the button.
    log_out_here(page)
    page.get_by_role("button", name="パスキーでログイン").click()
    page.wait_for_url(f"{op}/account/")
    expect(page.get_by_text("逸 太郎").first).to_be_visible()
    assert mediations(page) == ["modal"] and login_methods(app) == [None, "passkey"]

    # The iTSCOM ID field's autofill (conditional mediation), started as the page loads.
    autofill(page, "on")
    log_out_here(page)
    page.wait_for_url(f"{op}/account/")
    expect(page.get_by_text("逸 太郎").first).to_be_visible()
    assert mediations(page) == ["conditional"] and login_methods(app) == [None, "passkey", "passkey"]
    with app.app_context():
        assert db.session.scalar(db.select(Passkey.sign_count)) >= 2

    # Removed, the passkey no longer opens the account, though the phone still holds it.
    page.get_by_role("button", name="パスキー「このスマートフォン」を削除する").click()
    expect(page.get_by_role("status")).to_have_text("パスキー「このスマートフォン」を削除しました。")
    autofill(page, "off")
    log_out_here(page)
    page.get_by_role("button", name="パスキーでログイン").click()
    expect(page.get_by_role("alert").first).to_contain_text("パスキーでログインできませんでした。")
    pages.check(page)  # the login page with the passkey's refusal
    assert login_methods(app) == [None, "passkey", "passkey"]
    pages.assert_clean({"idp:login/login.html", "idp:account_settings/index.html",
                        "idp:account_settings/passkey_new.html"})


def test_enrol_and_sign_in_by_keyboard(app, page, op, account):
    """The passkey steps by Tab, Space and Enter alone, each stop with a visible focus."""
    keys = Keyboard(page)
    page.add_init_script(WATCH_REQUESTS)
    virtual_authenticator(page)
    page.goto(f"{op}/healthz")  # a page of the OP's origin that asks for no passkey
    autofill(page, "off")
    page.goto(f"{op}/login")
    keys.type_into(page.get_by_label("iTSCOM ID"), "taro.itsu@example.jp")
    keys.type_into(page.get_by_label("パスワード", exact=True), "itscom-demo1")
    keys.press_on(page.get_by_role("button", name="ログイン", exact=True))
    page.wait_for_url(f"{op}/account/")
    keys.type_into(page.get_by_label("パスキーの名前"), "鍵盤")
    keys.type_into(page.locator("#passkey_current_password"), "itscom-demo1")
    keys.press_on(page.get_by_role("button", name="パスキーを登録する"))
    page.get_by_role("heading", name="パスキーの登録").wait_for()
    keys.press_on(page.get_by_role("button", name="パスキーを作成する"))
    expect(page.get_by_role("status")).to_have_text("パスキー「鍵盤」を登録しました。")
    keys.press_on(page.locator("tr.current").get_by_role("button", name="ログアウトする"))
    page.wait_for_url("**/login")
    keys.press_on(page.get_by_role("button", name="パスキーでログイン"))
    page.wait_for_url(f"{op}/account/")
    assert login_methods(app) == [None, "passkey"]


def test_the_passkey_as_the_second_factor_of_a_password_login(app, device_page, pages, op, account, mail_server):
    """2段階認証（パスキー）: turned on on the account page with a passkey
    registered; the next password login asks for the factor, and
    「パスキーで確認」 gives it; each page checked like every customer page."""
    page = device_page
    page.add_init_script(WATCH_REQUESTS)
    virtual_authenticator(page)
    page.goto(f"{op}/healthz")
    autofill(page, "off")  # no passkey sign-in through the login page's autofill: a password login
    page.goto(f"{op}/login")
    sign_in(page)
    page.wait_for_url(f"{op}/account/")
    page.get_by_label("パスキーの名前").fill("このスマートフォン")
    page.locator("#passkey_current_password").fill("itscom-demo1")
    page.get_by_role("button", name="パスキーを登録する").click()
    page.get_by_role("button", name="パスキーを作成する").click()
    expect(page.get_by_role("status")).to_have_text("パスキー「このスマートフォン」を登録しました。")
    pages.check(page)  # the account page offering 2段階認証（パスキー）

    page.locator("#passkey_factor_current_password").fill("itscom-demo1")
    page.get_by_role("button", name="2段階認証（パスキー）を設定する").click()
    page.wait_for_url(f"{op}/account/factor/codes")
    pages.check(page)  # the recovery codes, once
    page.goto(f"{op}/account/")
    expect(page.get_by_text("2段階認証（パスキー）は設定済みです。")).to_be_visible()
    pages.check(page)  # the account page with the passkey factor on

    log_out_here(page)
    sign_in(page)
    page.wait_for_url(f"{op}/login/factor*")
    expect(page.get_by_role("button", name="パスキーで確認")).to_be_visible()
    pages.check(page)  # the factor page offering the passkey
    page.get_by_role("button", name="パスキーで確認").click()
    page.wait_for_url(f"{op}/account/")
    expect(page.get_by_text("逸 太郎").first).to_be_visible()
    assert mediations(page) == ["modal"]  # the factor page's button; no passkey sign-in
    with app.app_context():
        verified = db.session.scalars(db.select(AuditEvent).filter_by(event="second_factor.verified")).all()
        assert [e.details["kind"] for e in verified] == ["passkey"]
    pages.assert_clean({"idp:login/factor.html", "idp:account_settings/index.html",
                        "idp:account_settings/factor_codes.html"})
