"""Saved member segments (人群): a named condition tree, evaluated when used.

``definition`` is the JSON condition tree that ``campaigns.segments`` validates and compiles
to one SQL query; the member list is never stored, so a segment is always current. A store
manager's segment carries the manager's store (``store_id``) and only ever selects members of
that store; ``None`` is brand-wide. ``last_count`` is the count shown in the list, refreshed
whenever the segment is counted.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import Audited
from core.db import BigId, IdMixin, TimestampMixin, UTCDateTime, db
from core.tenancy import BrandScoped
from members.models import Member


class Segment(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """A saved segment of a brand's members."""

    __tablename__ = "campaign_segment"
    __table_args__ = (Index("ix_campaign_segment_brand_store", "brand_id", "store_id", "id"),)
    __audit_exclude__ = frozenset({"updated_at", "created_at", "last_count", "counted_at"})

    name: Mapped[str] = mapped_column(String(60))
    definition: Mapped[dict] = mapped_column(JSON)
    store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("store.id", ondelete="CASCADE"))
    created_by: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("staff.id", ondelete="SET NULL")
    )
    last_count: Mapped[int | None] = mapped_column(Integer)
    counted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


# Indexes the segment conditions need on other packages' tables, created by this package's
# migration: "tier is one of" probes the member table by tier rather than reading it whole.
Index("ix_member_brand_tier", Member.__table__.c.brand_id, Member.__table__.c.tier_id)
