"""PAR (RFC 9126) end to end through a certified RP library: openid-client 6
(an OpenID Certified RP library, Node.js: tests/rp_node/par_rp.mjs) pushes
its authorization request itself, alone or with DPoP (RFC 9449), Chromium
signs in from the URL it returns, and the library exchanges the code and
calls UserInfo; with DPoP, the proof sent with the push binds the code, so
a thief with another key cannot redeem it. The client must push: the same request not pushed is
refused; the pushed URL opened again after the login, or after its 60
seconds, is refused with the OP's page, and the RP is reached only once.

Needs Node.js and ``npm ci`` in tests/rp_node; without them the test skips
locally (under CI, set CI, it fails)."""

from __future__ import annotations

import json
import subprocess
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from idp.clients import create_client
from idp.extensions import db

from ..helpers import FrozenClock
from ..oauth.dpop_client import DPoPKey
from .rp_node import RP_NODE, free_port, script

PORTS = range(7500, 7550)  # this suite's loopback ports
CALLBACK = "http://127.0.0.1:7599/cb"  # never listened on: the browser's request to it is intercepted


@pytest.fixture(scope="session")
def _port() -> int:
    return free_port(PORTS)


@pytest.fixture
def clock():
    """The wall clock's now (the library checks the ID token's iat, the OP a
    DPoP proof's), ticked by hand past a request_uri's 60 seconds."""
    return FrozenClock(int(time.time()))


@pytest.mark.parametrize("dpop", [False, True], ids=["par", "par-dpop"])
def test_openid_client_pushes_its_request(app, live_server, account, page, clock, dpop):
    node_rp = script("par_rp.mjs")
    with app.app_context():
        # Alone: a confidential client (client_secret_basic at /par and /token);
        # with DPoP: a public client that must prove its key.
        registered, secret = create_client(
            "PAR RP", [CALLBACK], [], first_party=True, require_pushed_authorization_requests=True,
            **({"auth_method": "none", "dpop_bound_access_tokens": True} if dpop else {}))
        db.session.commit()
        client_id = registered.client_id
    rp = subprocess.Popen(["node", str(node_rp), live_server, client_id, secret or "-", CALLBACK,
                           "dpop" if dpop else "plain"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=RP_NODE)
    try:
        start = json.loads(rp.stdout.readline() or "{}")
        assert "authorization_url" in start, rp.stderr.read()
        pushed = start["authorization_url"]
        # What the browser carries: the client and the request_uri, nothing of the request.
        assert pushed.startswith(f"{live_server}/authorize?")
        carried = dict(parse_qsl(urlsplit(pushed).query))
        assert carried.keys() == {"client_id", "request_uri"} and carried["client_id"] == client_id
        assert carried["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")

        # The customer's browser: the OP's login page, then back to the RP.
        reached = []
        page.route(f"{CALLBACK}**", lambda route: (reached.append(route.request.url),
                                                   route.fulfill(status=200, body="RP")))
        page.goto(pushed)
        page.get_by_label("iTSCOM ID").fill("taro.itsu@example.jp")
        page.get_by_label("パスワード", exact=True).fill("itscom-demo1")
        page.get_by_role("button", name="ログイン", exact=True).click()
        page.wait_for_url(f"{CALLBACK}**")
        assert len(reached) == 1 and "code=" in reached[0]
        if dpop:
            # The code is bound to the key the push proved (RFC 9449 10.1): a thief
            # with the code and the verifier but another key is refused, and the
            # code stays the RP's.
            code = dict(parse_qsl(urlsplit(reached[0]).query))["code"]
            thief = DPoPKey(clock, "ES256")
            stolen = requests.post(f"{live_server}/token", timeout=10, data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
                "code_verifier": start["code_verifier"], "client_id": client_id,
            }, headers={"DPoP": thief.proof("POST", f"{live_server}/token")})
            assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant", stolen.text

        out, err = rp.communicate(reached[0] + "\n", timeout=60)
        assert rp.returncode == 0, err
        got = json.loads(out.strip().splitlines()[-1])
    finally:
        if rp.poll() is None:
            rp.kill()

    # What the library did: pushed to the endpoint discovery named, then the code and UserInfo.
    pushes = [r for r in got["sent"] if r["url"] == f"{live_server}/par"]
    assert len(pushes) == 2 and all(r["method"] == "POST" for r in pushes)
    body = dict(parse_qsl(pushes[0]["body"]))
    assert body["redirect_uri"] == CALLBACK and body["code_challenge_method"] == "S256"
    assert got["claims"]["aud"] == client_id and got["claims"]["sub"] == got["userinfo"]["sub"]
    assert got["userinfo"]["email"] == "taro.itsu@example.jp"
    if dpop:
        # Each push carried a proof of the key; the tokens are bound to it.
        assert all(r["dpop"] for r in pushes)
        assert got["token_type"].lower() == "dpop"
        assert {(r["method"], r["url"]) for r in got["sent"] if r["dpop"]} >= {
            ("POST", f"{live_server}/token"), ("GET", f"{live_server}/userinfo")}
    else:
        assert got["token_type"].lower() == "bearer"

    def refused(url: str, error: str) -> None:
        response = page.goto(url)
        assert response.status == 400 and error in page.content(), page.content()
        assert not page.url.startswith(CALLBACK)

    # The same pushed URL again, in the browser that is now signed in: refused, no second code.
    refused(pushed, "invalid_request_uri")
    # The same request built by the library without pushing: this client must push.
    refused(start["unpushed_url"], "RFC 9126")
    # A request_uri pushed alongside, opened past its 60 seconds.
    clock.advance(61)
    refused(start["spare_url"], "invalid_request_uri")
    assert len(reached) == 1
