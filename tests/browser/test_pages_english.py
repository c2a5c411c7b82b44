"""English, in a browser set to Japanese, on a phone and on a desktop: the
customer picks 「English」 on My Page, and the OP's login page, registration
and recovery follow it, then My Page and the support site after signing in.
Each page is in English only (tests/english.py), fits, reflows, is easy to
tap and passes axe-core (customer_pages)."""

from playwright.sync_api import expect

from ..english import japanese_in
from .customer_pages import sign_in

EXPECTED = {"sites.mypage:logged_out.html", "idp:login/login.html", "idp:registration/verify.html",
            "idp:recovery/choose.html", "idp:recovery/identify.html", "sites.mypage:top.html",
            "sites.support:support.html"}


def english(page) -> None:
    assert page.locator("html").get_attribute("lang") == "en", page.url
    assert japanese_in(page.content()) == [], page.url


def test_english_from_my_page_to_the_op_and_back(app, device_page, pages, live_server, sites):
    page = device_page
    mypage, support = sites["mypage"], sites["support"]
    page.goto(mypage + "/logged-out")
    page.get_by_role("link", name="English").click()  # My Page's own link
    page.wait_for_url(mypage + "/logged-out")
    english(page)
    pages.check(page)

    page.get_by_role("link", name="Log in to My Page").click()  # My Page asks the OP with ui_locales=en
    page.wait_for_url(f"{live_server}/login?*")
    english(page)
    expect(page.get_by_text("To use “mypage”, please log in with your iTSCOM ID.")).to_be_visible()
    pages.check(page)
    login = page.url

    page.get_by_role("link", name="Register an iTSCOM ID").click()
    page.get_by_role("heading", name="Contract check").wait_for()
    english(page)
    pages.check(page)

    page.goto(login)
    page.get_by_role("link", name="Forgot your ID or password?").click()
    page.get_by_role("heading", name="Forgot your iTSCOM ID or password").wait_for()
    english(page)
    pages.check(page)
    page.get_by_text("My password", exact=True).click()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("heading", name="Identity check").wait_for()
    english(page)
    pages.check(page)

    page.goto(login)
    page.get_by_label("iTSCOM ID").fill("taro.itsu@example.jp")
    page.get_by_label("Password", exact=True).fill("itscom-demo1")
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(mypage + "/")
    english(page)
    expect(page.get_by_text("¥16,338").first).to_be_visible()
    pages.check(page)

    page.goto(support + "/")  # signed in without a password, in English by the locale claim alone
    page.wait_for_url(support + "/")
    english(page)
    pages.check(page)

    pages.assert_clean(EXPECTED)


def test_japanese_stays_for_a_japanese_browser(page, live_server, sites):
    """Nobody asked: the same walk speaks Japanese, and its links offer English."""
    page.goto(sites["mypage"] + "/")
    sign_in(page)
    page.wait_for_url(sites["mypage"] + "/")
    assert page.locator("html").get_attribute("lang") == "ja"
    expect(page.get_by_role("link", name="English")).to_be_visible()