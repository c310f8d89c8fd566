"""A brand's distribution rules: one row per brand, the product's defaults until it saves."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import Audited
from core.db import IdMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped

# Who takes a customer by a scan or a share link: the first guide while the customer has
# none (default), only customers new to the brand, or every scan takes over.
BIND_FIRST, BIND_NEW_ONLY, BIND_EVERY_SCAN = "first", "new_only", "every_scan"
BIND_MODES = (BIND_FIRST, BIND_NEW_ONLY, BIND_EVERY_SCAN)


class DistributionSettings(IdMixin, BrandScoped, Audited, db.Model):
    __tablename__ = "guide_settings"
    __table_args__ = (
        UniqueConstraint("brand_id"),
        CheckConstraint("bind_mode IN ('first', 'new_only', 'every_scan')", name="bind_mode"),
        CheckConstraint("validity_days IS NULL OR validity_days BETWEEN 1 AND 3650", name="valid"),
        CheckConstraint("protection_days BETWEEN 0 AND 365", name="protection"),
        CheckConstraint("link_days BETWEEN 1 AND 30", name="link_days"),
        CheckConstraint("settle_after_days BETWEEN 0 AND 180", name="settle_after"),
        CheckConstraint("payout_min_fen >= 0 AND approval_over_fen >= 0", name="payout"),
        CheckConstraint("default_rate_bp BETWEEN 0 AND 10000", name="default_rate"),
    )

    # Binding
    bind_mode: Mapped[str] = mapped_column(String(12), default=BIND_FIRST)
    # How long a binding lasts; None: until changed.
    validity_days: Mapped[int | None] = mapped_column(Integer)
    # No other guide can take a customer for this many days after a binding.
    protection_days: Mapped[int] = mapped_column(Integer, default=15)
    # A share link credits its guide for orders this many days after it was opened.
    link_days: Mapped[int] = mapped_column(Integer, default=7)
    # Whether a guide's own purchases earn performance and commission.
    self_purchase_earns: Mapped[bool] = mapped_column(Boolean, default=False)
    # Commission
    default_rate_bp: Mapped[int] = mapped_column(Integer, default=0)  # basis points
    commission_on_promotions: Mapped[bool] = mapped_column(Boolean, default=True)
    settle_after_days: Mapped[int] = mapped_column(Integer, default=15)
    # Payouts
    payout_min_fen: Mapped[int] = mapped_column(BigInteger, default=1000)
    approval_over_fen: Mapped[int] = mapped_column(BigInteger, default=500_000)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
