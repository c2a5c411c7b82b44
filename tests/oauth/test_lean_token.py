"""The token endpoint below Flask (idp/oauth/lean.py): client_credentials and
refresh_token. Each issue is new (a new jti, a new token), so the two paths
are compared by what a client and a resource server can tell: status,
headers, the fields of the answer, the access token's claims and what
introspection says of it; and rotation keeps its replay rules."""

import base64

import jwt as pyjwt
import pytest
from sqlalchemy.exc import OperationalError

from idp import tokens
from idp.extensions import db
from idp.models import Account, AuditEvent, Token
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


def test_client_credentials_token_row_is_the_flask_paths(app, service, back_channel, flask_path, flask_requests):
    lean, flask = post_both(back_channel, flask_path, flask_requests, service.auth(),
                            {"grant_type": "client_credentials", "scope": "openid"})
    with app.app_context():
        rows = [tokens.by_digest("access_token", answer.get_json()["access_token"]) for answer in (lean, flask)]
        columns = ("client_id", "account_id", "scope", "refresh_token_digest", "authorization_code_id", "sid",
                   "auth_time", "claims_request", "refresh_expires_at", "rotated_at", "revoked_at")
        assert [getattr(rows[0], c) for c in columns] == [getattr(rows[1], c) for c in columns]
        assert rows[0].access_expires_at - rows[0].issued_at == rows[1].access_expires_at - rows[1].issued_at


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
    assert introspect(back_channel, rp, new["access_token"])["active"] is False
    assert refresh(back_channel, rp, new["refresh_token"]).status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)
                                 .filter_by(event="token.refresh_reuse")) == 1


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


def test_a_failed_store_writes_nothing_and_flask_answers(app, service, back_channel, flask_requests, monkeypatch):
    """A client_credentials token whose row could not be written is not
    handed out by the lean path; Flask issues one instead."""
    back_channel.post("/token", headers=service.auth(), data={"grant_type": "client_credentials"})
    with app.app_context():
        before = db.session.scalar(db.select(db.func.count()).select_from(Token))

    def broken(connection, row):
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(tokens, "store_lossy", broken)
    del flask_requests[:]
    answer = back_channel.post("/token", headers=service.auth(), data={"grant_type": "client_credentials"})
    assert flask_requests == ["/token"] and answer.status_code == 200
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Token)) == before + 1


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
