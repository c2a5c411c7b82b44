"""Pooled connections that PostgreSQL dropped (a restart, a failover, an idle
timeout in a proxy) are noticed before use: the next request succeeds. A
connection just used, whose socket is quiet, is not pinged again."""


import sqlalchemy as sa

from idp.extensions import db

from ..helpers import needs_postgresql

pytestmark = needs_postgresql


def _drop_the_apps_connections(app) -> int:
    with app.app_context():
        url = db.engine.url
    killer = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with killer.begin() as conn:
        dropped = conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    killer.dispose()
    return dropped


def test_requests_succeed_after_the_server_dropped_every_pooled_connection(rp, client, app):
    token = rp.tokens()["access_token"]  # the pool now holds live connections
    assert _drop_the_apps_connections(app) >= 1
    # A client_credentials token needs no connection now (nothing is stored):
    # introspection of one does.
    service_token = rp.token_request({"grant_type": "client_credentials"}).get_json()["access_token"]
    assert client.post("/introspect", data={"token": service_token}, headers=rp.auth()).get_json()["active"]
    assert _drop_the_apps_connections(app) >= 1
    assert client.get("/userinfo", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert _drop_the_apps_connections(app) >= 1
    assert client.get("/readyz").status_code == 200


def test_a_connection_just_used_is_not_pinged_again(client, app, monkeypatch):
    with app.app_context():
        dialect = db.engine.dialect
    pings = []
    real = type(dialect).do_ping
    monkeypatch.setattr(type(dialect), "do_ping", lambda self, connection: pings.append(1) or real(self, connection))
    assert client.get("/readyz").status_code == 200
    pinged = len(pings)
    assert client.get("/readyz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert len(pings) == pinged
