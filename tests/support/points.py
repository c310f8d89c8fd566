"""The points ledger seen from the tests: a reference time and the ledger's invariants."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from core.db import db
from points.models import PointsAccount, PointsEntry, PointsLot

T0 = dt.datetime(2026, 3, 10, 4, 0, tzinfo=dt.UTC)  # 12:00 in Shanghai


def account_of(member_id: int) -> PointsAccount | None:
    return db.session.execute(
        select(PointsAccount)
        .where(PointsAccount.member_id == member_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def check_invariants(member_id: int) -> PointsAccount:
    """The ledger's invariants for one member; returns the account."""
    a = account_of(member_id)
    assert a is not None
    assert a.balance >= 0 and a.pending >= 0 and a.debt >= 0
    open_lots = db.session.execute(
        select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
            PointsLot.account_id == a.id, PointsLot.released.is_(True)
        )
    ).scalar_one()
    pending_lots = db.session.execute(
        select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
            PointsLot.account_id == a.id, PointsLot.released.is_(False)
        )
    ).scalar_one()
    sums = db.session.execute(
        select(
            func.coalesce(func.sum(PointsEntry.delta_balance), 0),
            func.coalesce(func.sum(PointsEntry.delta_pending), 0),
            func.coalesce(func.sum(PointsEntry.delta_debt), 0),
        ).where(PointsEntry.account_id == a.id)
    ).one()
    assert a.balance == open_lots
    assert a.pending == pending_lots
    assert a.balance - a.debt == open_lots - a.debt
    assert (a.balance, a.pending, a.debt) == tuple(int(x) for x in sums)
    assert a.debt == 0 or a.balance == 0
    return a
