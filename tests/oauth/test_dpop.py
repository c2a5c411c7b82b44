"""DPoP (RFC 9449, idp/oauth/dpop.py): proofs at the token endpoint and at
UserInfo, tokens bound to the proof's key, and every rule broken once."""

from __future__ import annotations

import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from idp import create_app
from idp.extensions import db
from idp.models import Token, UsedDPoPProof
from idp.oauth.dpop import ALGS
from idp.security.secrets import digest

from ..conftest import ISSUER
from ..helpers import RelyingParty
from .dpop_client import DPoPKey


@pytest.fixture
def key(clock):
    return DPoPKey(clock)


@pytest.fixture
def other_key(clock):
    return DPoPKey(clock)


def dpop_token_request(rp, key, data: dict, **proof_options):
    headers = {**rp.auth(), "DPoP": key.proof("POST", "/token", **proof_options)}
    return rp.token_request(data, headers=headers)


def dpop_exchange(rp, key, code=None, **proof_options):
    code = code or rp.sign_in_and_get_code()["code"]
    return dpop_token_request(rp, key, {"grant_type": "authorization_code", "code": code,
                                        "redirect_uri": rp.redirect_uri, "code_verifier": rp.verifier},
                              **proof_options)


def client_credentials(rp, key, **proof_options):
    return dpop_token_request(rp, key, {"grant_type": "client_credentials"}, **proof_options)


def userinfo(client, token, key=None, scheme="DPoP", **proof_options):
    headers = {"Authorization": f"{scheme} {token}"}
    if key is not None:
        headers["DPoP"] = key.proof("GET", "/userinfo", token=token, **proof_options)
    return client.get("/userinfo", headers=headers)


def introspect(rp, token):
    return rp.client.post("/introspect", data={"token": token}, headers=rp.auth()).get_json()


def access_claims(client, token: str) -> dict:
    return jose_jwt.decode(token, KeySet.import_key_set(client.get("/jwks").get_json())).claims


def refused(response, status=400, error="invalid_dpop_proof"):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"] == error
    return response


def challenge(response, error) -> str:
    header = response.headers["WWW-Authenticate"]
    assert header.startswith("DPoP ") and f'error="{error}"' in header, header
    assert 'algs="' in header
    return header


# --- discovery -----------------------------------------------------------------------


def test_discovery_names_the_proof_algorithms(client):
    algs = client.get("/.well-known/openid-configuration").get_json()["dpop_signing_alg_values_supported"]
    assert {"ES256", "RS256"} <= set(algs) and algs == list(ALGS)
    assert "none" not in algs and not any(alg.startswith("HS") for alg in algs)


# --- the token endpoint ----------------------------------------------------------------


def test_a_proof_binds_the_access_token_to_its_key(app, client, rp, key):
    response = dpop_exchange(rp, key)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"] == "DPoP"
    assert access_claims(client, body["access_token"])["cnf"] == {"jkt": key.jkt}
    with app.app_context():
        row = db.session.scalar(db.select(Token).filter_by(access_token_digest=digest(body["access_token"])))
        assert row.dpop_jkt == key.jkt
    # RFC 9449 6.2: introspection names the key.
    answer = introspect(rp, body["access_token"])
    assert answer["active"] is True and answer["token_type"] == "DPoP" and answer["cnf"] == {"jkt": key.jkt}
    # UserInfo with the DPoP scheme and a proof of that key.
    info = userinfo(client, body["access_token"], key)
    assert info.status_code == 200, info.get_data(as_text=True)
    assert info.get_json()["sub"]


def test_without_a_proof_tokens_stay_bearer(client, rp):
    body = rp.tokens()
    assert body["token_type"] == "Bearer"
    assert "cnf" not in access_claims(client, body["access_token"])
    answer = introspect(rp, body["access_token"])
    assert answer["token_type"] == "Bearer" and "cnf" not in answer


@pytest.mark.parametrize("alg", ALGS)
def test_each_published_algorithm_is_accepted(client, rp, clock, alg):
    key = DPoPKey(clock, alg)
    response = client_credentials(rp, key)
    assert response.status_code == 200, response.get_json()
    assert access_claims(client, response.get_json()["access_token"])["cnf"]["jkt"] == key.jkt


def _bad_proofs(other):
    """Proof options that break one rule of RFC 9449 4.3 each."""
    return {
        "typ JWT (4.3 item 4)": {"header": {"typ": "JWT"}},
        "no typ": {"header": {"typ": None}},
        "alg none (4.3 item 5)": {"header": {"alg": "none"}},
        "alg HS256, a MAC (4.3 item 5)": {"header": {"alg": "HS256"}},
        "alg RS512, not published": {"key_alg": "RS256", "header": {"alg": "RS512"}},
        "private jwk (4.3 item 7)": {"header": {"jwk": "PRIVATE"}},
        "no jwk": {"header": {"jwk": None}},
        "symmetric jwk": {"header": {"jwk": {"kty": "oct", "k": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s"}}},
        "signed by another key (4.3 item 6)": {"signer": other and other.key},
        "htm GET (4.3 item 8)": {"claims": {"htm": "GET"}},
        "htu another path (4.3 item 9)": {"claims": {"htu": ISSUER + "/userinfo"}},
        "htu another host": {"claims": {"htu": "https://evil.example.test/token"}},
        "htu http": {"claims": {"htu": "http://id.example.test/token"}},
        "htu another port": {"claims": {"htu": "https://id.example.test:8443/token"}},
        "iat 61 s old (4.3 item 11)": {"iat": "-61"},
        "iat 61 s ahead": {"iat": "+61"},
        "iat a string": {"claims": {"iat": "now"}},
        "no jti (4.3 item 3)": {"drop": ("jti",)},
        "no htm": {"drop": ("htm",)},
        "no htu": {"drop": ("htu",)},
        "no iat": {"drop": ("iat",)},
    }


BAD_PROOFS = list(_bad_proofs(None))


def _options(name, key, other, clock):
    options = dict(_bad_proofs(other)[name])
    if options.get("iat") in ("-61", "+61"):
        options["iat"] = clock.now() + int(options["iat"])
    if options.get("header", {}).get("jwk") == "PRIVATE":
        options["header"] = {"jwk": key.key.as_dict(private=True)}
    return options


@pytest.mark.parametrize("name", BAD_PROOFS)
def test_a_bad_proof_is_refused_and_the_code_stays_usable(rp, key, other_key, clock, name):
    code = rp.sign_in_and_get_code()["code"]
    options = _options(name, key, other_key, clock)
    prover = DPoPKey(clock, options.pop("key_alg")) if "key_alg" in options else key
    refused(dpop_exchange(rp, prover, code, **options))
    assert dpop_exchange(rp, key, code).status_code == 200  # checked before the code was spent


@pytest.mark.parametrize("value", ["not-a-jws", "a.b", "a.b.c.d.e", "x" * 9000 + ".y.z"])
def test_a_header_that_is_no_compact_jws_is_refused(rp, value):
    headers = {**rp.auth(), "DPoP": value}
    refused(rp.token_request({"grant_type": "client_credentials"}, headers=headers))


def test_two_proofs_in_one_request_are_refused(rp, key):
    """RFC 9449 4.3 item 1: not more than one DPoP header."""
    headers = [*rp.auth().items(), ("DPoP", key.proof("POST", "/token")), ("DPoP", key.proof("POST", "/token"))]
    refused(rp.client.post("/token", data={"grant_type": "client_credentials"}, headers=headers))


@pytest.mark.parametrize("htu", [
    ISSUER + "/token?x=1",  # 4.3 item 9: the query is ignored
    ISSUER + "/token#f",  # ... and so is the fragment
    "HTTPS://ID.EXAMPLE.TEST/token",  # RFC 3986 6.2.2.1: scheme and host are case-insensitive
    "https://id.example.test:443/token",  # 6.2.3: the default port
    "https://id.example.test/%74oken",  # 6.2.2.2: an unreserved character percent-encoded
])
def test_htu_is_compared_normalised(rp, key, htu):
    assert client_credentials(rp, key, claims={"htu": htu}).status_code == 200


def test_iat_within_the_window_is_accepted(rp, key, clock):
    assert client_credentials(rp, key, iat=clock.now() - 60).status_code == 200
    assert client_credentials(rp, key, iat=clock.now() + 60).status_code == 200


def test_a_proof_too_old_by_the_time_it_arrives_is_refused(rp, key, clock):
    proof = key.proof("POST", "/token")
    clock.advance(61)
    headers = {**rp.auth(), "DPoP": proof}
    refused(rp.token_request({"grant_type": "client_credentials"}, headers=headers))


def test_a_replayed_proof_is_refused(rp, key):
    headers = {**rp.auth(), "DPoP": key.proof("POST", "/token")}
    assert rp.token_request({"grant_type": "client_credentials"}, headers=headers).status_code == 200
    refused(rp.token_request({"grant_type": "client_credentials"}, headers=headers))


def test_a_proof_replayed_to_another_node_is_refused(app, rp, key, clock, _schema):
    """11.1: the jti is remembered where every node sees it (here the
    database, as without Redis; tests/scaleout/test_dpop_replay.py: Redis)."""
    other_node = create_app({"DATABASE_URL": _schema, "SECRET_KEY": app.secret_key, "ISSUER": ISSUER}, clock=clock)
    headers = {**rp.auth(), "DPoP": key.proof("POST", "/token")}
    assert rp.token_request({"grant_type": "client_credentials"}, headers=headers).status_code == 200
    refused(other_node.test_client().post("/token", data={"grant_type": "client_credentials"}, headers=headers))
    with other_node.app_context():
        db.engine.dispose()


def test_the_same_jti_from_another_key_is_its_own(rp, key, other_key):
    assert client_credentials(rp, key, jti="same").status_code == 200
    assert client_credentials(rp, other_key, jti="same").status_code == 200
    refused(client_credentials(rp, key, jti="same"))


# --- a client that must use DPoP (5.2) ---------------------------------------------------


@pytest.fixture
def dpop_rp(app, client, account):
    return RelyingParty.register(app, client, first_party=True, dpop_bound_access_tokens=True)


def test_a_client_registered_for_dpop_must_send_a_proof(dpop_rp, key):
    refused(dpop_rp.exchange(dpop_rp.sign_in_and_get_code()["code"]))
    refused(dpop_rp.token_request({"grant_type": "client_credentials"}))
    assert dpop_exchange(dpop_rp, key).get_json()["token_type"] == "DPoP"


def test_registration_endpoint_takes_dpop_bound_access_tokens(client, runner):
    token = runner.invoke(args=["clients", "initial-token"]).output.strip()
    body = {"client_name": "Partner", "redirect_uris": ["https://partner.example/cb"], "dpop_bound_access_tokens": True}
    response = client.post("/register", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["dpop_bound_access_tokens"] is True
    token = runner.invoke(args=["clients", "initial-token"]).output.strip()
    response = client.post("/register", json={**body, "dpop_bound_access_tokens": "yes"},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_client_metadata"


def test_cli_registers_a_client_for_dpop(runner):
    result = runner.invoke(args=["clients", "create", "--name", "Partner", "--redirect-uri", "https://partner.example/cb",
                                 "--dpop-bound-access-tokens", "--json"])
    assert result.exit_code == 0, result.output
    assert '"dpop_bound_access_tokens": true' in result.output


# --- dpop_jkt at /authorize (10) ------------------------------------------------------


def test_a_code_bound_by_dpop_jkt_needs_that_key(rp, key, other_key):
    code = rp.sign_in_and_get_code(dpop_jkt=key.jkt)["code"]
    refused(rp.exchange(code))  # no proof
    refused(dpop_exchange(rp, other_key, code), error="invalid_grant")
    response = dpop_exchange(rp, key, code)
    assert response.status_code == 200 and response.get_json()["token_type"] == "DPoP"


def test_a_malformed_dpop_jkt_is_refused(rp):
    response = rp.authorize(dpop_jkt="not a thumbprint")
    assert response.status_code == 302 and "error=invalid_request" in response.location


# --- DPoP at the PAR endpoint (10.1) ------------------------------------------------------


def dpop_push(rp, back_channel, key, **params):
    """The RP pushes its authorization request (RFC 9126) with a proof of ``key``."""
    proof_options = {name: params.pop(name) for name in ("nonce", "jti", "url") if name in params}
    proof = key.proof("POST", proof_options.pop("url", "/par"), **proof_options)
    return back_channel.post("/par", data=rp.authorize_params(**params), headers={**rp.auth(), "DPoP": proof})


def sign_in_pushed(rp, pushed) -> str:
    """The browser brings the pushed request's URI to /authorize; the code."""
    assert pushed.status_code == 201, pushed.get_json()
    query = {"client_id": rp.client_id, "request_uri": pushed.get_json()["request_uri"]}
    return rp.sign_in_from(rp.client.get("/authorize", query_string=query))["code"]


def test_a_proof_with_the_push_binds_the_code_to_its_key(rp, back_channel, key, other_key):
    code = sign_in_pushed(rp, dpop_push(rp, back_channel, key))
    refused(rp.exchange(code))  # no proof
    refused(dpop_exchange(rp, other_key, code), error="invalid_grant")
    response = dpop_exchange(rp, key, code)
    assert response.status_code == 200 and response.get_json()["token_type"] == "DPoP"


def test_dpop_jkt_and_the_pushed_proof_name_one_key(rp, back_channel, key, other_key):
    refused(dpop_push(rp, back_channel, key, dpop_jkt=other_key.jkt))
    code = sign_in_pushed(rp, dpop_push(rp, back_channel, key, dpop_jkt=key.jkt))
    refused(dpop_exchange(rp, other_key, code), error="invalid_grant")
    assert dpop_exchange(rp, key, code).status_code == 200


def test_a_bad_proof_with_the_push_is_refused(rp, back_channel, key):
    refused(dpop_push(rp, back_channel, key, url="/token"))  # a proof for another URL
    assert dpop_push(rp, back_channel, key, jti="once").status_code == 201
    refused(dpop_push(rp, back_channel, key, jti="once"))  # replayed


# --- refresh (5) -----------------------------------------------------------------------


@pytest.fixture
def public_rp(app, client, account):
    return RelyingParty.register(app, client, first_party=True, auth_method="none")


def refresh(rp, key, refresh_token, **proof_options):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if key is None:
        return rp.token_request(data)
    return dpop_token_request(rp, key, data, **proof_options)


def test_a_public_clients_refresh_token_is_bound_to_the_key(public_rp, key, other_key):
    first = dpop_exchange(public_rp, key).get_json()
    refused(refresh(public_rp, None, first["refresh_token"]))
    refused(refresh(public_rp, other_key, first["refresh_token"]), error="invalid_grant")
    second = refresh(public_rp, key, first["refresh_token"])
    assert second.status_code == 200 and second.get_json()["token_type"] == "DPoP"
    # The rotated refresh token stays bound.
    refused(refresh(public_rp, other_key, second.get_json()["refresh_token"]), error="invalid_grant")


def test_a_confidential_clients_refresh_token_is_not_bound(client, rp, key, other_key):
    first = dpop_exchange(rp, key).get_json()
    plain = refresh(rp, None, first["refresh_token"])
    assert plain.status_code == 200 and plain.get_json()["token_type"] == "Bearer"
    rebound = refresh(rp, other_key, plain.get_json()["refresh_token"]).get_json()
    assert rebound["token_type"] == "DPoP"
    assert access_claims(client, rebound["access_token"])["cnf"] == {"jkt": other_key.jkt}


# --- UserInfo (7) --------------------------------------------------------------------------


@pytest.fixture
def bound(rp, key) -> str:
    return dpop_exchange(rp, key).get_json()["access_token"]


def test_a_bound_token_as_bearer_is_refused(client, bound):
    """7.2: refused with a DPoP challenge, so the client learns which scheme works."""
    response = userinfo(client, bound, scheme="Bearer")
    refused(response, 401, "invalid_token")
    challenge(response, "invalid_token")


def test_a_stolen_bound_token_with_another_key_is_refused(client, bound, other_key):
    response = userinfo(client, bound, other_key)
    challenge(refused(response, 401, "invalid_token"), "invalid_token")


def test_a_wrong_ath_is_refused(client, bound, key):
    response = userinfo(client, bound, key, claims={"ath": "A" * 43})
    challenge(refused(response, 401), "invalid_dpop_proof")
    response = userinfo(client, bound, key, drop=("ath",))
    challenge(refused(response, 401), "invalid_dpop_proof")


def test_a_proof_for_another_url_is_refused_at_userinfo(client, bound, key):
    headers = {"Authorization": f"DPoP {bound}", "DPoP": key.proof("GET", "/token", token=bound)}
    challenge(refused(client.get("/userinfo", headers=headers), 401), "invalid_dpop_proof")
    headers["DPoP"] = key.proof("POST", "/userinfo", token=bound)
    challenge(refused(client.get("/userinfo", headers=headers), 401), "invalid_dpop_proof")


def test_a_proof_replayed_at_userinfo_is_refused(client, bound, key):
    headers = {"Authorization": f"DPoP {bound}", "DPoP": key.proof("GET", "/userinfo", token=bound)}
    assert client.get("/userinfo", headers=headers).status_code == 200
    challenge(refused(client.get("/userinfo", headers=headers), 401), "invalid_dpop_proof")


def test_the_dpop_scheme_needs_a_proof(client, bound):
    challenge(refused(userinfo(client, bound), 401), "invalid_dpop_proof")


def test_the_dpop_scheme_with_an_unbound_token_is_refused(client, rp, key):
    bearer = rp.tokens()["access_token"]
    challenge(refused(userinfo(client, bearer, key), 401, "invalid_token"), "invalid_token")


def test_a_revoked_bound_token_is_refused(client, rp, bound, key):
    assert rp.client.post("/revoke", data={"token": bound}, headers=rp.auth()).status_code == 200
    challenge(refused(userinfo(client, bound, key), 401, "invalid_token"), "invalid_token")


def test_cors_lets_browser_clients_send_proofs_and_read_nonces(app, client, clock):
    RelyingParty.register(app, client, redirect_uris=("https://spa.example.test/cb",), auth_method="none")
    response = client.options("/token", headers={"Origin": "https://spa.example.test"})
    assert "DPoP" in response.headers["Access-Control-Allow-Headers"]
    assert "DPoP-Nonce" in response.headers["Access-Control-Expose-Headers"]


# --- nonces (8, 9) -----------------------------------------------------------------------


class TestNonces:
    @pytest.fixture
    def config_overrides(self):
        return {"DPOP_NONCE_REQUIRED": True, "DPOP_NONCE_LIFETIME": 300}

    def test_token_endpoint_asks_for_a_nonce_then_accepts_it(self, rp, key):
        first = refused(client_credentials(rp, key), error="use_dpop_nonce")
        nonce = first.headers["DPoP-Nonce"]
        second = client_credentials(rp, key, nonce=nonce)
        assert second.status_code == 200, second.get_json()
        assert second.headers["DPoP-Nonce"]  # 8.2: the next nonce comes with every answer

    def test_the_par_endpoint_asks_for_a_nonce_then_accepts_it(self, rp, back_channel, key):
        nonce = refused(dpop_push(rp, back_channel, key), error="use_dpop_nonce").headers["DPoP-Nonce"]
        pushed = dpop_push(rp, back_channel, key, nonce=nonce)
        assert pushed.status_code == 201 and pushed.headers["DPoP-Nonce"]

    def test_a_forged_nonce_is_refused(self, rp, key):
        refused(client_credentials(rp, key, nonce="A" * 32), error="use_dpop_nonce")

    def test_a_nonce_expires(self, rp, key, clock):
        nonce = refused(client_credentials(rp, key), error="use_dpop_nonce").headers["DPoP-Nonce"]
        clock.advance(300)
        assert client_credentials(rp, key, nonce=nonce).status_code == 200  # the next period still takes it
        clock.advance(300)
        refused(client_credentials(rp, key, nonce=nonce), error="use_dpop_nonce")

    def test_a_nonce_from_another_node_is_accepted(self, app, rp, key, clock, _schema):
        other_node = create_app({"DATABASE_URL": _schema, "SECRET_KEY": app.secret_key, "ISSUER": ISSUER,
                                 "DPOP_NONCE_REQUIRED": True}, clock=clock)
        headers = {**rp.auth(), "DPoP": key.proof("POST", "/token")}
        nonce = other_node.test_client().post("/token", data={"grant_type": "client_credentials"},
                                              headers=headers).headers["DPoP-Nonce"]
        assert client_credentials(rp, key, nonce=nonce).status_code == 200
        with other_node.app_context():
            db.engine.dispose()

    def test_userinfo_asks_for_a_nonce_with_a_dpop_challenge(self, client, rp, key):
        nonce = refused(client_credentials(rp, key), error="use_dpop_nonce").headers["DPoP-Nonce"]
        code = rp.sign_in_and_get_code()["code"]
        token = dpop_exchange(rp, key, code, nonce=nonce).get_json()["access_token"]
        response = userinfo(client, token, key)
        challenge(refused(response, 401, "use_dpop_nonce"), "use_dpop_nonce")
        answer = userinfo(client, token, key, nonce=response.headers["DPoP-Nonce"])
        assert answer.status_code == 200 and answer.headers["DPoP-Nonce"]


# --- the database's used proofs ---------------------------------------------------------


def test_a_jti_is_remembered_only_while_its_proof_could_be_accepted(app, rp, key, clock, runner):
    """The row of a proof whose window has passed is taken over by a new
    proof with that jti, and removed by flask audit prune."""
    assert client_credentials(rp, key, jti="again").status_code == 200
    clock.advance(app.config["DPOP_PROOF_WINDOW"] + 1)
    assert client_credentials(rp, key, jti="again").status_code == 200
    refused(client_credentials(rp, key, jti="again"))
    assert client_credentials(rp, key, jti="other").status_code == 200
    clock.advance(app.config["DPOP_PROOF_WINDOW"] + 1)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(UsedDPoPProof)) == 2
    assert runner.invoke(args=["audit", "prune"]).exit_code == 0
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(UsedDPoPProof)) == 0
