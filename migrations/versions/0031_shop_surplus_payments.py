"""surplus payments: a refund may return one payment whole; the reconciliation's index of
paid payments covers surplus ones too

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06 12:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

PAID = "status = 'paid'"
PAID_OR_SURPLUS = "status IN ('paid', 'surplus')"
HAS_PAYMENT = "payment_id IS NOT NULL"


def upgrade():
    with op.batch_alter_table("shop_refund", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_id", sa.BigInteger(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_shop_refund_payment_id_shop_payment"),
            "shop_payment",
            ["payment_id"],
            ["id"],
        )
        batch_op.create_index(
            "uq_shop_refund_payment",
            ["brand_id", "payment_id"],
            unique=True,
            postgresql_where=sa.text(HAS_PAYMENT),
        )
    with op.batch_alter_table("shop_payment", schema=None) as batch_op:
        batch_op.drop_index("ix_shop_payment_paid", postgresql_where=sa.text(PAID))
        batch_op.create_index(
            "ix_shop_payment_paid",
            ["brand_id", "paid_at"],
            unique=False,
            postgresql_where=sa.text(PAID_OR_SURPLUS),
        )


def downgrade():
    with op.batch_alter_table("shop_payment", schema=None) as batch_op:
        batch_op.drop_index("ix_shop_payment_paid", postgresql_where=sa.text(PAID_OR_SURPLUS))
        batch_op.create_index(
            "ix_shop_payment_paid",
            ["brand_id", "paid_at"],
            unique=False,
            postgresql_where=sa.text(PAID),
        )
    with op.batch_alter_table("shop_refund", schema=None) as batch_op:
        batch_op.drop_index("uq_shop_refund_payment", postgresql_where=sa.text(HAS_PAYMENT))
        batch_op.drop_constraint(
            batch_op.f("fk_shop_refund_payment_id_shop_payment"), type_="foreignkey"
        )
        batch_op.drop_column("payment_id")
