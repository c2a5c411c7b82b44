"""Authorization requests that must fail, and how they fail (SPEC §6)."""

from urllib.parse import urlsplit

import pytest

from ..helpers import ISSUER, REDIRECT_URI, RelyingParty, query_of


@pytest.mark.parametrize(
    "redirect_uri",
    [
        REDIRECT_URI + "/",  # trailing slash
        REDIRECT_URI.upper().replace("HTTPS", "https"),  # case
        REDIRECT_URI + "?extra=1",  # added query
        "https://rp.example.test:8443/callback",  # other port
        "https://evil.example/callback",
        "javascript:alert(1)",
    ],
)
def test_unregistered_redirect_uri_is_a_page_not_a_redirect(rp, client, redirect_uri):
    rp.login()
    response = rp.authorize(redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "やり直してください" in response.get_data(as_text=True)


def test_unknown_client_is_a_page(rp):
    response = rp.authorize(client_id="no-such-client")
    assert response.status_code == 400 and "Location" not in response.headers


def test_response_type_token_is_refused_with_iss(rp):
    rp.login()
    response = rp.authorize(response_type="token")
    assert response.status_code == 302
    params = query_of(response.location)
    assert params["error"] == "unsupported_response_type"
    assert params["iss"] == ISSUER and params["state"] == rp.state


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),  # defaults to plain
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
        ({"claims": "[1,2]"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://rp.example.test/req"}, "request_uri_not_supported"),
    ],
)
def test_bad_parameters_go_back_to_the_client_as_errors(rp, overrides, error):
    rp.login()
    response = rp.authorize(**overrides)
    assert response.status_code == 302
    params = query_of(response.location)
    assert response.location.startswith(REDIRECT_URI)
    assert params["error"] == error
    assert params["iss"] == ISSUER


def test_public_client_must_use_pkce(app, client, account):
    public = RelyingParty.register(app, client, auth_method="none")
    public.login()
    response = public.authorize(code_challenge=None, code_challenge_method=None)
    assert query_of(response.location)["error"] == "invalid_request"


def test_public_client_may_vary_loopback_port(app, client, account):
    native = RelyingParty.register(app, client, auth_method="none", redirect_uris=("http://127.0.0.1/cb",))
    native.redirect_uri = "http://127.0.0.1:53121/cb"
    assert "code" in native.sign_in_and_get_code()
    tokens = native.exchange(native.last["code"])
    assert tokens.status_code == 200


def test_confidential_client_may_not_vary_loopback_port(app, client, account):
    web = RelyingParty.register(app, client, redirect_uris=("http://127.0.0.1/cb",))
    web.login()
    response = web.authorize(redirect_uri="http://127.0.0.1:53121/cb")
    assert response.status_code == 400


def test_prompt_none_without_session_is_login_required(rp):
    response = rp.authorize(prompt="none")
    params = query_of(response.location)
    assert params["error"] == "login_required"
    assert params["state"] == rp.state and params["iss"] == ISSUER


def test_prompt_none_with_session_issues_code_silently(rp):
    rp.login()
    response = rp.authorize(prompt="none")
    assert "code" in query_of(response.location)


def test_authorize_without_session_goes_to_login_with_hint(rp, client):
    response = rp.authorize(login_hint="taro.itsu@example.jp")
    assert response.status_code == 303 and urlsplit(response.location).path == "/login"
    page = client.get("/login").get_data(as_text=True)
    assert 'value="taro.itsu@example.jp"' in page


def test_authorize_has_no_cors(rp, client):
    response = client.get("/authorize", headers={"Origin": "https://rp.example.test"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_authorization_request_by_post(rp, client):
    from urllib.parse import urlencode

    rp.login()
    response = client.post("/authorize", data=urlencode(rp.authorize_params()),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 302 and "code" in query_of(response.location)


def test_cors_only_for_registered_origins_on_allowed_endpoints(rp, client):
    allowed = client.get("/jwks", headers={"Origin": "https://rp.example.test"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://rp.example.test"
    other = client.get("/jwks", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = client.options("/token", headers={"Origin": "https://rp.example.test",
                                                  "Access-Control-Request-Method": "POST"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://rp.example.test"
    login = client.get("/login", headers={"Origin": "https://rp.example.test"})
    assert "Access-Control-Allow-Origin" not in login.headers


def test_cors_origins_follow_client_changes_without_a_query_per_request(app, rp, client):
    from idp.clients import delete_client
    from idp.extensions import db
    from idp.models import Client
    from tests.roundtrips import RoundTrips

    new_origin = "https://spa.example.test"
    client.get("/jwks", headers={"Origin": new_origin})  # the origins are now cached
    spa = RelyingParty.register(app, client, auth_method="none", redirect_uris=(f"{new_origin}/cb",))
    assert client.get("/jwks", headers={"Origin": new_origin}).headers["Access-Control-Allow-Origin"] == new_origin
    with app.app_context():
        engine = db.engine
    with RoundTrips(engine) as trips:
        client.get("/jwks", headers={"Origin": new_origin})
    assert trips.count == 0, trips.log
    with app.app_context():
        delete_client(db.session.scalar(db.select(Client).filter_by(client_id=spa.client_id)))
        db.session.commit()
    assert "Access-Control-Allow-Origin" not in client.get("/jwks", headers={"Origin": new_origin}).headers


@pytest.mark.parametrize("overrides", [
    {"redirect_uri": 'https://rp.example.test/cb"'},
    {"redirect_uri": "https://rp.example.test/コールバック"},
    {"response_type": 'code"'},
    {"max_age": "9" * 5000},
    {"claims": "[" * 3000 + "]" * 3000},
])
def test_hostile_authorization_requests_never_500(rp, client, overrides):
    rp.login()  # max_age is only compared with a live session
    response = client.post("/authorize", data=rp.authorize_params(**overrides))
    assert 400 <= response.status_code < 500 or response.status_code == 302
