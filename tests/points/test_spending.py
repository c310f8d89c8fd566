"""The spend hot path (points.spending): two statements, the same answers as the general path,
and a refusal (never a guess) when the lots disagree with the cached balance."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from sqlalchemy import func, select, text

from core.db import db
from core.jobs import OutboxJob
from points import rules, services
from points.errors import InsufficientPoints, UnknownMember
from points.models import PointsEntry, PointsLot
from tests import factories
from tests.support.points import T0, check_invariants


def _earn(member: int, yuan: int, key: str, days_before: int) -> None:
    when = T0 - dt.timedelta(days=days_before)
    services.earn_for_purchase(
        member_id=member, amount_fen=yuan * 100, occurred_at=when, idempotency_key=key, now=when
    )
    db.session.commit()


def test_a_spend_is_two_statements_across_lots_earliest_expiry_first(brand, member, monkeypatch):
    rules.update_settings(pending_days=0)
    db.session.commit()
    _earn(member, 40, "a", days_before=5)
    _earn(member, 30, "b", days_before=9)  # expires first
    _earn(member, 50, "c", days_before=1)
    services.spend(member_id=member, points=1, reason="warm", idempotency_key="w", now=T0)
    db.session.commit()
    assert brand.timezone  # the brand loaded and the transaction begun, as in a request
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def counted(self, query, *args, **kwargs):
        sent.append(" ".join(str(query).split()[:2]))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    entry_id = services.spend_id(
        member_id=member, points=60, reason="mall", idempotency_key="s", now=T0
    )
    monkeypatch.undo()
    # (An outbox insert when the warm-up's sync slot ended meanwhile, 10 s slots.)
    assert [s for s in sent if s != "INSERT INTO"] == ["SELECT a.id,", "WITH lots"]
    db.session.commit()
    entry = db.session.get(PointsEntry, entry_id)
    assert (entry.kind, entry.points, entry.delta_balance) == ("spend", -60, -60)
    lots = db.session.scalars(select(PointsLot).order_by(PointsLot.earned_at)).all()
    assert [lot.remaining for lot in lots] == [0, 9, 50]  # 30-1 then 29, then 31 of 40
    account = check_invariants(member)
    assert (account.balance, account.lifetime_spent, account.last_entry_id) == (59, 61, entry_id)
    # Repeated: the same entry, nothing moves.
    again = services.spend(member_id=member, points=60, reason="mall", idempotency_key="s", now=T0)
    db.session.commit()
    assert again.id == entry_id and check_invariants(member).balance == 59
    # The member's card sync is queued by a job.
    assert db.session.scalar(
        select(func.count())
        .select_from(OutboxJob)
        .where(OutboxJob.func == "points.jobs.sync_members")
    )


def test_lots_that_disagree_with_the_balance_refuse_the_spend(member):
    rules.update_settings(pending_days=0)
    db.session.commit()
    _earn(member, 100, "a", days_before=1)
    # Damage the lots behind the ledger's back: they now hold less than the balance says.
    db.session.execute(text("UPDATE points_lot SET remaining = 20"))
    db.session.commit()
    with pytest.raises(InsufficientPoints):
        services.spend(member_id=member, points=50, reason="mall", idempotency_key="s", now=T0)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(PointsEntry)) == 1
    assert db.session.scalar(select(PointsLot.remaining)) == 20


def test_an_inactive_member_cannot_spend(member):
    rules.update_settings(pending_days=0)
    db.session.commit()
    _earn(member, 100, "a", days_before=1)
    db.session.execute(text("UPDATE member SET status = 'deleted' WHERE id = :m"), {"m": member})
    db.session.commit()
    with pytest.raises(UnknownMember):
        services.spend(member_id=member, points=10, reason="mall", idempotency_key="s", now=T0)
    db.session.rollback()
    other = factories.member().id
    with pytest.raises(InsufficientPoints):  # no account yet: nothing to spend
        services.spend(member_id=other, points=10, reason="mall", idempotency_key="s2", now=T0)
