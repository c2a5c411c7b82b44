"""Pages that carry a CSRF token or a customer's data are never cached
(SPEC §6): a shared computer's back button or a proxy must not replay them."""

import json
import sqlite3
import time
from urllib.parse import urlsplit

import pytest

from sites import mypage

from .helpers import RelyingParty

PUBLIC_PAGES = [
    "/login",
    "/registration/",
    "/recovery/",
    "/recovery/identify",
    "/admin/login",
    "/no-such-page",
]


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_pages_with_a_form_or_an_error_are_not_stored(client, path):
    response = client.get(path)
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"


def test_signed_in_pages_are_not_stored(app, client, account):
    rp = RelyingParty.register(app, client, first_party=False)
    assert urlsplit(rp.authorize().location).path == "/login"
    consent = client.get(rp.login().location)
    assert "csrf_token" in consent.get_data(as_text=True)
    for response in [consent, client.get("/account/")]:
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"


def test_the_relying_partys_pages_are_not_stored(tmp_path):
    app = mypage.create_app({"ISSUER": "http://127.0.0.1:9", "CLIENT_ID": "x", "CLIENT_SECRET": "y",
                             "SECRET_KEY": "rp-test-secret", "DATABASE": str(tmp_path / "rp.sqlite3")})
    with sqlite3.connect(tmp_path / "rp.sqlite3") as conn:
        conn.execute("INSERT INTO rp_sessions (id, sid, sub, claims, id_token, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                     ("local", "sid", "sub", json.dumps({"customer_number": "2005128462", "name": "逸 太郎",
                                                         "acr": "urn:itscom:acr:mfa", "auth_time": int(time.time())}),
                      "t", 0))
    browser = app.test_client()
    with browser.session_transaction() as session:
        session["local_session"] = "local"
    for path in ["/", "/billing", "/contract", "/settings", "/help"]:
        response = browser.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
