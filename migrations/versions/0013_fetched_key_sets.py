"""clients' fetched key sets, shared by every worker

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 07:00:00.000000

A request waits at most 0.1 s for a client's jwks_uri; a fetch that takes
longer finishes in the background. Kept here, one successful fetch serves
every worker and node (and one made when the client registers, before its
first token request), instead of each worker's first request failing.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('fetched_key_sets',
    sa.Column('uri_digest', sa.String(length=64), nullable=False),
    sa.Column('uri', sa.String(length=2048), nullable=False),
    sa.Column('jwks', sa.JSON(), nullable=False),
    sa.Column('fetched_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('uri_digest', name=op.f('pk_fetched_key_sets'))
    )


def downgrade():
    op.drop_table('fetched_key_sets')
