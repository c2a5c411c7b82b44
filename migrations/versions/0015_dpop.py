"""DPoP (RFC 9449): bound tokens and codes, and used proofs

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 12:00:00.000000

tokens.dpop_jkt: the thumbprint of the key an access token (and a public
client's refresh token) is bound to; NULL for Bearer tokens, which every
existing row is. authorization_codes.dpop_jkt: the key the authorization
request named (dpop_jkt). used_dpop_proofs: proof jtis already seen, when
no Redis is configured (oauth/dpop.py).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpop_jkt', sa.String(length=64), nullable=True))
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpop_jkt', sa.String(length=64), nullable=True))
    op.create_table('used_dpop_proofs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_used_dpop_proofs')),
    sa.UniqueConstraint('digest', name=op.f('uq_used_dpop_proofs_digest'))
    )
    with op.batch_alter_table('used_dpop_proofs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_used_dpop_proofs_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('used_dpop_proofs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_dpop_proofs_expires_at'))
    op.drop_table('used_dpop_proofs')
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_column('dpop_jkt')
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_column('dpop_jkt')
