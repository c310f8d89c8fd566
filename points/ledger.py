"""Ledger primitives: lock an account, write an entry, move points between lots and totals.

Every change to a member's points goes through here, inside a savepoint, in this order:
1. lock the member's account row (``SELECT ... FOR UPDATE``; created first if missing), so
   one member's operations are serialised and locks are always taken account-then-lots;
2. return the existing entry if the idempotency key was already used (same member and
   kind), or refuse it (``IdempotencyConflict``) when it was used for something else;
3. insert the append-only entry, then apply its deltas to the account with one
   conditional ``UPDATE`` (``balance + :d >= 0``) and to the lots with conditional
   ``UPDATE``s, locking lots ``FOR UPDATE`` in (expires_at, id) order.
A failure anywhere rolls back the savepoint: nothing is written.

The common spend takes a shorter way with the same order and guarantees, in two statements
and no savepoint (``points.spending``); everything else comes here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from core import jobs
from core.db import db, insert_ignoring, utcnow
from core.tenancy import require_brand_id
from points.errors import IdempotencyConflict, InsufficientPoints, InvalidPoints
from points.models import PointsAccount, PointsEntry, PointsLot
from points.rules import local_day

T = TypeVar("T")
MAX_KEY = 200
SYNC_SLOT_SECONDS = 10


def check_points(value, field: str = "points", *, allow_negative: bool = False) -> int:
    """A whole, non-zero number of points (positive unless ``allow_negative``)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidPoints(_l("Enter a whole number."), field=field)
    if value == 0 or (value < 0 and not allow_negative):
        raise InvalidPoints(_l("The amount must be greater than zero."), field=field)
    if abs(value) > 10**12:
        raise InvalidPoints(_l("Too many points."), field=field)
    return value


def check_key(key) -> str:
    """An idempotency key: the source event's id, 1-200 characters."""
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY:
        raise InvalidPoints(_l("An idempotency key of 1-200 characters is required."), field="key")
    return key


def entry_by_key(key: str) -> PointsEntry | None:
    """The current brand's entry for this idempotency key, if any."""
    return db.session.execute(
        select(PointsEntry).where(PointsEntry.idempotency_key == key)
    ).scalar_one_or_none()


# A new account's columns besides brand, member and times: the model's defaults.
_NEW_ACCOUNT = dict.fromkeys(
    (
        "balance",
        "pending",
        "debt",
        "lifetime_earned",
        "lifetime_spent",
        "lifetime_expired",
        "last_entry_id",
        "synced_entry_id",
    ),
    0,
)


def lock_account(member_id: int) -> PointsAccount:
    """The member's account, created if missing, locked until the transaction ends."""
    now = utcnow()
    values = {**_NEW_ACCOUNT, "brand_id": require_brand_id(), "member_id": member_id}
    values["created_at"] = values["updated_at"] = now
    # Compiled once (SQLAlchemy compiles PostgreSQL's ON CONFLICT insert on every call).
    db.session.flush()
    db.session.execute(
        insert_ignoring(PointsAccount.__tablename__, tuple(values), ("brand_id", "member_id")),
        values,
    )
    return db.session.execute(
        select(PointsAccount)
        .where(PointsAccount.member_id == member_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def atomic(key: str, member_id: int, kind: str, work: Callable[[], T]) -> T:
    """Run ``work`` in a savepoint; a key raced by another transaction answers its entry."""
    try:
        with db.session.begin_nested():
            return work()
    except IntegrityError:
        existing = entry_by_key(key)
        if existing is None:
            raise
        return replay(existing, member_id=member_id, kind=kind)  # type: ignore[return-value]


def replay(
    existing: PointsEntry, *, member_id: int | None, kind: str | tuple[str, ...]
) -> PointsEntry:
    """The earlier entry of a repeated call, or a conflict when the key meant something else."""
    kinds = (kind,) if isinstance(kind, str) else kind
    if existing.kind not in kinds or (member_id is not None and existing.member_id != member_id):
        raise IdempotencyConflict(
            _l("This idempotency key was already used for another operation."), field="key"
        )
    return existing


def add_entry(
    account: PointsAccount,
    *,
    kind: str,
    key: str,
    points: int,
    delta_balance: int = 0,
    delta_pending: int = 0,
    delta_debt: int = 0,
    occurred_at: dt.datetime,
    tz,
    **fields,
) -> PointsEntry:
    """Insert an entry (flushed, so it has its id)."""
    entry = PointsEntry(
        account_id=account.id,
        member_id=account.member_id,
        kind=kind,
        idempotency_key=key,
        points=points,
        delta_balance=delta_balance,
        delta_pending=delta_pending,
        delta_debt=delta_debt,
        occurred_at=occurred_at,
        local_day=local_day(occurred_at, tz),
        created_at=utcnow(),
        **fields,
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def apply(
    account: PointsAccount,
    entry: PointsEntry,
    *,
    earned: int = 0,
    spent: int = 0,
    expired: int = 0,
) -> None:
    """Apply an entry's deltas to the account with one conditional UPDATE.

    The WHERE clause refuses any result below zero, so two racing spends can never take the
    balance negative even if a caller forgot to lock; the CHECK constraints back it up.
    """
    a = PointsAccount
    b, p, d = entry.delta_balance, entry.delta_pending, entry.delta_debt
    row = db.session.execute(
        update(a)
        .where(a.id == account.id, a.balance + b >= 0, a.pending + p >= 0, a.debt + d >= 0)
        .values(
            balance=a.balance + b,
            pending=a.pending + p,
            debt=a.debt + d,
            lifetime_earned=a.lifetime_earned + earned,
            lifetime_spent=a.lifetime_spent + spent,
            lifetime_expired=a.lifetime_expired + expired,
            last_entry_id=entry.id,
            updated_at=utcnow(),
        )
        .returning(a.balance, a.pending, a.debt)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        raise InsufficientPoints(_l("Not enough points."), field="points")
    # Keep the locked in-memory row in step without making the ORM write it again.
    for name, value in zip(("balance", "pending", "debt"), row, strict=True):
        set_committed_value(account, name, value)
    set_committed_value(account, "last_entry_id", entry.id)
    _mark_dirty(account)


def _mark_dirty(account: PointsAccount) -> None:
    mark_dirty(account.brand_id)


def sync_key(brand_id: int) -> str:
    """The dedupe key of the brand's sync job for the current time slot."""
    return f"points:sync:{brand_id}:{int(utcnow().timestamp()) // SYNC_SLOT_SECONDS}"


def mark_dirty(brand_id: int, *, key: str | None = None, queued: bool = False) -> None:
    """Ask for a card sync and notification soon (one job per brand per slot: batched).

    ``queued``: the caller already saw this slot's outbox row, so the insert would be a
    no-op (the hot path reads that in a statement it makes anyway).
    """
    from points import jobs as points_jobs

    if queued:
        return
    jobs.enqueue(
        points_jobs.sync_members,
        brand_id,
        brand_id=brand_id,
        dedupe_key=key or sync_key(brand_id),
    )


def open_lots(account: PointsAccount, *, released: bool = True, exclude: int | None = None):
    """Lots holding points, locked, earliest expiry first (never-expiring last)."""
    stmt = (
        select(PointsLot)
        .where(
            PointsLot.account_id == account.id,
            PointsLot.released.is_(released),
            PointsLot.remaining > 0,
        )
        .order_by(PointsLot.expires_at.asc().nulls_last(), PointsLot.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if exclude is not None:
        stmt = stmt.where(PointsLot.id != exclude)
    return db.session.execute(stmt).scalars().all()


def take_from_lot(lot: PointsLot, points: int, *, release: bool = False) -> None:
    """Remove points from a locked lot with a conditional UPDATE."""
    if points == 0 and not release:
        return
    values: dict = {"remaining": PointsLot.remaining - points}
    if release:
        values["released"] = True
    result = db.session.execute(
        update(PointsLot)
        .where(PointsLot.id == lot.id, PointsLot.remaining >= points)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise InsufficientPoints(_l("Not enough points."), field="points")
    set_committed_value(lot, "remaining", lot.remaining - points)
    if release:
        set_committed_value(lot, "released", True)


def consume(account: PointsAccount, points: int, *, exclude: int | None = None) -> int:
    """Take up to ``points`` from released lots, earliest expiry first; returns points taken."""
    left = points
    for lot in open_lots(account, exclude=exclude):
        if left == 0:
            break
        take = min(left, lot.remaining)
        take_from_lot(lot, take)
        left -= take
    return points - left


def new_lot(
    account: PointsAccount,
    entry: PointsEntry,
    *,
    amount: int,
    remaining: int,
    released: bool,
    earned_at: dt.datetime,
    available_at: dt.datetime,
    expires_at: dt.datetime | None,
) -> PointsLot:
    """A lot for the points an entry brought in."""
    lot = PointsLot(
        account_id=account.id,
        entry_id=entry.id,
        amount=amount,
        remaining=remaining,
        released=released,
        earned_at=earned_at,
        available_at=available_at,
        expires_at=expires_at,
    )
    db.session.add(lot)
    db.session.flush()
    return lot
