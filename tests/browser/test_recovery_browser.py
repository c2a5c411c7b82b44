"""パスワードを再発行したい (3-B) in Chromium, following only the manual's words."""

import re

from playwright.sync_api import expect

from idp.mail import deliver_due

from ..mailserver import body_of


def test_password_recovery_by_mailed_code(app, page, live_server, account, mail_server):
    page.goto(f"{live_server}/login")
    page.get_by_role("link", name="ID、またはパスワードをお忘れですか？").click()
    page.get_by_label("パスワードがご不明な場合").check()
    page.get_by_role("button", name="次へ").click()

    expect(page.get_by_role("heading", name="本人認証")).to_be_visible()
    page.get_by_label("iTSCOM ID").fill("taro.itsu@example.jp")
    page.get_by_role("button", name="次へ").click()
    expect(page.get_by_role("heading", name="認証コード入力")).to_be_visible()
    with app.app_context():
        deliver_due()
    mail = mail_server.inbox.last_to("taro.itsu@example.jp")
    assert mail["Subject"] == "認証コードのお知らせ"
    code = re.search(r"認証コード：(\d{6})", body_of(mail)).group(1)
    page.get_by_label("認証コード").fill(code)
    page.get_by_role("button", name="次へ").click()

    page.get_by_label("パスワード", exact=True).fill("Taro-new-2026")
    page.get_by_label("パスワード再入力").fill("Taro-new-2026")
    page.get_by_role("button", name="次へ").click()
    expect(page.get_by_text("これでパスワードの再発行は完了です。")).to_be_visible()
    page.get_by_role("link", name="ログイントップへ").click()
    page.get_by_label("iTSCOM ID").fill("taro.itsu@example.jp")
    page.get_by_label("パスワード", exact=True).fill("Taro-new-2026")
    page.get_by_role("button", name="ログイン", exact=True).click()
    page.wait_for_url(f"{live_server}/account/")  # the home site (conftest)
    assert "逸 太郎" in page.content()
