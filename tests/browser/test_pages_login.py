"""Login, the signed-in page, consent, the account page and logout, on a phone
and on a desktop: each page fits, reflows, is easy to tap and passes axe-core
(customer_pages)."""

import re
from urllib.parse import urlencode

from playwright.sync_api import expect

from idp.clients import create_client
from idp.extensions import db
from idp.mail import deliver_due

from ..mailserver import body_of
from .customer_pages import customer_templates, second_factor_pages

FOLDERS = ("login", "account_settings", "oauth", "errors")  # every page of these is walked


def test_login_account_consent_and_logout_pages(app, device_page, pages, live_server, account, mail_server):
    page = device_page
    with app.app_context():
        client, _ = create_client("iTSCOM パートナーサイト", [f"{live_server}/partner/callback"])
        db.session.commit()
        authorize = f"{live_server}/authorize?" + urlencode({
            "client_id": client.client_id, "response_type": "code", "scope": "openid profile email contract",
            "redirect_uri": f"{live_server}/partner/callback", "state": "s1",
        })

    page.goto(f"{live_server}/login")
    pages.check(page)
    page.get_by_label("iTSCOM ID").fill("taro.itsu@example.jp")
    page.get_by_label("パスワード", exact=True).fill("wrong-password")
    page.get_by_role("button", name="ログイン", exact=True).click()
    page.get_by_role("alert").first.wait_for()
    pages.check(page)  # with the error
    page.get_by_label("パスワード", exact=True).fill("itscom-demo1")
    page.get_by_role("button", name="ログイン", exact=True).click()
    page.wait_for_url(lambda url: not url.startswith(f"{live_server}/login"))
    page.get_by_text("逸 太郎").first.wait_for()
    pages.check(page)  # where a login without a site asking lands

    # A third-party site asks; its answer lands on a page the OP does not have.
    page.goto(authorize)
    expect(page.get_by_role("heading", name="情報提供の確認")).to_be_visible()
    pages.check(page)
    page.get_by_role("button", name="許可する").click()
    page.wait_for_url(f"{live_server}/partner/callback?*")
    pages.check(page)  # the OP's 404 page
    # The same site, answered by form_post; its script is held back so the
    # page stays as a customer without JavaScript sees it.
    page.route("**/static/form_post.js", lambda route: route.abort())
    page.goto(authorize + "&response_mode=form_post")
    expect(page.get_by_role("button", name="次へ")).to_be_visible()
    pages.check(page)
    page.goto(f"{live_server}/authorize?client_id=unknown&response_type=code")
    pages.check(page)

    page.goto(f"{live_server}/account/")
    pages.check(page)
    page.get_by_label("新しい連絡先メールアドレス").fill("taro.new-contact.address@example.jp")
    page.locator("form[action$='/account/contact'] input[type=password]").fill("itscom-demo1")
    page.get_by_role("button", name="確認用メールを送信する").click()
    page.get_by_role("status").first.wait_for()
    pages.check(page)  # with what happened
    with app.app_context():
        deliver_due()
    mail = mail_server.inbox.last_to("taro.new-contact.address@example.jp")
    page.goto(re.search(r"https?://\S+/account/contact/\S+", body_of(mail)).group(0))
    pages.check(page)
    page.get_by_role("button", name="変更する").click()
    page.get_by_text("に変更しました").wait_for()
    pages.check(page)

    second_factor_pages(page, pages, live_server)

    page.goto(f"{live_server}/session/end")
    pages.check(page)
    page.get_by_role("button", name="ログアウト").click()
    page.get_by_role("heading", name="ログアウトしました").wait_for()
    pages.check(page)

    # Passkeys need a host name, not 127.0.0.1: test_passkeys_browser walks their pages.
    pages.assert_clean(customer_templates(*FOLDERS) - {"idp:account_settings/passkey_new.html"})
