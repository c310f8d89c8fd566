"""Brands (tenants), their stores and their staff."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from flask_login import UserMixin
from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from core.audit import Audited
from core.crypto import EncryptedText
from core.db import BigId, IdMixin, TimestampMixin, db
from core.tenancy import BrandScoped

ROLES = ("brand_admin", "store_manager", "guide")
DEFAULT_TZ = "Asia/Shanghai"


# plaintext (明文): plain messages only; compatible (兼容): both, for a move to safe mode;
# safe (安全): AES-encrypted messages only, so a leaked query string cannot forge events.
MESSAGE_MODES = ("plaintext", "compatible", "safe")


class Brand(IdMixin, TimestampMixin, Audited, db.Model):
    """A tenant: one brand with its official account and mini-program credentials."""

    __tablename__ = "brand"
    __audit_secret__ = frozenset(
        {
            "secret",
            "token",
            "aes_key",
            "previous_aes_key",
            "mp_secret",
            "pay_apiv3_key",
            "pay_private_key",
        }
    )

    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    appid: Mapped[str | None] = mapped_column(String(64), index=True)
    secret: Mapped[str | None] = mapped_column(EncryptedText)
    token: Mapped[str | None] = mapped_column(EncryptedText)
    aes_key: Mapped[str | None] = mapped_column(EncryptedText)
    previous_aes_key: Mapped[str | None] = mapped_column(EncryptedText)
    mp_appid: Mapped[str | None] = mapped_column(String(64))
    mp_secret: Mapped[str | None] = mapped_column(EncryptedText)
    # WeChat Pay APIv3 merchant (商户号): the APIv3 key (32 characters) and the merchant's
    # API certificate private key sign and decrypt; the serial number names that certificate.
    # The WeChat Pay public key (and its PUB_KEY_ID_...) verifies answers and notifies.
    mch_id: Mapped[str | None] = mapped_column(String(32))
    pay_apiv3_key: Mapped[str | None] = mapped_column(EncryptedText)
    pay_private_key: Mapped[str | None] = mapped_column(EncryptedText)
    pay_cert_serial_no: Mapped[str | None] = mapped_column(String(64))
    pay_public_key: Mapped[str | None] = mapped_column(Text)
    pay_public_key_id: Mapped[str | None] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TZ)
    # The official account's message encryption mode (消息加解密方式), as set on WeChat's
    # side: what the callback accepts (MESSAGE_MODES).
    message_mode: Mapped[str] = mapped_column(String(12), default="safe", server_default="safe")
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone or DEFAULT_TZ)

    def local(self, when: dt.datetime) -> dt.datetime:
        """A UTC timestamp in the brand's time zone."""
        return when.astimezone(self.tz)

    @classmethod
    def by_slug(cls, slug: str) -> Brand | None:
        return db.session.execute(select(cls).where(cls.slug == slug)).scalar_one_or_none()


class Store(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """A physical store of a brand."""

    __tablename__ = "store"
    __table_args__ = (UniqueConstraint("brand_id", "code"),)

    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(120))
    city: Mapped[str] = mapped_column(String(60))
    region: Mapped[str] = mapped_column(String(60), default="")
    address: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    @classmethod
    def by_code(cls, code: str) -> Store | None:
        return db.session.execute(select(cls).where(cls.code == code)).scalar_one_or_none()


class Staff(IdMixin, TimestampMixin, BrandScoped, Audited, UserMixin, db.Model):
    """A brand admin, store manager or shop guide (导购); logs into the console."""

    __tablename__ = "staff"
    __table_args__ = (UniqueConstraint("brand_id", "phone"),)
    __audit_secret__ = frozenset({"password_hash"})
    # A change to any of these ends the user's other console sessions (core.sessions).
    SESSION_FIELDS = ("password_hash", "role", "store_id", "active")

    name: Mapped[str] = mapped_column(String(80))
    phone: Mapped[str] = mapped_column(String(20))
    role: Mapped[str] = mapped_column(String(20))
    store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("store.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    store: Mapped[Store | None] = relationship(lazy="joined")

    is_platform_admin = False

    def get_id(self) -> str:
        return f"s:{self.id}"

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def display_name(self) -> str:
        return f"{self.name} ({self.phone})"

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @classmethod
    def by_phone(cls, phone: str) -> Staff | None:
        return db.session.execute(select(cls).where(cls.phone == phone)).scalar_one_or_none()
