"""Which language a page speaks (idp/language.py): the customer's own
choice, then ui_locales of the site that sent them, then the browser's
Accept-Language, then Japanese; and the locale claim that tells the sites."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from idp.extensions import db
from idp.models import Account

from ..helpers import RelyingParty, csrf_token

ENGLISH_LOGIN = "<h1>Log in</h1>"
JAPANESE_LOGIN = "<h1>ログイン</h1>"


def login_page(client, path="/login", **headers) -> str:
    return client.get(path, headers=headers).get_data(as_text=True)


def test_accept_language_english_switches_and_japanese_wins_ties(client):
    assert ENGLISH_LOGIN in login_page(client, **{"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in login_page(client, **{"Accept-Language": "en"})
    assert JAPANESE_LOGIN in login_page(client, **{"Accept-Language": "ja,en;q=0.8"})
    assert JAPANESE_LOGIN in login_page(client, **{"Accept-Language": "fr"})  # neither: Japanese
    assert JAPANESE_LOGIN in login_page(client)


def test_the_link_switches_and_is_remembered(client):
    response = client.get("/language/en?next=/recovery/")
    assert response.status_code == 303 and response.location == "/recovery/"
    cookie = client.get_cookie("idp_lang")
    assert cookie.value == "en" and cookie.http_only and cookie.expires is not None
    assert "Forgot your iTSCOM ID or password" in client.get("/recovery/").get_data(as_text=True)
    page = login_page(client, **{"Accept-Language": "ja"})  # the choice beats the browser
    assert ENGLISH_LOGIN in page
    assert '<a href="/language/ja?next=/login" lang="ja" hreflang="ja">日本語</a>' in page
    client.get("/language/ja?next=/login")
    assert JAPANESE_LOGIN in login_page(client, **{"Accept-Language": "en"})


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)",
                                    "", "/\r\nSet-Cookie:x=1"])
def test_the_link_returns_only_to_a_page_of_this_site(client, target):
    response = client.get("/language/en", query_string={"next": target})
    assert response.status_code == 303 and response.location == "/"


def test_the_link_keeps_a_query_and_refuses_unknown_languages(client):
    assert client.get("/language/en?next=/login%3Frequest%3Dabc").location == "/login?request=abc"
    assert client.get("/language/fr?next=/login").status_code == 404


def test_the_link_keeps_a_registration_in_progress(client, contracts):
    page = client.get("/registration/").get_data(as_text=True)
    verified = client.post("/registration/", data={
        "csrf_token": csrf_token(page), "name_kana": "スズキハナコ", "phone": "0449876543",
        "payment_type": "bank_last4", "payment_value": "0077"})
    assert verified.location == "/registration/terms"
    assert client.get("/language/en?next=/registration/terms").location == "/registration/terms"
    terms = client.get("/registration/terms")
    assert terms.status_code == 200 and "Agreement to the terms of use" in terms.get_data(as_text=True)
    back = client.get("/registration/").get_data(as_text=True)  # what was entered is still there
    assert 'value="スズキハナコ"' in back and "Contract check" in back


def test_ui_locales_of_the_authorization_request_switches_the_login_page(app, client, account):
    rp = RelyingParty.register(app, client)
    response = rp.authorize(ui_locales="en-GB ja")
    assert response.status_code == 303
    assert ENGLISH_LOGIN in login_page(client, response.location, **{"Accept-Language": "ja"})
    assert ENGLISH_LOGIN in login_page(client, "/login")  # a bare /login continues that sign-in
    assert ENGLISH_LOGIN in client.get("/registration/").get_data(as_text=True).replace(
        "<h1>Contract check</h1>", ENGLISH_LOGIN)  # and so do the pages on the way
    # Another site's request in another tab asks for nothing: its login page follows the browser.
    other = RelyingParty.register(app, client, name="Other RP")
    second = other.authorize()
    assert JAPANESE_LOGIN in login_page(client, second.location)
    # The customer's own choice outranks what a site asks for.
    client.get("/language/ja?next=/login")
    assert JAPANESE_LOGIN in login_page(client, response.location)


def test_ui_locales_that_we_do_not_speak_change_nothing(app, client, account):
    rp = RelyingParty.register(app, client)
    response = rp.authorize(ui_locales="fr de")
    assert JAPANESE_LOGIN in login_page(client, response.location)


def test_the_admin_console_stays_japanese(client):
    client.get("/language/en?next=/login")
    page = client.get("/admin/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'lang="ja"' in page and "English" not in page


def test_discovery_lists_the_languages(client):
    document = client.get("/.well-known/openid-configuration").get_json()
    assert document["ui_locales_supported"] == ["ja", "en"]
    assert "locale" in document["claims_supported"]


def test_the_locale_claim_follows_the_language_of_the_sign_in_and_the_link(app, client, account):
    rp = RelyingParty.register(app, client)
    tokens = rp.tokens()
    userinfo = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).get_json()
    assert userinfo["locale"] == "ja-JP"

    client.get("/language/en?next=/login")  # signed in: the iTSCOM ID remembers it
    with app.app_context():
        assert db.session.scalar(db.select(Account)).locale == "en"
    tokens = rp.tokens()
    userinfo = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).get_json()
    assert userinfo["locale"] == "en"
    id_token = rp.verify_id_token(rp.tokens(claims='{"id_token": {"locale": null}}')["id_token"])
    assert id_token["locale"] == "en"


def test_signing_in_with_a_language_stores_it_on_the_account(app, client, account):
    rp = RelyingParty.register(app, client)
    response = rp.authorize(ui_locales="en")
    page = client.get(response.location, headers={"Accept-Language": "ja"})
    login = client.post(response.location, data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                 "login_id": "taro.itsu@example.jp", "password": "itscom-demo1"})
    assert login.status_code == 303 and urlsplit(login.location).path == "/authorize"
    with app.app_context():
        assert db.session.scalar(db.select(Account)).locale == "en"
