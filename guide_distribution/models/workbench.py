"""What the guide's workbench holds besides binding and commission: the brand's library of
texts and pictures for Moments, tasks from HQ with per-guide completion counters, and each
guide's monthly sales target."""

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
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import BigId, IdMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped

MATERIAL_TEXT_MAX = 2000
MATERIAL_IMAGES_MAX = 9  # a Moments post holds nine pictures


class Material(IdMixin, BrandScoped, db.Model):
    """A text and up to nine pictures that guides copy into their Moments."""

    __tablename__ = "guide_material"
    __table_args__ = (Index("ix_guide_material_active", "brand_id", "active", "id"),)

    title: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text, default="")
    images: Mapped[list] = mapped_column(JSON, default=list)  # storage keys
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class GuideTask(IdMixin, BrandScoped, db.Model):
    """A task from HQ: a product, a text and/or an image each chosen guide sends to their
    bound customers (optionally only those with a tag) before the deadline.

    The counters are kept in the transactions that mark customers as sent, so the console's
    completion figures never count the sends table."""

    __tablename__ = "guide_task"
    __table_args__ = (
        CheckConstraint("sent_total >= 0 AND guides_done >= 0", name="counters"),
        Index("ix_guide_task_brand", "brand_id", "id"),
    )

    title: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text, default="")
    image: Mapped[str | None] = mapped_column(String(160))  # a storage key
    product_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("shop_product.id"))
    tag_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("tag_definition.id"))
    deadline: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    guides_total: Mapped[int] = mapped_column(Integer, default=0)
    guides_done: Mapped[int] = mapped_column(Integer, default=0)
    customers_total: Mapped[int] = mapped_column(BigInteger, default=0)
    sent_total: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GuideTaskAssignee(IdMixin, BrandScoped, db.Model):
    """One guide's share of a task: how many customers they had when it was created and how
    many they marked as sent."""

    __tablename__ = "guide_task_guide"
    __table_args__ = (
        UniqueConstraint("brand_id", "task_id", "guide_id"),
        Index("ix_guide_task_guide_guide", "brand_id", "guide_id", "task_id"),
        CheckConstraint("customers >= 0 AND sent >= 0", name="counters"),
    )

    task_id: Mapped[int] = mapped_column(BigId, ForeignKey("guide_task.id", ondelete="CASCADE"))
    guide_id: Mapped[int] = mapped_column(BigId, ForeignKey("staff.id"))
    store_id: Mapped[int | None] = mapped_column(BigId)
    customers: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class GuideTaskSend(IdMixin, BrandScoped, db.Model):
    """A customer a guide marked as sent for a task (once per task and customer)."""

    __tablename__ = "guide_task_send"
    __table_args__ = (
        UniqueConstraint("brand_id", "task_id", "member_id"),
        Index("ix_guide_task_send_guide", "brand_id", "task_id", "guide_id"),
    )

    task_id: Mapped[int] = mapped_column(BigId, ForeignKey("guide_task.id", ondelete="CASCADE"))
    guide_id: Mapped[int] = mapped_column(BigId)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("member.id"))
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GuideTarget(IdMixin, BrandScoped, db.Model):
    """A guide's sales target (业绩目标) for a month, in fen of net sales."""

    __tablename__ = "guide_target"
    __table_args__ = (
        UniqueConstraint("brand_id", "month", "guide_id"),
        Index("ix_guide_target_store", "brand_id", "month", "store_id"),
        CheckConstraint("target_fen >= 0", name="target_fen"),
        CheckConstraint("EXTRACT(DAY FROM month) = 1", name="month_first_day"),
    )

    month: Mapped[dt.date] = mapped_column(Date)  # the first day of the month
    guide_id: Mapped[int] = mapped_column(BigId, ForeignKey("staff.id"))
    store_id: Mapped[int | None] = mapped_column(BigId)
    target_fen: Mapped[int] = mapped_column(BigInteger)
    set_by: Mapped[int | None] = mapped_column(BigId)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
