"""Time-driven ledger work: releasing pending points, expiring lots, expiry reminders.

Each function handles a bounded batch of the current brand and is idempotent: a lot is
released or expired under its own idempotency key (``release:<lot>``, ``expire:<lot>``),
and only lots still due are selected, so running a job twice has one effect.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from core.db import db, utcnow
from points import ledger, rules
from points.models import EXPIRE, RELEASE, PointsAccount, PointsLot

log = logging.getLogger(__name__)


def _accounts_with(stmt, limit: int) -> list[int]:
    ids = db.session.execute(stmt.limit(limit)).scalars().all()
    return sorted(set(ids))


def _lock(account_id: int) -> PointsAccount:
    return db.session.execute(
        select(PointsAccount)
        .where(PointsAccount.id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def release_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Make pending points whose return window has closed available; returns lots released."""
    now = now or utcnow()
    due = (
        select(PointsLot.account_id)
        .where(PointsLot.released.is_(False), PointsLot.available_at <= now)
        .order_by(PointsLot.available_at)
    )
    tz = rules.brand_tz()
    count = 0
    for account_id in _accounts_with(due, limit):
        with db.session.begin_nested():
            account = _lock(account_id)
            lots = (
                db.session.execute(
                    select(PointsLot)
                    .where(
                        PointsLot.account_id == account_id,
                        PointsLot.released.is_(False),
                        PointsLot.available_at <= now,
                    )
                    .order_by(PointsLot.expires_at.asc().nulls_last(), PointsLot.id)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
                .scalars()
                .all()
            )
            for lot in lots:
                # Debt is repaid before released points reach the balance.
                repay = min(account.debt, lot.remaining)
                entry = ledger.add_entry(
                    account,
                    kind=RELEASE,
                    key=f"release:{lot.id}",
                    points=lot.remaining,
                    delta_balance=lot.remaining - repay,
                    delta_pending=-lot.remaining,
                    delta_debt=-repay,
                    occurred_at=now,
                    tz=tz,
                    lot_id=lot.id,
                    reason="release",
                )
                ledger.take_from_lot(lot, repay, release=True)
                ledger.apply(account, entry)
                count += 1
    return count


def expire_account(account: PointsAccount, *, now: dt.datetime) -> int:
    """Expire this (locked) account's lots that are past their expiry; returns points."""
    lots = (
        db.session.execute(
            select(PointsLot)
            .where(
                PointsLot.account_id == account.id,
                PointsLot.remaining > 0,
                PointsLot.expires_at <= now,
            )
            .order_by(PointsLot.expires_at, PointsLot.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        .scalars()
        .all()
    )
    if not lots:
        return 0
    tz = rules.brand_tz()
    total = 0
    for lot in lots:
        points = lot.remaining
        entry = ledger.add_entry(
            account,
            kind=EXPIRE,
            key=f"expire:{lot.id}",
            points=-points,
            delta_balance=-points if lot.released else 0,
            delta_pending=0 if lot.released else -points,
            occurred_at=lot.expires_at,
            tz=tz,
            lot_id=lot.id,
            reason="expire",
        )
        ledger.take_from_lot(lot, points)
        ledger.apply(account, entry, expired=points)
        total += points
    return total


def expire_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Expire the current brand's lots that are past their expiry; returns points expired."""
    now = now or utcnow()
    due = (
        select(PointsLot.account_id)
        .where(PointsLot.remaining > 0, PointsLot.expires_at <= now)
        .order_by(PointsLot.expires_at)
    )
    total = 0
    for account_id in _accounts_with(due, limit):
        with db.session.begin_nested():
            total += expire_account(_lock(account_id), now=now)
    return total


def due_reminders(*, now: dt.datetime | None = None, limit: int = 200) -> list[dict]:
    """Members to remind of points expiring within the brand's reminder window; marks lots.

    Returns ``[{"member_id", "points", "expires_at"}]``, one per member (their soonest
    expiry). The lots are marked reminded in the same transaction, so a reminder is sent
    once however often the job runs.
    """
    now = now or utcnow()
    settings = rules.get_settings()
    if settings.remind_days <= 0:
        return []
    horizon = now + dt.timedelta(days=settings.remind_days)
    lots = (
        db.session.execute(
            select(PointsLot)
            .where(
                PointsLot.remaining > 0,
                PointsLot.released.is_(True),
                PointsLot.reminded_at.is_(None),
                PointsLot.expires_at > now,
                PointsLot.expires_at <= horizon,
            )
            .order_by(PointsLot.account_id, PointsLot.expires_at, PointsLot.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    by_account: dict[int, list[PointsLot]] = {}
    for lot in lots:
        by_account.setdefault(lot.account_id, []).append(lot)
        lot.reminded_at = now
    members = dict(
        db.session.execute(
            select(PointsAccount.id, PointsAccount.member_id).where(
                PointsAccount.id.in_(list(by_account))
            )
        ).all()
    )
    db.session.flush()
    return [
        {
            "member_id": members[account_id],
            "points": sum(lot.remaining for lot in group),
            "expires_at": group[0].expires_at,
        }
        for account_id, group in by_account.items()
    ]
