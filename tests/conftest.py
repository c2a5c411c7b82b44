"""Fixtures: app, client, runner; a real database per run; an injectable clock.

The suite runs on SQLite by default and on PostgreSQL when
IDP_TEST_DATABASE_URL is set (``make test`` does both). The schema is built
by the migrations, once per run; each test starts from empty tables.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from idp import create_app
from idp.extensions import db

from .helpers import FakeDNS, FrozenClock, RelyingParty

ISSUER = "https://id.example.test"
FIXTURE_CONTRACTS = Path(__file__).resolve().parents[1] / "idp" / "demo" / "contracts.csv"
# Kept between tests: generating RSA keys per test would only cost time.
KEPT_TABLES = {"signing_keys", "alembic_version"}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("IDP_TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            # Start from nothing: whatever an earlier run left is dropped.
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    except sa.exc.OperationalError as error:
        message = f"PostgreSQL at {url} is not reachable: {error.orig}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message + " (set CI=1 to make this a failure)")
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def _schema(database_url):
    from flask_migrate import upgrade

    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "x" * 40, "ISSUER": ISSUER, "MIGRATIONS": True})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return database_url


@pytest.fixture
def clock() -> FrozenClock:
    # Ten minutes in the past, so that a test may advance it without issuing
    # tokens from the future (an RP library rejects those).
    return FrozenClock(int(time.time()) - 600)


@pytest.fixture
def mail_server():
    """A real SMTP server on a free loopback port."""
    from .mailserver import MailServer, free_port

    server = MailServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def dns(monkeypatch):
    """Made-up host names and what they resolve to (FakeDNS)."""
    fake = FakeDNS(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    yield fake
    fake.release()


@pytest.fixture
def config_overrides() -> dict:
    """Override by name in a test module to change settings."""
    return {}


def make_test_app(database_url: str, clock, overrides: dict | None = None):
    """The OP as the tests run it (``app``; a module may keep one for all its tests)."""
    return create_app(
        {"DATABASE_URL": database_url, "SECRET_KEY": "test-secret-" + "x" * 32,
         "PAIRWISE_SECRET": "test-pairwise-" + "x" * 32, "ISSUER": ISSUER, **(overrides or {})},
        clock=clock,
    )


def empty_tables(app) -> None:
    """Remove every row the tests wrote (the kept tables' stay) and close the app's connections."""
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                if table.name not in KEPT_TABLES:
                    conn.execute(table.delete())
        db.engine.dispose()


@pytest.fixture
def app(_schema, clock, config_overrides):
    """The OP. No app context stays pushed: each request gets its own, as in
    production (a pushed context would share ``g`` between requests). Tests
    that touch the database directly use ``with app.app_context():``."""
    app = make_test_app(_schema, clock, config_overrides)
    yield app
    empty_tables(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def contracts(app):
    from idp.contracts import import_contracts

    with app.app_context():
        import_contracts(FIXTURE_CONTRACTS.read_text(encoding="utf-8"))
        db.session.commit()


@pytest.fixture
def account(app, contracts):
    """The demo customer's iTSCOM ID; returns its database id."""
    from idp.accounts import create_account

    with app.app_context():
        account = create_account("2005128462", "taro.itsu@example.jp", "itscom-demo1")
        db.session.commit()
        return account.id


@pytest.fixture
def rp(app, client, account) -> RelyingParty:
    """A confidential first-party client with a customer ready to sign in."""
    return RelyingParty.register(app, client, first_party=True)
