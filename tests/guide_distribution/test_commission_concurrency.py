"""Races on PostgreSQL: the payment notify five times at once, the settlement job twice at
once, two withdrawals of one balance at once. Exact totals on every ledger path."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from core.db import db, utcnow
from guide_distribution import ledger, payouts, settings, settlement
from guide_distribution.models.commission import CommissionEntry, CommissionLine
from shop import checkout, payments
from shop.pricing import Item
from tests.guide_distribution.commission_helpers import (
    assert_consistent,
    bound_member,
    guide,
    lines,
    paid_order,
    receive_and_complete,
)
from tests.shop.conftest import ADDRESS
from tests.support.concurrency import run_concurrently

LATER = dt.timedelta(days=16)


def _count(kind: str, guide_id: int) -> int:
    return db.session.execute(
        select(func.count()).where(
            CommissionEntry.kind == kind, CommissionEntry.guide_id == guide_id
        )
    ).scalar_one()


def test_five_notifies_and_two_settlement_runs_at_once(app, shop, fake_pay):
    g = guide(shop)
    m = bound_member(g)
    settings.update_settings(default_rate_bp=1000)
    db.session.commit()
    placed = checkout.checkout(
        member_id=m.id,
        items=[Item(shop.sku.id, 2), Item(shop.other_sku.id, 1)],
        channel="mini_program",
        idempotency_key="race",
        address=ADDRESS,
    )
    db.session.commit()
    order = placed.order
    payment, _ = payments.start_payment(
        order_no=order.order_no, member_id=m.id, mini_program=True, notify_url="https://x/n"
    )
    db.session.commit()
    out_trade_no, pay_fen = payment.out_trade_no, order.pay_fen

    results = run_concurrently(
        app,
        shop.brand.id,
        5,
        lambda i: payments.mark_paid(
            out_trade_no=out_trade_no, transaction_id="T-race", amount_fen=pay_fen, via="notify"
        ),
    )
    assert all(r[0] == "ok" for r in results), results
    db.session.expire_all()
    got = lines(order)
    assert [(cl.base_fen, cl.amount_fen) for cl in got] == [(4000, 400), (3000, 300)]
    assert _count("earn", g.id) == 1
    assert assert_consistent(g.id).pending == 700

    # two more orders, so that the runs have several lines to share
    others = [paid_order(m, [(shop.sku, 1)]), paid_order(m, [(shop.other_sku, 2)])]
    now = utcnow()
    for o in [order, *others]:
        receive_and_complete(o, m, now=now)
    assert assert_consistent(g.id).frozen == 700 + 200 + 600

    runs = run_concurrently(
        app,
        shop.brand.id,
        2,
        lambda i: settlement.settle_due(now=now + LATER, size=2, commit=db.session.commit).lines,
    )
    assert all(r[0] == "ok" for r in runs), runs
    assert sum(r[1] for r in runs) == 4  # every line settled by exactly one of the runs
    db.session.expire_all()
    settled = db.session.execute(
        select(func.count()).where(CommissionLine.state == "settled")
    ).scalar_one()
    assert settled == 4
    bal = assert_consistent(g.id)
    assert (bal.pending, bal.frozen, bal.settled) == (0, 0, 1500)
    moved = db.session.execute(
        select(func.sum(CommissionEntry.d_settled)).where(CommissionEntry.kind == "settle")
    ).scalar_one()
    assert moved == 1500
    # and a third run finds nothing
    assert settlement.settle_due(now=now + LATER).lines == 0


def test_two_withdrawals_of_one_balance_at_once_one_succeeds(app, shop, fake_pay):
    g = guide(shop)
    m = bound_member(g)
    settings.update_settings(default_rate_bp=1000)
    db.session.commit()
    order = paid_order(m, [(shop.sku, 5)])  # ¥100 -> ¥10
    now = utcnow()
    receive_and_complete(order, m, now=now)
    settlement.settle_due(now=now + LATER)
    db.session.commit()
    guide_id = g.id
    assert ledger.balances(guide_id).settled == 1000

    results = run_concurrently(
        app,
        shop.brand.id,
        2,
        lambda i: payouts.request(guide_id=guide_id, amount_fen=1000, request_key=f"w{i}").id,
    )
    outcomes = sorted(r[0] if r[0] == "ok" else r[1] for r in results)
    assert outcomes == ["InsufficientBalance", "ok"], results
    db.session.expire_all()
    bal = assert_consistent(guide_id)
    assert (bal.settled, bal.paying) == (0, 1000)
    assert _count("withdraw", guide_id) == 1


def test_a_refund_during_the_settlement_run_is_counted_once(app, shop, fake_pay):
    from shop import refunds
    from shop.models import OrderLine

    g = guide(shop)
    m = bound_member(g)
    settings.update_settings(default_rate_bp=1000)
    db.session.commit()
    orders = [paid_order(m, [(shop.sku, 2)]) for _ in range(3)]  # ¥4 each
    now = utcnow()
    for o in orders:
        receive_and_complete(o, m, now=now)
    line = db.session.execute(
        select(OrderLine).where(OrderLine.order_id == orders[1].id)
    ).scalar_one()
    r = refunds.start(
        order_id=orders[1].id, items=[refunds.Item(line.id, 0, 1000)], idempotency_key="race-r"
    )
    db.session.commit()
    refund_id = r.id

    def step(i: int):
        if i == 0:
            return refunds.succeed(refund_id=refund_id, refund_no="R-race", via="notify")
        return settlement.settle_due(now=now + LATER, size=1, commit=db.session.commit).lines

    results = run_concurrently(app, shop.brand.id, 2, step)
    assert all(r[0] == "ok" for r in results), results
    db.session.expire_all()
    # whichever came first, the refund took back a quarter of that line's ¥4 exactly once
    bal = assert_consistent(g.id)
    assert bal.pending + bal.frozen + bal.settled + bal.paying + bal.paid - bal.owed == 1100
    assert _count("reverse", g.id) == 1
    leftover = settlement.settle_due(now=now + LATER)
    db.session.commit()
    bal = assert_consistent(g.id)
    assert (bal.frozen, bal.settled, bal.owed) == (0, 1100, 0)
    assert results[1][1] + leftover.lines == 3
