"""UserInfo below Flask (idp/oauth/lean.py): which requests it answers, and
that its answers are the Flask path's, byte for byte but for key order."""

import json

import pytest
from sqlalchemy.exc import OperationalError

from idp import tokens
from idp.extensions import db
from idp.models import Account
from idp.models import Client as Registered
from idp.ops import REQUESTS

from .dpop_client import DPoPKey

SCOPES = ["openid", "openid profile", "openid email", "openid phone", "openid contract",
          "openid profile email phone contract", "openid offline_access email"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def same_answer(lean, flask) -> None:
    assert lean.status_code == flask.status_code
    assert sorted(lean.headers.items()) == sorted(flask.headers.items())
    assert json.loads(lean.data) == json.loads(flask.data)


def userinfo_both(back_channel, flask_path, token, method="get"):
    lean = getattr(back_channel, method)("/userinfo", headers=bearer(token))
    flask = getattr(flask_path, method)("/userinfo", headers=bearer(token))
    same_answer(lean, flask)
    return lean


@pytest.mark.parametrize("scope", SCOPES)
def test_lean_path_answers_each_scope_as_flask_does(rp, back_channel, flask_path, flask_requests, scope):
    token = rp.tokens(scope=scope)["access_token"]
    del flask_requests[:]
    for method in ("get", "post"):
        answer = userinfo_both(back_channel, flask_path, token, method)
        assert answer.status_code == 200 and "sub" in answer.get_json()
    assert flask_requests == ["/userinfo", "/userinfo"]  # the flask_path client's two, not the lean ones


def test_claims_request_for_userinfo(rp, back_channel, flask_path, flask_requests):
    asked = json.dumps({"userinfo": {"customer_number": None}})
    token = rp.tokens(scope="openid email contract", claims=asked)["access_token"]
    del flask_requests[:]
    assert "customer_number" in userinfo_both(back_channel, flask_path, token).get_json()
    assert flask_requests == ["/userinfo"]


def test_lean_path_counts_the_request_in_the_metrics(rp, back_channel, flask_requests):
    token = rp.tokens()["access_token"]
    before = REQUESTS.labels("oauth.userinfo", "GET", "200")._value.get()
    del flask_requests[:]
    assert back_channel.get("/userinfo", headers=bearer(token)).status_code == 200
    assert flask_requests == []
    assert REQUESTS.labels("oauth.userinfo", "GET", "200")._value.get() == before + 1


@pytest.mark.parametrize("extra", [
    {"headers": {"Origin": "https://rp.example.test"}},
    {"query_string": "x=1"},
    {"base_url": "http://op.example.test"},  # plain HTTP, not loopback: Authlib refuses it
    {"headers": {"User-Agent": "rp\x00"}},  # errors._refuse_nul_characters: 400
    {"headers": {"User-Agent": "r\u00e9p"}},
    {"method": "POST", "data": {"access_token": "x"}},
    {"method": "POST", "data": b"{}", "content_type": "application/json"},
])
def test_other_requests_go_to_flask(rp, back_channel, flask_path, flask_requests, extra):
    token = rp.tokens()["access_token"]
    del flask_requests[:]
    extra = dict(extra)
    headers = {**bearer(token), **extra.pop("headers", {})}
    lean = back_channel.open("/userinfo", headers=headers, **extra)
    assert flask_requests == ["/userinfo"]
    flask = flask_path.open("/userinfo", headers=headers, **extra)
    same_answer(lean, flask)


def browser_cookies(browser) -> str:
    """The Cookie header a browser signed in to the OP sends."""
    return "; ".join(f"{cookie.key}={cookie.value}" for cookie in browser._cookies.values())


def test_a_signed_in_browsers_cookies_change_nothing(rp, client, back_channel, flask_path, flask_requests):
    """A browser calling UserInfo itself sends the OP's cookies along (the
    session, the flow cookie, the device cookie): no answer reads them, so
    the lean path answers, as Flask does with them."""
    token = rp.tokens()["access_token"]
    headers = {**bearer(token), "Cookie": browser_cookies(client)}
    assert "idp_session=" in headers["Cookie"] and "idp_flow=" in headers["Cookie"]
    del flask_requests[:]
    lean = back_channel.get("/userinfo", headers=headers)
    assert flask_requests == []
    same_answer(lean, flask_path.get("/userinfo", headers=headers))
    assert lean.status_code == 200 and "Set-Cookie" not in lean.headers


@pytest.mark.parametrize("header", ["Bearer", "Bearer  two-spaces", "Basic abc", "Bearer a b", "Bearer é", "bearer"])
def test_malformed_authorization_goes_to_flask(back_channel, flask_path, flask_requests, header):
    lean = back_channel.get("/userinfo", headers={"Authorization": header})
    assert flask_requests == ["/userinfo"]
    same_answer(lean, flask_path.get("/userinfo", headers={"Authorization": header}))
    assert lean.status_code in (400, 401)


def test_unknown_token(app, back_channel, flask_path):
    assert userinfo_both(back_channel, flask_path, "unknown-token").status_code == 401


def test_revoked_token(rp, back_channel, flask_path):
    token = rp.tokens()["access_token"]
    assert rp.client.post("/revoke", data={"token": token}, headers=rp.auth()).status_code == 200
    answer = userinfo_both(back_channel, flask_path, token)
    assert answer.status_code == 401 and "invalid_token" in answer.headers["WWW-Authenticate"]


def test_expired_token(app, rp, back_channel, flask_path, clock):
    token = rp.tokens()["access_token"]
    clock.advance(app.config["ACCESS_TOKEN_LIFETIME"])
    assert userinfo_both(back_channel, flask_path, token).status_code == 401


def test_token_of_a_locked_account(app, rp, account, back_channel, flask_path):
    token = rp.tokens()["access_token"]
    with app.app_context():
        db.session.get(Account, account).status = "locked"
        db.session.commit()
    assert userinfo_both(back_channel, flask_path, token).status_code == 401


def test_token_without_a_customer(rp, back_channel, flask_path):
    response = rp.token_request({"grant_type": "client_credentials", "scope": "openid"})
    assert response.status_code == 200
    assert userinfo_both(back_channel, flask_path, response.get_json()["access_token"]).status_code == 401


def test_client_asking_for_signed_userinfo_goes_to_flask(app, rp, back_channel, flask_requests):
    token = rp.tokens()["access_token"]
    with app.app_context():  # as dynamic registration may store it (Authlib signs for it)
        registered = db.session.scalar(db.select(Registered).filter_by(client_id=rp.client_id))
        registered.client_metadata = {**registered.client_metadata, "userinfo_signed_response_alg": "RS256"}
        db.session.commit()
    del flask_requests[:]
    lean = back_channel.get("/userinfo", headers=bearer(token))
    assert flask_requests == ["/userinfo"]
    assert lean.status_code == 200 and lean.headers["Content-Type"] == "application/jwt"


def test_disabled_client_goes_to_flask(app, rp, back_channel, flask_requests):
    token = rp.tokens()["access_token"]
    with app.app_context():
        db.session.scalar(db.select(Registered).filter_by(client_id=rp.client_id)).disabled = True
        db.session.commit()
    del flask_requests[:]
    back_channel.get("/userinfo", headers=bearer(token))
    assert flask_requests == ["/userinfo"]


def test_a_failure_below_flask_hands_the_request_to_flask(rp, back_channel, flask_requests, monkeypatch):
    token = rp.tokens()["access_token"]

    def outage(connection, presented):
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(tokens, "userinfo_row", outage)
    del flask_requests[:]
    assert back_channel.get("/userinfo", headers=bearer(token)).status_code == 200
    assert flask_requests == ["/userinfo"]


# --- DPoP (RFC 9449, oauth/dpop.py) ----------------------------------------------------


def _dpop_bound(rp, key) -> str:
    code = rp.sign_in_and_get_code()["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
            "code_verifier": rp.verifier}
    response = rp.token_request(data, headers={**rp.auth(), "DPoP": key.proof("POST", "/token")})
    assert response.get_json()["token_type"] == "DPoP"
    return response.get_json()["access_token"]


def test_a_dpop_bound_token_as_bearer_is_refused_on_both_paths(rp, clock, back_channel, flask_path, flask_requests):
    """RFC 9449 7.2: the lean path never serves a bound token as Bearer;
    Flask refuses it (401, DPoP challenge)."""
    token = _dpop_bound(rp, DPoPKey(clock))
    del flask_requests[:]
    answer = userinfo_both(back_channel, flask_path, token)
    assert flask_requests == ["/userinfo", "/userinfo"]
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("DPoP ")


@pytest.mark.parametrize("scheme", ["DPoP", "Bearer"])
def test_requests_with_a_dpop_proof_go_to_flask(rp, clock, back_channel, flask_path, flask_requests, scheme):
    key = DPoPKey(clock)
    token = _dpop_bound(rp, key) if scheme == "DPoP" else rp.tokens()["access_token"]
    del flask_requests[:]
    # A proof is used once: each path gets its own.
    answers = [path.get("/userinfo", headers={"Authorization": f"{scheme} {token}",
                                               "DPoP": key.proof("GET", "/userinfo", token=token)})
               for path in (back_channel, flask_path)]
    assert flask_requests == ["/userinfo", "/userinfo"]
    same_answer(*answers)
    assert answers[0].status_code == 200
