"""はじめてのログイン in Chromium, following only the manual's words, with
the mail read from a real SMTP server."""

from playwright.sync_api import expect

from idp.mail import deliver_due

from ..mailserver import url_in


def test_registration_from_the_login_page_to_a_login(app, page, live_server, contracts, mail_server):
    page.goto(f"{live_server}/login")
    page.get_by_role("link", name="iTSCOM IDの新規登録").click()

    expect(page.get_by_role("heading", name="契約者情報 認証")).to_be_visible()
    page.get_by_label("ご契約者氏名（カナ）").fill("ｽｽﾞｷ ﾊﾅｺ")
    page.get_by_label("登録済みの電話番号").fill("044-987-6543")
    page.get_by_label("口座番号 下4桁").check()
    page.get_by_label("お支払情報等", exact=True).fill("0077")
    page.get_by_role("button", name="確認").click()

    expect(page.get_by_role("heading", name="利用規約")).to_be_visible()
    page.get_by_label("承諾する", exact=True).check()
    page.get_by_role("button", name="確認").click()

    page.get_by_label("iTSCOM ID").fill("hanako.b@example.jp")
    page.get_by_label("パスワード", exact=True).fill("Hanako-2026")
    page.get_by_label("パスワード再入力").fill("Hanako-2027")
    page.get_by_role("button", name="次へ").click()
    expect(page.get_by_text("パスワードとパスワード再入力が一致しません。")).to_be_visible()
    page.get_by_label("パスワード", exact=True).fill("Hanako-2026")
    page.get_by_label("パスワード再入力").fill("Hanako-2026")
    page.get_by_role("button", name="次へ").click()
    expect(page.get_by_text("確認メールを送信しました")).to_be_visible()
    with app.app_context():
        deliver_due()
    mail = mail_server.inbox.last_to("hanako.b@example.jp")
    assert mail["Subject"] == "マイページ本登録のご案内"
    page.goto(url_in(mail))
    expect(page.get_by_text("hanako.b@example.jp")).to_be_visible()
    page.get_by_role("button", name="次へ").click()
    expect(page.get_by_text("連絡先メールアドレス(※)を選択してください。")).to_be_visible()
    page.get_by_label("hanako@example.jp").check()
    page.get_by_role("button", name="次へ").click()
    expect(page.get_by_text("これでiTSCOM IDの登録は完了です。")).to_be_visible()
    page.get_by_role("link", name="ログイントップへ").click()
    page.get_by_label("iTSCOM ID").fill("hanako.b@example.jp")
    page.get_by_label("パスワード", exact=True).fill("Hanako-2026")
    page.get_by_role("button", name="ログイン", exact=True).click()
    page.wait_for_url(f"{live_server}/account/")  # the home site (conftest)
    assert "鈴木 花子" in page.content()


def test_back_keeps_what_was_entered(page, live_server, contracts):
    page.goto(f"{live_server}/registration/")
    page.get_by_label("ご契約者氏名（カナ）").fill("スズキハナコ")
    page.get_by_label("登録済みの電話番号").fill("0449876543")
    page.get_by_label("お客さま番号").check()
    page.get_by_label("お支払情報等", exact=True).fill("2005128464")
    page.get_by_role("button", name="確認").click()
    page.get_by_role("button", name="戻る").click()
    assert page.get_by_label("ご契約者氏名（カナ）").input_value() == "スズキハナコ"
    assert page.get_by_label("お支払情報等", exact=True).input_value() == "2005128464"
    assert page.get_by_label("お客さま番号").is_checked()
