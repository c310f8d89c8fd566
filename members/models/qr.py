"""Store and guide QR codes, what happened through them, and WeChat member-card codes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import BigId, IdMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped

QR_STORE, QR_GUIDE = "store", "guide"
EV_SCAN, EV_FOLLOW, EV_ACTIVATION = "scan", "follow", "activation"


class MemberQrCode(IdMixin, BrandScoped, db.Model):
    """A permanent parametric QR code of a store or a guide (导购).

    The scene is only ever resolved through this table of the brand whose account received
    the scan, so a scene string of another brand (or a made-up one) attributes nothing.

    ``scans`` (follows included), ``follows`` and ``activations`` count the code's events:
    each is raised by one in the transaction that records the event (``qrcodes.record_event``),
    so the list reads them without touching the events; ``qrcodes.rebuild_stats`` recounts
    them from the events.
    """

    __tablename__ = "member_qr_code"
    __table_args__ = (UniqueConstraint("brand_id", "scene"),)

    kind: Mapped[str] = mapped_column(String(8))
    store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("store.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("staff.id"), index=True)
    scene: Mapped[str] = mapped_column(String(64))
    ticket: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    scans: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    follows: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    activations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class MemberQrEvent(IdMixin, BrandScoped, db.Model):
    """A scan, a follow or an activation through a QR code (the per-code statistics)."""

    __tablename__ = "member_qr_event"
    __table_args__ = (
        Index("ix_member_qr_event_qr_kind", "qr_id", "kind"),
        Index("ix_member_qr_event_openid_at", "brand_id", "openid", "created_at"),
    )

    qr_id: Mapped[int] = mapped_column(BigId, ForeignKey("member_qr_code.id"))
    kind: Mapped[str] = mapped_column(String(12))
    openid: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("member.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class MemberCardCode(IdMixin, BrandScoped, db.Model):
    """A WeChat member card (会员卡) a consumer took; activated through the card API by a job."""

    __tablename__ = "member_card_code"
    __table_args__ = (
        UniqueConstraint("brand_id", "code"),
        Index("ix_member_card_code_openid", "brand_id", "openid"),
        # A member's activated card (points sync, the card page), and their rows when the
        # member is merged or deleted.
        Index("ix_member_card_code_member", "member_id", "activated_at"),
    )

    card_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("member.id"))
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
