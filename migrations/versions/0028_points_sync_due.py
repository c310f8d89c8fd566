"""points sync: the accounts due a WeChat sync found through an index; members' card codes

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("points_account", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "sync_due",
                sa.Boolean(),
                sa.Computed("last_entry_id > synced_entry_id", persisted=True),
                nullable=True,
            )
        )
        batch_op.create_index(
            "ix_points_account_sync_due",
            ["brand_id", "id"],
            unique=False,
            postgresql_where=sa.text("sync_due"),
        )
    with op.batch_alter_table("member_card_code", schema=None) as batch_op:
        batch_op.create_index(
            "ix_member_card_code_member", ["member_id", "activated_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("member_card_code", schema=None) as batch_op:
        batch_op.drop_index("ix_member_card_code_member")
    with op.batch_alter_table("points_account", schema=None) as batch_op:
        batch_op.drop_index("ix_points_account_sync_due", postgresql_where=sa.text("sync_due"))
        batch_op.drop_column("sync_due")
