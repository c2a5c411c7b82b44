"""はじめてのログイン, every step, on a phone and on a desktop: each page fits,
reflows, is easy to tap and passes axe-core (customer_pages)."""

from idp.mail import deliver_due

from ..mailserver import url_in
from .customer_pages import customer_templates

FOLDERS = ("registration",)  # every page of these is walked


def test_registration_pages(app, device_page, pages, live_server, contracts, mail_server):
    page = device_page
    page.goto(f"{live_server}/login")
    page.get_by_role("link", name="iTSCOM IDの新規登録").click()
    page.get_by_role("button", name="確認").click()
    page.get_by_role("alert").first.wait_for()
    pages.check(page)  # every field says what is missing

    # Two contracts share this name, phone and card: one more item is asked.
    page.get_by_label("ご契約者氏名（カナ）").fill("タナカイチロウ")
    page.get_by_label("登録済みの電話番号").fill("0355550000")
    page.get_by_label("クレジットカード番号 下4桁").check()
    page.get_by_label("お支払情報等", exact=True).fill("2718")
    page.get_by_role("button", name="確認").click()
    page.get_by_role("heading", name="追加認証情報").wait_for()
    pages.check(page)
    page.get_by_label("セットトップボックス").check()
    page.get_by_label("追加認証情報", exact=True).fill("FFEE00112233")
    page.get_by_role("button", name="確認").click()

    page.get_by_role("heading", name="利用規約").wait_for()
    pages.check(page)
    page.get_by_label("承諾する", exact=True).check()
    page.get_by_role("button", name="確認").click()

    page.get_by_label("iTSCOM ID").fill("ichiro.tanaka.with-a-rather-long-address@example.jp")
    page.get_by_label("パスワード", exact=True).fill("Ichiro-2026")
    page.get_by_label("パスワード再入力").fill("Ichiro-2027")
    page.get_by_role("button", name="次へ").click()
    page.get_by_role("alert").first.wait_for()
    pages.check(page)
    page.get_by_label("パスワード", exact=True).fill("Ichiro-2026")
    page.get_by_label("パスワード再入力").fill("Ichiro-2026")
    page.get_by_role("button", name="次へ").click()
    page.get_by_text("確認メールを送信しました").wait_for()
    pages.check(page)

    with app.app_context():
        deliver_due()
    link = url_in(mail_server.inbox.last_to("ichiro.tanaka.with-a-rather-long-address@example.jp"))
    page.goto(link)
    pages.check(page)
    page.get_by_role("button", name="次へ").click()
    page.get_by_text("連絡先メールアドレス(※)を選択してください。").wait_for()
    pages.check(page)
    page.get_by_label("ichiro.second@example.jp").check()
    page.get_by_role("button", name="次へ").click()
    page.get_by_text("これでiTSCOM IDの登録は完了です。").wait_for()
    pages.check(page)

    page.goto(link)  # used already
    pages.check(page)

    pages.assert_clean(customer_templates(*FOLDERS))
