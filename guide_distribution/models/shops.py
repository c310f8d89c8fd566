"""Guides' mini-shops: the guide's profile (face picture, a short intro, the token that their
share codes carry) and the products they picked from the catalog, a line about each."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import BigId, IdMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped


class GuideProfile(IdMixin, BrandScoped, db.Model):
    """One per guide who opened a shop.

    ``token``: a random code (letters and digits) that a mini-program code's scene carries
    instead of the guide's id, so a scene cannot be guessed or turned into another guide's.
    """

    __tablename__ = "guide_profile"
    __table_args__ = (
        UniqueConstraint("brand_id", "guide_id"),
        UniqueConstraint("brand_id", "token"),
    )

    guide_id: Mapped[int] = mapped_column(BigId, ForeignKey("staff.id"))
    token: Mapped[str] = mapped_column(String(24))
    photo_key: Mapped[str | None] = mapped_column(String(160))
    intro: Mapped[str] = mapped_column(String(200), default="")
    # The mini-program code WeChat drew for the token (a storage key), fetched once.
    wxacode_key: Mapped[str | None] = mapped_column(String(160))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class GuideShopItem(IdMixin, BrandScoped, db.Model):
    """A product in a guide's shop, with the guide's line about it, in the guide's order."""

    __tablename__ = "guide_shop_item"
    __table_args__ = (
        UniqueConstraint("brand_id", "guide_id", "product_id"),
        Index("ix_guide_shop_item_guide", "brand_id", "guide_id", "sort"),
    )

    guide_id: Mapped[int] = mapped_column(BigId, ForeignKey("staff.id"))
    product_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("shop_product.id", ondelete="CASCADE")
    )
    line: Mapped[str] = mapped_column(String(120), default="")
    sort: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
