"""My Page's 各種設定 after a step-up with the authenticator's code, in Chromium
(issue 15, point 4); the account page's own walk (test_pages_login) sets the
factor up and signs in with it on a phone and a desktop."""

import pyotp
from playwright.sync_api import expect

from ..helpers import enrol_totp
from .customer_pages import sign_in


def test_mypage_settings_ask_for_the_second_factor(app, page, live_server, sites, account):
    page.goto(sites["mypage"] + "/")
    sign_in(page)
    page.wait_for_url(sites["mypage"] + "/")
    secret, _ = enrol_totp(app, account)  # set up after this sign-in: the session has only the password

    page.get_by_role("link", name="各種設定", exact=True).click()
    page.wait_for_url(f"{live_server}/login/factor*")
    expect(page.get_by_text("ご利用のサイトが、2段階認証による確認を求めています。")).to_be_visible()
    page.get_by_label("確認コード").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="次へ").click()
    page.wait_for_url(sites["mypage"] + "/settings")
    expect(page.get_by_role("heading", name="各種設定", exact=True)).to_be_visible()
    # Within the step-up's lifetime the other pages and 各種設定 again ask nothing more.
    page.get_by_role("link", name="料金", exact=True).click()
    page.get_by_role("link", name="各種設定", exact=True).click()
    page.wait_for_url(sites["mypage"] + "/settings")
