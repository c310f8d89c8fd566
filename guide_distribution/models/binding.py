"""Each member's service store and exclusive guide (专属导购), how every binding came about,
and the share links members opened (a link credits its guide for a few days)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import BigId, IdMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped

# How a binding came about.
BIND_SOURCES = ("scan", "share_link", "activation", "till", "import", "forced", "guide_left")


class CustomerBinding(IdMixin, BrandScoped, db.Model):
    """The member's current service store and (optional) exclusive guide: one row per member.

    ``protected_until``: no other guide can take the customer before then;
    ``expires_at``: the guide binding lapses then (None: permanent). The store stays.
    """

    __tablename__ = "guide_binding"
    __table_args__ = (
        UniqueConstraint("brand_id", "member_id"),
        Index("ix_guide_binding_guide", "brand_id", "guide_id", "id"),
        Index("ix_guide_binding_store", "brand_id", "store_id", "id"),
    )

    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("member.id"))
    store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("store.id"))
    guide_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("staff.id"))
    source: Mapped[str] = mapped_column(String(16))
    bound_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    protected_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BindingEvent(IdMixin, BrandScoped, db.Model):
    """Every binding and change: from whom to whom, how and why, and who did it."""

    __tablename__ = "guide_binding_event"
    __table_args__ = (
        Index("ix_guide_binding_event_member", "brand_id", "member_id", "created_at"),
    )

    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("member.id"))
    old_store_id: Mapped[int | None] = mapped_column(BigId)
    new_store_id: Mapped[int | None] = mapped_column(BigId)
    old_guide_id: Mapped[int | None] = mapped_column(BigId)
    new_guide_id: Mapped[int | None] = mapped_column(BigId)
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200), default="")
    actor_kind: Mapped[str] = mapped_column(String(16), default="system")  # staff | member | system
    actor_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GuideVisit(IdMixin, BrandScoped, db.Model):
    """The last time a member opened a guide's share link or mini-shop."""

    __tablename__ = "guide_visit"
    __table_args__ = (
        UniqueConstraint("brand_id", "member_id", "guide_id"),
        Index("ix_guide_visit_member_last", "brand_id", "member_id", "last_at"),
    )

    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("member.id"))
    guide_id: Mapped[int] = mapped_column(BigId, ForeignKey("staff.id"))
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
