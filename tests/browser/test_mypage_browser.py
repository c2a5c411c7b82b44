"""My Page → login → dashboard → the support site by SSO → single logout, in Chromium."""

from playwright.sync_api import expect

from .customer_pages import sign_in, wait_for_backchannel


def test_mypage_sso_and_single_logout(app, page, live_server, sites):
    page.goto(sites["mypage"] + "/")
    assert page.url.startswith(f"{live_server}/login")  # sent to the OP's login page
    sign_in(page)
    page.wait_for_url(sites["mypage"] + "/")
    content = page.content()
    assert "逸 太郎 様" in content and "taro.itsu@example.jp" in content
    expect(page.get_by_text("16,338")).to_be_visible()
    for menu in ["トップ", "料金", "ご契約・手続き", "各種設定", "ヘルプ"]:
        expect(page.get_by_role("link", name=menu, exact=True)).to_be_visible()
    for heading in ["ご利用状況", "重要なお知らせ", "お知らせ", "その他"]:
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    page.get_by_role("link", name="料金", exact=True).click()
    expect(page.get_by_text("16,338円").first).to_be_visible()
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

