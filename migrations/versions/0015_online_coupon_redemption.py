"""coupon redemptions of online shop orders, which may belong to no store

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-05 06:20:00

"""
from alembic import op


revision = '0015'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('coupon_redemption', schema=None) as batch_op:
        batch_op.alter_column('store_id', nullable=True)


def downgrade():
    op.execute("DELETE FROM coupon_redemption WHERE store_id IS NULL")
    with op.batch_alter_table('coupon_redemption', schema=None) as batch_op:
        batch_op.alter_column('store_id', nullable=False)
