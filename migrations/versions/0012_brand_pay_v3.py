"""WeChat Pay APIv3 merchant settings of a brand (the v2 API key goes)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 06:30:00

"""
import sqlalchemy as sa
from alembic import op

import core.crypto

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('brand', sa.Column('pay_apiv3_key', core.crypto.EncryptedText(), nullable=True))
    op.add_column(
        'brand', sa.Column('pay_private_key', core.crypto.EncryptedText(), nullable=True)
    )
    op.add_column('brand', sa.Column('pay_cert_serial_no', sa.String(length=64), nullable=True))
    op.add_column('brand', sa.Column('pay_public_key', sa.Text(), nullable=True))
    op.add_column('brand', sa.Column('pay_public_key_id', sa.String(length=64), nullable=True))
    op.drop_column('brand', 'pay_key')


def downgrade():
    op.add_column('brand', sa.Column('pay_key', core.crypto.EncryptedText(), nullable=True))
    op.drop_column('brand', 'pay_public_key_id')
    op.drop_column('brand', 'pay_public_key')
    op.drop_column('brand', 'pay_cert_serial_no')
    op.drop_column('brand', 'pay_private_key')
    op.drop_column('brand', 'pay_apiv3_key')
