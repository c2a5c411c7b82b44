"""My Page → login → dashboard → the support site by SSO → single logout, in Chromium."""

import time

from idp.extensions import db
from idp.models import BackchannelLogout


def sign_in(page):
    page.get_by_label("iTSCOM ID").fill("taro.itsu@example.jp")
    page.get_by_label("パスワード", exact=True).fill("itscom-demo1")
    page.get_by_role("button", name="ログイン", exact=True).click()


def wait_for_backchannel(app, expected: int, timeout: float = 10.0) -> None:
    """Notices leave on the OP's sender threads; wait (bounded) until they arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            done = db.session.scalar(db.select(db.func.count()).select_from(BackchannelLogout)
                                     .where(BackchannelLogout.delivered_at.is_not(None)))
        if done >= expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"{expected} back-channel logout notices not delivered within {timeout}s")


def test_mypage_sso_and_single_logout(app, page, live_server, sites):
    page.goto(sites["mypage"] + "/")
    assert page.url.startswith(f"{live_server}/login")  # sent to the OP's login page
    sign_in(page)
    page.wait_for_url(sites["mypage"] + "/")
    content = page.content()
    assert "逸 太郎 様" in content and "taro.itsu@example.jp" in content
    assert page.get_by_text("16,338").is_visible()
    for menu in ["トップ", "料金", "ご契約・手続き", "各種設定", "ヘルプ"]:
        assert page.get_by_role("link", name=menu, exact=True).is_visible()
    for heading in ["ご利用状況", "重要なお知らせ", "お知らせ", "その他"]:
        assert page.get_by_role("heading", name=heading, exact=True).is_visible()
    page.get_by_role("link", name="料金", exact=True).click()
    assert page.get_by_text("16,338円").first.is_visible()

    # Single sign-on: the support site signs in without a password prompt.
    page.goto(sites["support"] + "/")
    page.wait_for_url(sites["support"] + "/")
    assert "逸 太郎 様" in page.content()

    # Logging out of the support site logs out of My Page too.
    page.get_by_role("button", name="ログアウト").click()
    page.wait_for_url(sites["support"] + "/logged-out*")
    wait_for_backchannel(app, 2)
    page.goto(sites["mypage"] + "/")
    assert page.url.startswith(f"{live_server}/login")
    page.goto(sites["support"] + "/")
    assert page.url.startswith(f"{live_server}/login")


def test_mypage_on_a_smartphone(browser, live_server, sites):
    context = browser.new_context(locale="ja-JP", viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(sites["mypage"] + "/")
        sign_in(page)
        page.wait_for_url(sites["mypage"] + "/")
        assert page.get_by_text("16,338").is_visible()
        assert page.get_by_role("link", name="ヘルプ", exact=True).is_visible()
    finally:
        context.close()
