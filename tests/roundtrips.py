"""Database round trips, counted from SQLAlchemy's events on the real engine.

A round trip is what the driver sends and waits for: the ping of a
connection checked out after it was idle a while; every statement; the BEGIN that psycopg
sends before the first statement of a transaction; and a COMMIT or ROLLBACK
only when a transaction is open (psycopg sends nothing for either on an
idle or autocommit connection); and each statement the lean path runs on
a connection it holds (``oauth.lean._Held``, which SQLAlchemy's events do
not see). SQLAlchemy's own begin and
commit events fire in autocommit mode too, so they are not counted as such.
Used by tests/oauth/test_round_trips.py and bench/count_sql.py.
"""

from __future__ import annotations

from sqlalchemy import event

from idp.oauth import lean


def _in_transaction(dbapi_connection) -> bool:
    if hasattr(dbapi_connection, "pgconn"):  # psycopg 3
        from psycopg.pq import TransactionStatus

        return dbapi_connection.info.transaction_status != TransactionStatus.IDLE
    return dbapi_connection.in_transaction  # sqlite3


def _autocommit(dbapi_connection) -> bool:
    if hasattr(dbapi_connection, "pgconn"):
        return dbapi_connection.autocommit
    return dbapi_connection.isolation_level is None


class RoundTrips:
    """``with RoundTrips(engine) as trips: ...`` then ``trips.count``;
    ``trips.log`` lists what was sent."""

    def __init__(self, engine):
        self.engine, self.count, self.log = engine, 0, []

    def _statement(self, conn, cursor, statement, parameters, context, executemany):
        dbapi_connection = conn.connection.dbapi_connection
        if not _autocommit(dbapi_connection) and not _in_transaction(dbapi_connection):
            self._sent("BEGIN")
        self._sent(" ".join(statement.split())[:110])

    def _end(self, conn, name: str):
        if _in_transaction(conn.connection.dbapi_connection):
            self._sent(name)

    def _sent(self, what: str) -> None:
        self.count += 1
        self.log.append(what)

    def _checkout(self, dbapi_connection, record, proxy):
        # extensions.ping_idle_connections pinged an idle connection just
        # before this event, not through cursor events.
        if record.info.get("idp_pinged"):
            self._sent("SELECT 1 (ping)")

    def __enter__(self):
        event.listen(self.engine.pool, "checkout", self._checkout)
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)
        event.listen(self.engine, "rollback", self._rollback)
        self._held_execute = execute = lean._Held.execute

        def counted(held, statement, params):
            """A statement of the lean path on a held PostgreSQL connection
            (oauth/lean.py): in autocommit, no pre-ping: one round trip each."""
            self._sent("(held) " + " ".join(lean._sql(statement, held.dialect).text.decode().split())[:103])
            return execute(held, statement, params)

        lean._Held.execute = counted
        return self

    def _commit(self, conn):
        self._end(conn, "COMMIT")

    def _rollback(self, conn):
        self._end(conn, "ROLLBACK")

    def __exit__(self, *exc):
        event.remove(self.engine.pool, "checkout", self._checkout)
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "rollback", self._rollback)
        lean._Held.execute = self._held_execute
