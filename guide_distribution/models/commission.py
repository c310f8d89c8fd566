"""Commission (提成): the brand's rules and monthly tier plans, one commission line per order
line credited to a guide, the append-only commission ledger, each guide's account of cached
balances, monthly statements and payouts with their history."""

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
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import Audited
from core.db import BigId, IdMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped

# Rule kinds, in precedence order: a SKU's fixed amount per unit, a SKU's rate, a category's
# rate. Below them: the brand's default rate (raised by a tier plan past its target).
RULE_SKU_FIXED, RULE_SKU_RATE, RULE_CATEGORY_RATE = "sku_fixed", "sku_rate", "category_rate"
RULE_KINDS = (RULE_SKU_FIXED, RULE_SKU_RATE, RULE_CATEGORY_RATE)
# What a commission line was computed by (RULE_KINDS, or one of these).
APPLIED_DEFAULT, APPLIED_TIER, APPLIED_PROMOTION = "default", "tier", "promotion"

# A commission line's stage: pending (paid), frozen (received / picked up), settled
# (withdrawable; the after-sale window passed).
PENDING, FROZEN, SETTLED = "pending", "frozen", "settled"
LINE_STATES = (PENDING, FROZEN, SETTLED)

# Payouts: waiting for the brand's approval, approved (about to be transferred or exported),
# transferring (sent to WeChat Pay), waiting for the guide to confirm in WeChat, paid,
# failed (the money went back to the guide's withdrawable balance), refused by the brand.
P_APPROVAL, P_APPROVED, P_TRANSFERRING, P_WAIT_CONFIRM, P_PAID, P_FAILED, P_REFUSED = (
    "approval",
    "approved",
    "transferring",
    "wait_confirm",
    "paid",
    "failed",
    "refused",
)
PAYOUT_STATES = (
    P_APPROVAL,
    P_APPROVED,
    P_TRANSFERRING,
    P_WAIT_CONFIRM,
    P_PAID,
    P_FAILED,
    P_REFUSED,
)
PAYOUT_OPEN = (P_APPROVAL, P_APPROVED, P_TRANSFERRING, P_WAIT_CONFIRM)
METHOD_TRANSFER, METHOD_PAYROLL = "transfer", "payroll"
PAYOUT_METHODS = (METHOD_TRANSFER, METHOD_PAYROLL)


class CommissionRule(IdMixin, BrandScoped, Audited, db.Model):
    """A SKU's fixed amount per unit or rate, or a category's rate."""

    __tablename__ = "guide_commission_rule"
    __table_args__ = (
        UniqueConstraint("brand_id", "kind", "target"),
        CheckConstraint("kind IN ('sku_fixed', 'sku_rate', 'category_rate')", name="kind"),
        CheckConstraint("rate_bp BETWEEN 0 AND 10000", name="rate"),
        CheckConstraint("amount_fen >= 0", name="amount"),
    )

    kind: Mapped[str] = mapped_column(String(16))
    # The SKU's code (sku_*) or the category's code (category_rate), as on the order line.
    target: Mapped[str] = mapped_column(String(60))
    rate_bp: Mapped[int] = mapped_column(Integer, default=0)
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # per unit (sku_fixed)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CommissionTier(IdMixin, BrandScoped, Audited, db.Model):
    """A step of the brand's monthly tier plan: past ``target_fen`` of performance in the
    month, lines that fall to the default rate earn ``rate_bp`` instead."""

    __tablename__ = "guide_commission_tier"
    __table_args__ = (
        UniqueConstraint("brand_id", "target_fen"),
        CheckConstraint("rate_bp BETWEEN 0 AND 10000", name="rate"),
        CheckConstraint("target_fen > 0", name="target"),
    )

    name: Mapped[str] = mapped_column(String(60))
    target_fen: Mapped[int] = mapped_column(BigInteger)
    rate_bp: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GuideAccount(IdMixin, BrandScoped, db.Model):
    """A guide's cached balances, changed only by conditional UPDATEs in the transaction of
    the ledger entry that explains the change (the row's lock is the guide's lock)."""

    __tablename__ = "guide_account"
    __table_args__ = (
        UniqueConstraint("brand_id", "guide_id"),
        CheckConstraint(
            "pending_fen >= 0 AND frozen_fen >= 0 AND settled_fen >= 0 AND paying_fen >= 0 "
            "AND paid_fen >= 0 AND owed_fen >= 0",
            name="balances",
        ),
    )

    guide_id: Mapped[int] = mapped_column(BigId, ForeignKey("staff.id"))
    pending_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    frozen_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    settled_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # withdrawable
    paying_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # in open payouts
    paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    owed_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # debt from late reversals
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommissionLine(IdMixin, BrandScoped, db.Model):
    """The commission of one order line, computed once when the order is paid."""

    __tablename__ = "guide_commission_line"
    __table_args__ = (
        UniqueConstraint("brand_id", "order_line_id"),
        Index("ix_guide_commission_line_guide", "brand_id", "guide_id", "id"),
        Index("ix_guide_commission_line_order", "brand_id", "order_id"),
        Index(
            "ix_guide_commission_line_frozen",
            "brand_id",
            "id",
            postgresql_where=text("state = 'frozen'"),
        ),
        CheckConstraint("state IN ('pending', 'frozen', 'settled')", name="state"),
        CheckConstraint("reversed_fen BETWEEN 0 AND amount_fen", name="reversed"),
    )

    guide_id: Mapped[int] = mapped_column(BigId)
    store_id: Mapped[int | None] = mapped_column(BigId)  # the guide's store on the order
    order_id: Mapped[int] = mapped_column(BigId)
    order_line_id: Mapped[int] = mapped_column(BigId)
    base_fen: Mapped[int] = mapped_column(BigInteger)  # what the customer paid for the line
    quantity: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(16))  # RULE_KINDS or APPLIED_*
    rule_id: Mapped[int | None] = mapped_column(BigId)
    rate_bp: Mapped[int] = mapped_column(Integer, default=0)
    unit_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reversed_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(8), default=PENDING)
    settle_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    frozen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    settled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CommissionEntry(IdMixin, BrandScoped, db.Model):
    """One change of a guide's balances, append-only, keyed by the event that caused it.

    The sum of each column over a guide's entries equals the account's cached balance.
    """

    __tablename__ = "guide_commission_entry"
    __table_args__ = (
        UniqueConstraint("brand_id", "key"),
        Index("ix_guide_commission_entry_guide", "brand_id", "guide_id", "id"),
    )

    key: Mapped[str] = mapped_column(String(100))
    guide_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(12))  # earn freeze settle reverse recover payout..
    order_id: Mapped[int | None] = mapped_column(BigId)
    payout_id: Mapped[int | None] = mapped_column(BigId)
    lines: Mapped[int] = mapped_column(Integer, default=0)
    d_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    d_frozen: Mapped[int] = mapped_column(BigInteger, default=0)
    d_settled: Mapped[int] = mapped_column(BigInteger, default=0)
    d_paying: Mapped[int] = mapped_column(BigInteger, default=0)
    d_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    d_owed: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommissionStatement(IdMixin, BrandScoped, db.Model):
    """A guide's month: what settled, was reversed, recovered as debt and paid out, and the
    balances at its end."""

    __tablename__ = "guide_commission_statement"
    __table_args__ = (
        UniqueConstraint("brand_id", "guide_id", "month"),
        # Whether a brand's month is closed already (payouts.close_month runs once).
        Index("ix_guide_commission_statement_month", "brand_id", "month"),
    )

    guide_id: Mapped[int] = mapped_column(BigId)
    month: Mapped[dt.date] = mapped_column(Date)  # the first day, brand-local
    earned_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # new commission
    settled_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # became withdrawable
    reversed_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # refunds took back
    owed_added_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # became debt
    recovered_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # debt recovered
    paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    closing_settled_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    closing_owed_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    payout_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Payout(IdMixin, BrandScoped, db.Model):
    """Money leaving a guide's withdrawable balance: by WeChat Pay's merchant transfer to the
    guide's WeChat balance, or exported for the brand's payroll."""

    __tablename__ = "guide_payout"
    __table_args__ = (
        UniqueConstraint("brand_id", "out_bill_no"),
        UniqueConstraint("brand_id", "request_key"),
        Index("ix_guide_payout_guide", "brand_id", "guide_id", "id"),
        Index("ix_guide_payout_state", "brand_id", "state", "id"),
        # Transfers to ask WeChat Pay about, across brands (every 5 minutes).
        Index(
            "ix_guide_payout_in_flight",
            "updated_at",
            postgresql_where="state IN ('transferring', 'wait_confirm')",
        ),
        CheckConstraint("amount_fen > 0", name="amount"),
    )

    guide_id: Mapped[int] = mapped_column(BigId, ForeignKey("staff.id"))
    out_bill_no: Mapped[str] = mapped_column(String(32))
    request_key: Mapped[str] = mapped_column(String(100))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str] = mapped_column(String(8), default=METHOD_TRANSFER)
    source: Mapped[str] = mapped_column(String(10), default="withdraw")  # withdraw | statement
    state: Mapped[str] = mapped_column(String(12), default=P_APPROVED)
    openid: Mapped[str | None] = mapped_column(String(64))
    transfer_bill_no: Mapped[str | None] = mapped_column(String(64))
    package_info: Mapped[str | None] = mapped_column(String(400))
    wechat_state: Mapped[str | None] = mapped_column(String(24))
    fail_reason: Mapped[str | None] = mapped_column(String(200))
    approved_by: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class PayoutEvent(IdMixin, BrandScoped, db.Model):
    """Every state change of a payout: from, to, who and why."""

    __tablename__ = "guide_payout_event"
    __table_args__ = (Index("ix_guide_payout_event_payout", "brand_id", "payout_id", "id"),)

    payout_id: Mapped[int] = mapped_column(BigId, ForeignKey("guide_payout.id"))
    old_state: Mapped[str | None] = mapped_column(String(12))
    new_state: Mapped[str] = mapped_column(String(12))
    actor: Mapped[str] = mapped_column(String(120), default="system")
    note: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
