"""client_credentials access tokens are self-contained (idp/tokens.py): no
row is stored; introspection recognises one by its signature, and a
revocation puts its jti on a list that both paths read."""

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from idp.clients import delete_client
from idp.extensions import db
from idp.keys import signing_keyset
from idp.models import AuditEvent, Client, RevokedAccessToken

from ..helpers import RelyingParty


@pytest.fixture(params=["lean", "flask"])
def channel(request, back_channel, flask_path):
    """Each test on both paths: below Flask, and Flask's own."""
    return back_channel if request.param == "lean" else flask_path


def issue(rp) -> str:
    response = rp.token_request({"grant_type": "client_credentials", "scope": "openid"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def introspect(channel, rp, token) -> dict:
    answer = channel.post("/introspect", data={"token": token}, headers=rp.auth())
    assert answer.status_code == 200
    return answer.get_json()


def revoke(channel, rp, token):
    return channel.post("/revoke", data={"token": token}, headers=rp.auth())


def listed(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [(row.client_id, row.jti) for row in db.session.scalars(db.select(RevokedAccessToken))]


def test_introspection_reads_the_token_itself(channel, rp):
    token = issue(rp)
    body = introspect(channel, rp, token)
    claims = jwt.decode(token, KeySet.import_key_set(rp.client.get("/jwks").get_json())).claims
    assert body == {"active": True, "client_id": rp.client_id, "token_type": "Bearer", "iss": claims["iss"],
                    "aud": rp.client_id, "iat": claims["iat"], "exp": claims["exp"], "sub": rp.client_id,
                    "scope": "openid"}


def test_a_revocation_on_one_path_holds_on_both(app, channel, rp, back_channel, flask_path):
    token = issue(rp)
    assert revoke(channel, rp, token).status_code == 200
    assert introspect(back_channel, rp, token) == introspect(flask_path, rp, token) == {"active": False}
    assert [client_id for client_id, _ in listed(app)] == [rp.client_id]
    with app.app_context():
        events = db.session.scalars(db.select(AuditEvent).filter_by(event="token.revoked")).all()
        assert [(e.client_id, e.account_id, e.details["kind"]) for e in events] == [(rp.client_id, None, "access_token")]


def test_revoking_twice_lists_it_once(app, rp, back_channel, flask_path):
    token = issue(rp)
    for channel in (back_channel, flask_path, back_channel):
        assert revoke(channel, rp, token).status_code == 200  # RFC 7009 2.2
    assert len(listed(app)) == 1


def test_another_clients_token_is_neither_shown_nor_revoked(app, client, channel, rp):
    other = RelyingParty.register(app, client, name="Other RP")
    token = issue(rp)
    assert introspect(channel, other, token) == {"active": False}
    refused = revoke(channel, other, token)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert listed(app) == [] and introspect(channel, rp, token)["active"] is True


def test_an_expired_token_is_inactive(channel, rp, clock):
    token = issue(rp)
    lifetime = introspect(channel, rp, token)["exp"] - clock.now()
    clock.advance(lifetime - 1)
    assert introspect(channel, rp, token)["active"] is True
    clock.advance(1)
    assert introspect(channel, rp, token) == {"active": False}


def test_a_deleted_clients_tokens_stay_dead_under_its_id_registered_again(app, client, channel, rp, clock):
    token = issue(rp)
    with app.app_context():
        delete_client(db.session.scalar(db.select(Client).filter_by(client_id=rp.client_id)))
        db.session.commit()
    clock.advance(1)
    again = RelyingParty.register(app, client, client_id=rp.client_id)
    assert introspect(channel, again, token) == {"active": False}
    assert introspect(channel, again, issue(again))["active"] is True


def forged(app, token: str, **changes) -> str:
    """``token`` re-signed with the OP's own key, its claims or header changed."""
    with app.app_context():
        original = jwt.decode(token, signing_keyset())
        header = {**original.header, **changes.pop("header", {})}
        return jwt.encode(header, {**original.claims, **changes}, signing_keyset())


@pytest.mark.parametrize("change", [
    {"header": {"typ": "JWT"}},  # not an access token (an ID token, say)
    {"iss": "https://elsewhere.example"},
    {"sub": "somebody"},  # a customer's token: those are stored, and this one is not
    {"exp": "later"},
    {"jti": "x" * 65},
])
def test_only_an_access_token_of_this_op_for_the_client_itself_counts(app, channel, rp, change):
    token = issue(rp)
    assert introspect(channel, rp, forged(app, token))["active"] is True  # the re-signing itself is fine
    assert introspect(channel, rp, forged(app, token, **change)) == {"active": False}


def test_a_token_signed_by_another_key_is_inactive(app, channel, rp):
    token = issue(rp)
    with app.app_context():
        kid = signing_keyset().keys[0].kid
    stranger = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256"}, private=True)
    claims = jwt.decode(token, KeySet.import_key_set(rp.client.get("/jwks").get_json())).claims
    assert introspect(channel, rp, jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": kid}, claims, stranger)) \
        == {"active": False}


def test_prune_forgets_revocations_once_their_tokens_expired(app, rp, back_channel, runner, clock):
    token = issue(rp)
    assert revoke(back_channel, rp, token).status_code == 200
    exp = introspect(back_channel, rp, issue(rp))["exp"]
    clock.advance(exp - clock.now() - 1)
    assert runner.invoke(args=["audit", "prune"]).exit_code == 0
    assert len(listed(app)) == 1  # still live: it must stay revoked
    clock.advance(1)
    assert runner.invoke(args=["audit", "prune"]).exit_code == 0
    assert listed(app) == []
    assert introspect(back_channel, rp, token) == {"active": False}  # expired by then


def test_userinfo_judges_it_as_a_stored_one(channel, rp, back_channel):
    """No customer stands behind it: live, it lacks the openid scope (403);
    revoked, it is no token at all (401), as it was when it was stored."""
    token = rp.token_request({"grant_type": "client_credentials", "scope": "contract"}).get_json()["access_token"]

    def userinfo():
        return channel.get("/userinfo", headers={"Authorization": f"Bearer {token}"})

    assert userinfo().status_code == 403 and userinfo().get_json()["error"] == "insufficient_scope"
    assert revoke(back_channel, rp, token).status_code == 200
    answer = userinfo()
    assert answer.status_code == 401 and 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
