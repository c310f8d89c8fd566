"""Property-based: random sequences of earn, spend, release, expire and refund.

After every step the ledger's invariants hold (balance = open lots, pending = pending lots,
entries sum to the totals, never negative, debt only with an empty balance), nothing is
created or lost (earned - spent - expired - reversed = balance + pending - debt), spending
takes the earliest-expiring lots first, and after an expiry run nothing past due is left.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.db import db
from points import ledger, rules, services
from points.errors import InsufficientPoints
from points.expiry import expire_due, release_due
from points.models import PointsEntry, PointsLot
from tests import factories
from tests.support.points import T0, check_invariants

steps = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(min_value=1, max_value=30_000)),
        st.tuples(st.just("spend"), st.integers(min_value=1, max_value=250)),
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=20)),
        st.tuples(st.just("refund"), st.integers(min_value=1, max_value=100)),
    ),
    min_size=1,
    max_size=14,
)


def _lots(account_id):
    return {
        lot.id: lot
        for lot in db.session.execute(
            select(PointsLot)
            .where(PointsLot.account_id == account_id)
            .execution_options(populate_existing=True)
        ).scalars()
    }


def _conservation(member_id):
    a = check_invariants(member_id)
    reversed_ = db.session.execute(
        select(func.coalesce(func.sum(-PointsEntry.points), 0)).where(
            PointsEntry.account_id == a.id, PointsEntry.kind == "refund"
        )
    ).scalar_one()
    assert (
        a.lifetime_earned - a.lifetime_spent - a.lifetime_expired - int(reversed_)
        == a.balance + a.pending - a.debt
    )
    return a


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=steps)
def test_random_sequences_keep_the_ledger_exact(brand, ops):
    rules.update_settings(pending_days=3, expiry_policy="months", expiry_months=1)
    db.session.commit()
    member = factories.member().id
    ledger.lock_account(member)  # an empty account, so every step can be checked
    db.session.commit()
    now = T0
    earns: list[tuple[str, int]] = []
    refunded: dict[str, int] = {}
    for n, (op, value) in enumerate(ops):
        key = f"{member}-{n}"
        if op == "earn":
            services.earn_for_purchase(
                member_id=member, amount_fen=value, occurred_at=now, idempotency_key=key, now=now
            )
            earns.append((key, value))
        elif op == "spend":
            before = _conservation(member)
            lots_before = _lots(before.id)
            try:
                services.spend(
                    member_id=member, points=value, reason="p", idempotency_key=key, now=now
                )
            except InsufficientPoints:
                db.session.rollback()
                continue
            db.session.flush()
            lots_after = _lots(before.id)
            consumed = [
                lot
                for lid, lot in lots_after.items()
                if lot.released
                and lots_before[lid].remaining > lot.remaining
                and (lot.expires_at is None or lot.expires_at > now)
            ]
            if consumed:
                latest = max(lot.expires_at for lot in consumed)
                for lot in lots_after.values():
                    if lot.released and lot.expires_at < latest and lot.expires_at > now:
                        assert lot.remaining == 0, "a later lot was spent before an earlier one"
        elif op == "wait":
            now += dt.timedelta(days=value)
            release_due(now=now)
            expire_due(now=now)
            db.session.flush()
            left = db.session.execute(
                select(func.count()).where(PointsLot.remaining > 0, PointsLot.expires_at <= now)
            ).scalar_one()
            assert left == 0
        elif op == "refund" and earns:
            okey, total = earns[value % len(earns)]
            part = max(1, total * value // 100)
            if refunded.get(okey, 0) + part <= total:
                services.refund(
                    original_key=okey,
                    refunded_fen=part,
                    order_total_fen=total,
                    idempotency_key=key,
                    now=now,
                )
                refunded[okey] = refunded.get(okey, 0) + part
        db.session.commit()
        _conservation(member)
