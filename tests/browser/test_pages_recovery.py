"""iTSCOM ID・パスワードが分からなくなったら, both procedures, on a phone and on
a desktop: each page fits, reflows, is easy to tap and passes axe-core
(customer_pages)."""

import re

import pytest

from idp.accounts import create_account
from idp.extensions import db
from idp.mail import deliver_due

from ..mailserver import body_of
from .customer_pages import customer_templates

FOLDERS = ("recovery",)  # every page of these is walked


@pytest.fixture
def yamada(app, contracts):
    """An account whose contact address is not confirmed: procedure 3-A."""
    with app.app_context():
        create_account("2005128463", "yamada@example.jp", "Yamada-2025",
                       contact_email="yamada.mobile@example.com", contact_confirmed=False)
        db.session.commit()


def mailed(app, mail_server, to: str) -> str:
    with app.app_context():
        deliver_due()
    return body_of(mail_server.inbox.last_to(to))


def start(page, live_server, login_id: str) -> None:
    page.goto(f"{live_server}/login")
    page.get_by_role("link", name="ID、またはパスワードをお忘れですか？").click()
    page.get_by_label("パスワードがご不明な場合").check()
    page.get_by_role("button", name="次へ").click()
    page.get_by_label("iTSCOM ID").fill(login_id)
    page.get_by_role("button", name="次へ").click()


def test_recovery_pages(app, device_page, pages, live_server, account, yamada, mail_server):
    page = device_page
    # 3-B: a code by mail.
    page.goto(f"{live_server}/login")
    page.get_by_role("link", name="ID、またはパスワードをお忘れですか？").click()
    pages.check(page)
    page.get_by_label("パスワードがご不明な場合").check()
    page.get_by_role("button", name="次へ").click()
    page.get_by_role("heading", name="本人認証").wait_for()
    pages.check(page)
    page.get_by_label("iTSCOM ID").fill("taro.itsu@example.jp")
    page.get_by_role("button", name="次へ").click()
    page.get_by_role("heading", name="認証コード入力").wait_for()
    page.get_by_label("認証コード").fill("000000")
    page.get_by_role("button", name="次へ").click()
    page.get_by_role("alert").first.wait_for()
    pages.check(page)  # with the error
    code = re.search(r"認証コード：(\d{6})", mailed(app, mail_server, "taro.itsu@example.jp")).group(1)
    page.get_by_label("認証コード").fill(code)
    page.get_by_role("button", name="次へ").click()
    page.get_by_role("heading", name="パスワード再発行").wait_for()
    pages.check(page)
    page.get_by_label("パスワード", exact=True).fill("Taro-new-2026")
    page.get_by_label("パスワード再入力").fill("Taro-new-2026")
    page.get_by_role("button", name="次へ").click()
    page.get_by_text("これでパスワードの再発行は完了です。").wait_for()
    pages.check(page)

    # 3-A: a secret question, then a link by mail.
    start(page, live_server, "yamada@example.jp")
    page.get_by_role("heading", name="合言葉登録").wait_for()
    pages.check(page)
    page.get_by_label("秘密の質問").select_option("母親の旧姓")
    page.get_by_label("答え").fill("やまもと")
    page.get_by_role("button", name="次へ").click()
    page.get_by_role("heading", name="本人認証が完了しました。").wait_for()
    pages.check(page)
    link = re.search(r"https?://\S+/recovery/link/\S+", mailed(app, mail_server, "yamada.mobile@example.com")).group(0)
    page.goto(link)
    pages.check(page)
    page.get_by_label("秘密の質問").select_option("母親の旧姓")
    page.get_by_label("答え").fill("やまもと")
    page.get_by_role("button", name="ID・パスワード再発行").click()
    page.get_by_role("heading", name="ID・パスワード再発行").wait_for()
    pages.check(page)  # shows the iTSCOM ID
    page.get_by_label("パスワード", exact=True).fill("Yamada-2026")
    page.get_by_label("パスワード再入力").fill("Yamada-2026")
    page.get_by_role("button", name="次へ").click()
    page.get_by_text("これでパスワードの再発行は完了です。").wait_for()

    page.goto(link)  # used already
    page.get_by_role("link", name="はじめからやり直す").wait_for()
    pages.check(page)

    pages.assert_clean(customer_templates(*FOLDERS))
