"""PAR (RFC 9126) end to end: an RP built on Authlib's OAuth client (the
library sites/rpkit.py uses) pushes its request, Chromium signs in from
/authorize?client_id=…&request_uri=…, and the RP exchanges the code; the
same request_uri again, or one past its 60 seconds, is refused."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode, urlsplit, parse_qsl

import jwt as pyjwt
import pytest
from authlib.integrations.requests_client import OAuth2Session

from idp.clients import create_client
from idp.extensions import db

from ..helpers import FrozenClock

CALLBACK = "http://127.0.0.1:9/par-rp/callback"  # never reached: the browser's route answers it


@pytest.fixture
def clock():
    """The wall clock's now, ticked by hand (a request_uri's 60 seconds)."""
    return FrozenClock(int(time.time()))


@pytest.fixture
def rp_session(app, live_server, account):
    """A client that must push its requests, and Authlib's OAuth 2 session for it."""
    with app.app_context():
        client, secret = create_client("PAR RP", [CALLBACK], first_party=True, scopes=["openid", "email"],
                                       require_pushed_authorization_requests=True)
        db.session.commit()
        client_id = client.client_id
    return OAuth2Session(client_id, secret, scope="openid email", redirect_uri=CALLBACK,
                         code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic")


def push(session: OAuth2Session, live_server: str) -> tuple[str, str, str]:
    """Authlib builds the authorization request (state, nonce, PKCE) and the
    RP pushes it with its client authentication; (request_uri, verifier, nonce)."""
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, _ = session.create_authorization_url(f"{live_server}/authorize", code_verifier=verifier, nonce=nonce)
    params = dict(parse_qsl(urlsplit(url).query))
    answer = session.post(f"{live_server}/par", data=params, withhold_token=True,
                          auth=session.client_auth("client_secret_basic"))
    assert answer.status_code == 201, answer.text
    return answer.json()["request_uri"], verifier, nonce


def callbacks(page) -> list[str]:
    """The RP's callback as the browser reaches it."""
    reached = []

    def answer(route):
        reached.append(route.request.url)
        route.fulfill(status=200, content_type="text/plain", body="signed in")

    page.route(f"{CALLBACK}**", answer)
    return reached


def test_pushed_request_through_a_real_browser(page, live_server, rp_session, clock):
    discovery = rp_session.get(f"{live_server}/.well-known/openid-configuration", withhold_token=True).json()
    assert discovery["pushed_authorization_request_endpoint"] == f"{live_server}/par"
    reached = callbacks(page)
    request_uri, verifier, nonce = push(rp_session, live_server)
    authorize = f"{live_server}/authorize?" + urlencode({"client_id": rp_session.client_id, "request_uri": request_uri})

    page.goto(authorize)
    page.get_by_label("iTSCOM ID").fill("taro.itsu@example.jp")
    page.get_by_label("パスワード", exact=True).fill("itscom-demo1")
    page.get_by_role("button", name="ログイン", exact=True).click()
    page.wait_for_url(f"{CALLBACK}**")
    token = rp_session.fetch_token(f"{live_server}/token", authorization_response=reached[-1],
                                   code_verifier=verifier)
    assert token["scope"] == "openid email"
    claims = pyjwt.decode(token["id_token"], options={"verify_signature": False})
    assert claims["nonce"] == nonce and claims["aud"] == rp_session.client_id

    # The same request_uri again: refused with a page, no redirect to the RP.
    response = page.goto(authorize)
    assert response.status == 400 and "invalid_request_uri" in page.content()
    # Without pushing, this client is refused too.
    response = page.goto(f"{live_server}/authorize?" + urlencode({
        "client_id": rp_session.client_id, "response_type": "code", "redirect_uri": CALLBACK, "scope": "openid"}))
    assert response.status == 400 and "RFC 9126" in page.content()
    # A request_uri past its 60 seconds.
    late, _, _ = push(rp_session, live_server)
    clock.advance(61)
    response = page.goto(f"{live_server}/authorize?" + urlencode({"client_id": rp_session.client_id,
                                                                  "request_uri": late}))
    assert response.status == 400 and "invalid_request_uri" in page.content()
    assert len(reached) == 1
