"""Dynamic client registration (RFC 7591) and client configuration (RFC 7592)."""

import time
from urllib.parse import urlencode

import pytest

from ..helpers import RelyingParty


@pytest.fixture
def initial_token(runner):
    result = runner.invoke(args=["clients", "initial-token", "--expires-in", "600"])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def register(client, token, **metadata):
    body = {"client_name": "Partner", "redirect_uris": ["https://partner.example/cb"],
            "grant_types": ["authorization_code", "refresh_token"], "scope": "openid email offline_access",
            **metadata}
    return client.post("/register", json=body, headers={"Authorization": f"Bearer {token}"})


def test_register_then_log_a_customer_in(app, client, account, initial_token):
    response = register(client, initial_token)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["client_secret"] and body["registration_access_token"]
    assert body["registration_client_uri"].endswith(f"/register/{body['client_id']}")
    rp = RelyingParty(app, client, body["client_id"], body["client_secret"], "https://partner.example/cb")
    rp.login()
    consent = rp.authorize(scope="openid email")
    assert consent.status_code == 200 and "許可する" in consent.get_data(as_text=True)  # never first-party


def test_initial_token_is_required_and_single_use(client, initial_token):
    assert register(client, "wrong").status_code == 401
    assert register(client, initial_token).status_code == 201
    spent = register(client, initial_token)
    assert spent.status_code == 401 and spent.get_json()["error"] == "invalid_token"


def test_the_response_states_what_was_registered(client, initial_token):
    body = register(client, initial_token, application_type="web", software_id="x-123",
                    token_endpoint_auth_signing_alg="ES256").get_json()
    read = client.get(body["registration_client_uri"].split("id.example.test")[1],
                      headers={"Authorization": f"Bearer {body['registration_access_token']}"}).get_json()
    for key in ("client_name", "redirect_uris", "grant_types", "scope", "token_endpoint_auth_method"):
        assert body[key] == read[key], key
    assert "software_id" not in body  # not kept, so not claimed


@pytest.mark.parametrize("metadata, error", [
    ({"redirect_uris": ["http://partner.example/cb"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["https://partner.example/cb#frag"]}, "invalid_redirect_uri"),
    ({"redirect_uris": []}, "invalid_redirect_uri"),
    ({"grant_types": ["password"]}, "invalid_client_metadata"),
    ({"response_types": ["token"]}, "invalid_client_metadata"),
    ({"token_endpoint_auth_method": "client_secret_jwt"}, "invalid_client_metadata"),
    ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),  # no keys
    ({"jwks": {"keys": "nope"}}, "invalid_client_metadata"),
    ({"backchannel_logout_uri": "http://partner.example/logout"}, "invalid_client_metadata"),
    ({"post_logout_redirect_uris": ["ftp://partner.example/"]}, "invalid_client_metadata"),
])
def test_invalid_metadata_is_refused(client, runner, metadata, error):
    token = runner.invoke(args=["clients", "initial-token"]).output.strip()
    response = register(client, token, **metadata)
    assert response.status_code == 400
    assert response.get_json()["error"] == error


def test_public_client_gets_no_secret(client, initial_token):
    body = register(client, initial_token, token_endpoint_auth_method="none",
                    redirect_uris=["http://127.0.0.1/cb"]).get_json()
    assert "client_secret" not in body


def test_read_update_delete_with_the_registration_token(client, initial_token):
    body = register(client, initial_token).get_json()
    uri = "/register/" + body["client_id"]
    token = body["registration_access_token"]

    read = client.get(uri, headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 200 and read.get_json()["client_name"] == "Partner"
    assert "client_secret" not in read.get_json()
    token = read.get_json()["registration_access_token"]  # re-issued with each response

    update = client.put(uri, headers={"Authorization": f"Bearer {token}"}, json={
        "client_id": body["client_id"], "client_name": "Partner 2", "redirect_uris": ["https://partner.example/new"],
    })
    assert update.status_code == 200 and update.get_json()["redirect_uris"] == ["https://partner.example/new"]
    token = update.get_json()["registration_access_token"]

    bad = client.put(uri, headers={"Authorization": f"Bearer {token}"}, json={
        "client_id": body["client_id"], "redirect_uris": ["http://partner.example/x"]})
    assert bad.status_code == 400 and bad.get_json()["error"] == "invalid_redirect_uri"

    assert client.delete(uri, headers={"Authorization": f"Bearer {token}"}).status_code == 204
    assert client.get(uri, headers={"Authorization": f"Bearer {token}"}).status_code in (401, 403)


def test_wrong_registration_token_is_refused(client, initial_token, runner):
    first = register(client, initial_token).get_json()
    other = register(client, runner.invoke(args=["clients", "initial-token"]).output.strip()).get_json()
    response = client.get("/register/" + first["client_id"],
                          headers={"Authorization": f"Bearer {other['registration_access_token']}"})
    assert response.status_code in (401, 403)
    assert client.get("/register/" + first["client_id"]).status_code in (401, 403)
    assert client.get("/register/" + first["client_id"],
                      headers={"Authorization": "Bearer nonsense"}).status_code in (401, 403)


def test_switching_to_a_secret_method_issues_a_secret_once(client, initial_token):
    body = register(client, initial_token, token_endpoint_auth_method="none",
                    redirect_uris=["http://127.0.0.1/cb"]).get_json()
    uri = "/register/" + body["client_id"]
    update = client.put(uri, headers={"Authorization": f"Bearer {body['registration_access_token']}"}, json={
        "client_id": body["client_id"], "redirect_uris": ["https://partner.example/cb"],
        "token_endpoint_auth_method": "client_secret_basic"}).get_json()
    assert update["client_secret"]
    got = client.post("/token", auth=(body["client_id"], update["client_secret"]),
                      data={"grant_type": "authorization_code", "code": "x", "redirect_uri": "https://partner.example/cb"})
    assert got.get_json()["error"] == "invalid_grant"  # authenticated; only the code is wrong


@pytest.mark.parametrize("metadata", [
    {"client_name": 5}, {"scope": ["openid"]}, {"post_logout_redirect_uris": [5]}, {"jwks": [1]},
    {"grant_types": [["authorization_code"]]}, {"backchannel_logout_uri": "http://127.0.0.1:6379/"},
    {"jwks_uri": "http://localhost:8080/keys"}, {"jwks_uri": "https://user@/keys"},
])
def test_malformed_or_inward_metadata_is_refused(client, runner, metadata):
    token = runner.invoke(args=["clients", "initial-token"]).output.strip()
    response = register(client, token, **metadata)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_client_metadata"
    assert register(client, token).status_code == 201  # the refused attempt did not spend the token


INWARD = [
    "https://127.0.0.1:6379/", "https://169.254.169.254/latest/meta-data/", "https://10.0.0.8/keys",
    "https://100.64.1.1/keys", "https://192.168.0.1/keys", "https://0.0.0.0/keys", "https://224.0.0.1/keys",
    "https://[::1]/keys", "https://[::ffff:127.0.0.1]/keys", "https://[fd00::1]/keys", "https://[fe80::1]/keys",
    "https://[64:ff9b::a9fe:a9fe]/keys", "https://localhost/keys", "https://redis.localhost/keys",
]


@pytest.mark.parametrize("uri", INWARD)
@pytest.mark.parametrize("member", ["jwks_uri", "backchannel_logout_uri"])
def test_uris_the_op_fetches_must_be_public(client, runner, member, uri):
    token = runner.invoke(args=["clients", "initial-token"]).output.strip()
    response = register(client, token, **{member: uri})
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "invalid_client_metadata"
    assert "public address" in response.get_json()["error_description"]


def test_a_name_is_judged_when_the_op_connects_not_on_the_request_thread(client, runner, dns, initial_token):
    """Anyone with a token reaches these endpoints: a name whose DNS never
    answers must not hold the request (one request thread per worker).
    Addresses are refused at once; names when the OP connects
    (tests/security/test_outbound.py), and operators' commands resolve them."""
    dns.hang("jwks.evil.test")
    dns.hang("logout.evil.test")
    registered = register(client, initial_token).get_json()
    started = time.monotonic()
    update = client.put(f"/register/{registered['client_id']}", json={
        "client_id": registered["client_id"], "redirect_uris": ["https://partner.example/cb"],
        "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://jwks.evil.test/keys",
        "backchannel_logout_uri": "https://logout.evil.test/bc",
    }, headers={"Authorization": f"Bearer {registered['registration_access_token']}"})
    assert update.status_code == 200 and time.monotonic() - started < 1.0  # the keys are fetched in the background
    dns.answer("keys.inside.test", "10.20.30.40")
    token = runner.invoke(args=["clients", "initial-token"]).output.strip()
    assert register(client, token, jwks_uri="https://10.20.30.40/jwks").status_code == 400
    refused = runner.invoke(args=["clients", "create", "--name", "Inside", "--redirect-uri", "https://in.example/cb",
                                  "--auth-method", "private_key_jwt", "--jwks-uri", "https://keys.inside.test/jwks"])
    assert refused.exit_code != 0 and "private" in refused.output


def test_an_update_cannot_point_inward_either(client, initial_token):
    body = register(client, initial_token).get_json()
    update = client.put(f"/register/{body['client_id']}",
                        headers={"Authorization": f"Bearer {body['registration_access_token']}"},
                        json={"client_id": body["client_id"], "redirect_uris": ["https://partner.example/cb"],
                              "backchannel_logout_uri": "https://169.254.169.254/latest/meta-data/"})
    assert update.status_code == 400 and update.get_json()["error"] == "invalid_client_metadata"


def test_a_client_may_register_its_name_for_english_pages(app, client, runner, account, initial_token):
    """client_name#en (RFC 7591 2.2): the consent page in English names the
    site by it; the Japanese page by client_name."""
    response = register(client, initial_token, client_name="パートナー", **{"client_name#en": "Partner Site"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["client_name"] == "パートナー" and body["client_name#en"] == "Partner Site"
    rp = RelyingParty(app, client, body["client_id"], body["client_secret"], "https://partner.example/cb")
    rp.login()
    assert "「パートナー」が、次の情報の利用を求めています。" in rp.authorize(scope="openid email").get_data(as_text=True)
    client.get("/language/en?next=/")
    assert "“Partner Site” asks to use the following information." in rp.authorize(scope="openid email").get_data(
        as_text=True)
    assert register(client, runner.invoke(args=["clients", "initial-token"]).output.strip(),
                    **{"client_name#en": 5}).status_code == 400


def test_par_and_pairwise_metadata_are_registered(app, client, initial_token):
    response = register(client, initial_token, require_pushed_authorization_requests=True, subject_type="pairwise")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["require_pushed_authorization_requests"] is True and body["subject_type"] == "pairwise"
    refused = client.get("/authorize?" + urlencode({"client_id": body["client_id"], "response_type": "code",
                                                    "redirect_uri": "https://partner.example/cb", "scope": "openid"}))
    assert refused.status_code == 400 and "RFC 9126" in refused.get_data(as_text=True)


@pytest.mark.parametrize("metadata", [
    {"subject_type": "secret"},
    {"subject_type": "pairwise", "redirect_uris": ["https://a.example/cb", "https://b.example/cb"]},
    {"subject_type": "pairwise", "sector_identifier_uri": "http://partner.example/sector.json"},
    {"subject_type": "pairwise", "sector_identifier_uri": "https://10.0.0.1/sector.json"},
    {"sector_identifier_uri": "https://partner.example/sector.json"},
    {"require_pushed_authorization_requests": "yes"},
])
def test_bad_par_or_pairwise_metadata_is_refused(client, runner, metadata):
    token = runner.invoke(args=["clients", "initial-token"]).output.strip()
    response = register(client, token, **metadata)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "invalid_client_metadata"
