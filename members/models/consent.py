"""Subscribe-message consent (订阅通知): each WeChat user's choice per template, and its history.

The official account asks a user to accept a template's messages; WeChat reports the answer
(popup), later changes in the user's settings (change) and the fate of each message sent
(sent). Marketing by subscribe message may go only to users whose current choice is
``accept``, one message per acceptance: ``accepts - sends`` is what is left to send.

``sends`` counts the acceptances taken: a push takes one when it picks the user (a
``SubscribeConsentUse`` row, by a conditional update), before WeChat is called, so two pushes
at once never pick the same acceptance; a send reported by WeChat that no push took counts
when its "sent" event arrives.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import IdMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped

POPUP, CHANGE, SENT = "popup", "change", "sent"
ACCEPT = "accept"
# what became of an acceptance a push took (SubscribeConsentUse.state)
RESERVED, UNCERTAIN, USED, REFUSED, RELEASED = (
    "reserved",
    "uncertain",
    "used",
    "refused",
    "released",
)


class SubscribeConsent(IdMixin, BrandScoped, db.Model):
    """A user's current choice for one template of the brand's official account."""

    __tablename__ = "subscribe_consent"
    __table_args__ = (
        UniqueConstraint("brand_id", "openid", "template_id"),
        CheckConstraint("accepts >= 0 AND sends >= 0", name="counts"),
    )

    openid: Mapped[str] = mapped_column(String(64))
    template_id: Mapped[str] = mapped_column(String(128))
    # WeChat's SubscribeStatusString: accept, reject, ban (the user turned the template off)
    status: Mapped[str] = mapped_column(String(16))
    # When WeChat says the choice was made (CreateTime): an older event never overrides it.
    chosen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    accepts: Mapped[int] = mapped_column(Integer, default=0)
    sends: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SubscribeConsentEvent(IdMixin, BrandScoped, db.Model):
    """One reported choice or send, as WeChat told it (once, however often it retried)."""

    __tablename__ = "subscribe_consent_event"
    __table_args__ = (UniqueConstraint("brand_id", "openid", "template_id", "dedupe"),)

    openid: Mapped[str] = mapped_column(String(64))
    template_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(8))  # popup, change, sent
    status: Mapped[str] = mapped_column(String(64))
    popup_scene: Mapped[int | None] = mapped_column(Integer)
    msg_id: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[int | None] = mapped_column(Integer)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # kind, CreateTime and (for sends) MsgID: the same report delivered again is one row
    dedupe: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SubscribeConsentUse(IdMixin, BrandScoped, db.Model):
    """One acceptance taken by one send (``key``: the push and member), and its fate:
    ``reserved`` when taken, before WeChat is called; ``used`` when WeChat took the message;
    ``refused`` when WeChat said no acceptance was left (43101: ours was stale, so it stays
    taken); ``uncertain`` when the call failed without an answer (WeChat may have used it,
    so it stays taken); ``released`` when WeChat refused for another reason and the
    acceptance was given back."""

    __tablename__ = "subscribe_consent_use"
    __table_args__ = (
        UniqueConstraint("brand_id", "key"),
        Index("ix_subscribe_consent_use_user", "brand_id", "openid", "template_id"),
    )

    openid: Mapped[str] = mapped_column(String(64))
    template_id: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(10))
    # WeChat's msgid of the send (from its answer, or from the "sent" event)
    msg_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
