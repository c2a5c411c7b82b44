"""DPoP (RFC 9449) end to end: a certified RP library (openid-client 6, in
Node.js: tests/rp_node) signs a customer in through a real Chromium, gets
DPoP-bound tokens with dpop_jkt, calls UserInfo and refreshes; then the
test attacks the OP with what that RP sent: a replayed proof, a proof for
another URL, a wrong ath, and the stolen tokens without the key.

Needs Node.js and ``npm ci`` in tests/rp_node; without them the test skips
locally (under CI, set CI, it fails)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests
from joserfc.jwk import ECKey

from idp.clients import create_client
from idp.extensions import db

from ..oauth.dpop_client import DPoPKey, ath
from .rp_node import RP_NODE, free_port, script

PORTS = range(7400, 7450)  # this suite's loopback ports
CALLBACK = "http://127.0.0.1:7499/cb"  # never listened on: the browser's request to it is intercepted


@pytest.fixture(scope="session")
def _port() -> int:
    return free_port(PORTS)


@pytest.fixture(params=[False, True], ids=["without-nonces", "nonces-required"])
def config_overrides(config_overrides, request):
    return {**config_overrides, "DPOP_NONCE_REQUIRED": request.param}


@pytest.fixture
def node_rp():
    return script("dpop_rp.mjs")


class _Clock:
    """The proofs this test makes itself carry the wall clock's iat, as the OP's (browser tests: real time)."""

    @staticmethod
    def now() -> int:
        return int(time.time())


def test_openid_client_with_dpop_and_the_attacks_on_what_it_sent(app, live_server, account, page, node_rp):
    with app.app_context():
        registered, _ = create_client("DPoP RP", [CALLBACK], [], grant_types=["authorization_code", "refresh_token"],
                                      auth_method="none", first_party=True, dpop_bound_access_tokens=True)
        db.session.commit()
        client_id = registered.client_id
    rp = subprocess.Popen(["node", str(node_rp), live_server, client_id, CALLBACK], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=RP_NODE)
    try:
        start = json.loads(rp.stdout.readline() or "{}")
        assert "authorization_url" in start, rp.stderr.read()

        # The customer's browser: the OP's login page, then back to the RP.
        reached = []
        page.route(f"{CALLBACK}**", lambda route: (reached.append(route.request.url),
                                                   route.fulfill(status=200, body="RP")))
        page.goto(start["authorization_url"])
        page.get_by_label("iTSCOM ID").fill("taro.itsu@example.jp")
        page.get_by_label("パスワード", exact=True).fill("itscom-demo1")
        page.get_by_role("button", name="ログイン", exact=True).click()
        page.wait_for_url(f"{CALLBACK}**")
        assert reached and "code=" in reached[0]

        out, err = rp.communicate(reached[0] + "\n", timeout=60)
        assert rp.returncode == 0, err
        got = json.loads(out.strip().splitlines()[-1])
    finally:
        if rp.poll() is None:
            rp.kill()

    # What the library did: DPoP-bound tokens, UserInfo, refresh.
    assert got["token_type"].lower() == "dpop" and got["refreshed_token_type"].lower() == "dpop"
    assert got["userinfo"]["sub"] == got["sub"] == got["userinfo_again"]["sub"]
    assert got["userinfo"]["email"] == "taro.itsu@example.jp"
    proofs = [request for request in got["sent"] if request["dpop"]]
    assert {(r["method"], r["url"].removeprefix(live_server)) for r in proofs} >= {
        ("POST", "/token"), ("GET", "/userinfo")}

    token = got["access_token"]
    userinfo = f"{live_server}/userinfo"

    def call(scheme: str, proof: str | None, access_token: str = token):
        headers = {"Authorization": f"{scheme} {access_token}", **({"DPoP": proof} if proof else {})}
        return requests.get(userinfo, headers=headers, timeout=10)

    def refused(response, error: str):
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"].startswith("DPoP ")
        assert f'error="{error}"' in response.headers["WWW-Authenticate"]

    # The RP's own key, in the hands of this test (to prove the attacks fail for their stated reason).
    owner = DPoPKey(_Clock, "ES256")
    owner.key, owner.public = ECKey.import_key(got["private_jwk"]), got["public_jwk"]

    def nonce() -> str | None:
        if not app.config["DPOP_NONCE_REQUIRED"]:
            return None
        return call("DPoP", owner.proof("GET", userinfo)).headers.get("DPoP-Nonce")

    # A replayed proof: the last one the RP sent to UserInfo.
    last_userinfo_proof = [r["dpop"] for r in proofs if r["url"] == userinfo][-1]
    refused(call("DPoP", last_userinfo_proof), "invalid_dpop_proof")
    # A proof for another URL (the token endpoint), with the right key and ath.
    refused(call("DPoP", owner.proof("GET", f"{live_server}/token", token=token, nonce=nonce())),
            "invalid_dpop_proof")
    # A wrong ath: the hash of the RP's first access token, not this one.
    assert ath(got["first_access_token"]) != ath(token)
    refused(call("DPoP", owner.proof("GET", userinfo, token=got["first_access_token"], nonce=nonce())),
            "invalid_dpop_proof")
    # The stolen bound token without the key: as a Bearer token, and with the thief's own key.
    refused(call("Bearer", None), "invalid_token")
    thief = DPoPKey(_Clock, "ES256")
    refused(call("DPoP", thief.proof("GET", userinfo, token=token, nonce=nonce())), "invalid_token")
    # The stolen refresh token (a public client's: bound, RFC 9449 5) with the thief's key.
    stolen = requests.post(f"{live_server}/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": got["refresh_token"], "client_id": client_id,
    }, headers={"DPoP": thief.proof("POST", f"{live_server}/token", nonce=nonce())})
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant", stolen.text
    # ... while the key's holder still gets in.
    assert call("DPoP", owner.proof("GET", userinfo, token=token, nonce=nonce())).status_code == 200
