"""points lots: the expiry index holds only lots with points left

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 10:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("points_lot", schema=None) as batch_op:
        batch_op.create_index(
            "ix_points_lot_open_expiry",
            ["brand_id", "expires_at"],
            unique=False,
            postgresql_where=sa.text("remaining > 0"),
        )
        batch_op.drop_index("ix_points_lot_expiry")


def downgrade():
    with op.batch_alter_table("points_lot", schema=None) as batch_op:
        batch_op.create_index("ix_points_lot_expiry", ["brand_id", "expires_at"], unique=False)
        batch_op.drop_index("ix_points_lot_open_expiry", postgresql_where=sa.text("remaining > 0"))
