"""Coupon templates, coupons, their stock ledger, redemptions, shares and the points mall.

Invariants live in the database: a template's ``issued`` never passes its ``stock``
(``CHECK``), a coupon code is unique per brand, every issuance and redemption carries a
unique idempotency key, and a third-party code belongs to at most one coupon.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import Audited
from core.db import BigId, IdMixin, TimestampMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped

# Template kinds.
CASH, PERCENT, GIFT, EXCHANGE, SHIPPING, THIRD_PARTY = (
    "cash",
    "percent",
    "gift",
    "exchange",
    "shipping",
    "third_party",
)
KINDS = (CASH, PERCENT, GIFT, EXCHANGE, SHIPPING, THIRD_PARTY)

# Coupon statuses. ``transferred``: passed to a friend, who holds a new coupon and code.
AVAILABLE, REDEEMED, EXPIRED, TRANSFERRED, VOID = (
    "available",
    "redeemed",
    "expired",
    "transferred",
    "void",
)

# Where a coupon came from.
SOURCES = ("claim", "bulk", "mall", "welcome", "share", "game", "campaign", "console")


class CouponTemplate(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """What a coupon is worth, where and when it can be used, and how many exist."""

    __tablename__ = "coupon_template"
    __table_args__ = (
        CheckConstraint("issued >= 0", name="issued_not_negative"),
        CheckConstraint("stock IS NULL OR issued <= stock", name="issued_within_stock"),
        CheckConstraint("value_fen >= 0 AND threshold_fen >= 0 AND cap_fen >= 0", name="money"),
        CheckConstraint("percent_off >= 0 AND percent_off < 100", name="percent_off"),
    )

    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    value_fen: Mapped[int] = mapped_column(Integer, default=0)  # cash off
    threshold_fen: Mapped[int] = mapped_column(Integer, default=0)  # minimum order amount
    percent_off: Mapped[int] = mapped_column(Integer, default=0)  # 20 = 20% off (8折)
    cap_fen: Mapped[int] = mapped_column(Integer, default=0)  # max discount, 0 = none
    gift_name: Mapped[str] = mapped_column(String(120), default="")
    valid_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    valid_days: Mapped[int | None] = mapped_column(Integer)  # N days after issue, brand tz
    store_ids: Mapped[list] = mapped_column(JSON, default=list)  # empty: every store
    categories: Mapped[list] = mapped_column(JSON, default=list)
    product_ids: Mapped[list] = mapped_column(JSON, default=list)
    stock: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    issued: Mapped[int] = mapped_column(Integer, default=0)
    per_member_limit: Mapped[int] = mapped_column(Integer, default=0)  # 0: no limit
    per_day_limit: Mapped[int] = mapped_column(Integer, default=0)  # per member per local day
    stackable: Mapped[bool] = mapped_column(Boolean, default=False)
    shareable: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def remaining(self) -> int | None:
        return None if self.stock is None else self.stock - self.issued


class CouponStockEntry(IdMixin, BrandScoped, db.Model):
    """Append-only stock ledger: every change of a template's ``issued`` (issue, import)."""

    __tablename__ = "coupon_stock_entry"
    __table_args__ = (UniqueConstraint("brand_id", "idempotency_key"),)

    template_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupon_template.id"), index=True)
    delta_issued: Mapped[int] = mapped_column(Integer, default=0)
    delta_stock: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(40))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Coupon(IdMixin, BrandScoped, db.Model):
    """One coupon held by one member, with its own unguessable code."""

    __tablename__ = "coupon"
    __table_args__ = (
        UniqueConstraint("brand_id", "code"),
        UniqueConstraint("brand_id", "idempotency_key"),
        Index("ix_coupon_member_status", "member_id", "status"),
        Index("ix_coupon_template", "template_id"),
        Index("ix_coupon_due", "valid_until", postgresql_where="status = 'available'"),
        # A brand's coupons to remind of their expiry (coupons.jobs.remind_expiring, hourly).
        Index(
            "ix_coupon_remind_due",
            "brand_id",
            "valid_until",
            postgresql_where="status = 'available' AND reminded_at IS NULL",
        ),
        # Rollups add the coupons issued or expired since their watermark (core.rollups).
        Index("ix_coupon_issued_at", "brand_id", "issued_at"),
        Index(
            "ix_coupon_expired_at",
            "brand_id",
            "expired_at",
            postgresql_where="expired_at IS NOT NULL",
        ),
    )

    template_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupon_template.id"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("member.id"))
    code: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(12), default=AVAILABLE)
    source: Mapped[str] = mapped_column(String(12), default="claim")
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_day: Mapped[dt.date] = mapped_column(Date)  # brand-local day of issue
    valid_from: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    batch_id: Mapped[int | None] = mapped_column(BigId)
    shared_from_id: Mapped[int | None] = mapped_column(BigId)
    partner_code: Mapped[str | None] = mapped_column(String(120))
    redeemed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    redemption_id: Mapped[int | None] = mapped_column(BigId)
    expired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CouponCounter(BrandScoped, db.Model):
    """How many coupons of a template a member got, overall ("all") or on a local day.

    Raised by one conditional upsert (``... DO UPDATE SET n = n + 1 WHERE n < :limit``), so
    concurrent claims of one member cannot pass the limits.
    """

    __tablename__ = "coupon_counter"

    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brand.id"), primary_key=True)
    template_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)  # "all" or "2026-01-31"
    n: Mapped[int] = mapped_column(Integer, default=0)


class IssueBatch(IdMixin, BrandScoped, db.Model):
    """A bulk issuance of one template to a list or a segment of members."""

    __tablename__ = "coupon_issue_batch"
    __table_args__ = (UniqueConstraint("brand_id", "idempotency_key"),)

    template_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupon_template.id"))
    target: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    requested: Mapped[int] = mapped_column(Integer, default=0)
    issued: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    idempotency_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class PartnerCode(IdMixin, BrandScoped, db.Model):
    """A third-party partner's code, imported from a file, handed out to one coupon."""

    __tablename__ = "coupon_partner_code"
    __table_args__ = (
        UniqueConstraint("brand_id", "template_id", "code"),
        UniqueConstraint("coupon_id"),
        Index("ix_partner_code_free", "template_id", "id", postgresql_where="coupon_id IS NULL"),
    )

    template_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupon_template.id"))
    code: Mapped[str] = mapped_column(String(120))
    coupon_id: Mapped[int | None] = mapped_column(BigId)
    assigned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Redemption(IdMixin, BrandScoped, db.Model):
    """One redemption (核销) at a till: who, where, which order; reversed on refund."""

    __tablename__ = "coupon_redemption"
    __table_args__ = (
        UniqueConstraint("brand_id", "idempotency_key"),
        Index("ix_coupon_redemption_store_at", "store_id", "created_at"),
        Index("ix_coupon_redemption_brand_at", "brand_id", "created_at"),
        Index(
            "ix_coupon_redemption_reversed_at",
            "brand_id",
            "reversed_at",
            postgresql_where="reversed_at IS NOT NULL",
        ),
        CheckConstraint("order_amount_fen > 0 AND discount_fen >= 0", name="amounts"),
    )

    coupon_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupon.id"), index=True)
    template_id: Mapped[int] = mapped_column(BigId)
    member_id: Mapped[int] = mapped_column(BigId)
    # None: an online order of the brand's shop that belongs to no store.
    store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("store.id"))
    staff_id: Mapped[int | None] = mapped_column(BigId)
    channel: Mapped[str] = mapped_column(String(10))  # "pos" | "staff" | "online"
    order_id: Mapped[str] = mapped_column(String(64))
    order_amount_fen: Mapped[int] = mapped_column(Integer)
    discount_fen: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="done")  # done | reversed
    reversed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reverse_reason: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponShare(IdMixin, BrandScoped, db.Model):
    """A coupon offered to a friend (social fission); claimed at most once."""

    __tablename__ = "coupon_share"
    __table_args__ = (UniqueConstraint("token"), UniqueConstraint("coupon_id"))

    coupon_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupon.id"))
    sharer_id: Mapped[int] = mapped_column(BigId, ForeignKey("member.id"))
    token: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | claimed
    friend_id: Mapped[int | None] = mapped_column(BigId)
    friend_is_new: Mapped[bool] = mapped_column(Boolean, default=False)
    new_coupon_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class PosKey(IdMixin, BrandScoped, db.Model):
    """A store's POS API key; only its SHA-256 is kept."""

    __tablename__ = "coupon_pos_key"
    __table_args__ = (UniqueConstraint("key_hash"),)

    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("store.id"), index=True)
    label: Mapped[str] = mapped_column(String(80), default="")
    prefix: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class MallItem(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """A coupon or gift offered in the points mall at a price in points."""

    __tablename__ = "coupon_mall_item"
    __table_args__ = (
        CheckConstraint("price_points > 0", name="price"),
        CheckConstraint("sold >= 0 AND (stock IS NULL OR sold <= stock)", name="sold_within_stock"),
    )

    template_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupon_template.id"))
    title: Mapped[str] = mapped_column(String(120))
    price_points: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int | None] = mapped_column(Integer)
    sold: Mapped[int] = mapped_column(Integer, default=0)
    per_member_limit: Mapped[int] = mapped_column(Integer, default=0)
    tier_ids: Mapped[list] = mapped_column(JSON, default=list)  # empty: every tier
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort: Mapped[int] = mapped_column(Integer, default=0)


class MallOrder(IdMixin, BrandScoped, db.Model):
    """One exchange in the mall: the points spent and the coupon issued, one transaction."""

    __tablename__ = "coupon_mall_order"
    __table_args__ = (UniqueConstraint("brand_id", "idempotency_key"),)

    item_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupon_mall_item.id"), index=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("member.id"), index=True)
    points: Mapped[int] = mapped_column(Integer)
    points_entry_id: Mapped[int] = mapped_column(BigId)
    coupon_id: Mapped[int] = mapped_column(BigId)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponSettings(BrandScoped, db.Model):
    """A brand's coupon settings: the welcome coupon and the expiry reminder."""

    __tablename__ = "coupon_settings"

    brand_id: Mapped[int] = mapped_column(BigId, ForeignKey("brand.id"), primary_key=True)
    welcome_template_id: Mapped[int | None] = mapped_column(BigId)
    remind_days: Mapped[int] = mapped_column(Integer, default=3)
    remind_template_id: Mapped[str] = mapped_column(String(64), default="")  # WeChat template
