"""No targeted lockout (SPEC §6): strangers' guesses slow unknown browsers,
never a browser the owner signed in from before (OWASP device cookies)."""

import pytest

from idp.accounts import create_account
from idp.extensions import db

from ..helpers import csrf_token

OWNER, RIGHT, WRONG = "taro.itsu@example.jp", "itscom-demo1", "wrong-pass"
HOME = "192.0.2.10"


def post_login(client, password, login_id=OWNER, address=HOME):
    env = {"REMOTE_ADDR": address}
    page = client.get("/login", environ_base=env)
    return client.post("/login", environ_base=env, data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "login_id": login_id, "password": password})


def attack(app, clock, failures, addresses):
    """Wrong passwords for the owner's ID from fresh browsers, each waiting
    out the delay it is told, so that every one of them counts."""
    for i in range(failures):
        address = addresses[i % len(addresses)]
        answer = post_login(app.test_client(), WRONG, address=address)
        if answer.status_code == 429:
            clock.advance(int(answer.headers["Retry-After"]))
            answer = post_login(app.test_client(), WRONG, address=address)
        assert answer.status_code == 200


@pytest.fixture
def owner(app, account):
    """The owner's browser, signed in once before."""
    browser = app.test_client()
    assert post_login(browser, RIGHT).status_code == 303
    return browser


def test_a_login_leaves_a_device_cookie_bound_to_the_id(app, account):
    response = post_login(app.test_client(), RIGHT)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("idp_device="))
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    assert f"Max-Age={365 * 24 * 3600}" in cookie
    assert "taro" not in cookie and "itsu" not in cookie  # the ID itself is not in it


def test_the_owner_signs_in_while_strangers_attack_from_many_addresses(app, clock, owner):
    # 14 failures from 14 addresses within the window: the next waits 2**9 s.
    attack(app, clock, 14, [f"198.51.100.{i}" for i in range(14)])

    # An unknown browser, even with the right password, waits and is told how long.
    stranger = post_login(app.test_client(), RIGHT, address="203.0.113.7")
    assert stranger.status_code == 429 and stranger.headers["Retry-After"] == "512"
    assert "9分後に再度お試しください" in stranger.get_data(as_text=True)

    # The owner's browser signs in, and again while the attack goes on.
    assert post_login(owner, RIGHT).status_code == 303
    attack(app, clock, 3, ["198.51.100.99"])
    assert post_login(owner, RIGHT).status_code == 303


def test_the_owner_signs_in_from_an_address_strangers_have_spent(app, clock, owner):
    app.config["LOGIN_FREE_FAILURES_PER_ADDRESS"] = 3
    for i in range(3):  # a shared NAT: someone behind it guesses other IDs
        post_login(app.test_client(), WRONG, login_id=f"user{i}@example.jp", address=HOME)
    assert post_login(app.test_client(), RIGHT, address=HOME).status_code == 429
    assert post_login(owner, RIGHT, address=HOME).status_code == 303


def test_an_unknown_browser_is_slowed_with_seconds_then_minutes(app, clock, account):
    browser = app.test_client()
    for _ in range(5):
        assert post_login(browser, WRONG).status_code == 200
    refused = post_login(browser, RIGHT)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert "1秒後に再度お試しください" in refused.get_data(as_text=True)
    attack(app, clock, 7, [HOME])  # 12 failures: the next waits 2**7 s
    refused = post_login(browser, RIGHT)
    assert refused.headers["Retry-After"] == "128"
    assert "3分後に再度お試しください" in refused.get_data(as_text=True)


def test_a_device_cookie_has_its_own_budget(app, clock, owner):
    for _ in range(5):
        assert post_login(owner, WRONG).status_code == 200
    refused = post_login(owner, RIGHT)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    # Those failures slowed that cookie only: another browser signs in.
    assert post_login(app.test_client(), RIGHT, address="192.0.2.11").status_code == 303
    clock.advance(1)
    assert post_login(owner, RIGHT).status_code == 303


def test_a_forged_cookie_or_one_for_another_id_is_ignored(app, clock, owner, contracts):
    with app.app_context():
        create_account("2005128463", "yamada@example.jp", "Yamada-2026")
        db.session.commit()
    other = app.test_client()  # a stranger's browser, signed in to the stranger's own ID
    assert post_login(other, "Yamada-2026", login_id="yamada@example.jp").status_code == 303
    forged = app.test_client()
    value = owner.get_cookie("idp_device").value
    forged.set_cookie("idp_device", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))

    attack(app, clock, 5, ["198.51.100.1"])
    assert post_login(other, RIGHT).status_code == 429
    assert post_login(forged, RIGHT).status_code == 429
    assert post_login(owner, RIGHT).status_code == 303


def test_one_browser_keeps_device_cookies_for_several_ids(app, clock, owner, contracts):
    with app.app_context():
        create_account("2005128463", "yamada@example.jp", "Yamada-2026")
        db.session.commit()
    assert post_login(owner, "Yamada-2026", login_id="yamada@example.jp").status_code == 303
    attack(app, clock, 5, ["198.51.100.1"])
    assert post_login(owner, RIGHT).status_code == 303


@pytest.mark.parametrize("entry", [
    "nonce.{now}.\u00e9\u00e9",  # non-ASCII MAC: hmac.compare_digest refuses to compare it
    "nonce.\u00b2.mac",  # '²' passes str.isdigit() and breaks int()
    "nonce.{now}.mac.extra",
    "..",
], ids=["non-ascii-mac", "superscript-digit", "four-parts", "empty-parts"])
def test_a_malformed_device_cookie_is_ignored(app, clock, account, entry):
    # WSGI servers that pass cookies as latin-1 (gunicorn, the README's alternative) deliver such text.
    browser = app.test_client()
    browser.set_cookie("idp_device", entry.format(now=clock.now()))
    assert post_login(browser, WRONG).status_code == 200
    assert post_login(browser, RIGHT).status_code == 303
    # The browser's new cookie holds its fresh entry and none of the junk.
    assert "~" not in browser.get_cookie("idp_device").value
