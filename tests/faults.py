"""Failures injected where our code does not decide: the database itself."""

from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa

from idp.extensions import db

SQLITE = ["CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'refused'); END"]
POSTGRESQL = [
    "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation'; END $$",
    "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
]
DROP = {"sqlite": ["DROP TRIGGER refuse_audit"],
        "postgresql": ["DROP TRIGGER refuse_audit ON audit_events", "DROP FUNCTION refuse_audit()"]}


@contextmanager
def audit_rows_refused(app):
    """While inside, the database refuses every new audit row (a constraint
    violation when the transaction writing it flushes), so that whatever
    was to commit with that row must not commit either."""
    with app.app_context():
        dialect = db.engine.dialect.name
        with db.engine.begin() as conn:
            for statement in SQLITE if dialect == "sqlite" else POSTGRESQL:
                conn.execute(sa.text(statement))
    try:
        yield
    finally:
        with app.app_context(), db.engine.begin() as conn:
            for statement in DROP[dialect]:
                conn.execute(sa.text(statement))
