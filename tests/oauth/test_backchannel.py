"""Back-Channel Logout 1.0: every RP of an ended session is told."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode

import jwt as pyjwt
import pytest

from idp.extensions import db
from idp.models import AuditEvent, BackchannelLogout
from idp.oauth.backchannel import deliver_due

from ..helpers import ISSUER, RelyingParty, csrf_token


class Receiver:
    """An RP's back-channel logout endpoint on a loopback port."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.content_types: list[str] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.content_types.append(self.headers["Content-Type"])
                receiver.tokens.extend(parse_qs(body).get("logout_token", []))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/backchannel-logout"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def config_overrides():
    # Delivered by the test, deterministically, to receivers on loopback.
    return {"BACKCHANNEL_INLINE": False, "ALLOW_PRIVATE_OUTBOUND": True}


@pytest.fixture
def receivers():
    made = []
    yield lambda: made.append(Receiver()) or made[-1]
    for r in made:
        r.close()


def deliver(app):
    with app.app_context():
        return deliver_due()


def test_logout_tells_every_rp_of_the_session(app, client, account, receivers):
    mypage_rx, support_rx = receivers(), receivers()
    mypage = RelyingParty.register(app, client, backchannel_logout_uri=mypage_rx.url,
                                   redirect_uris=("https://mypage.example.test/cb",))
    support = RelyingParty.register(app, client, backchannel_logout_uri=support_rx.url,
                                    redirect_uris=("https://support.example.test/cb",))
    bystander = RelyingParty.register(app, client, redirect_uris=("https://other.example.test/cb",))
    id_token = mypage.tokens()["id_token"]
    support.sign_in_and_get_code()  # SSO: the same OP session
    sid = mypage.verify_id_token(id_token)["sid"]

    response = client.get("/session/end?" + urlencode({"id_token_hint": id_token}))
    assert response.status_code == 200
    assert deliver(app) == (2, 0)
    jwks = pyjwt.PyJWKSet.from_dict(client.get("/jwks").get_json())
    for rp, rx in [(mypage, mypage_rx), (support, support_rx)]:
        assert rx.content_types == ["application/x-www-form-urlencoded"]
        token = rx.tokens[0]
        header = pyjwt.get_unverified_header(token)
        assert header["typ"] == "logout+jwt"
        # The test clock runs ten minutes behind the real one.
        claims = pyjwt.decode(token, jwks[header["kid"]], algorithms=["RS256"], audience=rp.client_id, issuer=ISSUER,
                              leeway=700)
        assert 0 < claims["exp"] - claims["iat"] <= 120
        assert claims["sid"] == sid and "http://schemas.openid.net/event/backchannel-logout" in claims["events"]
        assert "nonce" not in claims and claims["jti"]
    assert bystander.client_id  # registered without a back-channel URI: nothing to send


def test_a_failing_rp_does_not_block_logout_and_is_retried(app, client, account, receivers, clock):
    rx = receivers()
    rx.status = 500
    rp = RelyingParty.register(app, client, backchannel_logout_uri=rx.url)
    rp.login()
    rp.sign_in_and_get_code()
    page = client.get("/session/end").get_data(as_text=True)
    done = client.post("/session/end", data={"csrf_token": csrf_token(page)})
    assert "ログアウトしました" in done.get_data(as_text=True)
    assert deliver(app) == (0, 1)
    rx.status = 200
    assert deliver(app) == (0, 0)  # backoff: not yet
    clock.advance(31)
    assert deliver(app) == (1, 0)
    with app.app_context():
        notice = db.session.scalar(db.select(BackchannelLogout))
        assert notice.delivered_at is not None and notice.attempts == 1
        events = [e.event for e in db.session.scalars(db.select(AuditEvent))]
    assert "backchannel.failed" in events and "backchannel.delivered" in events


def test_password_reset_and_new_login_also_notify(app, client, account, receivers):
    rx = receivers()
    rp = RelyingParty.register(app, client, backchannel_logout_uri=rx.url)
    rp.sign_in_and_get_code()
    rp.login()  # a new login in the same browser ends the old session
    assert deliver(app) == (1, 0)


def test_discovery_advertises_backchannel_logout(client):
    doc = client.get("/.well-known/openid-configuration").get_json()
    assert doc["backchannel_logout_supported"] is True
    assert doc["backchannel_logout_session_supported"] is True


class Trickler:
    """An RP endpoint that answers one byte every half second, forever (bounded by the test)."""

    def __init__(self):
        outer = self
        self.stop = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for _ in range(60):
                    if outer.stop.wait(0.5):
                        return
                    try:
                        self.wfile.write(b"X")
                        self.wfile.flush()
                    except OSError:
                        return

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/bc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_trickling_rp_is_cut_off_at_the_deadline(app, client, account, monkeypatch):
    import time

    from idp.oauth import backchannel

    monkeypatch.setattr(backchannel, "DEADLINE", 1)
    slow = Trickler()
    try:
        rp = RelyingParty.register(app, client, backchannel_logout_uri=slow.url)
        rp.sign_in_and_get_code()
        rp.login()  # ends the session: one notice queued
        started = time.monotonic()
        assert deliver(app) == (0, 1)
        assert time.monotonic() - started < 10  # the trickle would last 30 s
    finally:
        slow.close()


def test_redirects_are_not_followed(app, client, account, receivers):
    target = receivers()

    class Redirector(BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(307)
            self.send_header("Location", target.url)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rp = RelyingParty.register(app, client,
                                   backchannel_logout_uri=f"http://127.0.0.1:{server.server_address[1]}/bc")
        rp.sign_in_and_get_code()
        rp.login()
        assert deliver(app) == (0, 1)
        assert target.tokens == []
    finally:
        server.shutdown()
        server.server_close()
