"""The whole authorization code flow, as an RP library would walk it."""

import base64
import hashlib
import json

from ..helpers import ISSUER, RelyingParty


def test_code_flow_issues_verified_id_token_and_userinfo(rp, client):
    params = rp.sign_in_and_get_code()
    assert params["state"] == rp.state
    assert params["iss"] == ISSUER  # RFC 9207

    response = rp.exchange(params["code"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert "refresh_token" in body  # offline_access was asked

    claims = rp.verify_id_token(body["id_token"])
    assert claims["nonce"] == rp.nonce
    assert claims["sid"] and claims["auth_time"]
    # Scope claims come from UserInfo (Core 5.4): no personal data in the ID token.
    assert "name" not in claims and "email" not in claims
    digest = hashlib.sha256(body["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()

    userinfo = client.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert userinfo.status_code == 200
    info = userinfo.get_json()
    assert info["sub"] == claims["sub"]
    assert info["email"] == "taro.itsu@example.jp"
    assert info["email_verified"] is True
    assert info["phone_number"] == "+81312345678"
    assert info["customer_number"] == "2005128462"
    assert info["name"] == "逸 太郎" and info["name#ja-Kana-JP"] == "イツ タロウ"
    assert "taro" not in info["sub"] and "2005128462" not in info["sub"]


def test_a_code_is_a_256_bit_url_safe_value(rp):
    """Like every credential of the OP (security.secrets): 32 random bytes, base64url."""
    code = rp.sign_in_and_get_code()["code"]
    assert len(code) == 43 and len(base64.urlsafe_b64decode(code + "=")) == 32


def test_userinfo_by_post_and_without_token(rp, client):
    token = rp.tokens()["access_token"]
    assert client.post("/userinfo", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    missing = client.get("/userinfo")
    assert missing.status_code == 401
    bad = client.get("/userinfo", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


def test_form_post_response_mode_posts_code_and_iss(rp, client):
    rp.login()
    response = rp.authorize(response_mode="form_post")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'action="{rp.redirect_uri}"' in html
    assert 'name="code"' in html and f'name="iss" value="{ISSUER}"' in html
    assert "<script>" not in html  # no inline script (CSP)


def test_discovery_and_jwks(client):
    doc = client.get("/.well-known/openid-configuration").get_json()
    assert doc["issuer"] == ISSUER
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    jwks = client.get("/jwks")
    assert jwks.status_code == 200
    keys = jwks.get_json()["keys"]
    assert {k["alg"] for k in keys} == {"RS256", "ES256"}
    assert all("d" not in k for k in keys)
    again = client.get("/jwks", headers={"If-None-Match": jwks.headers["ETag"]})
    assert again.status_code == 304


def test_claims_parameter_puts_asked_claims_in_the_id_token(rp):
    import json

    asked = json.dumps({"id_token": {"name": {"essential": True}, "customer_number": None}})
    claims = rp.verify_id_token(rp.tokens(claims=asked)["id_token"])
    assert claims["name"] == "逸 太郎" and claims["customer_number"] == "2005128462"
    assert "email" not in claims


def test_userinfo_returns_only_granted_scopes(rp, client):
    token = rp.tokens(scope="openid email")["access_token"]
    info = client.get("/userinfo", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert set(info) == {"sub", "email", "email_verified"}


def test_es256_client_gets_es256_id_tokens(app, client, account):
    from ..helpers import RelyingParty

    es = RelyingParty.register(app, client, id_token_signed_response_alg="ES256")
    token = es.tokens()["id_token"]
    import jwt as pyjwt

    assert pyjwt.get_unverified_header(token)["alg"] == "ES256"
    assert es.verify_id_token(token)["aud"] == es.client_id


def test_discovery_and_jwks_below_flask_match_the_views(client):
    plain = client.get("/jwks")
    with_origin = client.get("/jwks", headers={"Origin": "https://nowhere.example"})  # through Flask
    assert plain.get_data() == with_origin.get_data()
    assert plain.headers["ETag"] == with_origin.headers["ETag"]
    assert plain.headers["Content-Type"] == "application/jwk-set+json"
    assert client.get("/jwks", headers={"If-None-Match": plain.headers["ETag"]}).status_code == 304
    doc = client.get("/.well-known/openid-configuration")
    assert doc.get_data() == client.get("/.well-known/openid-configuration",
                                        headers={"Origin": "https://nowhere.example"}).get_data()
    assert doc.headers["Cache-Control"] == "public, max-age=3600"


def test_discovery_and_jwks_vary_by_origin_with_or_without_one(client):
    """Both are cacheable ("public") and carry Access-Control-Allow-Origin
    only for a registered Origin, so every answer says Vary: Origin, the
    plain ones below Flask too: otherwise a cache (a CDN, the browser's)
    keeps a plain answer and hands it to a browser app's CORS request,
    which then fails without Access-Control-Allow-Origin (Fetch, "CORS
    protocol and HTTP caches")."""
    for path in ("/.well-known/openid-configuration", "/jwks"):
        plain = client.get(path)
        assert plain.headers.get("Vary") == "Origin", path
        assert client.get(path, headers={"If-None-Match": plain.headers.get("ETag", "-")}).headers.get("Vary") == \
            "Origin", path
        assert client.get(path, headers={"Origin": "https://nowhere.example"}).headers.get("Vary") == "Origin"


def test_a_jwks_304_keeps_the_cache_control_of_its_200(client):
    """A browser revalidating the JWKS it fetched cross-origin (Origin: the
    Flask view) gets a 304 with the 200's Cache-Control (RFC 9110 15.4.5:
    "MUST generate … Cache-Control"), as below Flask, and no "no-store",
    which the cache would copy onto its stored JWKS (RFC 9111 4.3.4)."""
    for headers in ({}, {"Origin": "https://nowhere.example"}):
        first = client.get("/jwks", headers=headers)
        again = client.get("/jwks", headers={**headers, "If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304
        assert again.headers["Cache-Control"] == first.headers["Cache-Control"] == "public, max-age=300", headers
        assert again.headers["ETag"] == first.headers["ETag"]


def test_claims_parameter_cannot_exceed_the_clients_scopes(app, client, account):
    rp = RelyingParty.register(app, client, scopes=["openid"])
    claims = json.dumps({"id_token": {"customer_number": None, "phone_number": None, "email": None},
                         "userinfo": {"customer_number": None, "name": None}})
    tokens = rp.tokens(scope="openid", claims=claims)
    id_token = rp.verify_id_token(tokens["id_token"])
    userinfo = client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    assert not {"customer_number", "phone_number", "email"} & set(id_token)
    assert set(userinfo) == {"sub"}


def test_a_signed_in_authorization_reads_neither_the_account_nor_its_contract(app, rp):
    """The session's own columns answer it; the account's status is checked
    in the lookup (idp.sessions), its row is not read."""
    from sqlalchemy import event

    from idp.extensions import db

    rp.sign_in_and_get_code()
    statements = []
    with app.app_context():
        engine = db.engine

    def seen(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert rp.authorize().status_code == 302
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "contracts" in s or "accounts.password_hash" in s], statements


def test_a_locked_accounts_session_no_longer_signs_in(app, rp, account):
    from idp.extensions import db
    from idp.models import Account

    rp.sign_in_and_get_code()
    with app.app_context():
        db.session.get(Account, account).status = "locked"
        db.session.commit()
    response = rp.authorize()
    assert response.status_code == 303 and response.location.startswith("/login")
