"""What each order is credited to, frozen when the order is created, and the guides'
performance (业绩) ledger with its daily rollup. Commission is computed from the same
snapshot, never from the binding as it is later."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import BigId, IdMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped

# Why the guide was credited: chosen at the till, the customer's binding, a share link
# opened in the last days, or no guide.
SOURCE_TILL, SOURCE_BINDING, SOURCE_SHARE_LINK, SOURCE_NONE = (
    "till",
    "binding",
    "share_link",
    "none",
)
SOURCES = (SOURCE_TILL, SOURCE_BINDING, SOURCE_SHARE_LINK, SOURCE_NONE)


class OrderAttribution(IdMixin, BrandScoped, db.Model):
    """One per order: the guide, the guide's home store and the fulfilling store then."""

    __tablename__ = "guide_order_attribution"
    __table_args__ = (
        UniqueConstraint("brand_id", "order_id"),
        Index("ix_guide_order_attribution_guide", "brand_id", "guide_id", "id"),
    )

    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("shop_order.id", ondelete="CASCADE"))
    member_id: Mapped[int | None] = mapped_column(BigId)
    channel: Mapped[str] = mapped_column(String(16))
    guide_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("staff.id"))
    guide_store_id: Mapped[int | None] = mapped_column(BigId)  # credited with the sale
    fulfil_store_id: Mapped[int | None] = mapped_column(BigId)
    source: Mapped[str] = mapped_column(String(12))
    # The buyer is the guide: no performance or commission unless the brand allows it.
    self_purchase: Mapped[bool] = mapped_column(Boolean, default=False)
    earns: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PerformanceLine(IdMixin, BrandScoped, db.Model):
    """A sale (+) or refund (-) credited to a guide and their store; append-only."""

    __tablename__ = "guide_performance_line"
    __table_args__ = (
        UniqueConstraint("brand_id", "key"),
        Index("ix_guide_performance_guide", "brand_id", "guide_id", "id"),
    )

    key: Mapped[str] = mapped_column(String(80))  # "paid:<order>" | "refund:<refund>"
    guide_id: Mapped[int] = mapped_column(BigId)
    store_id: Mapped[int | None] = mapped_column(BigId)
    order_id: Mapped[int] = mapped_column(BigId)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    orders: Mapped[int] = mapped_column(Integer, default=0)  # 1 for a sale, 0 for a refund
    day: Mapped[dt.date] = mapped_column(Date)  # the brand's local day
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GuideSalesDay(IdMixin, BrandScoped, db.Model):
    """Performance per brand-local day, guide and store, kept in the same transaction."""

    __tablename__ = "guide_sales_day"
    __table_args__ = (
        UniqueConstraint("brand_id", "day", "guide_id", "store_key"),
        Index("ix_guide_sales_day_guide", "brand_id", "guide_id", "day"),
        Index("ix_guide_sales_day_store", "brand_id", "store_key", "day"),
    )

    day: Mapped[dt.date] = mapped_column(Date)
    guide_id: Mapped[int] = mapped_column(BigId)
    store_key: Mapped[int] = mapped_column(BigId, default=0)  # the guide's store, 0: none
    orders: Mapped[int] = mapped_column(Integer, default=0)
    sales_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
