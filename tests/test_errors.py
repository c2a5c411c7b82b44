"""Which failures are outages (503, one log line) and which are bugs (500,
traceback in the log). The outage itself, on a real PostgreSQL that stops
and starts, is tested in tests/scaleout/test_database_outage.py."""

import os
import sqlite3

import pytest
import sqlalchemy as sa

from idp.extensions import db


def _logged(caplog):
    return [r for r in caplog.records if r.name == "idp"]


def test_a_bug_in_sql_stays_a_500_with_its_traceback(app, client, caplog):
    """On SQLite a missing table is an OperationalError too, yet no outage."""
    @app.route("/test/bug")
    def bug():
        db.session.execute(sa.text("SELECT * FROM no_such_table"))
        return "unreachable"

    response = client.get("/test/bug")
    assert response.status_code == 500 and "Retry-After" not in response.headers
    [record] = _logged(caplog)
    assert record.exc_info is not None and "no_such_table" in str(record.exc_info[1])


@pytest.mark.skipif(bool(os.environ.get("IDP_TEST_DATABASE_URL")), reason="SQLite's own locking")
def test_a_sqlite_database_locked_by_another_process_is_an_outage(app, client, caplog):
    locker = sqlite3.connect(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    try:
        locker.execute("BEGIN EXCLUSIVE")  # as a long write elsewhere would
        client.set_cookie("idp_session", "some-session")
        response = client.get("/account/")
    finally:
        locker.rollback()
        locker.close()
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    [record] = _logged(caplog)
    assert record.exc_info is None
    assert record.getMessage() == "database unavailable: GET /account/: database is locked"
