"""リセット in Chromium: it clears every field, also what the server filled
back (a plain type="reset" would bring those values back instead)."""

from playwright.sync_api import expect


def test_login_reset_clears_the_id_the_server_filled_back(page, live_server, account):
    page.goto(f"{live_server}/login")
    login_id = page.get_by_label("iTSCOM ID")
    password = page.get_by_label("パスワード", exact=True)
    login_id.fill("taro.itsu@example.jp")
    password.fill("not-the-password")
    page.get_by_role("button", name="ログイン", exact=True).click()
    assert page.get_by_role("alert").first.inner_text() == "iTSCOM IDまたはパスワードが正しくありません。"
    assert login_id.get_attribute("value") == "taro.itsu@example.jp"  # filled back by the server

    password.fill("typed-again")
    page.get_by_label("パスワードを表示").check()
    page.get_by_role("button", name="リセット").click()
    assert login_id.input_value() == "" and password.input_value() == ""
    assert not page.get_by_label("パスワードを表示").is_checked()
    expect(password).to_have_attribute("type", "password")  # login.js hides it again right after the reset

    # The form still works: its CSRF token was kept.
    login_id.fill("taro.itsu@example.jp")
    password.fill("itscom-demo1")
    page.get_by_role("button", name="ログイン", exact=True).click()
    page.wait_for_url(lambda url: not url.endswith("/login"))  # signed in, wherever that leads
    assert "逸 太郎" in page.content()


def test_registration_reset_clears_what_the_server_filled_back(page, live_server, contracts):
    page.goto(f"{live_server}/registration/")
    page.get_by_label("ご契約者氏名（カナ）").fill("スズキハナコ")
    page.get_by_label("登録済みの電話番号").fill("044-987-6543")
    page.get_by_label("口座番号 下4桁").check()
    page.get_by_label("お支払情報等", exact=True).fill("077")
    page.get_by_role("button", name="確認").click()
    expect(page.get_by_text("口座番号 下4桁は4桁の数字でご入力ください。")).to_be_visible()
    assert page.get_by_label("ご契約者氏名（カナ）").get_attribute("value") == "スズキハナコ"

    page.get_by_role("button", name="リセット").click()
    for label in ["ご契約者氏名（カナ）", "登録済みの電話番号"]:
        assert page.get_by_label(label).input_value() == "", label
    assert page.get_by_label("お支払情報等", exact=True).input_value() == ""
    assert not page.get_by_label("口座番号 下4桁").is_checked()

    page.get_by_label("ご契約者氏名（カナ）").fill("スズキハナコ")
    page.get_by_label("登録済みの電話番号").fill("０４４ー９８７ー６５４３")
    page.get_by_label("口座番号 下4桁").check()
    page.get_by_label("お支払情報等", exact=True).fill("0077")
    page.get_by_role("button", name="確認").click()
    expect(page.get_by_role("heading", name="利用規約")).to_be_visible()