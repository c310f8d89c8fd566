"""Points tables: per-brand rules, bonus campaigns, and the ledger (accounts, lots, entries).

The ledger has three layers. ``PointsEntry`` rows are append-only and each carries a unique
idempotency key per brand (its source event): the history, and the reason a repeated call
has one effect. ``PointsLot`` rows are the points a member holds, one per earning, spent in
expiry order. ``PointsAccount`` caches the totals; its columns change only through
conditional ``UPDATE`` statements and the database refuses a negative balance.

Invariants (checked by the tests after every operation):
- ``balance`` == the remaining points of released lots; ``pending`` == those of unreleased lots;
- the sums of the entries' ``delta_balance``, ``delta_pending`` and ``delta_debt`` equal the
  account's ``balance``, ``pending`` and ``debt``;
- ``debt`` > 0 only while ``balance`` == 0: a refund takes spent points back from the balance
  first, and later earnings repay debt before anything reaches the balance.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import Audited
from core.db import BigId, IdMixin, TimestampMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped

# Entry kinds. ``points`` is the change the member sees; the deltas say where it landed.
EARN = "earn"  # a purchase earned points (pending or available)
RELEASE = "release"  # pending points became available (or repaid debt)
SPEND = "spend"  # points exchanged (mall, coupon, ...)
EXPIRE = "expire"  # a lot expired
REFUND = "refund"  # a refund reversed part of an earning
ADJUST = "adjust"  # an operator's manual adjustment
WELCOME = "welcome"  # the welcome gift of a new member
MERGE_IN = "merge_in"  # points moved here from a merged duplicate member
MERGE_OUT = "merge_out"  # points moved away to the member that absorbed this one
RETURN = "return"  # spent points given back (a refunded order paid partly with points)
GAME = "game"  # points won in a game campaign
KINDS = (
    EARN, RELEASE, SPEND, EXPIRE, REFUND, ADJUST, WELCOME, MERGE_IN, MERGE_OUT, RETURN, GAME
)  # fmt: skip

# Expiry policies.
EXPIRE_NEVER = "never"
EXPIRE_MONTHS = "months"  # N months after earning
EXPIRE_YEAR_END = "year_end"  # at the end of the year in which "earning + N months" falls
EXPIRE_POINTS_DAY = "points_day"  # on the first monthly points day after "earning + N months"
POLICIES = (EXPIRE_NEVER, EXPIRE_MONTHS, EXPIRE_YEAR_END, EXPIRE_POINTS_DAY)


class PointsSettings(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """A brand's earning, pending, expiry and exchange rules (one row per brand)."""

    __tablename__ = "points_settings"
    __table_args__ = (
        UniqueConstraint("brand_id"),
        CheckConstraint("earn_permille >= 0", name="earn_permille"),
        CheckConstraint("pending_days >= 0", name="pending_days"),
        CheckConstraint("expiry_months >= 1", name="expiry_months"),
        CheckConstraint("points_day BETWEEN 1 AND 28", name="points_day"),
        CheckConstraint("daily_cap >= 0", name="daily_cap"),
        CheckConstraint("exchange_points > 0 AND exchange_fen >= 0", name="exchange"),
        CheckConstraint("welcome_points >= 0", name="welcome_points"),
    )

    # Points per yuan, in thousandths: 1000 = 1 point per yuan (the product default).
    earn_permille: Mapped[int] = mapped_column(Integer, default=1000)
    pending_days: Mapped[int] = mapped_column(Integer, default=7)
    expiry_policy: Mapped[str] = mapped_column(String(16), default=EXPIRE_MONTHS)
    expiry_months: Mapped[int] = mapped_column(Integer, default=12)
    points_day: Mapped[int] = mapped_column(Integer, default=1)
    remind_days: Mapped[int] = mapped_column(Integer, default=7)
    daily_cap: Mapped[int] = mapped_column(Integer, default=0)  # 0: no cap
    # The exchange rate used to value the liability: exchange_points are worth exchange_fen.
    exchange_points: Mapped[int] = mapped_column(Integer, default=100)
    exchange_fen: Mapped[int] = mapped_column(Integer, default=500)
    welcome_points: Mapped[int] = mapped_column(Integer, default=0)
    # WeChat template ids (the brand's own); empty: no template message is sent.
    change_template_id: Mapped[str] = mapped_column(String(64), default="")
    expiring_template_id: Mapped[str] = mapped_column(String(64), default="")


class PointsCampaign(IdMixin, TimestampMixin, BrandScoped, Audited, db.Model):
    """A bonus: purchases on these local dates (and store / category) earn more points."""

    __tablename__ = "points_campaign"
    __table_args__ = (
        CheckConstraint("multiplier_permille >= 1000", name="multiplier"),
        CheckConstraint("end_date >= start_date", name="dates"),
    )

    name: Mapped[str] = mapped_column(String(80))
    multiplier_permille: Mapped[int] = mapped_column(Integer, default=2000)
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    # A bitmask of ISO weekdays (bit 0 = Monday); 0 means every day of the range.
    weekdays: Mapped[int] = mapped_column(Integer, default=0)
    store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("store.id", ondelete="CASCADE"))
    category: Mapped[str | None] = mapped_column(String(60))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PointsAccount(IdMixin, BrandScoped, db.Model):
    """A member's cached totals; changed only by conditional UPDATEs in ``points.ledger``."""

    __tablename__ = "points_account"
    __table_args__ = (
        UniqueConstraint("brand_id", "member_id"),
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("pending >= 0", name="pending_not_negative"),
        CheckConstraint("debt >= 0", name="debt_not_negative"),
        # When accounts were opened: the rollup of accounts per day reads new ones by it.
        Index("ix_points_account_created", "brand_id", "created_at"),
        # The accounts the WeChat card and the member have not been told about yet: the sync
        # reads a brand's few from here, not from all of its accounts.
        Index("ix_points_account_sync_due", "brand_id", "id", postgresql_where=text("sync_due")),
    )

    member_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("member.id", ondelete="CASCADE"), index=True
    )
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    debt: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_spent: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_expired: Mapped[int] = mapped_column(BigInteger, default=0)
    # The last entry, and the last one the WeChat card and the member were told about.
    last_entry_id: Mapped[int] = mapped_column(BigId, default=0)
    synced_entry_id: Mapped[int] = mapped_column(BigId, default=0)
    # Kept by PostgreSQL: a column of its own (not the comparison in a query) so that its
    # statistics tell the planner how few accounts are due.
    sync_due: Mapped[bool] = mapped_column(
        Boolean, Computed("last_entry_id > synced_entry_id", persisted=True)
    )
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )


class PointsEntry(IdMixin, BrandScoped, db.Model):
    """One append-only ledger line; its idempotency key is the event that caused it."""

    __tablename__ = "points_entry"
    __table_args__ = (
        UniqueConstraint("brand_id", "idempotency_key"),
        Index("ix_points_entry_account", "account_id", "id"),
        Index("ix_points_entry_day", "brand_id", "local_day", "kind"),
        Index("ix_points_entry_ref", "ref_entry_id"),
        # When entries were written: rollups add the entries recorded since their watermark.
        Index("ix_points_entry_recorded", "brand_id", "created_at"),
        # A member's entries by day; kind and recording time included, so the overview's
        # "active before today" check reads the index alone.
        Index(
            "ix_points_entry_member_day",
            "member_id",
            "local_day",
            postgresql_include=["kind", "created_at"],
        ),
    )

    account_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("points_account.id", ondelete="CASCADE")
    )
    member_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    points: Mapped[int] = mapped_column(BigInteger)  # signed change the member sees
    delta_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    delta_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    delta_debt: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")  # what the member sees
    note: Mapped[str | None] = mapped_column(Text)  # an operator's note, console only
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)  # purchase / refunded amount
    store_id: Mapped[int | None] = mapped_column(BigId)
    category: Mapped[str | None] = mapped_column(String(60))
    ref_entry_id: Mapped[int | None] = mapped_column(BigId)  # refund -> its earn entry
    lot_id: Mapped[int | None] = mapped_column(BigId)
    detail: Mapped[dict | None] = mapped_column(JSON)  # how the points were computed
    operator: Mapped[str | None] = mapped_column(String(120))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    local_day: Mapped[dt.date] = mapped_column(Date)  # occurred_at's date in the brand's zone
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PointsLot(IdMixin, BrandScoped, db.Model):
    """Points earned together, spent and expired together (earliest expiry first)."""

    __tablename__ = "points_lot"
    __table_args__ = (
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining"),
        Index("ix_points_lot_spend", "account_id", "released", "expires_at", "id"),
        Index("ix_points_lot_release", "brand_id", "released", "available_at"),
        # Lots still holding points, by expiry (expiry runs, reminders, the brands with work
        # due): a brand's years of spent and expired lots are not in it.
        Index(
            "ix_points_lot_open_expiry",
            "brand_id",
            "expires_at",
            postgresql_where=text("remaining > 0"),
        ),
    )

    account_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("points_account.id", ondelete="CASCADE")
    )
    entry_id: Mapped[int] = mapped_column(BigId)
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    released: Mapped[bool] = mapped_column(Boolean, default=False)
    earned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    available_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
