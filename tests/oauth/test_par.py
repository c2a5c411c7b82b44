"""Pushed authorization requests (RFC 9126, idp/oauth/par.py): the client
pushes, the browser brings only the request_uri, once, within 60 seconds."""

import threading
from urllib.parse import urlencode

import pytest

from idp.extensions import db
from idp.models import PushedRequest
from idp.oauth import par

from ..helpers import RelyingParty, needs_postgresql


def push(rp, back_channel, headers=None, **overrides):
    """The RP pushes its authorization request; the answer."""
    params = rp.authorize_params(**overrides)
    if rp.client_secret is None:
        headers = {}
    return back_channel.post("/par", data=params, headers=rp.auth() if headers is None else headers)


def pushed_uri(rp, back_channel, **overrides) -> str:
    response = push(rp, back_channel, **overrides)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["request_uri"]


def sign_in_with(rp, request_uri, **extra) -> dict:
    """The browser brings client_id and request_uri to /authorize, signs in,
    and comes back to the RP with a code."""
    return rp.sign_in_from(rp.client.get("/authorize?" + urlencode({"client_id": rp.client_id,
                                                                    "request_uri": request_uri, **extra})))


def refused_page(response) -> str:
    assert response.status_code == 400
    assert response.mimetype == "text/html" and "Location" not in response.headers
    return response.get_data(as_text=True)


def stored(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(PushedRequest))


def test_discovery_names_the_endpoint(client):
    document = client.get("/.well-known/openid-configuration").get_json()
    assert document["pushed_authorization_request_endpoint"] == "https://id.example.test/par"
    assert document["require_pushed_authorization_requests"] is False


def test_pushed_request_signs_in_with_only_its_request_uri(rp, back_channel, app):
    response = push(rp, back_channel)
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["expires_in"] == 60
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    with app.app_context():  # stored hashed: the URI is nowhere in the table
        row = db.session.scalar(db.select(PushedRequest))
        assert body["request_uri"].rsplit(":", 1)[1] not in row.digest
    answer = sign_in_with(rp, body["request_uri"])
    assert answer["state"] == rp.state and answer["iss"] == "https://id.example.test"
    tokens = rp.exchange(answer["code"]).get_json()
    assert rp.verify_id_token(tokens["id_token"])["nonce"] == rp.nonce  # the pushed nonce
    assert stored(app) == 0  # spent


def test_parameters_sent_beside_the_request_uri_are_ignored(rp, back_channel):
    request_uri = pushed_uri(rp, back_channel, scope="openid")
    answer = sign_in_with(rp, request_uri, state="forged", scope="openid email", redirect_uri="https://evil.test/")
    assert answer["state"] == rp.state
    assert rp.exchange(answer["code"]).get_json()["scope"] == "openid"


def test_a_request_uri_serves_once(rp, back_channel):
    request_uri = pushed_uri(rp, back_channel)
    sign_in_with(rp, request_uri)
    page = refused_page(rp.client.get("/authorize?" + urlencode({"client_id": rp.client_id,
                                                                 "request_uri": request_uri})))
    assert "invalid_request_uri" in page


def test_a_request_uri_lives_sixty_seconds(rp, back_channel, clock):
    fresh, late = pushed_uri(rp, back_channel), pushed_uri(rp, back_channel)
    clock.advance(59)
    sign_in_with(rp, fresh)
    clock.advance(1)
    refused_page(rp.client.get("/authorize?" + urlencode({"client_id": rp.client_id, "request_uri": late})))


def test_a_request_uri_is_bound_to_its_client(rp, app, client, back_channel):
    other = RelyingParty.register(app, client, name="Other RP")
    request_uri = pushed_uri(rp, back_channel)
    refused_page(client.get("/authorize?" + urlencode({"client_id": other.client_id, "request_uri": request_uri})))
    refused_page(client.get("/authorize?" + urlencode({"request_uri": request_uri})))
    sign_in_with(rp, request_uri)  # still there for its own client


@pytest.mark.parametrize("request_uri", ["urn:ietf:params:oauth:request_uri:nope",
                                         "urn:ietf:params:oauth:request_uri:"])
def test_unknown_request_uris_are_a_page(rp, request_uri):
    refused_page(rp.client.get("/authorize?" + urlencode({"client_id": rp.client_id, "request_uri": request_uri})))


def test_client_authenticates_as_at_the_token_endpoint(rp, back_channel, app):
    wrong = push(rp, back_channel, headers={"Authorization": "Basic " + "b3RoZXI6c2VjcmV0"})  # other:secret
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "invalid_client"
    assert wrong.headers["WWW-Authenticate"].startswith("Basic")
    # client_secret_basic is what it registered: client_secret_post is refused (SPEC §6).
    as_post = back_channel.post("/par", data={**rp.authorize_params(), "client_secret": rp.client_secret})
    assert as_post.status_code in (400, 401) and as_post.get_json()["error"] == "invalid_client"
    assert stored(app) == 0


def test_client_secret_post_is_not_part_of_the_request(app, client, account, back_channel):
    rp = RelyingParty.register(app, client, auth_method="client_secret_post")
    response = back_channel.post("/par", data={**rp.authorize_params(), "client_secret": rp.client_secret})
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        params = dict(db.session.scalar(db.select(PushedRequest)).params)
    assert "client_secret" not in params and params["client_id"] == rp.client_id


def test_public_clients_push_with_pkce(app, client, account, back_channel):
    rp = RelyingParty.register(app, client, auth_method="none")
    refused = push(rp, back_channel, code_challenge=None, code_challenge_method=None)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_request"
    answer = sign_in_with(rp, pushed_uri(rp, back_channel))
    assert rp.exchange(answer["code"]).status_code == 200


@pytest.mark.parametrize("overrides, error", [
    ({"request_uri": "urn:ietf:params:oauth:request_uri:x"}, "invalid_request"),  # RFC 9126 2.1
    ({"redirect_uri": "https://evil.test/cb"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": 'code"'}, "invalid_request"),  # Authlib cannot quote it in an error description
    ({"response_type": "日本語"}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    ({"client_id": "someone-else"}, "invalid_request"),
    ({"prompt": "bogus"}, "invalid_request"),
    ({"state": "x" * 3000}, "invalid_request"),
])
def test_bad_pushes_get_json_errors_never_a_redirect(rp, back_channel, app, overrides, error):
    response = push(rp, back_channel, **overrides)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == error
    assert "Location" not in response.headers and response.headers["Cache-Control"] == "no-store"
    assert stored(app) == 0


@pytest.mark.parametrize("body", [
    b"client_id=a&client_id=b&response_type=code",
    b"response_type=code&state=a%00b",
    b"response_type=code&state=\xff\xfe",
    b"state=" + b"x" * 100_000,
])
def test_malformed_bodies_are_4xx(rp, back_channel, app, body):
    response = back_channel.post("/par", data=body, content_type="application/x-www-form-urlencoded",
                                 headers=rp.auth())
    assert 400 <= response.status_code < 500
    assert stored(app) == 0


def test_a_client_cannot_fill_the_table(rp, back_channel, app, clock, monkeypatch):
    monkeypatch.setattr(par, "MAX_LIVE_PER_CLIENT", 3)
    for _ in range(3):
        pushed_uri(rp, back_channel)
    refused = push(rp, back_channel)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    clock.advance(60)
    pushed_uri(rp, back_channel)  # the expired ones are gone, this one is the only row
    assert stored(app) == 1


def test_a_client_that_must_push_is_refused_without(app, client, account, back_channel):
    rp = RelyingParty.register(app, client, require_pushed_authorization_requests=True)
    assert "RFC 9126" in refused_page(rp.authorize())
    answer = sign_in_with(rp, pushed_uri(rp, back_channel))  # through the login page and back
    assert rp.exchange(answer["code"]).status_code == 200
    # The expanded request the login came back with does not serve again.
    refused_page(rp.authorize())


@pytest.fixture
def config_overrides(request):
    return {"REQUIRE_PAR": True} if "every_client" in request.node.name else {}


def test_every_client_must_push_when_the_op_says_so(rp, client, back_channel):
    assert client.get("/.well-known/openid-configuration").get_json()["require_pushed_authorization_requests"]
    refused_page(rp.authorize())
    sign_in_with(rp, pushed_uri(rp, back_channel))


@needs_postgresql
def test_two_nodes_racing_for_one_request_uri_one_wins(rp, back_channel, app):
    for _ in range(5):
        request_uri = pushed_uri(rp, back_channel)
        start, results = threading.Barrier(2), []

        def spend():
            with app.app_context():
                start.wait(10)
                try:
                    par.take(rp.client_id, request_uri)
                    db.session.commit()
                    results.append("won")
                except par.InvalidRequestUri:
                    db.session.rollback()
                    results.append("refused")
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=spend) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(results) == ["refused", "won"]

