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
