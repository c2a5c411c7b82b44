"""Database round trips per token request (issue 7: a token request costs at
most 3). Counted on the real engine by tests/roundtrips.py, in the PostgreSQL
pass of `make test`: SQLite runs in-process, has no round trips to save, and
keeps a transaction around a token request (tokens.without_transaction).
"""

import pytest

from idp.extensions import db

from ..helpers import needs_postgresql
from ..roundtrips import RoundTrips

pytestmark = needs_postgresql


@pytest.fixture
def engine(app):
    with app.app_context():
        return db.engine


def test_client_credentials_costs_at_most_three_round_trips(rp, engine):
    rp.token_request({"grant_type": "client_credentials"})  # warm the client cache
    with RoundTrips(engine) as trips:
        assert rp.token_request({"grant_type": "client_credentials"}).status_code == 200
    assert trips.count <= 3, trips.log


def test_userinfo_and_introspection_round_trips(rp, client, engine):
    token = rp.tokens()["access_token"]
    with RoundTrips(engine) as trips:
        assert client.get("/userinfo", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert trips.count <= 3, trips.log
    with RoundTrips(engine) as trips:
        assert client.post("/introspect", data={"token": token}, headers=rp.auth()).status_code == 200
    assert trips.count <= 3, trips.log


def test_code_and_refresh_cost_at_most_three_round_trips(rp, client, engine):
    """Reading the code or refresh token, then claiming it and storing the new
    token in one statement; no transaction around them."""
    client.get("/jwks")  # signing keys are loaded once per process, not per request
    code = rp.sign_in_and_get_code()["code"]
    with RoundTrips(engine) as trips:
        tokens = rp.exchange(code).get_json()
    assert trips.count <= 3, trips.log
    with RoundTrips(engine) as trips:
        rp.token_request({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert trips.count <= 3, trips.log
