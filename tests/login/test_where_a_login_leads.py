"""Where a login on the OP leads, and which site its page names (issue 12, points 2 and 3).

A site's authorization request sends the customer to the login page, which
names that site and returns there; with no site asking, the login lands on
the home site (IDP_HOME_URL, My Page).
"""

import re
from urllib.parse import urlsplit

import pytest

from ..helpers import RelyingParty, csrf_token, query_of

HOME = "https://mypage.example.test/"


@pytest.fixture
def config_overrides():
    return {"HOME_URL": HOME}


def site_named(response) -> str:
    """The site the login page says the customer is signing in to."""
    match = re.search(r'<p class="login-site">「(.*?)」をご利用になるには', response.get_data(as_text=True))
    assert match, "the login page names no site"
    return match.group(1)


def login_at(client, url: str, password: str = "itscom-demo1"):
    """Sign in on the login page at ``url`` (a tab's own login page)."""
    page = client.get(url).get_data(as_text=True)
    action = re.search(r'<form method="post" action="([^"]+)" id="login-form"', page).group(1).replace("&amp;", "&")
    return client.post(action, data={"csrf_token": csrf_token(page), "login_id": "taro.itsu@example.jp",
                                     "password": password})


def test_a_login_no_site_asked_for_lands_on_the_home_site(client, account):
    assert site_named(client.get("/login")) == "マイページ"
    login = login_at(client, "/login")
    assert login.status_code == 303 and login.location == HOME


def test_the_ops_root_leads_signed_in_customers_on_to_the_home_site(client, account):
    assert client.get("/").location == "/login"
    login_at(client, "/login")
    assert client.get("/").location == HOME


def test_the_login_page_names_the_site_that_asked_and_returns_there(app, client, account):
    support = RelyingParty.register(app, client, name="iTSCOM サポート")
    sent = support.authorize()
    assert sent.status_code == 303 and urlsplit(sent.location).path == "/login"
    assert site_named(client.get(sent.location)) == "iTSCOM サポート"
    back = login_at(client, sent.location)
    assert urlsplit(back.location).path == "/authorize" and query_of(back.location)["client_id"] == support.client_id
    assert "code" in query_of(client.get(back.location).location)


def test_two_tabs_each_name_and_return_to_their_own_site(app, client, account):
    mypage = RelyingParty.register(app, client, name="マイページ")
    support = RelyingParty.register(app, client, name="iTSCOM サポート")
    support_tab, mypage_tab = support.authorize().location, mypage.authorize().location
    assert site_named(client.get(support_tab)) == "iTSCOM サポート"
    assert site_named(client.get(mypage_tab)) == "マイページ"
    back = login_at(client, support_tab)  # the tab opened first, signed in last
    assert query_of(back.location)["client_id"] == support.client_id


def test_prompt_login_in_one_tab_is_met_by_that_tabs_login(app, client, account):
    mypage = RelyingParty.register(app, client, name="マイページ")
    support = RelyingParty.register(app, client, name="iTSCOM サポート")
    login_at(client, "/login")
    support_tab = support.authorize(prompt="login").location
    mypage.authorize(prompt="login")  # another tab asks for a fresh login too
    back = login_at(client, support_tab)
    assert query_of(back.location)["client_id"] == support.client_id
    answer = client.get(back.location)
    assert answer.status_code == 302 and "code" in query_of(answer.location), "asked to log in again"


def test_a_login_link_of_another_browser_names_no_site_and_leads_home(app, client, account):
    support = RelyingParty.register(app, client, name="iTSCOM サポート")
    their_link = support.authorize().location
    stranger = app.test_client()
    assert site_named(stranger.get(their_link)) == "マイページ"
    assert login_at(stranger, their_link).location == HOME
    # Nor does a made-up one in the browser that has a site waiting.
    assert site_named(client.get("/login?request=made-up")) == "マイページ"


def test_a_bare_login_page_continues_the_latest_sign_in_for_an_hour(app, client, account, clock):
    support = RelyingParty.register(app, client, name="iTSCOM サポート")
    support.authorize()
    # ログイントップへ after registering on this device: back to the site that asked.
    assert site_named(client.get("/login")) == "iTSCOM サポート"
    clock.advance(3601)
    assert site_named(client.get("/login")) == "マイページ"
    assert login_at(client, "/login").location == HOME


def test_the_login_hint_fills_only_its_own_tabs_page(app, client, account):
    support = RelyingParty.register(app, client, name="iTSCOM サポート")
    hinted = support.authorize(login_hint="taro.itsu@example.jp").location
    plain = RelyingParty.register(app, client, name="マイページ").authorize().location
    assert 'value="taro.itsu@example.jp"' in client.get(hinted).get_data(as_text=True)
    assert 'value="taro.itsu@example.jp"' not in client.get(plain).get_data(as_text=True)
