"""Tables of the WeChat package: inbound messages, the chatbot settings and keyword replies."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import Audited
from core.db import IdMixin, TimestampMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped

MATCH_TYPES = ("exact", "contains")
REPLY_TYPES = ("text", "news")


class InboundMessage(IdMixin, BrandScoped, db.Model):
    """A message or event WeChat posted to the callback (one row per delivery, not per retry).

    Rows of messages answered without the database arrive in batches from a Redis stream
    (``wechat.inbound``); ``dedupe_key`` (the callback's retry key) makes that idempotent.
    """

    __tablename__ = "wechat_inbound"
    __table_args__ = (
        Index("ix_wechat_inbound_brand_openid", "brand_id", "openid", "id"),
        UniqueConstraint("brand_id", "dedupe_key"),
    )

    openid: Mapped[str] = mapped_column(String(64))
    msg_type: Mapped[str] = mapped_column(String(32))
    event: Mapped[str | None] = mapped_column(String(64))
    event_key: Mapped[str | None] = mapped_column(String(255))
    msg_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text, default="")  # the decrypted XML, truncated
    # "msg:<MsgId>" or "ev:<openid>:<CreateTime>:<Event>", as in the Redis retry key
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChatbotSettings(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """A brand's follow greeting, default reply and custom menu."""

    __tablename__ = "wechat_chatbot"
    __table_args__ = (UniqueConstraint("brand_id"),)
    __audit_exclude__ = frozenset({"updated_at", "created_at", "rev"})

    greeting: Mapped[str] = mapped_column(Text, default="")
    default_reply: Mapped[str] = mapped_column(Text, default="")
    # WeChat's menu JSON: {"button": [...]}
    menu: Mapped[dict | None] = mapped_column(JSON)
    menu_status: Mapped[str] = mapped_column(String(16), default="draft")
    menu_error: Mapped[str | None] = mapped_column(String(255))
    menu_published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Changes on every edit of the settings or the keywords; callbacks cache rules by it.
    rev: Mapped[str] = mapped_column(String(32), default="")


class KeywordReply(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """An automatic reply to a keyword (or to a menu CLICK item with that key)."""

    __tablename__ = "wechat_keyword"
    __table_args__ = (
        UniqueConstraint("brand_id", "keyword"),
        CheckConstraint("match IN ('exact', 'contains')", name="match"),
        CheckConstraint("reply_type IN ('text', 'news')", name="reply_type"),
        CheckConstraint(
            "starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at", name="window"
        ),
    )

    keyword: Mapped[str] = mapped_column(String(60))
    match: Mapped[str] = mapped_column(String(10), default="exact")
    # Higher first; among equal priorities the older rule first.
    priority: Mapped[int] = mapped_column(Integer, default=0)
    reply_type: Mapped[str] = mapped_column(String(10), default="text")
    text: Mapped[str] = mapped_column(Text, default="")
    title: Mapped[str] = mapped_column(String(64), default="")
    description: Mapped[str] = mapped_column(String(120), default="")
    url: Mapped[str] = mapped_column(String(1024), default="")
    picurl: Mapped[str] = mapped_column(String(1024), default="")
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    def is_live(self, now: dt.datetime) -> bool:
        """Active and inside its window (start inclusive, end exclusive)."""
        if not self.active:
            return False
        if self.starts_at is not None and now < self.starts_at:
            return False
        return self.ends_at is None or now < self.ends_at
