"""Totals match to the fen over any mix of orders, partial refunds (at any stage, including
after the commission was paid out), settlements and payouts; debt is never lost."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from core.db import db, utcnow
from core.errors import AppError
from guide_distribution import ledger, payouts, settlement
from guide_distribution import settings as dist_settings
from guide_distribution.models.commission import CommissionLine
from shop.models import OrderLine
from tests.guide_distribution.commission_helpers import (
    assert_consistent,
    bound_member,
    guide,
    paid_order,
    receive_and_complete,
    refund,
)
from tests.shop.conftest import product

LATER = dt.timedelta(days=16)
RATE_BP = 1250

ops = st.lists(
    st.one_of(
        st.tuples(st.just("order"), st.integers(1, 3)),
        st.tuples(st.just("complete"), st.integers(0, 5)),
        st.tuples(st.just("refund"), st.integers(0, 5), st.integers(1, 100)),
        st.tuples(st.just("settle")),
        st.tuples(st.just("payout")),
    ),
    min_size=1,
    max_size=7,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=ops)
def test_totals_match_to_the_fen(shop, fake_pay, steps):
    dist_settings.update_settings(default_rate_bp=RATE_BP, payout_min_fen=1)
    db.session.commit()
    g = guide(shop)
    m = bound_member(g)
    # Each example buys from its own SKU: examples share the fixture's brand, and a shared
    # pool of stock would run out after enough of them.
    sku = product(name="乌龙茶", price_fen=2000, category=shop.tea, stock_units=100)
    orders, completed = [], set()
    now = utcnow()
    for step in [("order", 2), *steps]:
        kind = step[0]
        if kind == "order":
            orders.append(paid_order(m, [(sku, step[1])]))
        elif kind == "complete" and orders:
            o = orders[step[1] % len(orders)]
            if o.id not in completed:
                receive_and_complete(o, m, now=now)
                completed.add(o.id)
        elif kind == "refund" and orders:
            o = orders[step[1] % len(orders)]
            line = db.session.execute(
                select(OrderLine)
                .where(OrderLine.order_id == o.id)
                .execution_options(populate_existing=True)
            ).scalar_one()
            left = line.pay_fen - line.refunded_fen
            amount = max(left * step[2] // 100, 1)
            if left > 0:
                try:
                    refund(o, amount_fen=min(amount, left))
                except AppError:
                    db.session.rollback()
        elif kind == "settle":
            settlement.settle_due(now=now + LATER)
            db.session.commit()
        elif kind == "payout":
            available = ledger.balances(g.id).settled
            if available > 0:
                payouts.request(guide_id=g.id, amount_fen=available)
                payouts.export_payroll()
                db.session.commit()
        assert_consistent(g.id)
    # Every line keeps exactly its share of what was not refunded, rounded down.
    for cl in db.session.execute(
        select(CommissionLine).where(CommissionLine.guide_id == g.id)
    ).scalars():
        line = db.session.get(OrderLine, cl.order_line_id)
        db.session.refresh(line)
        assert cl.amount_fen == line.pay_fen * RATE_BP // 10_000
        refunded = line.pay_fen - max(line.pay_fen - line.refunded_fen, 0)
        kept = cl.amount_fen * (line.pay_fen - refunded) // line.pay_fen
        assert cl.amount_fen - cl.reversed_fen == kept
    bal = assert_consistent(g.id)
    assert bal.owed == 0 or bal.settled == 0  # debt is paid before anything is withdrawable
