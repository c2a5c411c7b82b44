"""Introspection below Flask (idp/oauth/lean.py): which requests it answers,
and that its answers are the Flask path's, byte for byte."""

import base64

import pytest
from sqlalchemy.exc import OperationalError

from idp import tokens
from idp.extensions import db
from idp.models import Account
from idp.models import Client as Registered
from idp.ops import REQUESTS

from ..helpers import RelyingParty
from .client_keys import new_key
from .dpop_client import DPoPKey

FORM = "application/x-www-form-urlencoded"


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def same_answer(lean, flask) -> None:
    assert lean.status_code == flask.status_code
    assert sorted(lean.headers.items()) == sorted(flask.headers.items())
    assert lean.data == flask.data


def introspect_both(back_channel, flask_path, flask_requests, headers, data, lean_answers=True, **extra):
    """Flask's answer first (it fills the client cache, as any earlier
    request would), then the lean path's; which of them Flask saw."""
    del flask_requests[:]
    flask = flask_path.post("/introspect", headers=headers, data=data, **extra)
    lean = back_channel.post("/introspect", headers=headers, data=data, **extra)
    same_answer(lean, flask)
    assert flask_requests == ["/introspect"] * (1 if lean_answers else 2)
    return lean


@pytest.fixture
def ask(rp, back_channel, flask_path, flask_requests):
    """Introspect as ``rp`` (client_secret_basic), on both paths."""

    def ask(token, hint=None, lean_answers=True, as_rp=None):
        as_rp = as_rp or rp
        data = {"token": token} if hint is None else {"token": token, "token_type_hint": hint}
        return introspect_both(back_channel, flask_path, flask_requests, as_rp.auth(), data, lean_answers)

    return ask


@pytest.mark.parametrize("kind, hint", [
    ("access_token", None), ("access_token", "access_token"), ("access_token", "refresh_token"),
    ("refresh_token", None), ("refresh_token", "refresh_token"), ("refresh_token", "access_token"),
])
def test_active_tokens(rp, ask, kind, hint):
    token = rp.tokens()[kind]
    body = ask(token, hint).get_json()
    assert body["active"] is True and body["client_id"] == rp.client_id
    assert body["token_type"] == ("Bearer" if kind == "access_token" else "refresh_token")


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token"])
def test_a_dpop_bound_token_names_its_key_on_both_paths(rp, ask, clock, hint):
    """RFC 9449 6.2: cnf.jkt and token_type DPoP, from the lean path as from Flask's."""
    key = DPoPKey(clock)
    code = rp.sign_in_and_get_code()["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
            "code_verifier": rp.verifier}
    issued = rp.token_request(data, headers={**rp.auth(), "DPoP": key.proof("POST", "/token")}).get_json()
    body = ask(issued["access_token"], hint).get_json()
    assert body["active"] is True and body["token_type"] == "DPoP" and body["cnf"] == {"jkt": key.jkt}
    body = ask(issued["refresh_token"], hint).get_json()  # a confidential client's refresh token is not bound
    assert body["token_type"] == "refresh_token" and "cnf" not in body


@pytest.mark.parametrize("scope, username", [("openid profile offline_access", False),
                                             ("openid email offline_access", True)])
def test_username_only_with_the_email_scope(rp, ask, scope, username):
    tokens_ = rp.tokens(scope=scope)
    for kind in ("access_token", "refresh_token"):
        body = ask(tokens_[kind]).get_json()
        assert body["active"] is True
        assert ("username" in body) is username
        if username:
            assert body["username"] == "taro.itsu@example.jp"


def test_client_credentials_token_has_the_client_as_subject(rp, ask):
    token = rp.token_request({"grant_type": "client_credentials", "scope": "openid"}).get_json()["access_token"]
    body = ask(token).get_json()
    assert body["active"] is True and body["sub"] == rp.client_id and "username" not in body


def test_another_clients_token_is_inactive(app, client, rp, ask):
    other = RelyingParty.register(app, client, name="Other RP")
    issued = rp.tokens()
    for token in issued.values():
        if isinstance(token, str):
            assert ask(token, as_rp=other).get_json() == {"active": False}


def test_revoked_tokens_are_inactive(rp, ask):
    issued = rp.tokens()
    assert rp.client.post("/revoke", data={"token": issued["refresh_token"]}, headers=rp.auth()).status_code == 200
    assert ask(issued["access_token"]).get_json() == {"active": False}  # the family's access token too
    assert ask(issued["refresh_token"], "refresh_token").get_json() == {"active": False}


def test_rotated_refresh_token_is_inactive(rp, ask):
    issued = rp.tokens()
    assert rp.token_request({"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}).status_code == 200
    assert ask(issued["refresh_token"], "refresh_token").get_json() == {"active": False}


def test_expired_tokens_are_inactive(app, rp, ask, clock):
    issued = rp.tokens()
    clock.advance(app.config["ACCESS_TOKEN_LIFETIME"])
    assert ask(issued["access_token"]).get_json() == {"active": False}
    assert ask(issued["refresh_token"]).get_json()["active"] is True
    clock.advance(app.config["REFRESH_TOKEN_ABSOLUTE_LIFETIME"])
    assert ask(issued["refresh_token"]).get_json() == {"active": False}


def test_unknown_token_is_inactive(rp, ask):
    for hint in (None, "access_token", "refresh_token"):
        assert ask("unknown-token", hint).get_json() == {"active": False}


def test_token_of_a_locked_account_is_inactive(app, rp, account, ask):
    token = rp.tokens()["access_token"]
    with app.app_context():
        db.session.get(Account, account).status = "locked"
        db.session.commit()
    assert ask(token).get_json() == {"active": False}


def test_lean_path_counts_the_request_in_the_metrics(rp, back_channel, flask_requests):
    token = rp.tokens()["access_token"]
    rp.client.post("/introspect", data={"token": token}, headers=rp.auth())  # fills the client cache
    before = REQUESTS.labels("oauth.introspect", "POST", "200")._value.get()
    del flask_requests[:]
    assert back_channel.post("/introspect", data={"token": token}, headers=rp.auth()).get_json()["active"] is True
    assert flask_requests == []
    assert REQUESTS.labels("oauth.introspect", "POST", "200")._value.get() == before + 1


def test_a_client_not_in_the_cache_goes_to_flask_which_caches_it(app, rp, back_channel, flask_requests):
    token = rp.tokens()["access_token"]
    app.extensions["idp.clients"].clear()
    del flask_requests[:]
    for _ in range(2):
        assert back_channel.post("/introspect", data={"token": token}, headers=rp.auth()).get_json()["active"] is True
    assert flask_requests == ["/introspect"]


def test_wrong_secret_goes_to_flask(rp, back_channel, flask_path, flask_requests):
    token = rp.tokens()["access_token"]
    answer = introspect_both(back_channel, flask_path, flask_requests, basic(rp.client_id, "wrong"),
                             {"token": token}, lean_answers=False)
    assert answer.status_code == 401 and answer.get_json()["error"] == "invalid_client"
    assert "WWW-Authenticate" in answer.headers


def test_unknown_client_goes_to_flask(rp, back_channel, flask_path, flask_requests):
    answer = introspect_both(back_channel, flask_path, flask_requests, basic("nobody", "secret"),
                             {"token": "x"}, lean_answers=False)
    assert answer.status_code == 401


def test_disabled_client_goes_to_flask(app, rp, back_channel, flask_path, flask_requests):
    token = rp.tokens()["access_token"]
    with app.app_context():
        db.session.scalar(db.select(Registered).filter_by(client_id=rp.client_id)).disabled = True
        db.session.commit()
    answer = introspect_both(back_channel, flask_path, flask_requests, rp.auth(), {"token": token},
                             lean_answers=False)
    assert answer.status_code == 401


def test_client_registered_for_client_secret_post_goes_to_flask(app, client, back_channel, flask_path,
                                                               flask_requests, account):
    poster = RelyingParty.register(app, client, auth_method="client_secret_post", name="Poster")
    answer = introspect_both(back_channel, flask_path, flask_requests, poster.auth(), {"token": "x"},
                             lean_answers=False)
    assert answer.status_code == 401 and answer.get_json()["error"] == "invalid_client"


def test_client_registered_for_private_key_jwt_goes_to_flask(app, client, back_channel, flask_path, flask_requests):
    _, public = new_key("k1")
    signer = RelyingParty.register(app, client, auth_method="private_key_jwt", jwks={"keys": [public]})
    answer = introspect_both(back_channel, flask_path, flask_requests, basic(signer.client_id, "guess"),
                             {"token": "x"}, lean_answers=False)
    assert answer.status_code == 401


@pytest.mark.parametrize("data, status", [
    ("token=a&token=b", 400),  # repeated: views._refuse_malformed_requests
    ("token=a&token_type_hint=access_token&token_type_hint=access_token", 400),
    ("token=a%00b", 400),  # NUL: errors._refuse_nul_characters
    (b"token=\xff\xfe", 400),  # not UTF-8
    ("token=%ff%fe", 200),  # not UTF-8 once decoded: werkzeug keeps it percent-encoded, an unknown token
    ("token=", 200),
    ("token", 200),
    ("token_type_hint=access_token", 400),
    ("token=a&token_type_hint=id_token", 401),  # Authlib's unsupported_token_type
    ("token=a&token_type_hint=", 200),
    ("token=a&client_id=x", 200),
])
def test_unusual_bodies_go_to_flask(rp, back_channel, flask_path, flask_requests, data, status):
    answer = introspect_both(back_channel, flask_path, flask_requests, rp.auth(), data, lean_answers=False,
                             content_type=FORM)
    assert answer.status_code == status


def test_a_semicolon_is_part_of_the_value_on_both_paths(rp, back_channel, flask_path, flask_requests):
    token = rp.tokens()["access_token"]
    answer = introspect_both(back_channel, flask_path, flask_requests, rp.auth(), f"token={token};x",
                             content_type=FORM)
    assert answer.get_json() == {"active": False}


@pytest.mark.parametrize("extra", [
    {"headers": {"Origin": "https://rp.example.test"}},
    {"query_string": "x=1"},
    {"base_url": "http://op.example.test"},  # plain HTTP, not loopback: Authlib refuses it
    {"headers": {"User-Agent": "rp\x00"}},
    {"headers": {"User-Agent": "r\u00e9p"}},
    {"content_type": FORM + "; charset=utf-8"},
    {"content_type": "application/json"},
])
def test_other_requests_go_to_flask(rp, back_channel, flask_path, flask_requests, extra):
    token = rp.tokens()["access_token"]
    extra = dict(extra)
    headers = {**rp.auth(), **extra.pop("headers", {})}
    data = f"token={token}"
    extra.setdefault("content_type", FORM)
    introspect_both(back_channel, flask_path, flask_requests, headers, data, lean_answers=False, **extra)


@pytest.mark.parametrize("header", [
    "basic {}", "Basic  {}", "Basic {}x", "Bearer abc", "Basic", "Basic " + base64.b64encode(b"no-colon").decode(),
    "Basic " + base64.b64encode(b"\xff:\xfe").decode(), "Basic " + base64.b64encode(b"id:").decode(),
    "Basic " + base64.b64encode(b"a%41:b").decode(),
])
def test_unusual_credentials_go_to_flask(rp, back_channel, flask_path, flask_requests, header):
    token = rp.tokens()["access_token"]
    header = header.replace("{}", rp.auth()["Authorization"][6:])
    introspect_both(back_channel, flask_path, flask_requests, {"Authorization": header}, {"token": token},
                    lean_answers=False)


def test_without_client_authentication_goes_to_flask(rp, back_channel, flask_path, flask_requests):
    token = rp.tokens()["access_token"]
    answer = introspect_both(back_channel, flask_path, flask_requests, {}, {"token": token}, lean_answers=False)
    assert answer.status_code == 401


def test_oversized_body_goes_to_flask(app, rp, back_channel, flask_path, flask_requests):
    data = "token=" + "x" * app.config["MAX_CONTENT_LENGTH"]
    answer = introspect_both(back_channel, flask_path, flask_requests, rp.auth(), data, lean_answers=False,
                             content_type=FORM)
    assert answer.status_code == 413


def test_a_failure_below_flask_hands_the_request_to_flask(rp, back_channel, flask_requests, monkeypatch):
    token = rp.tokens()["access_token"]
    rp.client.post("/introspect", data={"token": token}, headers=rp.auth())  # fills the client cache

    def outage(connection, presented, hint, at):
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(tokens, "introspected", outage)
    del flask_requests[:]
    assert back_channel.post("/introspect", data={"token": token}, headers=rp.auth()).get_json()["active"] is True
    assert flask_requests == ["/introspect"]
