"""The tag library (标签库), tags on members and their history.

``member_tag`` references its member through the composite key ``(brand_id, member_id)``
(see ``members.models.member``). ``tag_history`` is an append-only log, written only in the same
transaction as the ``member_tag`` change it records (``members.tiers_tags.tags``, the import; merges
and erasure move or delete both together): that row's keys check the member and the tag,
so the log carries no keys to ``member`` or ``tag_definition`` of its own — two checks less
per imported tag, which a million-row import measures in seconds.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import Audited
from core.db import BigId, IdMixin, TimestampMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped
from members.models.columns import brand_column, member_key

TAG_KINDS = ("behaviour", "brand", "product", "platform")
ADDED, REMOVED = "added", "removed"


class TagDefinition(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """A tag of the brand's library; ``is_quick`` tags are one tap away for guides."""

    __tablename__ = "tag_definition"
    __table_args__ = (UniqueConstraint("brand_id", "code"),)

    kind: Mapped[str] = mapped_column(String(12))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(60))
    is_quick: Mapped[bool] = mapped_column(Boolean, default=False)
    # System tags are set and cleared by events (activated, purchased, lapsed...), not by hand.
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class MemberTag(IdMixin, BrandScoped, db.Model):
    """A tag currently on a member."""

    __tablename__ = "member_tag"
    __table_args__ = (
        UniqueConstraint("member_id", "tag_id"),
        Index("ix_member_tag_tag", "tag_id"),
        member_key("member_tag"),
    )

    brand_id: Mapped[int] = brand_column(references_brand=False)
    member_id: Mapped[int] = mapped_column(BigId)
    tag_id: Mapped[int] = mapped_column(BigId, ForeignKey("tag_definition.id"))
    source: Mapped[str] = mapped_column(String(10), default="system")  # staff|system|import
    staff_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TagHistory(IdMixin, BrandScoped, db.Model):
    """Every tag added to or removed from a member, by whom and why. Append-only."""

    __tablename__ = "tag_history"
    __table_args__ = (Index("ix_tag_history_member_at", "member_id", "created_at"),)

    brand_id: Mapped[int] = brand_column(references_brand=False)
    member_id: Mapped[int] = mapped_column(BigId)
    tag_id: Mapped[int] = mapped_column(BigId)
    action: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(10), default="system")
    staff_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("staff.id"))
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
