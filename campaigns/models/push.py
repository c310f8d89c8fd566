"""Push campaigns: what is sent to which segment and when, its recipients (materialised once
from the segment, with the holdout flag), the chunks the fan-out works through, the rollup
counters the funnel reads, and each member's contact counter (the frequency cap).

A recipient moves pending -> sending -> sent / failed / skipped by conditional updates only,
so a retried or resumed chunk never sends to a member twice; holdout members are ``held``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import BigId, IdMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped

# campaign status
DRAFT, SCHEDULED, PREPARING, RUNNING, PAUSED, COMPLETED, CANCELLED = (
    "draft",
    "scheduled",
    "preparing",
    "running",
    "paused",
    "completed",
    "cancelled",
)
CAMPAIGN_STATUSES = (DRAFT, SCHEDULED, PREPARING, RUNNING, PAUSED, COMPLETED, CANCELLED)
ACTIVE_STATUSES = (PREPARING, RUNNING)

# channels
TEMPLATE, SUBSCRIBE, MASS, CUSTOMER_SERVICE, SMS, NO_MESSAGE = (
    "template",
    "subscribe",
    "mass",
    "customer_service",
    "sms",
    "none",
)
CHANNELS = (TEMPLATE, SUBSCRIBE, MASS, CUSTOMER_SERVICE, SMS, NO_MESSAGE)

# schedule
NOW, AT, MONTHLY = "now", "at", "monthly"
SCHEDULES = (NOW, AT, MONTHLY)

# recipient state
PENDING, SENDING, SENT, FAILED, SKIPPED, HELD = (
    "pending",
    "sending",
    "sent",
    "failed",
    "skipped",
    "held",
)
# holdout kind of a recipient
TARGET, CAMPAIGN_HOLDOUT, BRAND_HOLDOUT = 0, 1, 2

# chunk state
CHUNK_PENDING, CHUNK_RUNNING, CHUNK_DONE = "pending", "running", "done"

# funnel metrics (rollup counters)
METRICS = (
    "targeted",
    "holdout",
    "sent",
    "failed",
    "skipped",
    "unfollowed",
    "capped",
    "delivered",
    "opened",
    "claimed",
    "redeemed",
    "revenue_fen",
    "discount_fen",
    "purchased",
    "purchase_fen",
)


class Campaign(IdMixin, BrandScoped, db.Model):
    """One push: a coupon and/or a message to a segment, now, at a time, or monthly."""

    __tablename__ = "campaign"
    __table_args__ = (
        Index("ix_campaign_due", "status", "next_run_at"),
        UniqueConstraint("brand_id", "parent_id", "run_key"),
        CheckConstraint("holdout_pct BETWEEN 0 AND 50", name="holdout_pct"),
    )

    name: Mapped[str] = mapped_column(String(60))
    segment_id: Mapped[int | None] = mapped_column(BigId)
    # a store manager's campaign reaches only members of their store
    store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("store.id"))
    coupon_template_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("coupon_template.id"))
    channel: Mapped[str] = mapped_column(String(20), default=TEMPLATE)
    wx_template_id: Mapped[str] = mapped_column(String(128), default="")
    title: Mapped[str] = mapped_column(String(40), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    link_url: Mapped[str] = mapped_column(String(500), default="")
    schedule: Mapped[str] = mapped_column(String(10), default=NOW)
    scheduled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    monthly_day: Mapped[int | None] = mapped_column(SmallInteger)
    monthly_time: Mapped[str | None] = mapped_column(String(5))  # "10:00", brand-local
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    holdout_pct: Mapped[int] = mapped_column(SmallInteger, default=5)
    status: Mapped[str] = mapped_column(String(12), default=DRAFT)
    # a monthly campaign runs as one child campaign per month (run_key "2026-12")
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("campaign.id"))
    run_key: Mapped[str | None] = mapped_column(String(10))
    targeted: Mapped[int] = mapped_column(Integer, default=0)
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)
    cost_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    deferred_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resumes: Mapped[int] = mapped_column(Integer, default=0)
    options: Mapped[dict] = mapped_column(JSON, default=dict)


class CampaignChunk(BrandScoped, db.Model):
    """A keyset range of a campaign's recipients (member ids first..last) sent by one job."""

    __tablename__ = "campaign_chunk"

    campaign_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
    )
    no: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_member_id: Mapped[int] = mapped_column(BigId)
    last_member_id: Mapped[int] = mapped_column(BigId)
    size: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10), default=CHUNK_PENDING)
    # a worker holds the chunk until then; a chunk still running after it was abandoned
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # not before then (quiet hours, a backoff after -1 or 45009)
    available_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CampaignRecipient(db.Model):
    """One member of a campaign's segment: target or holdout, and what became of the push."""

    __tablename__ = "campaign_recipient"
    __table_args__ = (
        Index("ix_campaign_recipient_msgid", "msgid", postgresql_where="msgid IS NOT NULL"),
        Index(
            "ix_campaign_recipient_coupon", "coupon_id", postgresql_where="coupon_id IS NOT NULL"
        ),
        Index("ix_campaign_recipient_member", "brand_id", "member_id"),
    )

    campaign_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(BigId, nullable=False)
    holdout: Mapped[int] = mapped_column(SmallInteger, default=TARGET)
    state: Mapped[str] = mapped_column(String(8), default=PENDING)
    skip_reason: Mapped[str | None] = mapped_column(String(16))
    store_id: Mapped[int | None] = mapped_column(BigId)
    tier_id: Mapped[int | None] = mapped_column(BigId)
    city: Mapped[str | None] = mapped_column(String(60))
    coupon_id: Mapped[int | None] = mapped_column(BigId)
    msgid: Mapped[int | None] = mapped_column(BigInteger)
    contact_taken: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revenue_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    discount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    purchased: Mapped[bool] = mapped_column(Boolean, default=False)
    purchase_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class CampaignCounter(db.Model):
    """A rollup of one funnel metric of a campaign, overall (dim "") or by store, city or
    tier, raised by the same transaction as each state change (never counted per view)."""

    __tablename__ = "campaign_counter"

    campaign_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
    )
    dim: Mapped[str] = mapped_column(String(8), primary_key=True)  # "", store, city, tier
    dim_key: Mapped[str] = mapped_column(String(60), primary_key=True)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    # group: 0 target, 1 campaign holdout, 2 brand holdout
    grp: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    brand_id: Mapped[int] = mapped_column(BigId, nullable=False, index=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class MemberContact(db.Model):
    """How often campaigns reached a member on their current day and week (brand-local): one
    row per member raised by one conditional upsert, so the cap holds across campaigns,
    channels and workers exactly. ``mass_n`` counts mass messages in ``mass_month``."""

    __tablename__ = "campaign_member_contact"
    __table_args__ = (CheckConstraint("day_n >= 0 AND week_n >= 0 AND mass_n >= 0", name="counts"),)

    brand_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date)
    day_n: Mapped[int] = mapped_column(Integer, default=0)
    week: Mapped[dt.date] = mapped_column(Date)  # the Monday of the week
    week_n: Mapped[int] = mapped_column(Integer, default=0)
    mass_month: Mapped[str] = mapped_column(String(7), default="")
    mass_n: Mapped[int] = mapped_column(Integer, default=0)


class CampaignSettings(BrandScoped, db.Model):
    """A brand's push rules: frequency cap, quiet hours, send rate, default holdout."""

    __tablename__ = "campaign_settings"
    __table_args__ = (
        UniqueConstraint("brand_id"),
        CheckConstraint("per_day >= 1 AND per_week >= per_day", name="cap"),
        CheckConstraint("quiet_start BETWEEN 0 AND 23 AND quiet_end BETWEEN 0 AND 23", name="qh"),
        CheckConstraint("rate_per_second BETWEEN 1 AND 5000", name="rate"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    per_day: Mapped[int] = mapped_column(SmallInteger, default=1)
    per_week: Mapped[int] = mapped_column(SmallInteger, default=3)
    quiet_start: Mapped[int] = mapped_column(SmallInteger, default=21)
    quiet_end: Mapped[int] = mapped_column(SmallInteger, default=8)
    rate_per_second: Mapped[int] = mapped_column(Integer, default=200)
    coupon_notice_template_id: Mapped[str] = mapped_column(String(128), default="")
