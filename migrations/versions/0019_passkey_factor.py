"""passkey factor: a customer's passkeys as the second factor of password sign-ins

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 13:10:00.000000

accounts.passkey_factor: true once the customer turned on 2段階認証（パスキー）
on the account page (without an authenticator app). Existing rows: off.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('passkey_factor', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('passkey_factor')
