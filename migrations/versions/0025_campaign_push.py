"""campaigns: push campaigns, their recipients, chunks, rollup counters, the members' contact
counter (frequency cap) and each brand's push rules

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05 09:31:23.102167

"""

import sqlalchemy as sa
from alembic import op

import core.db

# revision identifiers, used by Alembic.
revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "campaign_member_contact",
        sa.Column("brand_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("day_n", sa.Integer(), nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("week_n", sa.Integer(), nullable=False),
        sa.Column("mass_month", sa.String(length=7), nullable=False),
        sa.Column("mass_n", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "day_n >= 0 AND week_n >= 0 AND mass_n >= 0",
            name=op.f("ck_campaign_member_contact_counts"),
        ),
        sa.PrimaryKeyConstraint("brand_id", "member_id", name=op.f("pk_campaign_member_contact")),
    )
    op.create_table(
        "campaign_settings",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("per_day", sa.SmallInteger(), nullable=False),
        sa.Column("per_week", sa.SmallInteger(), nullable=False),
        sa.Column("quiet_start", sa.SmallInteger(), nullable=False),
        sa.Column("quiet_end", sa.SmallInteger(), nullable=False),
        sa.Column("rate_per_second", sa.Integer(), nullable=False),
        sa.Column("coupon_notice_template_id", sa.String(length=128), nullable=False),
        sa.Column("brand_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "per_day >= 1 AND per_week >= per_day", name=op.f("ck_campaign_settings_cap")
        ),
        sa.CheckConstraint(
            "quiet_start BETWEEN 0 AND 23 AND quiet_end BETWEEN 0 AND 23",
            name=op.f("ck_campaign_settings_qh"),
        ),
        sa.CheckConstraint(
            "rate_per_second BETWEEN 1 AND 5000", name=op.f("ck_campaign_settings_rate")
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brand.id"],
            name=op.f("fk_campaign_settings_brand_id_brand"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_settings")),
        sa.UniqueConstraint("brand_id", name=op.f("uq_campaign_settings_brand_id")),
    )
    with op.batch_alter_table("campaign_settings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_settings_brand_id"), ["brand_id"], unique=False
        )

    op.create_table(
        "campaign",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("segment_id", sa.BigInteger(), nullable=True),
        sa.Column("store_id", sa.BigInteger(), nullable=True),
        sa.Column("coupon_template_id", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("wx_template_id", sa.String(length=128), nullable=False),
        sa.Column("title", sa.String(length=40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link_url", sa.String(length=500), nullable=False),
        sa.Column("schedule", sa.String(length=10), nullable=False),
        sa.Column("scheduled_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("monthly_day", sa.SmallInteger(), nullable=True),
        sa.Column("monthly_time", sa.String(length=5), nullable=True),
        sa.Column("next_run_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("holdout_pct", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("run_key", sa.String(length=10), nullable=True),
        sa.Column("targeted", sa.Integer(), nullable=False),
        sa.Column("chunks_total", sa.Integer(), nullable=False),
        sa.Column("cost_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deferred_until", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resumes", sa.Integer(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("holdout_pct BETWEEN 0 AND 50", name=op.f("ck_campaign_holdout_pct")),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brand.id"], name=op.f("fk_campaign_brand_id_brand"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["coupon_template_id"],
            ["coupon_template.id"],
            name=op.f("fk_campaign_coupon_template_id_coupon_template"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["campaign.id"], name=op.f("fk_campaign_parent_id_campaign")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["store.id"], name=op.f("fk_campaign_store_id_store")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign")),
        sa.UniqueConstraint(
            "brand_id", "parent_id", "run_key", name=op.f("uq_campaign_brand_id_parent_id_run_key")
        ),
    )
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_brand_id"), ["brand_id"], unique=False)
        batch_op.create_index("ix_campaign_due", ["status", "next_run_at"], unique=False)

    op.create_table(
        "campaign_chunk",
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("no", sa.Integer(), nullable=False),
        sa.Column("first_member_id", sa.BigInteger(), nullable=False),
        sa.Column("last_member_id", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("lease_until", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("available_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("finished_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("brand_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brand.id"],
            name=op.f("fk_campaign_chunk_brand_id_brand"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
            name=op.f("fk_campaign_chunk_campaign_id_campaign"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "no", name=op.f("pk_campaign_chunk")),
    )
    with op.batch_alter_table("campaign_chunk", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_chunk_brand_id"), ["brand_id"], unique=False)

    op.create_table(
        "campaign_counter",
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("dim", sa.String(length=8), nullable=False),
        sa.Column("dim_key", sa.String(length=60), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("grp", sa.SmallInteger(), nullable=False),
        sa.Column("brand_id", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
            name=op.f("fk_campaign_counter_campaign_id_campaign"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id", "dim", "dim_key", "metric", "grp", name=op.f("pk_campaign_counter")
        ),
    )
    with op.batch_alter_table("campaign_counter", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_counter_brand_id"), ["brand_id"], unique=False
        )

    op.create_table(
        "campaign_recipient",
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("brand_id", sa.BigInteger(), nullable=False),
        sa.Column("holdout", sa.SmallInteger(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("skip_reason", sa.String(length=16), nullable=True),
        sa.Column("store_id", sa.BigInteger(), nullable=True),
        sa.Column("tier_id", sa.BigInteger(), nullable=True),
        sa.Column("city", sa.String(length=60), nullable=True),
        sa.Column("coupon_id", sa.BigInteger(), nullable=True),
        sa.Column("msgid", sa.BigInteger(), nullable=True),
        sa.Column("contact_taken", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("sent_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("opened_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("redeemed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revenue_fen", sa.BigInteger(), nullable=False),
        sa.Column("discount_fen", sa.BigInteger(), nullable=False),
        sa.Column("purchased", sa.Boolean(), nullable=False),
        sa.Column("purchase_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
            name=op.f("fk_campaign_recipient_campaign_id_campaign"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "member_id", name=op.f("pk_campaign_recipient")),
    )
    with op.batch_alter_table("campaign_recipient", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_recipient_coupon",
            ["coupon_id"],
            unique=False,
            postgresql_where="coupon_id IS NOT NULL",
        )
        batch_op.create_index(
            "ix_campaign_recipient_member", ["brand_id", "member_id"], unique=False
        )
        batch_op.create_index(
            "ix_campaign_recipient_msgid",
            ["msgid"],
            unique=False,
            postgresql_where="msgid IS NOT NULL",
        )


def downgrade():
    with op.batch_alter_table("campaign_recipient", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_recipient_msgid", postgresql_where="msgid IS NOT NULL")
        batch_op.drop_index("ix_campaign_recipient_member")
        batch_op.drop_index(
            "ix_campaign_recipient_coupon", postgresql_where="coupon_id IS NOT NULL"
        )

    op.drop_table("campaign_recipient")
    with op.batch_alter_table("campaign_counter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_counter_brand_id"))

    op.drop_table("campaign_counter")
    with op.batch_alter_table("campaign_chunk", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_chunk_brand_id"))

    op.drop_table("campaign_chunk")
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_due")
        batch_op.drop_index(batch_op.f("ix_campaign_brand_id"))

    op.drop_table("campaign")
    with op.batch_alter_table("campaign_settings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_settings_brand_id"))

    op.drop_table("campaign_settings")
    op.drop_table("campaign_member_contact")
