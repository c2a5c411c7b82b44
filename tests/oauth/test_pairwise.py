"""Pairwise subjects (OIDC Core 8.1): a client registered pairwise sees its
own "sub" for a customer, derived from its sector identifier and
IDP_PAIRWISE_SECRET, the same in every place the OP emits one."""

import base64
import hashlib
import hmac
import json

import jwt as pyjwt
import pytest

from idp import create_app
from idp.claims import subject_for
from idp.clients import ClientError, create_client
from idp.extensions import db
from idp.models import Account
from idp.models import Client as Registered
from idp.oauth.backchannel import logout_token
from tests.helpers import RelyingParty

from .test_lean_introspection import basic, introspect_both
from .test_lean_userinfo import userinfo_both

SECRET = "test-pairwise-" + "x" * 32


@pytest.fixture
def config_overrides():
    return {"ALLOW_PRIVATE_OUTBOUND": True}  # the sector_identifier_uri server is on loopback


def expected_sub(sector: str, subject: str, secret: str = SECRET) -> str:
    mac = hmac.new(secret.encode(), sector.encode() + b"\0" + subject.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def public_subject(app) -> str:
    with app.app_context():
        return db.session.scalar(db.select(Account.subject))


def pairwise_rp(app, client, redirect_uri="https://rp.example.test/callback", **kwargs) -> RelyingParty:
    return RelyingParty.register(app, client, first_party=False, subject_type="pairwise", redirect_uris=(redirect_uri,),
                                 **kwargs)


def consent(rp, response):
    """Approve the consent page a third-party client gets."""
    from tests.helpers import csrf_token
    html = response.get_data(as_text=True)
    digest = html.split('name="request" value="')[1].split('"')[0]
    return rp.client.post("/authorize/consent", data={"csrf_token": csrf_token(html), "request": digest,
                                                      "decision": "approve"})


def tokens_of(rp, **overrides) -> dict:
    response = rp.authorize(**overrides)
    if response.status_code == 303:
        login = rp.login()
        response = rp.client.get(login.location)
    if response.status_code == 200:  # the consent page
        response = rp.client.get(consent(rp, response).location)
    assert response.status_code == 302, response.get_data(as_text=True)
    from tests.helpers import query_of
    answer = rp.exchange(query_of(response.location)["code"])
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_discovery_names_both_subject_types(client):
    assert client.get("/.well-known/openid-configuration").get_json()["subject_types_supported"] == [
        "public", "pairwise"]


def test_every_sub_a_pairwise_client_sees_is_its_own(app, client, account, back_channel, flask_path,
                                                     flask_requests):
    rp = pairwise_rp(app, client)
    subject = public_subject(app)
    sub = expected_sub("rp.example.test", subject)
    assert sub != subject
    issued = tokens_of(rp, scope="openid profile email offline_access")
    assert rp.verify_id_token(issued["id_token"])["sub"] == sub
    assert pyjwt.decode(issued["access_token"], options={"verify_signature": False})["sub"] == sub
    # UserInfo and introspection, below Flask and through it.
    assert userinfo_both(back_channel, flask_path, issued["access_token"]).get_json()["sub"] == sub
    assert userinfo_both(back_channel, flask_path, issued["access_token"], "post").get_json()["sub"] == sub
    answer = introspect_both(back_channel, flask_path, flask_requests, basic(rp.client_id, rp.client_secret),
                             {"token": issued["access_token"]})
    assert answer.get_json()["sub"] == sub
    # A refresh token's introspection, and the back-channel logout token.
    answer = back_channel.post("/introspect", data={"token": issued["refresh_token"]},
                               headers=basic(rp.client_id, rp.client_secret))
    assert answer.get_json()["sub"] == sub
    with app.app_context():
        token = logout_token(rp.client_id, subject, "sid-1")
    assert pyjwt.decode(token, options={"verify_signature": False})["sub"] == sub


def test_sectors_differ_and_first_party_sites_stay_public(app, client, account):
    subject = public_subject(app)
    one = pairwise_rp(app, client, "https://one.example.test/cb")
    same_host = pairwise_rp(app, client, "https://one.example.test/other")
    other = pairwise_rp(app, client, "https://two.example.test/cb")
    first = RelyingParty.register(app, client)  # first-party, public
    with app.app_context():
        seen = {rp.client_id: subject_for(Registered.lookup(rp.client_id), subject)
                for rp in (one, same_host, other, first)}
    assert seen[one.client_id] == seen[same_host.client_id] == expected_sub("one.example.test", subject)
    assert seen[other.client_id] == expected_sub("two.example.test", subject) != seen[one.client_id]
    assert seen[first.client_id] == subject
    assert first.verify_id_token(first.tokens(scope="openid")["id_token"])["sub"] == subject
    with app.app_context(), pytest.raises(ClientError, match="first-party"):
        create_client("Mine", ["https://mine.example.test/cb"], first_party=True, subject_type="pairwise")


def test_the_sub_survives_restarts_and_key_rotation_but_follows_the_secret(app, client, account, runner):
    rp = pairwise_rp(app, client)
    before = rp.verify_id_token(tokens_of(rp, scope="openid")["id_token"])["sub"]
    assert runner.invoke(args=["keys", "rotate"]).exit_code == 0
    restarted = create_app({"DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": app.secret_key,
                            "PAIRWISE_SECRET": SECRET, "ISSUER": app.config["ISSUER"]})
    other_secret = create_app({"DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": app.secret_key,
                               "PAIRWISE_SECRET": "another-" + "y" * 32, "ISSUER": app.config["ISSUER"]})
    subject = public_subject(app)
    for node, same in ((restarted, True), (other_secret, False)):
        with node.app_context():
            seen = subject_for(Registered.lookup(rp.client_id), subject)
            db.session.remove()
            db.engine.dispose()  # its connections, before the app goes
        assert (seen == before) is same


def test_sector_identifier_uri_lists_every_redirect_uri(app, jwks_server):
    uris = ["https://a.example.test/cb", "https://b.example.test/cb"]
    with app.app_context():
        with pytest.raises(ClientError, match="sector_identifier_uri"):
            create_client("Two hosts", uris, subject_type="pairwise")  # no sector_identifier_uri
        jwks_server.jwks = uris[:1]
        with pytest.raises(ClientError, match="does not list"):
            create_client("Two hosts", uris, subject_type="pairwise", sector_identifier_uri=jwks_server.url)
        jwks_server.jwks = {"redirect_uris": uris}
        with pytest.raises(ClientError, match="JSON array"):
            create_client("Two hosts", uris, subject_type="pairwise", sector_identifier_uri=jwks_server.url)
        jwks_server.status = 404
        with pytest.raises(ClientError, match="JSON array"):
            create_client("Two hosts", uris, subject_type="pairwise", sector_identifier_uri=jwks_server.url)
        jwks_server.status, jwks_server.jwks = 200, uris + ["https://c.example.test/cb"]
        registered, _ = create_client("Two hosts", uris, subject_type="pairwise",
                                      sector_identifier_uri=jwks_server.url)
        assert registered.sector_identifier == "127.0.0.1"  # the sector_identifier_uri's host
        with pytest.raises(ClientError, match="pairwise clients only"):
            create_client("Public", uris[:1], sector_identifier_uri=jwks_server.url)
        db.session.rollback()


def test_sector_identifier_uri_goes_through_the_outbound_guard(client, jwks_server, app):
    guarded = create_app({"DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": app.secret_key,
                          "PAIRWISE_SECRET": SECRET, "ISSUER": app.config["ISSUER"]})
    jwks_server.jwks = ["https://a.example.test/cb"]
    with guarded.app_context():
        with pytest.raises(ClientError, match="public address"):
            create_client("Loopback", ["https://a.example.test/cb"], subject_type="pairwise",
                          sector_identifier_uri=jwks_server.url)
        db.session.remove()
        db.engine.dispose()  # its connections, before the app goes
    assert jwks_server.fetches == 0


def test_a_pairwise_id_token_hint_logs_its_customer_out_without_asking(app, client, account):
    rp = pairwise_rp(app, client, post_logout=("https://rp.example.test/bye",))
    id_token = tokens_of(rp, scope="openid")["id_token"]
    response = client.get(f"/session/end?id_token_hint={id_token}&post_logout_redirect_uri=https://rp.example.test/bye")
    assert response.status_code == 302 and response.location == "https://rp.example.test/bye"


def test_a_disabled_pairwise_clients_token_reads_nothing(app, client, account, back_channel, flask_path):
    rp = pairwise_rp(app, client)
    token = tokens_of(rp, scope="openid")["access_token"]
    with app.app_context():
        db.session.scalar(db.select(Registered).filter_by(client_id=rp.client_id)).disabled = True
        db.session.commit()
    for path in (back_channel, flask_path):
        response = path.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401 and "sub" not in response.get_json()
