"""Tier levels (会员等级), the brand's tier settings and the activity ledger behind them."""

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
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import Audited
from core.db import BigId, IdMixin, TimestampMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped

BASIS_SPEND, BASIS_GROWTH = "spend", "growth"
PURCHASE, REFUND, GROWTH = "purchase", "refund", "growth"


class TierSettings(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """How a brand's tiers work: one row per brand.

    ``basis``: levels are reached by rolling-12-month spend (fen) or rolling-12-month
    growth value. Upgrades happen at once; downgrades only at the yearly review on
    ``review_month``/``review_day`` (00:00 in the brand's time zone). ``last_review_on`` is
    the review date last applied, which makes the periodic review idempotent.
    ``lapsed_tagged_until`` is the cutoff the hourly lapsed tag last ran to (members whose
    last purchase is older were tagged); the next run looks only past it.
    """

    __tablename__ = "tier_settings"
    __table_args__ = (
        UniqueConstraint("brand_id"),
        CheckConstraint("review_month BETWEEN 1 AND 12", name="review_month"),
        CheckConstraint("review_day BETWEEN 1 AND 28", name="review_day"),
    )

    basis: Mapped[str] = mapped_column(String(10), default=BASIS_SPEND)
    review_month: Mapped[int] = mapped_column(Integer, default=1)
    review_day: Mapped[int] = mapped_column(Integer, default=1)
    # Growth value a purchase earns per yuan spent (refunds take it back).
    growth_per_yuan: Mapped[int] = mapped_column(Integer, default=1)
    last_review_on: Mapped[dt.date | None] = mapped_column(Date)
    lapsed_tagged_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class TierLevel(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """A level (普通会员 / 银卡 / 金卡): reached at ``threshold`` fen spent or growth value."""

    __tablename__ = "tier_level"
    __table_args__ = (
        UniqueConstraint("brand_id", "code"),
        UniqueConstraint("brand_id", "rank"),
        CheckConstraint("threshold >= 0", name="threshold"),
        CheckConstraint("points_multiplier_permille >= 0", name="multiplier"),
    )

    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(60))
    rank: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(BigInteger, default=0)
    # 1000 = x1.0, 1500 = x1.5 points on purchases (integer per-mille, never a float).
    points_multiplier_permille: Mapped[int] = mapped_column(Integer, default=1000)
    birthday_gift: Mapped[str] = mapped_column(String(200), default="")
    # Structured birthday gift for the points/coupons issue, e.g. {"points": 200}.
    birthday_gift_config: Mapped[dict] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class MemberActivity(IdMixin, BrandScoped, db.Model):
    """Append-only ledger of purchases, refunds and growth; the source of tier values.

    ``amount_fen`` is signed (a refund is negative), ``growth`` likewise. The idempotency key
    is the source event (an order number, a POS receipt), unique per brand.
    """

    __tablename__ = "member_activity"
    __table_args__ = (
        UniqueConstraint("brand_id", "idempotency_key"),
        Index("ix_member_activity_member_at", "member_id", "occurred_at"),
    )

    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("member.id"))
    kind: Mapped[str] = mapped_column(String(10))
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    growth: Mapped[int] = mapped_column(BigInteger, default=0)
    store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("store.id"))
    idempotency_key: Mapped[str] = mapped_column(String(120))
    note: Mapped[str] = mapped_column(String(200), default="")
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
