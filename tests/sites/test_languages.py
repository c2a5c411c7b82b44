"""My Page and the support site speak the customer's language (rpkit): their
own link, the locale claim of the signed-in customer, Accept-Language."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from sites import mypage, support
from sites.rpkit import get_db

from ..english import japanese_in

TARO = {"sub": "s1", "name": "逸 太郎", "email": "taro.itsu@example.jp", "customer_number": "2005128462"}
ISSUER = "http://127.0.0.1:9"


@pytest.fixture(params=[mypage, support], ids=["mypage", "support"])
def site(request, tmp_path):
    app = request.param.create_app({"ISSUER": ISSUER, "CLIENT_ID": "x", "CLIENT_SECRET": "y",
                                    "SECRET_KEY": "rp-test-secret", "DATABASE": str(tmp_path / "rp.sqlite3")})
    # The OP's metadata as discovery would give it: no OP needed to build an authorization request.
    op = app.extensions["rp.oauth"].op
    op.server_metadata.update({"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize", "_loaded_at": 1})
    return app


# A sign-in with the second factor just now: 各種設定 opens (rpkit.step_up_required).
STEPPED_UP = {"acr": "urn:itscom:acr:mfa", "auth_time": int(time.time())}


def signed_in(app, **claims):
    """A browser with a local session of the demo customer with ``claims``."""
    with app.app_context():
        get_db().execute("INSERT INTO rp_sessions (id, sid, sub, claims, id_token, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                         ("local-1", "sid", "s1", json.dumps({**TARO, **STEPPED_UP, **claims}), "id-token", int(time.time())))
        get_db().commit()
    client = app.test_client()
    with client.session_transaction() as session:
        session["local_session"] = "local-1"
        session["form_token"] = "t"
    return client


PAGES = {"mypage": ["/", "/billing", "/contract", "/settings", "/help", "/logged-out"],
         "support": ["/", "/logged-out"]}


def pages_of(app) -> list[str]:
    return PAGES["mypage" if "mypage" in app.import_name else "support"]


def test_japanese_by_default_with_a_link_to_english(site):
    client = signed_in(site)
    html = client.get("/").get_data(as_text=True)
    assert '<html lang="ja">' in html and "逸 太郎 様" in html
    assert 'href="/language/en?next=/" lang="en" hreflang="en">English</a>' in html


def test_after_an_english_sign_in_every_page_is_english(site):
    client = signed_in(site, locale="en")
    for path in pages_of(site):
        html = client.get(path).get_data(as_text=True)
        assert '<html lang="en">' in html, path
        assert japanese_in(html) == [], path
    assert '<span lang="ja">逸 太郎</span>' in client.get("/").get_data(as_text=True)
    error = client.get(f"/auth/callback?error=access_denied&iss={ISSUER}&state=x").get_data(as_text=True)
    assert japanese_in(error) == [] and "Error" in error


def test_the_claim_of_a_japanese_customer_beats_an_english_browser_but_not_the_link(site):
    client = signed_in(site, locale="ja-JP")
    assert '<html lang="ja">' in client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    response = client.get("/language/en?next=/")
    assert response.status_code == 303 and response.location == "/"
    assert '<html lang="en">' in client.get("/").get_data(as_text=True)


def test_signed_out_pages_follow_accept_language(site):
    client = site.test_client()
    assert '<html lang="en">' in client.get("/logged-out", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="ja">' in client.get("/logged-out", headers={"Accept-Language": "ja"}).get_data(as_text=True)


def test_the_sites_own_link_is_sent_on_to_the_op_as_ui_locales(site):
    client = site.test_client()
    plain = parse_qs(urlsplit(client.get("/login").location).query)
    assert "ui_locales" not in plain  # nobody chose: the OP follows the browser
    client.get("/language/en?next=/")
    asked = parse_qs(urlsplit(client.get("/login").location).query)
    assert asked["ui_locales"] == ["en"]


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "x"])
def test_the_link_returns_only_to_a_page_of_the_site(site, target):
    response = site.test_client().get("/language/en", query_string={"next": target})
    assert response.location == "/"
    assert site.test_client().get("/language/de?next=/").status_code == 404
