"""The relying-party toolkit's own guards, without an OP."""

import pytest

from sites import mypage


@pytest.fixture
def rp_app(tmp_path):
    return mypage.create_app({"ISSUER": "http://127.0.0.1:9", "CLIENT_ID": "x", "CLIENT_SECRET": "y",
                              "SECRET_KEY": "rp-test-secret", "DATABASE": str(tmp_path / "rp.sqlite3")})


def test_logout_needs_the_sites_own_form(rp_app):
    client = rp_app.test_client()
    with client.session_transaction() as session:
        session["local_session"] = "abc"
        session["form_token"] = "expected-token"
    assert client.post("/logout").status_code == 400  # a cross-site form has no token
    assert client.post("/logout", data={"form_token": "wrong"}).status_code == 400
    response = client.post("/logout", data={"form_token": "expected-token"})
    assert response.status_code == 302  # no stored session row: straight to logged-out


def test_backchannel_logout_refuses_junk(rp_app):
    client = rp_app.test_client()
    assert client.post("/backchannel-logout", data={"logout_token": "not-a-jwt"}).status_code == 400
    assert client.post("/backchannel-logout").status_code == 400


def test_pages_need_a_login(rp_app):
    response = rp_app.test_client().get("/billing")
    assert response.status_code == 302 and response.location.endswith("/login")
