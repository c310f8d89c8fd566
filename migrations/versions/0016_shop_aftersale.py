"""shop fulfilment and refunds: open pick-up codes unique, the fulfilment sweeps' indexes,
a till refund's idempotency key, restock flag and operator

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 06:30:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('shop_refund', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('restock', sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('operator', sa.String(length=120), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f('uq_shop_refund_brand_id_idempotency_key'), ['brand_id', 'idempotency_key']
        )
    with op.batch_alter_table('shop_order', schema=None) as batch_op:
        batch_op.create_index(
            'uq_shop_order_open_pickup', ['brand_id', 'pickup_code'], unique=True,
            postgresql_where="status = 'ready' AND pickup_code IS NOT NULL",
        )
        batch_op.create_index(
            'ix_shop_order_shipped_due', ['shipped_at'], unique=False,
            postgresql_where="status = 'shipped'",
        )
        batch_op.create_index(
            'ix_shop_order_received_due', ['received_at'], unique=False,
            postgresql_where="status = 'received'",
        )


def downgrade():
    with op.batch_alter_table('shop_order', schema=None) as batch_op:
        batch_op.drop_index('ix_shop_order_received_due', postgresql_where="status = 'received'")
        batch_op.drop_index('ix_shop_order_shipped_due', postgresql_where="status = 'shipped'")
        batch_op.drop_index(
            'uq_shop_order_open_pickup',
            postgresql_where="status = 'ready' AND pickup_code IS NOT NULL",
        )
    with op.batch_alter_table('shop_refund', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('uq_shop_refund_brand_id_idempotency_key'), type_='unique'
        )
        batch_op.drop_column('operator')
        batch_op.drop_column('idempotency_key')
        batch_op.drop_column('restock')
