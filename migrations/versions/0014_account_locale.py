"""accounts.locale: the language the customer uses iTSCOM ID in

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 09:30:00.000000

"ja" or "en": the language of the customer's last sign-in, or the one they
picked with a page's 「English」/「日本語」 link while signed in; released as
the OIDC locale claim (profile scope). NULL for accounts that have not
signed in since, which the claim calls Japanese as before.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=8), nullable=True))


def downgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('locale')
