"""Revocation below Flask (idp/oauth/lean.py): its answers are the Flask
path's byte for byte, it revokes what Flask revokes, and it leaves the same
audit row, in the same transaction."""

import pytest
from sqlalchemy.exc import OperationalError

from idp import tokens
from idp.extensions import db
from idp.models import AuditEvent

from ..faults import audit_rows_refused
from ..helpers import RelyingParty

AGENT = {"User-Agent": "resource-server/1.0"}


def same_answer(lean, flask) -> None:
    assert lean.status_code == flask.status_code
    assert sorted(lean.headers.items()) == sorted(flask.headers.items())
    assert lean.data == flask.data


def revoke(channel, rp, token, hint=None):
    data = {"token": token} if hint is None else {"token": token, "token_type_hint": hint}
    return channel.post("/revoke", data=data, headers={**rp.auth(), **AGENT})


def introspect(channel, rp, token):
    return channel.post("/introspect", data={"token": token}, headers=rp.auth()).get_json()


def revocations(app) -> list[dict]:
    with app.app_context():
        rows = db.session.scalars(db.select(AuditEvent).filter_by(event="token.revoked").order_by(AuditEvent.id))
        return [{"outcome": r.outcome, "account_id": r.account_id, "client_id": r.client_id, "details": r.details,
                 "ip_address": r.ip_address, "user_agent": r.user_agent} for r in rows]


@pytest.mark.parametrize("kind, hint", [("access_token", None), ("access_token", "access_token"),
                                        ("refresh_token", None), ("refresh_token", "refresh_token"),
                                        ("refresh_token", "access_token")])
def test_revocation_as_flask_does_it(app, rp, back_channel, flask_path, flask_requests, kind, hint):
    on_flask, on_lean = rp.tokens(), rp.tokens()
    del flask_requests[:]
    flask = revoke(flask_path, rp, on_flask[kind], hint)
    lean = revoke(back_channel, rp, on_lean[kind], hint)
    assert flask_requests == ["/revoke"]
    same_answer(lean, flask)
    assert lean.status_code == 200 and lean.get_json() == {}
    for issued in (on_flask, on_lean):
        # A token row holds an access token and its refresh token: both end.
        assert introspect(back_channel, rp, issued["access_token"])["active"] is False
        assert introspect(back_channel, rp, issued["refresh_token"])["active"] is False
    flask_row, lean_row = revocations(app)
    assert flask_row.pop("ip_address") is None  # werkzeug's bare test client sends no REMOTE_ADDR
    assert lean_row.pop("ip_address") == "127.0.0.1"
    assert lean_row == flask_row
    assert lean_row["details"] == {"kind": kind} and lean_row["user_agent"] == "resource-server/1.0"
    assert lean_row["account_id"] is not None


def test_a_revoked_token_is_left_alone(app, rp, back_channel, flask_requests):
    token = rp.tokens()["access_token"]
    assert revoke(back_channel, rp, token).status_code == 200
    del flask_requests[:]
    again = revoke(back_channel, rp, token)
    assert flask_requests == [] and again.status_code == 200 and again.get_json() == {}
    assert len(revocations(app)) == 1


def test_an_unknown_token_is_answered_200(app, rp, back_channel, flask_path, flask_requests):
    del flask_requests[:]
    flask = revoke(flask_path, rp, "no-such-token")
    same_answer(revoke(back_channel, rp, "no-such-token"), flask)
    assert flask_requests == ["/revoke"]
    assert revocations(app) == []


def test_a_client_credentials_token(app, rp, back_channel, flask_requests):
    token = rp.token_request({"grant_type": "client_credentials"}).get_json()["access_token"]
    del flask_requests[:]
    assert revoke(back_channel, rp, token).status_code == 200
    assert flask_requests == []
    assert introspect(back_channel, rp, token)["active"] is False
    assert revocations(app)[0]["account_id"] is None


def test_another_clients_token_is_flasks_invalid_grant(app, client, rp, back_channel, flask_path, flask_requests):
    other = RelyingParty.register(app, client, name="Other RP")
    token = rp.tokens()["access_token"]
    del flask_requests[:]
    lean, flask = revoke(back_channel, other, token), revoke(flask_path, other, token)
    assert flask_requests == ["/revoke", "/revoke"]
    same_answer(lean, flask)
    assert lean.status_code == 400 and lean.get_json()["error"] == "invalid_grant"
    assert introspect(back_channel, rp, token)["active"] is True


def test_nothing_is_revoked_without_its_audit_row(app, rp, back_channel, flask_requests):
    """The revocation and its audit row commit together or not at all: with
    audit rows refused, the lean path's transaction fails, Flask's too,
    and the token stays live."""
    token = rp.tokens()["access_token"]
    del flask_requests[:]
    with audit_rows_refused(app):
        answer = revoke(back_channel, rp, token)
    assert flask_requests == ["/revoke"]  # the lean path failed and handed it on
    assert answer.status_code == 500 and answer.get_json() == {"error": "server_error"}
    assert introspect(back_channel, rp, token)["active"] is True
    assert revocations(app) == []


def test_a_failure_below_flask_hands_the_revocation_to_flask(app, rp, back_channel, flask_requests, monkeypatch):
    token = rp.tokens()["access_token"]

    def outage(*args, **kwargs):
        raise OperationalError("UPDATE", {}, Exception("server closed the connection"))

    monkeypatch.setattr(tokens, "revoke_below_flask", outage)
    del flask_requests[:]
    assert revoke(back_channel, rp, token).status_code == 200
    assert flask_requests == ["/revoke"]
    assert introspect(back_channel, rp, token)["active"] is False
    assert len(revocations(app)) == 1
