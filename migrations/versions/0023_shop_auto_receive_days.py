"""shop rules: days after shipping before a parcel counts as received (10 by default)

Revision ID: 0023
Revises: 0017
Create Date: 2026-12-05 09:18:30

"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("shop_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("auto_receive_days", sa.Integer(), nullable=False, server_default="10")
        )
        batch_op.create_check_constraint("auto_receive", "auto_receive_days BETWEEN 3 AND 30")
    with op.batch_alter_table("shop_settings", schema=None) as batch_op:
        batch_op.alter_column("auto_receive_days", server_default=None)


def downgrade():
    with op.batch_alter_table("shop_settings", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_shop_settings_auto_receive"), type_="check")
        batch_op.drop_column("auto_receive_days")
