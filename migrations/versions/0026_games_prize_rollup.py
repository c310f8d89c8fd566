"""games: wins per prize and hour (an unlimited prize keeps no counter row of its own)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05 10:40:00.000000

"""

import sqlalchemy as sa
from alembic import op

import core.db

# revision identifiers, used by Alembic.
revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "game_stat_prize_hour",
        sa.Column("prize_id", sa.BigInteger(), nullable=False),
        sa.Column("hour", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
        sa.Column("value_fen", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brand.id"],
            name=op.f("fk_game_stat_prize_hour_brand_id_brand"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["game_campaign.id"],
            name=op.f("fk_game_stat_prize_hour_campaign_id_game_campaign"),
        ),
        sa.ForeignKeyConstraint(
            ["prize_id"],
            ["game_prize.id"],
            name=op.f("fk_game_stat_prize_hour_prize_id_game_prize"),
        ),
        sa.PrimaryKeyConstraint("prize_id", "hour", name=op.f("pk_game_stat_prize_hour")),
    )
    with op.batch_alter_table("game_stat_prize_hour", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_game_stat_prize_hour_brand_id"), ["brand_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_game_stat_prize_hour_campaign_id"), ["campaign_id"], unique=False
        )
    # The wins so far, from the draws (the periodic job keeps the recent hours from then on).
    op.execute(
        "INSERT INTO game_stat_prize_hour (brand_id, prize_id, hour, campaign_id, wins,"
        " value_fen) SELECT brand_id, prize_id,"
        " date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', campaign_id,"
        " count(*), coalesce(sum(value_fen), 0) FROM game_draw"
        " WHERE NOT preview AND prize_id IS NOT NULL GROUP BY 1, 2, 3, 4"
    )


def downgrade():
    with op.batch_alter_table("game_stat_prize_hour", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_game_stat_prize_hour_campaign_id"))
        batch_op.drop_index(batch_op.f("ix_game_stat_prize_hour_brand_id"))
    op.drop_table("game_stat_prize_hour")
