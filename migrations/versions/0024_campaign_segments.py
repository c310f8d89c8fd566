"""campaigns: saved member segments, the index the tier condition needs, the dashboard rollup

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05 09:50:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "campaign_segment",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("store_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("last_count", sa.Integer(), nullable=True),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("brand_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brand.id"],
            name=op.f("fk_campaign_segment_brand_id_brand"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["staff.id"],
            name=op.f("fk_campaign_segment_created_by_staff"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["store.id"],
            name=op.f("fk_campaign_segment_store_id_store"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_segment")),
    )
    op.create_index(
        op.f("ix_campaign_segment_brand_id"), "campaign_segment", ["brand_id"], unique=False
    )
    op.create_index(
        "ix_campaign_segment_brand_store",
        "campaign_segment",
        ["brand_id", "store_id", "id"],
        unique=False,
    )
    op.create_index("ix_member_brand_tier", "member", ["brand_id", "tier_id"], unique=False)
    op.create_table(
        "campaign_customer_day",
        sa.Column("brand_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("store_key", sa.BigInteger(), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("paid_fen", sa.BigInteger(), nullable=False),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False),
        sa.Column("new_customers", sa.BigInteger(), nullable=False),
        sa.Column("returning_customers", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brand.id"],
            name=op.f("fk_campaign_customer_day_brand_id_brand"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "brand_id", "day", "store_key", name=op.f("pk_campaign_customer_day")
        ),
    )


def downgrade():
    op.drop_table("campaign_customer_day")
    op.drop_index("ix_member_brand_tier", table_name="member")
    op.drop_index("ix_campaign_segment_brand_store", table_name="campaign_segment")
    op.drop_index(op.f("ix_campaign_segment_brand_id"), table_name="campaign_segment")
    op.drop_table("campaign_segment")
