"""one kana rule: recompute every contract's kana_key

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 06:00:00

Keys made by the earlier rule kept 中黒 (・), iteration marks and small kana,
which registration then could never match. The key is recomputed with the
one rule that import and registration now share (idp.contracts.kana_key);
no column changes.
"""
import re
import unicodedata

from alembic import op
import sqlalchemy as sa

from idp.contracts import kana_key

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

contracts = sa.table("contracts", sa.column("id", sa.Integer), sa.column("name_kana", sa.String),
                     sa.column("kana_key", sa.String))


def upgrade():
    _rekey(kana_key)


def downgrade():
    # The earlier rule: NFKC, without spaces.
    _rekey(lambda name: re.sub(r"\s+", "", unicodedata.normalize("NFKC", name)))


def _rekey(rule) -> None:
    connection = op.get_bind()
    for row in connection.execute(sa.select(contracts.c.id, contracts.c.name_kana, contracts.c.kana_key)).all():
        key = rule(row.name_kana)
        if key != row.kana_key:
            connection.execute(contracts.update().where(contracts.c.id == row.id).values(kana_key=key))
