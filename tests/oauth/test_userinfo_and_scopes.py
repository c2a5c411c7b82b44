"""What the former OpenID test tool found: UserInfo takes the access token
from a form body too (RFC 6750 2.2, OIDC Core 5.3.1), and scope values the
OP does not know are ignored (OIDC Core 3.1.2.1), the granted scope named
in the token response (RFC 6749 3.3)."""

import pytest

from ..helpers import RelyingParty


def test_userinfo_takes_the_token_from_a_form_body(rp, back_channel, flask_requests):
    token = rp.tokens(scope="openid email")["access_token"]
    by_header = back_channel.get("/userinfo", headers={"Authorization": f"Bearer {token}"}).get_json()
    del flask_requests[:]
    response = back_channel.post("/userinfo", data={"access_token": token})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == by_header and by_header["email"] == "taro.itsu@example.jp"
    assert flask_requests == ["/userinfo"]  # the lean path hands bodies to Flask


def test_a_bad_token_in_the_body_is_invalid_token(rp, back_channel):
    response = back_channel.post("/userinfo", data={"access_token": "nope"})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("authorization", [None, "Basic bWU6bWU=", "Bearer", "Bearer   ", "Token abc"])
def test_a_request_without_credentials_is_challenged_without_an_error(back_channel, authorization):
    """RFC 6750 3.1: no authentication information, no error code; RFC 9449
    7.2: a challenge for each scheme UserInfo takes."""
    headers = {"Authorization": authorization} if authorization else {}
    response = back_channel.get("/userinfo", headers=headers)
    assert response.status_code == 401
    assert response.headers.get_all("WWW-Authenticate") == ['Bearer, DPoP algs="ES256 ES384 RS256 PS256 Ed25519"']
    assert "error" not in response.get_json() and response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("how", ["both", "multipart", "query"])
def test_one_method_and_never_the_query(rp, back_channel, how):
    token = rp.tokens(scope="openid")["access_token"]
    if how == "both":
        response = back_channel.post("/userinfo", data={"access_token": token},
                                     headers={"Authorization": f"Bearer {token}"})
    elif how == "multipart":
        response = back_channel.post("/userinfo", data={"access_token": token}, content_type="multipart/form-data")
    else:
        response = back_channel.get(f"/userinfo?access_token={token}")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_unknown_scopes_are_ignored_and_the_grant_says_what_was_granted(rp):
    answer = rp.sign_in_and_get_code(scope="openid profile bogus https://api.example.test/x")
    assert "error" not in answer
    token = rp.exchange(answer["code"]).get_json()
    assert token["scope"] == "openid profile"


def test_scopes_the_client_is_not_registered_for_are_not_granted(app, client, account):
    rp = RelyingParty.register(app, client, scopes=["openid", "profile"])
    token = rp.tokens(scope="openid email profile bogus")
    assert token["scope"] == "openid profile"


def test_client_credentials_grant_only_known_registered_scopes(app, client):
    rp = RelyingParty.register(app, client, scopes=["openid", "contract"])
    response = rp.token_request({"grant_type": "client_credentials", "scope": "contract bogus phone"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["scope"] == "contract"
