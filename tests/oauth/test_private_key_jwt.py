"""private_key_jwt client authentication (RFC 7523), with PyJWT making the assertions."""

import time

import pytest

from idp.extensions import db
from idp.oauth import client_auth
from idp.security.secrets import digest

from ..helpers import RelyingParty, needs_postgresql
from .client_keys import ASSERTION_TYPE, assertion, new_key, token


@pytest.fixture
def config_overrides():
    return {"ALLOW_PRIVATE_OUTBOUND": True}  # the jwks_uri servers are on loopback


@pytest.fixture(autouse=True)
def patient_fetches(monkeypatch):
    """Wait for each jwks_uri fetch to end: a loopback server answers at once,
    and these tests are about keys, not about slow servers."""
    monkeypatch.setattr(client_auth, "FETCH_WAIT", 10)


@pytest.fixture
def clock():
    """Real time: the client signs its assertions by the wall clock."""
    from idp.security.clock import SystemClock

    return SystemClock()


@pytest.fixture
def registered(app, client):
    private, public = new_key("k1")
    rp = RelyingParty.register(app, client, auth_method="private_key_jwt", jwks={"keys": [public]})
    return rp, private


def test_good_assertion(registered, client):
    rp, private = registered
    assert rp.client_secret is None
    response = token(client, rp.client_id, assertion(rp.client_id, private, "k1"))
    assert response.status_code == 200, response.get_json()


def test_replayed_jti_is_refused(registered, client):
    rp, private = registered
    signed = assertion(rp.client_id, private, "k1")
    assert token(client, rp.client_id, signed).status_code == 200
    again = token(client, rp.client_id, signed)
    assert again.status_code in (400, 401) and again.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize("overrides", [
    {"aud": "https://elsewhere.example/token"},
    {"exp": int(time.time()) - 120},
    {"iss": "someone-else"},
    {"exp": int(time.time()) + 86400},  # too long-lived to be safe from replay
])
def test_bad_assertions_are_invalid_client(registered, client, overrides):
    rp, private = registered
    response = token(client, rp.client_id, assertion(rp.client_id, private, "k1", **overrides))
    assert response.status_code in (400, 401) and response.get_json()["error"] == "invalid_client"


def test_wrong_key_is_refused(registered, client):
    rp, _ = registered
    other, _ = new_key("k1")
    assert token(client, rp.client_id, assertion(rp.client_id, other, "k1")).get_json()["error"] == "invalid_client"


def test_secret_is_not_accepted_for_a_private_key_jwt_client(registered, client):
    rp, _ = registered
    response = client.post("/token", data={"grant_type": "client_credentials", "client_id": rp.client_id,
                                           "client_secret": "anything"})
    assert response.get_json()["error"] == "invalid_client"


def test_jwks_uri_is_cached_and_refreshed_on_an_unknown_kid(app, client, jwks_server):
    key1, public1 = new_key("k1")
    jwks_server.jwks = {"keys": [public1]}
    rp = RelyingParty.register(app, client, auth_method="private_key_jwt", jwks_uri=jwks_server.url,
                               redirect_uris=("http://127.0.0.1/cb",))
    assert token(client, rp.client_id, assertion(rp.client_id, key1, "k1")).status_code == 200
    assert token(client, rp.client_id, assertion(rp.client_id, key1, "k1")).status_code == 200
    assert jwks_server.fetches == 1  # cached
    key2, public2 = new_key("k2")
    jwks_server.jwks = {"keys": [public1, public2]}  # the client rotated
    assert token(client, rp.client_id, assertion(rp.client_id, key2, "k2")).status_code == 200
    assert jwks_server.fetches == 2


def test_keys_are_read_as_soon_as_the_client_is_registered(app, client, jwks_server):
    """Before its first token request: a jwks_uri slower than a request may
    wait for (FETCH_WAIT) must not cost the client its first request."""
    key, public = new_key("k1")
    jwks_server.jwks = {"keys": [public]}
    rp = RelyingParty.register(app, client, auth_method="private_key_jwt", jwks_uri=jwks_server.url)
    assert jwks_server.reached(1)  # no request has asked yet
    assert token(client, rp.client_id, assertion(rp.client_id, key, "k1")).status_code == 200
    assert jwks_server.fetches == 1


@needs_postgresql
def test_keys_one_worker_fetched_serve_every_other(app, client, jwks_server):
    from idp import create_app
    from idp.extensions import db
    from idp.models import FetchedKeySet

    key, public = new_key("k1")
    jwks_server.jwks = {"keys": [public]}
    rp = RelyingParty.register(app, client, auth_method="private_key_jwt", jwks_uri=jwks_server.url)
    assert token(client, rp.client_id, assertion(rp.client_id, key, "k1")).status_code == 200
    with app.app_context():  # the fetch's own write may land just after the answer it served
        stored = time.monotonic() + 10
        while db.session.get(FetchedKeySet, digest(jwks_server.url)) is None and time.monotonic() < stored:
            db.session.rollback()
    other = create_app({"DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": app.secret_key,
                        "ISSUER": app.config["ISSUER"], "ALLOW_PRIVATE_OUTBOUND": True})
    try:
        response = token(other.test_client(), rp.client_id, assertion(rp.client_id, key, "k1"))
        assert response.status_code == 200, response.get_json()
        assert jwks_server.fetches == 1
    finally:
        with other.app_context():
            db.engine.dispose()


def test_code_flow_with_private_key_jwt(app, client, account):
    private, public = new_key("k9")
    rp = RelyingParty.register(app, client, auth_method="private_key_jwt", jwks={"keys": [public]})
    code = rp.sign_in_and_get_code()["code"]
    response = client.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
        "code_verifier": rp.verifier,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(rp.client_id, private, "k9"),
    })
    assert response.status_code == 200
    assert rp.verify_id_token(response.get_json()["id_token"])["aud"] == rp.client_id


def test_a_registered_signing_alg_is_the_only_one_accepted(app, client):
    private, public = new_key("k1")
    es = RelyingParty.register(app, client, auth_method="private_key_jwt", jwks={"keys": [public]},
                               token_endpoint_auth_signing_alg="ES256")
    assert token(client, es.client_id, assertion(es.client_id, private, "k1")).get_json()["error"] == "invalid_client"
    rs = RelyingParty.register(app, client, auth_method="private_key_jwt", jwks={"keys": [public]},
                               token_endpoint_auth_signing_alg="RS256")
    assert token(client, rs.client_id, assertion(rs.client_id, private, "k1")).status_code == 200


def test_bad_assertions_with_a_known_kid_do_not_refetch(app, client, jwks_server):
    key1, public1 = new_key("k1")
    jwks_server.jwks = {"keys": [public1]}
    rp = RelyingParty.register(app, client, auth_method="private_key_jwt", jwks_uri=jwks_server.url,
                               redirect_uris=("http://127.0.0.1/cb",))
    stranger, _ = new_key("k1")
    for _ in range(5):
        assert token(client, rp.client_id, assertion(rp.client_id, stranger, "k1")).status_code in (400, 401)
    assert jwks_server.fetches == 1
    for n in range(5):  # unknown kids: one forced fetch, then rate-limited
        token(client, rp.client_id, assertion(rp.client_id, stranger, f"new{n}"))
    assert jwks_server.fetches == 2


def test_a_fresh_installs_first_token_request_may_be_private_key_jwt(app, registered, client):
    """Its jti is written before anything is signed: creating the first keys
    then must not wait for that write (SQLite has one writer)."""
    from idp.extensions import db
    from idp.models import SigningKey

    with app.app_context():
        db.session.execute(db.delete(SigningKey))
        db.session.commit()
    rp, private = registered
    response = token(client, rp.client_id, assertion(rp.client_id, private, "k1"))
    assert response.status_code == 200, response.get_json()


def test_a_pushed_authorization_request_may_name_the_par_endpoint_as_audience(app, client, account):
    """RFC 9126 2: the client authenticates at /par as at the token endpoint."""
    from idp.models import PushedRequest

    key, public = new_key("k1")
    rp = RelyingParty.register(app, client, auth_method="private_key_jwt", jwks={"keys": [public]})
    for audience, status in (("https://id.example.test/par", 201), ("https://rp.example.test/", 400)):
        signed = assertion(rp.client_id, key, "k1", aud=audience)
        response = client.post("/par", data={**rp.authorize_params(), "client_assertion": signed,
                                             "client_assertion_type": ASSERTION_TYPE})
        assert response.status_code == status, response.get_json()
    with app.app_context():
        params = dict(db.session.scalar(db.select(PushedRequest)).params)
    assert "client_assertion" not in params and params["client_id"] == rp.client_id
