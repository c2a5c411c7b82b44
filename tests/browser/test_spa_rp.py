"""A single-page app as the relying party: oidc-client-ts (the maintained
successor of oidc-client-js, a browser OIDC library) in Chromium, a public
client with PKCE on its own origin (http://localhost:PORT, another site than
the OP's http://127.0.0.1:PORT), talking to the OP from JavaScript: the token
endpoint, UserInfo and revocation cross-origin (CORS), discovery too.

The customer signs in on the OP's real pages by the manual's words, consents
(a partner's app), and is back in the SPA, which shows their email and name
from the ID token and UserInfo; the SPA renews with the refresh token (the
same sub), revokes its tokens (then UserInfo answers 401 and the refresh
token is dead), and signs out through the OP (RP-initiated logout with
id_token_hint, post_logout_redirect_uri and state) back to itself. Once on a
desktop, once on a phone; the OP's pages are checked at each size.

The library's browser bundle comes from tests/rp_node (``npm ci`` there, as
the Makefile does); without Node.js or that install the test skips locally
(under CI, set CI, it fails)."""

from __future__ import annotations

import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from idp.clients import create_client
from idp.extensions import db

from .customer_pages import sign_in
from .rp_node import RP_NODE

SPA_FILES = Path(__file__).resolve().parent / "spa"
# The signed-in users oidc-client-ts keeps (its default store: sessionStorage).
STORED_USERS = "Object.keys(sessionStorage).filter(key => key.startsWith('oidc.user:'))"
BUNDLE = RP_NODE / "node_modules" / "oidc-client-ts" / "dist" / "browser" / "oidc-client-ts.min.js"


def _bundle() -> bytes:
    if not shutil.which("node") or not BUNDLE.is_file():
        message = "oidc-client-ts not installed: cd tests/rp_node && npm ci"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return BUNDLE.read_bytes()


class SPAServer:
    """The SPA's static files on a loopback port of its own; every path that
    is not a file is the app (its /callback and /logged-out routes)."""

    def __init__(self, files: dict[str, tuple[str, bytes]]) -> None:
        app = files["/index.html"]

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                content_type, body = files.get(self.path.split("?")[0], app)
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # "localhost": another site than the OP's 127.0.0.1, as a partner's app is.
        self.origin = f"http://localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(params=["bearer", "dpop"])
def mode(request) -> str:
    return request.param


@pytest.fixture
def config_overrides(config_overrides, mode):
    # With DPoP, the OP asks for its nonces (RFC 9449 8, 9): the library must
    # read DPoP-Nonce from a cross-origin answer (Access-Control-Expose-Headers).
    return {**config_overrides, "DPOP_NONCE_REQUIRED": mode == "dpop"}


@pytest.fixture
def spa(app, live_server, account, mode):
    """The SPA's origin and its registration: a public client (no secret,
    PKCE), a partner's (not first-party: the customer consents)."""
    bundle = _bundle()
    files = {
        "/index.html": ("text/html; charset=utf-8", (SPA_FILES / "index.html").read_bytes()),
        "/app.js": ("text/javascript; charset=utf-8", (SPA_FILES / "app.js").read_bytes()),
        "/oidc-client-ts.min.js": ("text/javascript; charset=utf-8", bundle),
    }
    server = SPAServer(files)
    with app.app_context():
        client, secret = create_client(
            "パートナーアプリ", [f"{server.origin}/callback", f"{server.origin}/silent"], [f"{server.origin}/logged-out"],
            grant_types=["authorization_code", "refresh_token"],
            scopes=["openid", "profile", "email", "offline_access"], auth_method="none",
            dpop_bound_access_tokens=mode == "dpop")
        db.session.commit()
        assert secret is None
        client_id = client.client_id
    config = {"authority": live_server, "client_id": client_id, "dpop": mode == "dpop"}
    files["/config.js"] = ("text/javascript; charset=utf-8", f"window.SPA_CONFIG = {json.dumps(config)};".encode())
    yield server.origin
    server.close()


def test_a_single_page_app_signs_in_renews_revokes_and_signs_out(live_server, spa, mode, device_page, pages):
    page = device_page
    # What the browser reports: a CORS refusal is a console error, a thrown one a
    # page error. Expected, and not kept: Chromium logs each 4xx answer ("Failed
    # to load resource: the server responded with a status of …"), the library
    # each use_dpop_nonce challenge before it retries with the nonce (RFC 9449
    # 8); the app reads the refusals after revocation and shows them.
    errors = []
    expected = ("the server responded with a status of", "Error from server: {error: use_dpop_nonce")
    page.on("console", lambda message: message.type == "error" and not any(
        text in message.text for text in expected) and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    logout_requests = []
    page.on("request", lambda request: request.url.startswith(f"{live_server}/session/end")
            and logout_requests.append(request.url))
    status = page.locator("#status")

    def done(step: str) -> None:
        page.wait_for_function("step => window.spa && (spa.events.includes(step) || spa.error)", arg=step)
        assert page.evaluate("spa.error") is None, page.evaluate("spa.error")
        assert status.inner_text() == f"{step}: done"

    page.goto(f"{spa}/")
    page.get_by_text("Status: signed out").wait_for()

    # The SPA sends the customer to the OP; they sign in and consent.
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server}/**")
    page.get_by_label("iTSCOM ID").wait_for()
    pages.check(page)
    sign_in(page)
    page.get_by_role("button", name="許可する").wait_for()
    pages.check(page)
    page.get_by_role("button", name="許可する").click()

    # Back in the SPA: the code exchanged at the token endpoint, UserInfo called, both cross-origin.
    page.wait_for_url(f"{spa}/**")
    done("callback")
    assert page.locator("#email").inner_text() == "taro.itsu@example.jp"
    assert page.locator("#name").inner_text() == "逸 太郎"
    assert page.locator("#userinfo").inner_text() == "taro.itsu@example.jp"
    user = page.evaluate("spa.user")
    sub = user["profile"]["sub"]
    assert user["token_type"].lower() == mode and user["refresh_token"]
    assert set(user["scope"].split()) == {"openid", "profile", "email", "offline_access"}
    assert page.url == f"{spa}/"  # the code is gone from the address bar
    assert page.evaluate(STORED_USERS) == [f"oidc.user:{live_server}:{user['profile']['aud']}"]
    assert errors == []

    # Renewal with the refresh token: new tokens for the same customer.
    page.get_by_role("button", name="Renew", exact=True).click()
    done("renew")
    renewed = page.evaluate("spa.user")
    assert renewed["profile"]["sub"] == sub and page.locator("#sub").inner_text() == sub
    assert renewed["access_token"] != user["access_token"]
    assert renewed["refresh_token"] and renewed["refresh_token"] != user["refresh_token"]  # rotated
    assert page.locator("#userinfo").inner_text() == "taro.itsu@example.jp"
    assert errors == []

    # Renewal in a hidden iframe (prompt=none), the library's way without a
    # refresh token: over http the OP's SSO cookie is SameSite=Lax (over https
    # None, which browsers blocking third-party cookies withhold all the same),
    # so the frame of another site carries no session and the OP answers
    # login_required (OIDC Core 3.1.2.6) at the frame's redirect URI: an
    # answer the library reads, not a page or a hang. The SPA keeps its tokens.
    page.get_by_role("button", name="Renew in a frame").click()
    done("renew-in-frame")
    assert page.evaluate("spa.frameRenewal") == {"error": "login_required"}
    assert page.evaluate("spa.user.refresh_token") == renewed["refresh_token"]
    assert errors == []

    # Revocation (RFC 7009): afterwards the access token opens nothing, the refresh token renews nothing.
    page.get_by_role("button", name="Revoke").click()
    done("revoke")
    assert page.locator("#userinfo").inner_text() == "401"
    assert page.evaluate("spa.userinfo.challenge").lower().startswith(mode)
    refresh = page.evaluate("spa.refreshAfterRevocation")
    assert refresh["status"] == 400 and refresh["body"]["error"] == "invalid_grant", refresh
    assert errors == []

    # RP-initiated logout, back to the SPA with its state.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{spa}/logged-out**")
    done("signed-out")
    assert page.evaluate("spa.user") is None
    assert len(logout_requests) == 1
    sent = dict(parse_qsl(urlsplit(logout_requests[0]).query))
    assert {"id_token_hint", "post_logout_redirect_uri", "state"} <= sent.keys()
    assert sent["post_logout_redirect_uri"] == f"{spa}/logged-out"
    assert page.evaluate("spa.signout") == {"state": sent["state"], "userState": {"back": "/"}, "error": None}
    assert errors == []

    # The OP's session ended too: its account page asks for a login.
    page.goto(f"{live_server}/account/")
    page.get_by_label("iTSCOM ID").wait_for()

    pages.assert_clean({"idp:login/login.html", "idp:oauth/consent.html"})


@pytest.mark.parametrize("mode", ["bearer"])
def test_the_customer_declines_the_spa(live_server, spa, page):
    """許可しない on the consent page: the SPA gets access_denied with its state
    (RFC 6749 4.1.2.1), read by the library like any answer, and no tokens."""
    page.goto(f"{spa}/")
    page.get_by_role("button", name="Sign in").click()
    sign_in(page)
    page.get_by_role("button", name="許可しない").click()
    page.wait_for_url(f"{spa}/callback?**")
    page.get_by_text("callback: failed").wait_for()
    assert page.locator("#error").inner_text() == "access_denied"
    assert page.evaluate(STORED_USERS) == []
