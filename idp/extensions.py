"""Flask extensions, created once and bound to an app in create_app()."""

import select
import time
from contextlib import contextmanager

import psycopg
import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event, exc
from sqlalchemy.dialects import postgresql, sqlite

# Named constraints so that Alembic migrations are identical on SQLite and
# PostgreSQL and can be altered later.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

db = SQLAlchemy(metadata=metadata)
csrf = CSRFProtect()


def init_migrations(app, directory: str) -> None:
    """Flask-Migrate (and Alembic, ~12 MiB) only where migrations run: the
    'flask db' commands and code that asks for them; web workers never do."""
    from flask_migrate import Migrate

    Migrate(render_as_batch=True).init_app(app, db, directory=directory)


def upsert(table):
    """An INSERT that can take ``on_conflict_do_update`` on the database in
    use (PostgreSQL, or SQLite 3.24 and later)."""
    return (postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert)(table)


class DeadlineConnection(psycopg.Connection):
    """A PostgreSQL connection on which no wait for the server is unbounded.

    The server cancels a statement after ``statement_timeout`` and a lock
    wait after ``lock_timeout`` (connect options, ``config``). A server that
    cannot cancel anything — frozen, swapped out, or behind a path whose
    kernel still acknowledges every packet, so TCP never gives up — is
    given ``wait_limit`` seconds for each exchange; past it the connection
    is closed and the wait ends in an OperationalError, which SQLAlchemy
    treats as a lost connection and the request as an outage (503).
    """

    wait_limit: float | None = None

    def wait(self, gen, interval: float = 0.1, timeout: float | None = None):
        try:
            return super().wait(gen, interval=interval, timeout=self.wait_limit if timeout is None else timeout)
        except psycopg.errors._WaitTimeout:  # the documented outcome of a timeout (psycopg >= 3.3)
            # The statement may still be in flight: the connection's state
            # is unknown, so nobody may use it again.
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"the database did not answer within {self.wait_limit} s; connection closed") from None


def bound_database_waits(app) -> None:
    """Open every PostgreSQL connection of ``app`` as a DeadlineConnection
    waiting at most DATABASE_STATEMENT_TIMEOUT and one more second for any
    answer: the server's own statement timeout fires first when it can."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "postgresql":
        return  # SQLite waits for a lock for its busy timeout, then fails
    limit = app.config["DATABASE_STATEMENT_TIMEOUT"] + 1

    @event.listens_for(engine, "do_connect")
    def _connect(dialect, record, cargs, cparams):
        connection = DeadlineConnection.connect(*cargs, **cparams)
        connection.wait_limit = limit
        return connection


# A connection idle longer than this is pinged before a request uses it.
PING_AFTER_IDLE = 1.0


def ping_idle_connections(app) -> None:
    """SQLAlchemy's pool_pre_ping, without its round trip on a busy worker.

    A pooled PostgreSQL connection checked in less than PING_AFTER_IDLE
    seconds ago is pinged only when its socket has something to read: an
    idle connection has nothing pending, and a server that drops it (a
    restart, pg_terminate_backend, a proxy's idle timeout) sends its
    goodbye or closes the socket, which makes it readable. Any other
    checkout is pinged, as the pre-ping did: a ping that finds the
    connection gone has the pool replace it."""
    with app.app_context():
        engine = db.engine
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection, record):
        record.info["idp_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection, record, proxy):
        idle_since = record.info.pop("idp_idle_since", None)
        quiet = (idle_since is not None and time.monotonic() - idle_since <= PING_AFTER_IDLE
                 and _nothing_to_read(dbapi_connection))
        record.info["idp_pinged"] = not quiet  # counted by tests/roundtrips.py
        if quiet:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                # The pool closes this one and checks out another (its
                # documented pessimistic disconnect handling), as the pre-ping does.
                raise exc.DisconnectionError(str(error)) from error
            raise


def _nothing_to_read(dbapi_connection) -> bool:
    """A PostgreSQL connection whose socket has nothing waiting (False for SQLite's)."""
    pgconn = getattr(dbapi_connection, "pgconn", None)
    if pgconn is None:
        return False
    try:
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN)
        return not poller.poll(0)
    except (OSError, psycopg.Error):
        return False


@contextmanager
def unhurried(connection: sa.Connection):
    """Lift the statement deadlines for the rest of ``connection``'s current
    transaction: an operator's long job (a migration, pruning the audit log),
    never a request."""
    raw = connection.connection.dbapi_connection
    if not isinstance(raw, DeadlineConnection):
        yield
        return
    connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
    limit, raw.wait_limit = raw.wait_limit, None
    try:
        yield
    finally:
        raw.wait_limit = limit
