"""one first signing key per algorithm

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 06:00:00.000000

Workers starting together on an empty database each created their own
first keys. A first key now signs from activates_at = 0, and this partial
unique index admits one per algorithm: the other workers' inserts fail and
they use the winner's. Existing keys all have a real activates_at, so
nothing already stored conflicts.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

FIRST_KEY = sa.text("activates_at = 0")


def upgrade():
    with op.batch_alter_table('signing_keys', schema=None) as batch_op:
        batch_op.create_index('uq_signing_keys_first_key_alg', ['alg'], unique=True,
                              postgresql_where=FIRST_KEY, sqlite_where=FIRST_KEY)


def downgrade():
    with op.batch_alter_table('signing_keys', schema=None) as batch_op:
        batch_op.drop_index('uq_signing_keys_first_key_alg')
