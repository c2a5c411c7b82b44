"""Database round trips per token request (issue: hot endpoints stay cheap).

Counted with SQLAlchemy's events on the real engine: every statement, plus
BEGIN (psycopg sends it as its own round trip) and COMMIT or ROLLBACK.
"""

import pytest
from sqlalchemy import event

from idp.extensions import db


class RoundTrips:
    def __init__(self, engine):
        self.engine, self.count = engine, 0

    def _statement(self, *args, **kwargs):
        self.count += 1

    def _transaction(self, *args, **kwargs):
        self.count += 1

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._statement)
        for name in ("begin", "commit", "rollback"):
            event.listen(self.engine, name, self._transaction)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._statement)
        for name in ("begin", "commit", "rollback"):
            event.remove(self.engine, name, self._transaction)


@pytest.fixture
def engine(app):
    with app.app_context():
        return db.engine


def test_client_credentials_costs_at_most_three_round_trips(rp, engine):
    rp.token_request({"grant_type": "client_credentials"})  # warm the client cache
    with RoundTrips(engine) as trips:
        assert rp.token_request({"grant_type": "client_credentials"}).status_code == 200
    assert trips.count <= 3, trips.count


def test_userinfo_and_introspection_round_trips(rp, client, engine):
    token = rp.tokens()["access_token"]
    with RoundTrips(engine) as trips:
        assert client.get("/userinfo", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert trips.count <= 3, trips.count
    with RoundTrips(engine) as trips:
        assert client.post("/introspect", data={"token": token}, headers=rp.auth()).status_code == 200
    assert trips.count <= 3, trips.count


def test_code_and_refresh_round_trips_are_bounded(rp, client, engine):
    """Not yet three (BENCHMARKS.md): BEGIN, reading the code or refresh
    token, the new token row, the atomic claim, COMMIT."""
    client.get("/jwks")  # signing keys are loaded once per process, not per request
    code = rp.sign_in_and_get_code()["code"]
    with RoundTrips(engine) as trips:
        tokens = rp.exchange(code).get_json()
    assert trips.count <= 5, trips.count
    with RoundTrips(engine) as trips:
        rp.token_request({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert trips.count <= 5, trips.count
