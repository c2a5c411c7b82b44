"""The login page in Chromium, following only the manual's words."""


def test_show_password_toggle_reset_and_login(page, live_server, account):
    page.goto(f"{live_server}/login")
    page.get_by_label("iTSCOM ID").fill("taro.itsu@example.jp")
    password = page.get_by_label("パスワード", exact=True)
    password.fill("itscom-demo1")
    assert password.get_attribute("type") == "password"

    page.get_by_label("パスワードを表示").check()
    assert password.get_attribute("type") == "text"  # no reload: the value is still there
    assert password.input_value() == "itscom-demo1"
    page.get_by_label("パスワードを表示").uncheck()
    assert password.get_attribute("type") == "password"

    page.get_by_role("button", name="リセット").click()
    assert page.get_by_label("iTSCOM ID").input_value() == ""
    assert password.input_value() == ""

    page.get_by_label("iTSCOM ID").fill("taro.itsu@example.jp")
    password.fill("itscom-demo1")
    page.get_by_role("button", name="ログイン", exact=True).click()
    page.wait_for_url(f"{live_server}/account/")  # the home site (conftest)
    assert "逸 太郎" in page.content()


def test_wrong_password_shows_one_message_in_the_browser(page, live_server, account):
    page.goto(f"{live_server}/login")
    page.get_by_label("iTSCOM ID").fill("taro.itsu@example.jp")
    page.get_by_label("パスワード", exact=True).fill("not-the-password")
    page.get_by_role("button", name="ログイン", exact=True).click()
    assert page.get_by_role("alert").first.inner_text() == "iTSCOM IDまたはパスワードが正しくありません。"
    assert page.get_by_label("iTSCOM ID").input_value() == "taro.itsu@example.jp"
