"""pushed authorization requests (RFC 9126)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 12:00:00.000000

A client pushes its authorization request (POST /par) and the browser brings
only the request_uri to /authorize. Each row lives at most 60 seconds and is
deleted by its one use. Pairwise subjects and require_pushed_authorization_requests
are client metadata (clients.client_metadata, JSON): no column for them.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pushed_requests',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_pushed_requests'))
    )
    op.create_index(op.f('ix_pushed_requests_client_id'), 'pushed_requests', ['client_id'], unique=False)
    op.create_index(op.f('ix_pushed_requests_expires_at'), 'pushed_requests', ['expires_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_pushed_requests_expires_at'), table_name='pushed_requests')
    op.drop_index(op.f('ix_pushed_requests_client_id'), table_name='pushed_requests')
    op.drop_table('pushed_requests')
