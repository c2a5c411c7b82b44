"""The connections the lean path holds (idp/oauth/lean.py ``_Database``):
statements prepared once per connection through libpq, a connection given
back to the pool and held again keeps working, and a statement the server
refuses ends that connection's use without leaving it held."""

import psycopg
import pytest
from sqlalchemy import text

from idp.extensions import db
from idp.oauth.lean import _Database, _Held


@pytest.fixture
def engine(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("held connections are PostgreSQL's (SQLite takes one per request)")
        return db.engine


SUM = text("SELECT CAST(:a AS integer) + CAST(:a AS integer) AS twice, CAST(:b AS text) AS word, '100%' AS percent")


def test_a_parameter_named_twice_and_a_literal_percent(engine):
    held = _Held(engine)
    try:
        (row,) = held.execute(SUM, {"a": 21, "b": "ok"})
        assert (row.twice, row.word, row.percent) == (42, "ok", "100%")
        (row,) = held.execute(SUM, {"a": 1, "b": None})  # prepared already: executed again
        assert (row.twice, row.word) == (2, None)
    finally:
        held.release()


def test_a_connection_held_again_keeps_its_prepared_statements(engine):
    first = _Held(engine)
    raw = first.raw
    first.execute(SUM, {"a": 1, "b": "x"})
    first.release()  # back to the pool, its prepared statement with it
    again = _Held(engine)
    try:
        assert again.raw is raw  # the pool's only idle connection
        (row,) = again.execute(SUM, {"a": 2, "b": "y"})
        assert row.twice == 4
    finally:
        again.release()


def test_a_refused_statement_discards_the_connection(engine):
    database = _Database(engine)
    with database.connection() as held:
        held.execute(SUM, {"a": 1, "b": "x"})
    kept = database.idle[-1]
    with pytest.raises(psycopg.DatabaseError, match="invalid input syntax"):
        with database.connection() as held:
            assert held is kept
            held.execute(SUM, {"a": "not a number", "b": "x"})
    assert kept not in database.idle
    assert kept.raw.closed  # invalidated: the pool will not hand it out again
    with database.connection() as held:  # a new one takes its place
        (row,) = held.execute(SUM, {"a": 3, "b": "z"})
        assert row.twice == 6
    database.close()


def test_a_lookup_planned_while_the_table_was_small_stays_an_index_lookup(app, engine, rp, back_channel):
    """PostgreSQL keeps a prepared statement's generic plan (made after five
    executions) until the table is analyzed: planned on a nearly empty
    tokens table it could be a sequential scan for good, a millisecond a
    request once the table has grown (bench/run.sh saw revocation fall to a
    fifth). The held connections plan index lookups from the start."""
    from idp.oauth.lean import _sql
    from idp.tokens import _select_introspected

    token = rp.tokens()["access_token"]
    for _ in range(8):  # past PostgreSQL's five custom plans: the generic one is kept
        assert back_channel.post("/introspect", data={"token": token}, headers=rp.auth()).get_json()["active"]
    with app.app_context():
        db.session.execute(text(
            "INSERT INTO tokens (client_id, scope, access_token_digest, family_id, issued_at, access_expires_at)"
            " SELECT 'grown', '', md5(i::text) || md5('a' || i), md5('f' || i), 0, 0 FROM generate_series(1, 3000) i"))
        db.session.commit()
    database = app.wsgi_app._ready.database
    (held,) = database.idle
    name = _sql(_select_introspected(), engine.dialect).name.decode()
    plan = "\n".join(row[0] for row in held.raw.execute(f"EXPLAIN EXECUTE {name}('{'0' * 64}')"))
    assert "Seq Scan on tokens" not in plan, plan
    database.idle.remove(held)
    held.release()  # back to the pool: it plans as any other connection again
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW enable_seqscan").scalar() == "on"
