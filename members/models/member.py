"""Members and their channel identities, merges and first-touch attribution.

One ``Member`` per brand and phone number. A member may exist before we know the phone
(a mini-program login, a POS or JD record): ``phone`` is then NULL and the member is found
through a ``MemberIdentity``. PostgreSQL treats NULLs as distinct in the unique
``(brand_id, phone)`` constraint, so any number of phone-less members may exist.

Foreign keys are chosen for the bulk import (a million rows; each foreign key costs a
trigger call and an index probe per row, measured at about 4 µs — more than the insert):

* rows hanging off a member (identities, tags, tag history) reference
  ``member(brand_id, id)`` with one composite key instead of separate keys to ``brand`` and
  ``member``: one check instead of two, and it also proves the row and its member belong to
  the same brand (and is the shape Citus needs for co-located tables). Their ``brand_id``
  therefore has no key of its own, and deleting a brand still cascades through ``member``;
* single-column ``brand_id`` indexes are left out where a unique constraint already starts
  with ``brand_id`` (every index is maintained on each insert).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import Audited
from core.db import BigId, IdMixin, TimestampMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped
from members.models.columns import brand_column, member_key

ACTIVE, MERGED, DELETED = "active", "merged", "deleted"
STATUSES = (ACTIVE, MERGED, DELETED)

IDENTITY_KINDS = ("oa_openid", "mp_openid", "unionid", "jd", "meituan", "pos")
GENDERS = ("", "m", "f")

# Where a member first came from.
SOURCES = ("oa", "mp", "card", "pos", "import", "console", "jd", "meituan", "demo")


def luhn_digit(payload: str) -> str:
    """The Luhn check digit of a string of digits (catches one mistyped digit at the till)."""
    total = 0
    for pos, ch in enumerate(reversed(payload)):
        d = int(ch)
        if pos % 2 == 0:
            d = 2 * d - 9 * (d // 5)
        total += d
    return str((10 - total % 10) % 10)


def card_no_for(member_id: int) -> str:
    """A human-friendly card number: the member id on 9+ digits plus a Luhn check digit."""
    payload = f"{member_id:09d}"
    return payload + luhn_digit(payload)


def card_no_sql(expr: str, positions: int = 13) -> str:
    """The same card number computed in PostgreSQL from an id expression (set-based import)."""
    terms = []
    for pos in range(positions):
        d = f"(({expr}) / {10**pos} % 10)"
        terms.append(f"(2 * {d} - 9 * ({d} / 5))" if pos % 2 == 0 else d)
    total = " + ".join(terms)
    payload = (
        f"(CASE WHEN ({expr}) < 1000000000 THEN lpad(({expr})::text, 9, '0')"
        f" ELSE ({expr})::text END)"
    )
    return f"({payload} || ((10 - ({total}) % 10) % 10)::text)"


class Member(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """A consumer of one brand (会员)."""

    __tablename__ = "member"
    __table_args__ = (
        UniqueConstraint("brand_id", "phone"),
        UniqueConstraint("brand_id", "card_no"),
        # Target of the composite keys of identities and tags; also serves brand lookups.
        UniqueConstraint("brand_id", "id"),
        # Console search: trigram indexes serve name and phone fragments of three or more
        # characters; one- and two-character names go to the prefix index.
        Index(
            "ix_member_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
        Index(
            "ix_member_phone_trgm",
            "phone",
            postgresql_using="gin",
            postgresql_ops={"phone": "gin_trgm_ops"},
        ),
        Index(
            "ix_member_brand_name_prefix",
            "brand_id",
            "name",
            postgresql_ops={"name": "text_pattern_ops"},
        ),
        # The report rollups (members.rollups): members of a day by when they joined or
        # activated, and the members changed since the last run.
        Index("ix_member_brand_created", "brand_id", "created_at"),
        Index("ix_member_brand_activated", "brand_id", "activated_at"),
        Index("ix_member_brand_updated", "brand_id", "updated_at"),
        # The hourly lapsed tag (members.tiers_tags.tags.tag_lapsed): the active members
        # whose last purchase, or activation if they never bought, fell past the cutoff
        # since the last run.
        Index(
            "ix_member_lapse",
            "brand_id",
            "last_purchase_at",
            postgresql_where=text("status = 'active' AND last_purchase_at IS NOT NULL"),
        ),
        Index(
            "ix_member_lapse_never_bought",
            "brand_id",
            "activated_at",
            postgresql_where=text("status = 'active' AND last_purchase_at IS NULL"),
        ),
    )

    brand_id: Mapped[int] = brand_column(references_brand=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    card_no: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(80), default="")
    gender: Mapped[str] = mapped_column(String(1), default="")
    birthday: Mapped[dt.date | None] = mapped_column(Date)
    # First touch: the store and guide (导购) that won the member; kept for life.
    store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("store.id"), index=True)
    guide_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("staff.id"), index=True)
    source: Mapped[str] = mapped_column(String(20), default="oa")
    status: Mapped[str] = mapped_column(String(10), default=ACTIVE)
    merged_into_id: Mapped[int | None] = mapped_column(BigId)
    tier_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("tier_level.id"))
    tier_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The latest purchase recorded (members.tiers_tags.tiers.record_purchase).
    last_purchase_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    consent_version: Mapped[str | None] = mapped_column(String(20))
    consented_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE

    @property
    def holds_card(self) -> bool:
        """An active member who has activated the member card."""
        return self.status == ACTIVE and self.activated_at is not None

    @classmethod
    def by_phone(cls, phone: str) -> Member | None:
        return db.session.execute(select(cls).where(cls.phone == phone)).scalar_one_or_none()

    @classmethod
    def by_card_no(cls, card_no: str) -> Member | None:
        return db.session.execute(select(cls).where(cls.card_no == card_no)).scalar_one_or_none()


class MemberIdentity(IdMixin, BrandScoped, db.Model):
    """A channel identity of a member: an openid, a unionid, a JD / Meituan / POS member id."""

    __tablename__ = "member_identity"
    __table_args__ = (
        UniqueConstraint("brand_id", "kind", "value"),
        member_key("member_identity"),
    )

    brand_id: Mapped[int] = brand_column(references_brand=False)
    member_id: Mapped[int] = mapped_column(BigId, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class MemberMerge(IdMixin, BrandScoped, db.Model):
    """Two member records proven to be one person: what moved from ``merged`` to ``kept``."""

    __tablename__ = "member_merge"

    kept_id: Mapped[int] = mapped_column(BigId, ForeignKey("member.id"), index=True)
    merged_id: Mapped[int] = mapped_column(BigId, ForeignKey("member.id"), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    actor_kind: Mapped[str] = mapped_column(String(16), default="system")
    actor_id: Mapped[int | None] = mapped_column(BigId)
    actor_label: Mapped[str] = mapped_column(String(120), default="system")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class MemberAttribution(IdMixin, BrandScoped, db.Model):
    """A store or guide touch: the first one at activation, later scans of other codes.

    Binding rules (which guide earns what) come with guide distribution; here every touch
    is only recorded.
    """

    __tablename__ = "member_attribution"
    __table_args__ = (Index("ix_member_attribution_member_at", "member_id", "created_at"),)

    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("member.id"))
    kind: Mapped[str] = mapped_column(String(16))  # "first_touch" | "scan"
    store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("store.id"))
    guide_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("staff.id"))
    source: Mapped[str] = mapped_column(String(20), default="")
    scene: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
