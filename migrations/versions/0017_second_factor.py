"""Second factor: TOTP authenticators, recovery codes, and how a session authenticated

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 12:00:00.000000

- totp_factors: one confirmed authenticator per account (sealed secret, the
  last time step accepted);
- recovery_codes: digests of single-use codes standing in for it;
- login_sessions.amr and authorization_codes.amr: the RFC 8176 methods of
  the sign-in ("pwd", "pwd otp mfa"), for the ID token's amr and acr. NULL
  in rows from before: a password.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'totp_factors',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('secret', sa.Text(), nullable=False),
        sa.Column('last_step', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_totp_factors_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_totp_factors')),
        sa.UniqueConstraint('account_id', name=op.f('uq_totp_factors_account_id')),
    )
    op.create_table(
        'recovery_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('code_digest', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('used_at', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_recovery_codes_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes')),
        sa.UniqueConstraint('code_digest', name=op.f('uq_recovery_codes_code_digest')),
    )
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_codes_account_id'), ['account_id'], unique=False)
    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amr', sa.String(length=64), nullable=True))
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amr', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_column('amr')
    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.drop_column('amr')
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_codes_account_id'))
    op.drop_table('recovery_codes')
    op.drop_table('totp_factors')
