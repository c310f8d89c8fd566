"""Where a brand's stores are, for "stores near me" (org's Store has no coordinates)."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import BigId, IdMixin, TimestampMixin, db
from core.tenancy import BrandScoped


class StoreLocation(IdMixin, TimestampMixin, BrandScoped, db.Model):
    """Where a store is, in GCJ-02 micro-degrees (one row per store).

    Integer micro-degrees keep float rounding out of the table.
    """

    __tablename__ = "store_location"
    __table_args__ = (
        UniqueConstraint("store_id"),
        CheckConstraint("lat_e6 BETWEEN -90000000 AND 90000000", name="lat_range"),
        CheckConstraint("lng_e6 BETWEEN -180000000 AND 180000000", name="lng_range"),
    )

    store_id: Mapped[int] = mapped_column(BigId, ForeignKey("store.id", ondelete="CASCADE"))
    lat_e6: Mapped[int] = mapped_column(BigInteger)
    lng_e6: Mapped[int] = mapped_column(BigInteger)
