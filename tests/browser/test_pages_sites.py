"""My Page (every menu page) and the support site, served against the OP, on a
phone and on a desktop: each page fits, reflows, is easy to tap and passes
axe-core (customer_pages)."""

from .customer_pages import customer_templates, sign_in, wait_for_backchannel

FOLDERS = ("sites/mypage", "sites/support")  # every page of these is walked


def test_mypage_and_support_pages(app, device_page, pages, live_server, sites):
    page = device_page
    mypage, support = sites["mypage"], sites["support"]
    page.goto(mypage + "/")
    sign_in(page)
    page.wait_for_url(mypage + "/")
    pages.check(page)
    for menu in ["料金", "ご契約・手続き", "各種設定", "ヘルプ"]:
        page.get_by_role("link", name=menu, exact=True).click()
        page.get_by_role("heading", name=menu, exact=True).wait_for()
        pages.check(page)

    page.goto(support + "/")  # signed in without a password
    page.wait_for_url(support + "/")
    pages.check(page)

    page.goto(mypage + "/")
    page.get_by_role("button", name="ログアウト").click()
    page.wait_for_url(mypage + "/logged-out*")
    pages.check(page)
    wait_for_backchannel(app, 2)  # the support site knows too

    page.goto(support + "/")
    sign_in(page)
    page.wait_for_url(support + "/")
    page.get_by_role("button", name="ログアウト").click()
    page.wait_for_url(support + "/logged-out*")
    pages.check(page)

    # What each site shows when the OP answers with an error.
    for site in (mypage, support):
        page.goto(f"{site}/auth/callback?error=access_denied&iss={live_server}")
        pages.check(page)

    pages.assert_clean(customer_templates(*FOLDERS))
