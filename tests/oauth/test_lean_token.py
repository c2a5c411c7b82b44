"""The token endpoint below Flask (idp/oauth/lean.py): client_credentials,
refresh_token and authorization_code. Each issue is new (a new jti, a new token), so the two paths
are compared by what a client and a resource server can tell: status,
headers, the fields of the answer, the access token's claims and what
introspection says of it, the ID token's claims; and rotation and code
reuse keep their rules."""

import base64
import json

import jwt as pyjwt
import pytest
from sqlalchemy.exc import OperationalError

from idp import tokens
from idp.extensions import db
from idp.models import Account, AuditEvent, AuthorizationCode, Token
from idp.oauth import lean
from idp.ops import REQUESTS

from ..helpers import RelyingParty

FORM = "application/x-www-form-urlencoded"


def same_kind_of_answer(lean, flask) -> None:
    """The answers of two issues: the same but for the tokens themselves."""
    assert lean.status_code == flask.status_code == 200
    drop = {"Content-Length"}
    assert sorted((k, v) for k, v in lean.headers.items() if k not in drop) == \
        sorted((k, v) for k, v in flask.headers.items() if k not in drop)
    ours, theirs = lean.get_json(), flask.get_json()
    assert sorted(ours) == sorted(theirs)
    for field in ("token_type", "expires_in", "scope"):
        assert ours.get(field) == theirs.get(field)
    lean_claims, flask_claims = (pyjwt.decode(body["access_token"], options={"verify_signature": False})
                                 for body in (ours, theirs))
    assert sorted(lean_claims) == sorted(flask_claims)
    for claim in ("iss", "sub", "aud", "client_id", "scope"):
        assert lean_claims[claim] == flask_claims[claim]
    assert lean_claims["jti"] != flask_claims["jti"]


@pytest.fixture
def service(app, client):
    """A confidential client allowed client_credentials (client_secret_basic)."""
    return RelyingParty.register(app, client, name="Service", grant_types=["client_credentials"])


def post_both(back_channel, flask_path, flask_requests, headers, data, lean_answers=True):
    del flask_requests[:]
    flask = flask_path.post("/token", headers=headers, data=data)
    lean = back_channel.post("/token", headers=headers, data=data)
    assert flask_requests == ["/token"] * (1 if lean_answers else 2)
    return lean, flask


def introspect(back_channel, rp, token):
    return back_channel.post("/introspect", data={"token": token}, headers=rp.auth()).get_json()


# --- client_credentials ---------------------------------------------------------------


@pytest.mark.parametrize("data", [{"grant_type": "client_credentials"},
                                  {"grant_type": "client_credentials", "scope": "openid"},
                                  {"scope": "openid profile", "grant_type": "client_credentials"}])
def test_client_credentials_as_flask_issues_it(service, back_channel, flask_path, flask_requests, data):
    lean, flask = post_both(back_channel, flask_path, flask_requests, service.auth(), data)
    same_kind_of_answer(lean, flask)
    assert "refresh_token" not in lean.get_json()  # RFC 6749 4.4.3
    body = introspect(back_channel, service, lean.get_json()["access_token"])
    assert body["active"] is True and body["sub"] == service.client_id


def test_client_credentials_tokens_are_stored_by_neither_path(app, service, back_channel, flask_path,
                                                              flask_requests):
    """Self-contained on both paths (idp.tokens): no row is written."""
    with app.app_context():
        before = db.session.scalar(db.select(db.func.count()).select_from(Token))
    lean, flask = post_both(back_channel, flask_path, flask_requests, service.auth(),
                            {"grant_type": "client_credentials", "scope": "openid"})
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Token)) == before
        assert [tokens.by_digest("access_token", answer.get_json()["access_token"]) for answer in (lean, flask)] \
            == [None, None]


@pytest.mark.parametrize("data, status", [
    ({"grant_type": "client_credentials", "scope": "openid admin"}, 200),  # unknown values: Flask ignores them
    ({"grant_type": "client_credentials", "scope": "openid openid"}, None),
    ({"grant_type": "client_credentials", "scope": ""}, None),
    ({"grant_type": "client_credentials", "refresh_token": "x"}, None),
    ({"grant_type": "client_credentials", "client_id": "x"}, None),
    ({"grant_type": "password", "username": "a", "password": "b"}, 400),
    ({"grant_type": "refresh_token"}, 400),
])
def test_unusual_token_requests_go_to_flask(service, back_channel, flask_path, flask_requests, data, status):
    lean, flask = post_both(back_channel, flask_path, flask_requests, service.auth(), data, lean_answers=False)
    assert lean.status_code == flask.status_code
    if status is not None:
        assert lean.status_code == status
    if lean.status_code != 200:
        assert lean.get_json() == flask.get_json()
    else:
        assert lean.get_json().get("scope") == flask.get_json().get("scope")


def test_a_client_not_allowed_the_grant_gets_flasks_refusal(app, client, back_channel, flask_path, flask_requests):
    site = RelyingParty.register(app, client, name="Site", grant_types=["authorization_code", "refresh_token"])
    lean, flask = post_both(back_channel, flask_path, flask_requests, site.auth(),
                            {"grant_type": "client_credentials"}, lean_answers=False)
    assert lean.status_code == flask.status_code == 400
    assert lean.get_json()["error"] == "unauthorized_client"


def test_wrong_secret_goes_to_flask(service, back_channel, flask_path, flask_requests):
    headers = {"Authorization": "Basic " + base64.b64encode(f"{service.client_id}:wrong".encode()).decode()}
    lean, flask = post_both(back_channel, flask_path, flask_requests, headers, {"grant_type": "client_credentials"},
                            lean_answers=False)
    assert lean.status_code == flask.status_code == 401
    assert lean.headers["WWW-Authenticate"] == flask.headers["WWW-Authenticate"]


def test_lean_token_endpoint_counts_the_request_in_the_metrics(service, back_channel, flask_path, flask_requests):
    flask_path.post("/token", headers=service.auth(), data={"grant_type": "client_credentials"})  # the cache
    before = REQUESTS.labels("oauth.token", "POST", "200")._value.get()
    del flask_requests[:]
    assert back_channel.post("/token", headers=service.auth(), data={"grant_type": "client_credentials"}).status_code \
        == 200
    assert flask_requests == []
    assert REQUESTS.labels("oauth.token", "POST", "200")._value.get() == before + 1


# --- refresh_token --------------------------------------------------------------------


def refresh(channel, rp, token, **extra):
    return channel.post("/token", headers=rp.auth(), data={"grant_type": "refresh_token", "refresh_token": token,
                                                           **extra})


def revoked_for_reuse(app, back_channel, rp, bought: dict, event: str) -> None:
    """What a replay leaves: the tokens the credential bought are dead, and one audit row says why."""
    assert introspect(back_channel, rp, bought["access_token"])["active"] is False
    assert refresh(back_channel, rp, bought["refresh_token"]).status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AuditEvent).filter_by(event=event)) == 1


def test_refresh_as_flask_rotates_it(rp, back_channel, flask_path, flask_requests):
    first, second = rp.tokens()["refresh_token"], rp.tokens()["refresh_token"]
    del flask_requests[:]
    flask = refresh(flask_path, rp, first)
    lean = refresh(back_channel, rp, second)
    assert flask_requests == ["/token"]
    same_kind_of_answer(lean, flask)
    new = lean.get_json()
    assert introspect(back_channel, rp, new["access_token"])["active"] is True
    assert introspect(back_channel, rp, new["refresh_token"])["active"] is True
    assert introspect(back_channel, rp, second)["active"] is False  # rotated
    assert refresh(back_channel, rp, new["refresh_token"]).status_code == 200  # and the successor rotates too


def test_a_refreshed_token_keeps_its_family_and_origin(app, rp, back_channel, flask_requests):
    old = rp.tokens()["refresh_token"]
    new = refresh(back_channel, rp, old).get_json()
    with app.app_context():
        before, after = tokens.by_digest("refresh_token", old), tokens.by_digest("refresh_token", new["refresh_token"])
        for column in ("family_id", "family_expires_at", "authorization_code_id", "sid", "auth_time",
                       "claims_request", "account_id", "scope"):
            assert getattr(after, column) == getattr(before, column)
        assert before.rotated_at is not None and after.rotated_at is None


def test_replaying_a_rotated_token_revokes_the_family(app, rp, back_channel, flask_requests):
    old = rp.tokens()["refresh_token"]
    new = refresh(back_channel, rp, old).get_json()
    del flask_requests[:]
    replay = refresh(back_channel, rp, old)
    assert flask_requests == ["/token"]  # Flask answers replay, and revokes
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    revoked_for_reuse(app, back_channel, rp, new, "token.refresh_reuse")


def test_losing_the_rotation_race_is_replay(app, rp, back_channel, flask_path, flask_requests, monkeypatch):
    """Two refreshes with one token: the one that loses the claim is replay,
    on the lean path as on Flask's (the whole family is revoked)."""
    old = rp.tokens()["refresh_token"]
    read = tokens.refresh_row
    winner = {}

    def read_then_lose(connection, presented):
        found = read(connection, presented)
        winner.update(refresh(flask_path, rp, old).get_json())  # another request rotates it meanwhile
        return found

    monkeypatch.setattr(tokens, "refresh_row", read_then_lose)
    del flask_requests[:]
    loser = refresh(back_channel, rp, old)
    assert flask_requests == ["/token", "/token"]  # the winner's, then the loser handed to Flask
    assert loser.status_code == 400 and loser.get_json()["error"] == "invalid_grant"
    monkeypatch.setattr(tokens, "refresh_row", read)
    assert introspect(back_channel, rp, winner["access_token"])["active"] is False


def test_a_narrower_scope_is_granted_on_the_lean_path(rp, back_channel, flask_requests):
    old = rp.tokens(scope="openid profile offline_access")["refresh_token"]
    del flask_requests[:]
    answer = refresh(back_channel, rp, old, scope="openid offline_access")
    assert flask_requests == []
    assert answer.status_code == 200 and answer.get_json()["scope"] == "openid offline_access"


@pytest.mark.parametrize("scope", ["openid email offline_access", "openid profile phone offline_access"])
def test_a_wider_scope_is_flasks_invalid_scope(rp, back_channel, flask_requests, scope):
    old = rp.tokens(scope="openid profile offline_access")["refresh_token"]
    del flask_requests[:]
    answer = refresh(back_channel, rp, old, scope=scope)
    assert flask_requests == ["/token"]
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_scope"
    assert refresh(back_channel, rp, old).status_code == 200  # a refused request left it usable


def test_an_expired_refresh_token_is_flasks_invalid_grant(app, rp, back_channel, flask_requests, clock):
    old = rp.tokens()["refresh_token"]
    clock.advance(app.config["REFRESH_TOKEN_IDLE_LIFETIME"])
    del flask_requests[:]
    answer = refresh(back_channel, rp, old)
    assert flask_requests == ["/token"] and answer.status_code == 400
    assert answer.get_json()["error"] == "invalid_grant"


def test_another_clients_refresh_token_is_flasks_invalid_grant(app, client, rp, back_channel, flask_requests):
    other = RelyingParty.register(app, client, name="Other RP")
    old = rp.tokens()["refresh_token"]
    other_answer = back_channel.post("/token", headers=other.auth(),
                                     data={"grant_type": "refresh_token", "refresh_token": old})
    assert other_answer.status_code == 400 and other_answer.get_json()["error"] == "invalid_grant"
    assert refresh(back_channel, rp, old).status_code == 200


def test_a_locked_customers_refresh_goes_to_flask(app, rp, account, back_channel, flask_path, flask_requests):
    first, second = rp.tokens()["refresh_token"], rp.tokens()["refresh_token"]
    with app.app_context():
        db.session.get(Account, account).status = "locked"
        db.session.commit()
    del flask_requests[:]
    lean, flask = refresh(back_channel, rp, first), refresh(flask_path, rp, second)
    assert flask_requests == ["/token", "/token"]
    assert lean.status_code == flask.status_code == 400
    assert lean.get_json() == flask.get_json()


def test_a_failure_below_flask_hands_the_refresh_to_flask(rp, back_channel, flask_requests, monkeypatch):
    old = rp.tokens()["refresh_token"]

    def outage(connection, presented):
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(tokens, "refresh_row", outage)
    del flask_requests[:]
    answer = refresh(back_channel, rp, old)
    assert flask_requests == ["/token"] and answer.status_code == 200


def test_client_credentials_need_no_database_below_flask(app, service, back_channel, flask_requests, monkeypatch):
    """Nothing is stored, so the lean path issues a client_credentials token
    without a connection: a database that fails does not send it to Flask."""
    back_channel.post("/token", headers=service.auth(), data={"grant_type": "client_credentials"})  # the caches

    def broken():
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(app.wsgi_app._ready.database, "connection", broken)
    del flask_requests[:]
    answer = back_channel.post("/token", headers=service.auth(), data={"grant_type": "client_credentials"})
    assert answer.status_code == 200 and flask_requests == []
    monkeypatch.undo()  # the database is back: the token is as good as any
    assert introspect(back_channel, service, answer.get_json()["access_token"])["active"] is True


def test_a_client_that_must_use_dpop_is_refused_by_flask(app, client, back_channel, flask_path, flask_requests):
    """RFC 9449 5.2: a client registered with dpop_bound_access_tokens gets
    no Bearer token from the lean path; Flask asks for the proof."""
    bound = RelyingParty.register(app, client, name="Bound", dpop_bound_access_tokens=True)
    lean, flask = post_both(back_channel, flask_path, flask_requests, bound.auth(),
                            {"grant_type": "client_credentials"}, lean_answers=False)
    assert lean.status_code == flask.status_code == 400
    assert lean.get_json()["error"] == flask.get_json()["error"] == "invalid_dpop_proof"


def test_a_dpop_proof_sends_the_token_request_to_flask(service, back_channel, flask_requests):
    del flask_requests[:]
    answer = back_channel.post("/token", headers={**service.auth(), "DPoP": "not-a-proof"},
                               data={"grant_type": "client_credentials"})
    assert flask_requests == ["/token"]
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_dpop_proof"


# --- authorization_code ---------------------------------------------------------------


def new_code(rp, **overrides) -> dict:
    """A code of a signed-in browser, with what exchanges it."""
    code = rp.sign_in_and_get_code(**overrides)["code"]
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
            "code_verifier": rp.verifier}


def exchange_both(rp, back_channel, flask_path, flask_requests, lean_answers=True, **overrides):
    """One code exchanged on each path."""
    flask_form, lean_form = new_code(rp, **overrides), new_code(rp, **overrides)
    del flask_requests[:]
    flask = flask_path.post("/token", headers=rp.auth(), data=flask_form)
    lean = back_channel.post("/token", headers=rp.auth(), data=lean_form)
    assert flask_requests == ["/token"] * (1 if lean_answers else 2)
    return lean, flask


def same_id_token(rp, lean, flask) -> dict:
    """Both ID tokens verify (an independent JWT library, the OP's JWKS) and
    carry the same claims but for the times, the nonce and at_hash, which
    are each exchange's own."""
    ours, theirs = (rp.verify_id_token(answer.get_json()["id_token"]) for answer in (lean, flask))
    assert sorted(ours) == sorted(theirs)
    own = {"iat", "exp", "auth_time", "nonce", "at_hash"}
    assert {k: v for k, v in ours.items() if k not in own} == {k: v for k, v in theirs.items() if k not in own}
    assert ours["exp"] - ours["iat"] == theirs["exp"] - theirs["iat"]
    assert ours["at_hash"] != theirs["at_hash"]
    return ours


@pytest.mark.parametrize("scope", ["openid", "openid profile email phone contract offline_access",
                                   "openid email offline_access"])
def test_code_exchange_as_flask_does_it(rp, back_channel, flask_path, flask_requests, scope):
    lean, flask = exchange_both(rp, back_channel, flask_path, flask_requests, scope=scope)
    same_kind_of_answer(lean, flask)
    claims = same_id_token(rp, lean, flask)
    assert claims["nonce"] == rp.nonce and claims["amr"] == ["pwd"]
    body = lean.get_json()
    assert ("refresh_token" in body) == ("offline_access" in scope)
    assert introspect(back_channel, rp, body["access_token"])["active"] is True
    assert back_channel.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}).status_code \
        == 200


def test_claims_asked_of_the_id_token_on_both_paths(rp, back_channel, flask_path, flask_requests):
    asked = json.dumps({"id_token": {"name": None, "customer_number": None}})
    lean, flask = exchange_both(rp, back_channel, flask_path, flask_requests, scope="openid contract", claims=asked)
    claims = same_id_token(rp, lean, flask)
    assert "customer_number" in claims


def test_a_code_without_openid_has_no_id_token_on_both_paths(app, client, account, back_channel, flask_path, flask_requests):
    plain = RelyingParty.register(app, client, name="OAuth only")
    lean, flask = exchange_both(plain, back_channel, flask_path, flask_requests, scope="profile")
    same_kind_of_answer(lean, flask)
    assert "id_token" not in lean.get_json() and "id_token" not in flask.get_json()


def test_a_browsers_cookies_do_not_send_the_exchange_to_flask(rp, client, flask_requests):
    """bench/logins.mjs's browser exchanges the code itself, cookies and all."""
    form = new_code(rp)
    del flask_requests[:]
    answer = client.post("/token", headers=rp.auth(), data=form)
    assert flask_requests == [] and answer.status_code == 200


def test_the_token_rows_of_a_code_are_the_flask_paths(app, rp, back_channel, flask_path, flask_requests):
    lean, flask = exchange_both(rp, back_channel, flask_path, flask_requests,
                                claims=json.dumps({"userinfo": {"customer_number": None}}))
    with app.app_context():
        rows = [tokens.by_digest("access_token", answer.get_json()["access_token"]) for answer in (lean, flask)]
        columns = ("client_id", "account_id", "scope", "sid", "claims_request", "rotated_at", "revoked_at",
                   "dpop_jkt")
        assert [getattr(rows[0], c) for c in columns] == [getattr(rows[1], c) for c in columns]
        for row, answer in zip(rows, (lean, flask)):
            code = db.session.get(AuthorizationCode, row.authorization_code_id)
            assert code.used_at is not None and code.auth_time == row.auth_time
            assert row.refresh_token_digest == tokens.digest(answer.get_json()["refresh_token"])
            assert row.refresh_expires_at - row.issued_at == app.config["REFRESH_TOKEN_IDLE_LIFETIME"]
            assert row.family_expires_at - row.issued_at == app.config["REFRESH_TOKEN_ABSOLUTE_LIFETIME"]
        assert rows[0].family_id != rows[1].family_id


def test_a_replayed_code_revokes_what_it_bought(app, rp, back_channel, flask_requests):
    form = new_code(rp)
    first = back_channel.post("/token", headers=rp.auth(), data=form).get_json()
    del flask_requests[:]
    replay = back_channel.post("/token", headers=rp.auth(), data=form)
    assert flask_requests == ["/token"]  # Flask answers reuse, and revokes
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    revoked_for_reuse(app, back_channel, rp, first, "token.code_reuse")


def test_losing_the_code_race_is_reuse(rp, back_channel, flask_path, flask_requests, monkeypatch):
    """Two exchanges of one code: the one that loses the claim is reuse, on
    the lean path as on Flask's (what the winner bought is revoked)."""
    form = new_code(rp)
    read = tokens.code_row
    winner = {}

    def read_then_lose(connection, presented, client_id):
        found = read(connection, presented, client_id)
        winner.update(flask_path.post("/token", headers=rp.auth(), data=form).get_json())
        return found

    monkeypatch.setattr(tokens, "code_row", read_then_lose)
    del flask_requests[:]
    loser = back_channel.post("/token", headers=rp.auth(), data=form)
    assert flask_requests == ["/token", "/token"]  # the winner's, then the loser handed to Flask
    assert loser.status_code == 400 and loser.get_json()["error"] == "invalid_grant"
    monkeypatch.setattr(tokens, "code_row", read)
    assert introspect(back_channel, rp, winner["access_token"])["active"] is False


@pytest.mark.parametrize("change", [
    {"code_verifier": "x" * 43},  # not the challenge's: invalid_grant
    {"code_verifier": "short"},  # not a verifier: invalid_request
    {"redirect_uri": "https://rp.example.test/other"},
    {"code": "unknown"},
    {"code_verifier": None},  # missing: invalid_request
    {"redirect_uri": None},
    {"client_id": "x"},
])
def test_unusual_code_exchanges_go_to_flask(rp, back_channel, flask_path, flask_requests, change):
    forms = []
    for _ in range(2):
        form = {**new_code(rp), **change}
        forms.append({k: v for k, v in form.items() if v is not None})
    del flask_requests[:]
    flask = flask_path.post("/token", headers=rp.auth(), data=forms[0])
    lean = back_channel.post("/token", headers=rp.auth(), data=forms[1])
    assert flask_requests == ["/token", "/token"]
    if flask.status_code == 200:  # an extra client_id Flask accepts
        same_kind_of_answer(lean, flask)
    else:
        assert lean.status_code == flask.status_code
        assert lean.get_json() == flask.get_json()


def test_a_refused_verifier_leaves_the_code_usable(rp, back_channel, flask_requests):
    form = new_code(rp)
    del flask_requests[:]
    wrong = back_channel.post("/token", headers=rp.auth(), data={**form, "code_verifier": "y" * 43})
    assert flask_requests == ["/token"] and wrong.get_json()["error"] == "invalid_grant"
    del flask_requests[:]
    assert back_channel.post("/token", headers=rp.auth(), data=form).status_code == 200
    assert flask_requests == []


def test_an_expired_code_is_flasks_invalid_grant(app, rp, back_channel, flask_requests, clock):
    form = new_code(rp)
    clock.advance(app.config["AUTHORIZATION_CODE_LIFETIME"])
    del flask_requests[:]
    answer = back_channel.post("/token", headers=rp.auth(), data=form)
    assert flask_requests == ["/token"] and answer.status_code == 400
    assert answer.get_json()["error"] == "invalid_grant"


def test_another_clients_code_is_flasks_invalid_grant(app, client, rp, back_channel, flask_requests):
    other = RelyingParty.register(app, client, name="Other RP")
    form = new_code(rp)
    del flask_requests[:]
    answer = back_channel.post("/token", headers=other.auth(), data=form)
    assert flask_requests == ["/token"]
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_grant"
    assert back_channel.post("/token", headers=rp.auth(), data=form).status_code == 200


def test_a_locked_customers_code_goes_to_flask(app, rp, account, back_channel, flask_path, flask_requests):
    forms = [new_code(rp), new_code(rp)]
    with app.app_context():
        db.session.get(Account, account).status = "locked"
        db.session.commit()
    del flask_requests[:]
    flask = flask_path.post("/token", headers=rp.auth(), data=forms[0])
    lean = back_channel.post("/token", headers=rp.auth(), data=forms[1])
    assert flask_requests == ["/token", "/token"]
    assert lean.status_code == flask.status_code == 400
    assert lean.get_json() == flask.get_json()


def test_a_code_bound_to_a_dpop_key_goes_to_flask(rp, back_channel, flask_requests):
    """RFC 9449 10: a code whose authorization request named a key needs a
    proof of it, which only Flask checks."""
    form = new_code(rp, dpop_jkt="A" * 43)
    del flask_requests[:]
    answer = back_channel.post("/token", headers=rp.auth(), data=form)
    assert flask_requests == ["/token"]
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_dpop_proof"


def test_a_failure_below_flask_hands_the_exchange_to_flask(rp, back_channel, flask_requests, monkeypatch):
    """Nothing is written before the claim: Flask, handed the request, finds
    the code unspent and exchanges it."""
    form = new_code(rp)

    def broken(*args):
        raise RuntimeError("no key")

    monkeypatch.setattr(lean, "add_id_token", broken)
    del flask_requests[:]
    answer = back_channel.post("/token", headers=rp.auth(), data=form)
    assert flask_requests == ["/token"] and answer.status_code == 200
    assert "id_token" in answer.get_json()
