"""prompt=login and max_age: the real auth_time, never "now" (SPEC §6)."""

from urllib.parse import urlsplit

from ..helpers import query_of


def test_max_age_exceeded_forces_login_with_later_auth_time(rp, clock):
    first = rp.verify_id_token(rp.tokens(max_age="1")["id_token"])
    clock.advance(2)
    response = rp.authorize(max_age="1")
    assert response.status_code == 303 and urlsplit(response.location).path == "/login"
    login = rp.login()
    back = rp.client.get(login.location)
    assert back.status_code == 302
    exchanged = rp.exchange(query_of(back.location)["code"]).get_json()
    assert rp.verify_id_token(exchanged["id_token"])["auth_time"] == first["auth_time"] + 2


def test_max_age_within_limit_keeps_session_and_auth_time(rp, clock):
    first = rp.verify_id_token(rp.tokens()["id_token"])
    clock.advance(30)
    response = rp.authorize(max_age="3600")
    assert response.status_code == 302
    exchanged = rp.exchange(query_of(response.location)["code"]).get_json()
    assert rp.verify_id_token(exchanged["id_token"])["auth_time"] == first["auth_time"]


def test_prompt_login_asks_again_then_continues(rp, clock):
    first = rp.verify_id_token(rp.tokens()["id_token"])
    clock.advance(5)
    response = rp.authorize(prompt="login")
    assert response.status_code == 303 and urlsplit(response.location).path == "/login"
    login = rp.login()
    back = rp.client.get(login.location)
    assert back.status_code == 302, "after the fresh login the same request continues"
    exchanged = rp.exchange(query_of(back.location)["code"]).get_json()
    assert rp.verify_id_token(exchanged["id_token"])["auth_time"] == first["auth_time"] + 5


def test_prompt_login_without_a_session_asks_once(rp, client):
    assert urlsplit(rp.authorize(prompt="login").location).path == "/login"
    back = client.get(rp.login().location)
    assert back.status_code == 302 and "code" in query_of(back.location)
