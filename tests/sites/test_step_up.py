"""My Page's 各種設定 asks the OP for a step-up first (issue 15, point 4)."""

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from sites import mypage, rpkit


@pytest.fixture
def rp_app(tmp_path):
    app = mypage.create_app({"ISSUER": "https://op.example.test", "CLIENT_ID": "mypage", "CLIENT_SECRET": "y",
                             "SECRET_KEY": "rp-test-secret", "DATABASE": str(tmp_path / "rp.sqlite3")})
    op = app.extensions["rp.oauth"].op
    op.server_metadata.update({"issuer": "https://op.example.test", "_loaded_at": time.time(),
                               "authorization_endpoint": "https://op.example.test/authorize"})
    return app


def _signed_in(app, **claims):
    client = app.test_client()
    with app.app_context():
        db = rpkit.get_db()
        db.execute("INSERT INTO rp_sessions (id, sid, sub, claims, id_token, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                   ("local", "sid", "sub", json.dumps({"sub": "sub", "customer_number": "2005128462", **claims}),
                    "x", int(time.time())))
        db.commit()
    with client.session_transaction() as session:
        session["local_session"] = "local"
    return client


@pytest.mark.parametrize("claims, opens", [
    ({"acr": rpkit.ACR_MFA, "auth_time": 0}, False),  # long ago
    ({"acr": "urn:itscom:acr:pwd", "auth_time": "now"}, False),  # a password sign-in
    ({"auth_time": "now"}, False),  # an OP that says nothing
    ({"acr": rpkit.ACR_MFA, "auth_time": "now"}, True),
    ({"acr": "urn:itscom:acr:pwd", "auth_time": "now", "step_up": True}, True),  # asked; no factor to give
    ({"acr": "urn:itscom:acr:pwd", "auth_time": 0, "step_up": True}, False),
])
def test_settings_open_only_after_a_recent_step_up(rp_app, claims, opens):
    claims = {k: int(time.time()) - 60 if v == "now" else v for k, v in claims.items()}
    response = _signed_in(rp_app, **claims).get("/settings")
    if opens:
        assert response.status_code == 200
    else:
        assert response.status_code == 302 and response.location.endswith("/login?step_up=1")


def test_the_other_pages_need_no_step_up(rp_app):
    client = _signed_in(rp_app, acr="urn:itscom:acr:pwd", auth_time=0)
    assert client.get("/billing").status_code == 200


def test_the_step_up_asks_the_op_for_mfa_and_a_recent_sign_in(rp_app):
    client = _signed_in(rp_app, acr="urn:itscom:acr:pwd", auth_time=0)
    response = client.get("/login?step_up=1")
    asked = parse_qs(urlsplit(response.location).query)
    assert asked["acr_values"] == [rpkit.ACR_MFA] and asked["max_age"] == ["900"]
    plain = rp_app.test_client().get("/login?step_up=1")
    assert "acr_values" not in parse_qs(urlsplit(plain.location).query), "no step-up before a sign-in"
