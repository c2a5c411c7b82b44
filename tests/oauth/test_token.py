"""The token endpoint: codes, PKCE, refresh rotation, client authentication."""

import base64
import threading

import pytest

from idp.extensions import db
from idp.models import AuditEvent, Token
from idp.security.secrets import digest
from idp.tokens import claim_and_store

from ..helpers import RelyingParty


def audited(app, event) -> list[AuditEvent]:
    with app.app_context():
        return db.session.scalars(db.select(AuditEvent).filter_by(event=event)).all()


def introspect(rp, token, hint=None):
    data = {"token": token, **({"token_type_hint": hint} if hint else {})}
    return rp.client.post("/introspect", data=data, headers=rp.auth()).get_json()


def test_code_reuse_fails_and_revokes_what_the_code_issued(rp):
    code = rp.sign_in_and_get_code()["code"]
    first = rp.exchange(code)
    assert first.status_code == 200
    tokens = first.get_json()
    assert introspect(rp, tokens["access_token"])["active"] is True

    second = rp.exchange(code)
    assert second.status_code == 400
    assert second.get_json()["error"] == "invalid_grant"
    assert introspect(rp, tokens["access_token"])["active"] is False
    refresh = rp.token_request({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refresh.get_json()["error"] == "invalid_grant"
    # The revocation and its audit row are written together (on PostgreSQL
    # the token endpoint otherwise runs without a transaction).
    assert [(e.outcome, e.client_id) for e in audited(rp.app, "token.code_reuse")] == [("failure", rp.client_id)]


def test_expired_code_is_refused(rp, clock):
    code = rp.sign_in_and_get_code()["code"]
    clock.advance(61)
    assert rp.exchange(code).get_json()["error"] == "invalid_grant"


def test_wrong_pkce_verifier_is_refused(rp):
    code = rp.sign_in_and_get_code()["code"]
    response = rp.exchange(code, verifier="x" * 50)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_missing_pkce_verifier_is_refused(rp):
    code = rp.sign_in_and_get_code()["code"]
    response = rp.token_request({"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_pkce_downgrade_verifier_without_challenge_is_refused(rp):
    code = rp.sign_in_and_get_code(code_challenge=None, code_challenge_method=None)["code"]
    response = rp.exchange(code, verifier="y" * 50)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_redirect_uri_must_match_the_authorization_request(rp):
    code = rp.sign_in_and_get_code()["code"]
    response = rp.token_request({
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": "https://rp.example.test/other", "code_verifier": rp.verifier,
    })
    assert response.get_json()["error"] == "invalid_grant"


def test_code_of_another_client_is_refused(app, client, rp):
    other = RelyingParty.register(app, client)
    code = rp.sign_in_and_get_code()["code"]
    other.verifier = rp.verifier
    other.redirect_uri = rp.redirect_uri
    assert other.exchange(code).get_json()["error"] == "invalid_grant"
    assert rp.exchange(code).status_code == 200, "a foreign attempt does not burn the code"


def test_refresh_rotates_and_replay_revokes_the_family(rp):
    tokens = rp.tokens()
    rotated = rp.token_request({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200
    new = rotated.get_json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert rotated.headers["Cache-Control"] == "no-store"

    replay = rp.token_request({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    # The whole family is gone: the new refresh token and access token too.
    again = rp.token_request({"grant_type": "refresh_token", "refresh_token": new["refresh_token"]})
    assert again.get_json()["error"] == "invalid_grant"
    assert introspect(rp, new["access_token"])["active"] is False
    assert [e.client_id for e in audited(rp.app, "token.refresh_reuse")] == [rp.client_id]


def test_refresh_token_has_an_absolute_lifetime(rp, clock):
    """Rotating every 25 days stays within the 30-day idle limit, yet the
    family ends 90 days after the login: the fourth rotation fails."""
    refresh = rp.tokens()["refresh_token"]
    outcomes = []
    for _ in range(4):
        clock.advance(25 * 24 * 3600)
        response = rp.token_request({"grant_type": "refresh_token", "refresh_token": refresh})
        outcomes.append(response.status_code)
        refresh = response.get_json().get("refresh_token", refresh)
    assert outcomes == [200, 200, 200, 400]


def test_refresh_token_expires_when_idle(rp, clock):
    refresh = rp.tokens()["refresh_token"]
    clock.advance(31 * 24 * 3600)
    response = rp.token_request({"grant_type": "refresh_token", "refresh_token": refresh})
    assert response.get_json()["error"] == "invalid_grant"


def test_no_refresh_token_without_offline_access(rp):
    tokens = rp.tokens(scope="openid profile")
    assert "refresh_token" not in tokens


def test_client_held_to_registered_auth_method(app, client, account):
    post_client = RelyingParty.register(app, client, auth_method="client_secret_post")
    code = post_client.sign_in_and_get_code()["code"]
    # Correct secret, but by HTTP Basic instead of the registered POST body.
    basic = post_client.token_request({
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": post_client.redirect_uri, "code_verifier": post_client.verifier,
    })
    assert basic.status_code in (400, 401) and basic.get_json()["error"] == "invalid_client"


def test_wrong_secret_is_invalid_client(rp):
    raw = base64.b64encode(f"{rp.client_id}:wrong".encode()).decode()
    response = rp.token_request({"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {raw}"})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


def test_public_client_cannot_skip_to_client_credentials(app, client, account):
    public = RelyingParty.register(app, client, auth_method="none")
    response = public.token_request({"grant_type": "client_credentials"})
    assert response.status_code in (400, 401)


def test_client_credentials_issues_jwt_access_token(rp, client):
    response = rp.token_request({"grant_type": "client_credentials", "scope": "contract"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["access_token"].count(".") == 2 and "refresh_token" not in body
    info = introspect(rp, body["access_token"])
    assert info["active"] is True and info["sub"] == rp.client_id
    # No customer stands behind it: UserInfo refuses it.
    userinfo = client.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert userinfo.status_code == 403 and userinfo.get_json()["error"] == "insufficient_scope"


@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:ietf:params:oauth:grant-type:device_code", ""])
def test_unsupported_grant_types_are_refused(rp, grant_type):
    response = rp.token_request({"grant_type": grant_type, "username": "taro.itsu@example.jp", "password": "x"})
    assert response.status_code == 400
    assert response.get_json()["error"] == "unsupported_grant_type"


def test_revocation_of_access_and_refresh_tokens(rp, client):
    tokens = rp.tokens()
    assert client.post("/revoke", data={"token": tokens["access_token"]}, headers=rp.auth()).status_code == 200
    assert introspect(rp, tokens["access_token"])["active"] is False
    userinfo = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 401

    tokens = rp.tokens()
    client.post("/revoke", data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}, headers=rp.auth())
    refresh = rp.token_request({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refresh.get_json()["error"] == "invalid_grant"
    assert introspect(rp, tokens["access_token"])["active"] is False


def test_revoking_a_revoked_token_again_answers_200_and_records_nothing_more(app, client, rp):
    access = rp.tokens()["access_token"]
    for _ in range(3):  # RFC 7009 2.2: 200 whether or not there was anything left to revoke
        assert client.post("/revoke", data={"token": access}, headers=rp.auth()).status_code == 200
    assert len(audited(app, "token.revoked")) == 1
    assert introspect(rp, access)["active"] is False


def test_introspection_of_other_clients_tokens_is_inactive(app, client, rp):
    tokens = rp.tokens()
    other = RelyingParty.register(app, client)
    assert introspect(other, tokens["access_token"])["active"] is False
    info = introspect(rp, tokens["refresh_token"], "refresh_token")
    assert info["active"] is True and info["username"] == "taro.itsu@example.jp"


def test_introspection_requires_client_authentication(rp, client):
    token = rp.tokens()["access_token"]
    response = client.post("/introspect", data={"token": token})
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] == "invalid_client"


def test_introspection_shows_the_email_only_with_the_email_scope(app, client, account):
    rp = RelyingParty.register(app, client, scopes=["openid"])
    tokens = rp.tokens(scope="openid")
    body = client.post("/introspect", data={"token": tokens["access_token"]}, headers=rp.auth()).get_json()
    assert body["active"] is True and "username" not in body


def test_a_rejected_refresh_does_not_use_up_the_token(rp):
    tokens = rp.tokens(scope="openid profile offline_access")
    wider = rp.token_request({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                              "scope": "openid email"})
    assert wider.get_json()["error"] == "invalid_scope"
    retry = rp.token_request({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert retry.status_code == 200


def test_a_rejected_code_exchange_does_not_use_up_the_code(rp):
    code = rp.sign_in_and_get_code()["code"]
    assert rp.exchange(code, verifier="z" * 50).status_code == 400
    assert rp.exchange(code).status_code == 200


def test_concurrent_refreshes_one_wins_and_the_family_is_revoked(rp, app):
    refresh = rp.tokens()["refresh_token"]
    barrier = threading.Barrier(2)
    results = []

    def use():
        browser = app.test_client()
        barrier.wait()
        results.append(browser.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh},
                                    headers=rp.auth()).status_code)

    threads = [threading.Thread(target=use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) in ([200, 400], [400, 400]), results


@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect"])
def test_basic_credentials_that_are_not_utf8_are_invalid_client(client, path):
    response = client.post(path, data={"grant_type": "client_credentials", "token": "x"},
                           headers={"Authorization": "Basic //79OmE="})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith('Basic error="invalid_client"')  # RFC 6749 5.2
    assert response.headers["Cache-Control"] == "no-store"


def test_a_refresh_token_revoked_after_it_was_read_is_not_rotated(rp, app, client):
    """The claim that spends a refresh token refuses one revoked meanwhile
    (e.g. by /revoke between the grant's read and its claim), and then
    stores no token in the revoked family."""
    refresh = rp.tokens()["refresh_token"]
    with app.app_context():
        row = db.session.scalar(db.select(Token).filter_by(refresh_token_digest=digest(refresh)))
        row_id, family = row.id, row.family_id
    assert client.post("/revoke", data={"token": refresh}, headers=rp.auth()).status_code == 200
    with app.app_context():
        before = db.session.scalar(db.select(db.func.count()).select_from(Token).filter_by(family_id=family))
        new_row = {"client_id": rp.client_id, "account_id": None, "scope": "openid", "access_token_digest": "x" * 64,
                   "refresh_token_digest": None, "issued_at": 1, "access_expires_at": 2, "refresh_expires_at": None,
                   "authorization_code_id": None, "sid": None, "auth_time": None, "claims_request": None,
                   "family_id": family, "family_expires_at": 3}
        assert claim_and_store(Token, row_id, "rotated_at", 1, new_row) is False
        db.session.commit()
        after = db.session.scalar(db.select(db.func.count()).select_from(Token).filter_by(family_id=family))
    assert after == before
