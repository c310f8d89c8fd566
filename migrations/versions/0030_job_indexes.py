"""indexes for the periodic jobs: reminders, game figures, transfers, reconciliation

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 11:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

REMIND = "status = 'available' AND reminded_at IS NULL"
IN_FLIGHT = "state IN ('transferring', 'wait_confirm')"
PAID = "status = 'paid'"


def upgrade():
    with op.batch_alter_table("coupon", schema=None) as batch_op:
        batch_op.create_index(
            "ix_coupon_remind_due",
            ["brand_id", "valid_until"],
            unique=False,
            postgresql_where=sa.text(REMIND),
        )
    with op.batch_alter_table("game_player", schema=None) as batch_op:
        batch_op.create_index(
            "ix_game_player_first_play", ["campaign_id", "first_play_at"], unique=False
        )
    with op.batch_alter_table("guide_payout", schema=None) as batch_op:
        batch_op.create_index(
            "ix_guide_payout_in_flight",
            ["updated_at"],
            unique=False,
            postgresql_where=sa.text(IN_FLIGHT),
        )
    with op.batch_alter_table("shop_payment", schema=None) as batch_op:
        batch_op.create_index(
            "ix_shop_payment_paid",
            ["brand_id", "paid_at"],
            unique=False,
            postgresql_where=sa.text(PAID),
        )


def downgrade():
    with op.batch_alter_table("shop_payment", schema=None) as batch_op:
        batch_op.drop_index("ix_shop_payment_paid", postgresql_where=sa.text(PAID))
    with op.batch_alter_table("guide_payout", schema=None) as batch_op:
        batch_op.drop_index("ix_guide_payout_in_flight", postgresql_where=sa.text(IN_FLIGHT))
    with op.batch_alter_table("game_player", schema=None) as batch_op:
        batch_op.drop_index("ix_game_player_first_play")
    with op.batch_alter_table("coupon", schema=None) as batch_op:
        batch_op.drop_index("ix_coupon_remind_due", postgresql_where=sa.text(REMIND))
