"""revoked_access_tokens: client_credentials access tokens are no longer stored

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 19:00:00.000000

A client_credentials access token is a self-contained RFC 9068 JWT, checked
by its signature; only a revocation is written, as one row here (its jti),
kept until the token would have expired. The rows such tokens left in
tokens stay until they expire, as before: introspection still finds them.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('revoked_access_tokens',
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('revoked_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('jti', name=op.f('pk_revoked_access_tokens'))
    )
    with op.batch_alter_table('revoked_access_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revoked_access_tokens_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('revoked_access_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revoked_access_tokens_expires_at'))
    op.drop_table('revoked_access_tokens')
