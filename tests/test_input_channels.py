"""Every input channel is safe: credentials, path parameters, repeated
parameters, oversized values, headers (issue 11, SPEC §6 "Bad input")."""

import base64
import logging
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from idp.extensions import db
from idp.models import AuditEvent, Client

from .helpers import csrf_token

CLIENT_AUTH_PATHS = ["/token", "/revoke", "/introspect"]


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("path", CLIENT_AUTH_PATHS)
@pytest.mark.parametrize("user, password", [("a\x00b", "secret"), ("client", "se\x00cret")])
def test_nul_in_basic_credentials_is_invalid_client(rp, client, path, user, password):
    response = client.post(path, data={"grant_type": "client_credentials", "token": "x"},
                           headers=basic(rp.client_id if user == "client" else user, password))
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_nul_in_path_parameters_is_not_found(app, rp, client):
    rp.sign_in_and_get_code()
    token = csrf_token(client.get("/account/").get_data(as_text=True))
    for path in ["/account/sessions/a%00b/end", "/account/sites/a%00b/revoke"]:
        assert client.post(path, data={"csrf_token": token}).status_code == 404
    assert client.get("/registration/confirm/a%00b").status_code == 404
    assert client.get("/recovery/link/a%00b").status_code == 404
    assert client.get("/register/a%00b", headers={"Authorization": "Bearer x"}).status_code == 404


def test_nul_in_a_header_or_parameter_is_a_bad_request(app, client, account):
    """RFC 9110 5.5: no NUL in a header field; and none in any field of ours."""
    assert client.get("/login", headers={"User-Agent": "Mozilla\x00/5.0"}).status_code == 400
    assert client.get("/authorize?client_id=ok&client_id=a%00b").status_code == 400
    assert client.get("/authorize?a%00b=1").status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)) == 0


@pytest.mark.parametrize(
    "path, body",
    [
        ("/token", "grant_type=client_credentials&grant_type=client_credentials"),
        ("/token", "grant_type=client_credentials&scope=openid&scope=contract"),
        ("/revoke", "token=a&token=b"),
        ("/introspect", "token=a&token=b"),
        ("/token?grant_type=client_credentials", "grant_type=client_credentials"),
    ],
)
def test_a_repeated_parameter_is_invalid_request(rp, client, path, body):
    response = client.post(path, data=body, headers={**rp.auth(), "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert response.headers["Cache-Control"] == "no-store"


def test_a_repeated_parameter_on_authorize_is_shown_not_redirected(rp, client):
    params = rp.authorize_params()
    query = urlencode(params) + "&" + urlencode({"redirect_uri": "https://evil.example/cb"})
    response = client.get("/authorize?" + query)
    assert response.status_code == 400 and response.location is None
    assert "invalid_request" in response.get_data(as_text=True)
    for repeated in ["scope=openid", "nonce=other", "code_challenge=other", "code_challenge_method=S256"]:
        response = client.get("/authorize?" + urlencode(params) + "&" + repeated)
        assert response.status_code == 400 and response.location is None, repeated


def test_an_oversized_state_gets_a_clear_error_not_a_broken_flow_cookie(rp, client):
    response = rp.authorize(state="s" * 60_000)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "invalid_request" in html and "too long" in html
    assert all(len(header) < 4096 for header in response.headers.getlist("Set-Cookie"))


def test_a_long_but_reasonable_request_still_signs_in(rp, client):
    """A state carrying a signed JWT (about 1 kB) is common among RPs."""
    tokens = rp.tokens(state="j" * 1000)
    assert rp.last["state"] == "j" * 1000 and "access_token" in tokens


def test_logs_never_carry_bound_values(app, caplog):
    """A failed statement's message names no login ID, hash or token."""
    with app.app_context(), caplog.at_level(logging.DEBUG):
        with pytest.raises(sa.exc.DBAPIError) as failure:
            db.session.execute(sa.text("SELECT CAST(:secret AS INTEGER) / 0 FROM no_such_table"),
                               {"secret": "taro.itsu@example.jp"})
        db.session.rollback()
    assert "taro.itsu@example.jp" not in str(failure.value)
    assert "taro.itsu@example.jp" not in caplog.text


@pytest.mark.parametrize("metadata", [
    {"client_name": "a\u0000b"},
    {"redirect_uris": ["https://partner.example/c\u0000b"]},
    {"contacts": ["a\u0000@example.jp"]},
    {"jwks": {"keys": [{"kty": "RSA", "n\u0000": "x", "e": "AQAB"}]}},
])
def test_nul_in_client_metadata_is_refused_and_nothing_registered(app, client, runner, metadata):
    token = runner.invoke(args=["clients", "initial-token"]).output.strip()
    body = {"client_name": "Partner", "redirect_uris": ["https://partner.example/cb"], **metadata}
    response = client.post("/register", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Client)) == 0


DEEP_JSON = "[" * 3000 + "]" * 3000  # 6 kB, far below the body limit


@pytest.mark.parametrize("method, path", [
    ("POST", "/token"), ("POST", "/userinfo"), ("POST", "/register"), ("GET", "/healthz"), ("GET", "/login"),
    ("GET", "/no-such-page"),
])
def test_a_deeply_nested_json_body_is_bad_input_not_a_crash(client, method, path):
    response = client.open(path, method=method, data=DEEP_JSON, content_type="application/json")
    assert response.status_code == 400


def test_a_client_name_that_is_not_utf8_is_refused(app, client, runner, account):
    """JSON may carry a lone surrogate ("\\ud800"): stored as a client's name it
    would break every page that shows it — the operator's, the consent page,
    and the account page of every customer who uses that site."""
    token = runner.invoke(args=["clients", "initial-token"]).output.strip()
    registered = client.post("/register", json={"client_name": "Partner", "redirect_uris": ["https://partner.example/cb"]},
                             headers={"Authorization": f"Bearer {token}"}).get_json()
    rename = client.put(f"/register/{registered['client_id']}", content_type="application/json",
                        data='{"client_id": "%s", "client_name": "Partner\\ud800", '
                             '"redirect_uris": ["https://partner.example/cb"]}' % registered["client_id"],
                        headers={"Authorization": f"Bearer {registered['registration_access_token']}"})
    assert rename.status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(Client.client_metadata))["client_name"] == "Partner"


@pytest.mark.parametrize("claims", [
    '{"userinfo": {"name": {"essential": NaN}}}',
    '{"userinfo": {"name": {"value": Infinity}}}',
    '{"userinfo": {"name": {"value": "\\ud800"}}}',
    '{"userinfo": {"name\\u0000": null}}',
    "[" * 1020 + "]" * 1020,
])
def test_a_claims_parameter_that_is_not_json_we_can_store_is_refused(rp, client, claims):
    rp.login()
    response = rp.authorize(claims=claims)
    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 302:
        assert "error=invalid_request" in response.location


@pytest.mark.parametrize("path", CLIENT_AUTH_PATHS + ["/par"])
@pytest.mark.parametrize("header", ["Basic \xa0", "Bearer \xa0", "Basic \x85"])
def test_credentials_of_nothing_but_whitespace_are_invalid_client(rp, client, path, header):
    """U+00A0 and U+0085 are no HTTP whitespace, so servers keep them; Python's split() counts them."""
    response = client.post(path, data={"grant_type": "client_credentials", "token": "x"},
                           headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize("path", CLIENT_AUTH_PATHS + ["/par"])
def test_a_client_id_too_long_is_invalid_request(rp, client, path):
    response = client.post(path, data={"grant_type": "client_credentials", "client_id": "c" * 65,
                                       "client_secret": "x", "token": "x"})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_plain_http_to_a_name_not_loopback_is_insecure_transport(rp, client):
    """Authlib refuses OAuth over plain HTTP but to loopback, before its endpoint handles errors."""
    response = client.post("/introspect", data={"token": "x"}, headers=rp.auth(), base_url="http://id.example.test")
    assert response.status_code == 400
    assert response.get_json()["error"] == "insecure_transport"


def test_an_id_in_a_path_larger_than_any_row_is_not_found(app, rp, client):
    rp.sign_in_and_get_code()
    token = csrf_token(client.get("/account/").get_data(as_text=True))
    for number in [str(2**31), "9" * 40]:
        assert client.post(f"/account/passkeys/{number}/remove", data={"csrf_token": token}).status_code == 404
