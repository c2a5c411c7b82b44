"""Flask extensions, created once and bound to an app in create_app()."""

from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
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
