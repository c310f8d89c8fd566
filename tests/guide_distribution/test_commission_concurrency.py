"""Races on PostgreSQL: the payment notify five times at once, the settlement job twice at
once, two withdrawals of one balance at once. Exact totals on every ledger path.

The first test drives the services; ``test_five_signed_notifies_and_two_settlement_jobs_at_once``
does the same through the app's real pay-notify endpoint (notifies signed and posted by the
WeChat Pay sandbox) and the settlement job run by the job runner."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from core.db import db, utcnow
from core.jobs import OutboxJob, enqueue, run_outbox_job
from core.tenancy import use_brand
from guide_distribution import jobs_commission, ledger, payouts, settings, settlement
from guide_distribution.models.commission import CommissionEntry, CommissionLine
from members.identities import attach_identity
from shop import checkout, payments
from shop.models import H5, PAID, Order
from shop.pricing import Item
from tests import factories
from tests.guide_distribution.commission_helpers import (
    assert_consistent,
    bound_member,
    guide,
    lines,
    paid_order,
    receive_and_complete,
)
from tests.shop.conftest import ADDRESS, product, sandbox_merchant
from tests.support.concurrency import run_concurrently
from wechat.sandbox import paynotify, paystore

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


# --- through the pay-notify endpoint and the job runner --------------------------------------


@pytest.fixture
def sandbox_shop(wx_app, wx_brand, wx_consumer):
    """A brand paid through the WeChat Pay sandbox (a merchant of this test alone), a store,
    two products, a guide and a customer the guide activated; commission at 10%, settling as
    soon as an order completes."""
    mch_id, store = sandbox_merchant(wx_brand)
    with use_brand(wx_brand.id):
        tea = product(name="乌龙茶", price_fen=2000)
        cup = product(name="茶杯", price_fen=3000)
        g = factories.staff(wx_brand, role="guide", store=store)
        # activated by the guide, who becomes the customer's guide
        m = factories.member(activated=True, store=store, guide=g, openid=wx_consumer["openid"])
        attach_identity(member_id=m.id, kind="mp_openid", value=wx_consumer["mp_openid"])
        settings.update_settings(default_rate_bp=1000, settle_after_days=0)
        db.session.commit()
        notify_url = f"{wx_app.config['PUBLIC_URL']}/pay/notify/{wx_brand.slug}"
        yield dict(app=wx_app, brand=wx_brand, mch_id=mch_id, tea=tea, cup=cup, guide=g, m=m,
                   notify_url=notify_url)  # fmt: skip
    paystore.clear_controls(mch_id)


def _sandbox_order(w, items, key):
    placed = checkout.checkout(
        member_id=w["m"].id,
        items=items,
        channel=H5,
        idempotency_key=key,
        address=ADDRESS,
        from_cart=False,
    )
    db.session.commit()
    payment, _ = payments.start_payment(
        order_no=placed.order.order_no,
        member_id=w["m"].id,
        mini_program=False,
        notify_url=w["notify_url"],
    )
    db.session.commit()
    return placed.order, payment


def _settle_jobs(brand_id: int) -> list[int]:
    """Two runs of the brand's settlement job, as the scheduler and a retry might leave."""
    ids = [enqueue(jobs_commission.settle_brand, brand_id, brand_id=brand_id) for _ in range(2)]
    db.session.commit()
    return ids


def _released_together(app, tasks) -> list:
    """Run the callables in threads released at once, each in its own app context."""
    barrier = threading.Barrier(len(tasks))
    results: list = [None] * len(tasks)

    def worker(i: int, fn) -> None:
        with app.app_context():
            barrier.wait()
            try:
                results[i] = fn()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(i, fn)) for i, fn in enumerate(tasks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _settle_entries(guide_id: int) -> list[tuple[int, int]]:
    db.session.expire_all()
    return list(
        db.session.execute(
            select(CommissionEntry.lines, CommissionEntry.d_settled)
            .where(CommissionEntry.kind == "settle", CommissionEntry.guide_id == guide_id)
            .order_by(CommissionEntry.id)
        ).all()
    )


def test_five_signed_notifies_and_two_settlement_jobs_at_once(sandbox_shop):
    w = sandbox_shop
    g, m, brand_id = w["guide"], w["m"], w["brand"].id
    # An earlier order, paid (one notify), received and completed: ¥60 -> ¥6 due now.
    earlier, pay = _sandbox_order(w, [Item(w["tea"].id, 3)], "earlier")
    assert [
        n["status"] for n in paynotify.pay_order(w["mch_id"], pay.out_trade_no)["notifies"]
    ] == [204]
    receive_and_complete(earlier, m)
    assert assert_consistent(g.id).frozen == 600

    # The order of the race: paid in WeChat, its notify not yet sent.
    order, pay = _sandbox_order(w, [Item(w["tea"].id, 2), Item(w["cup"].id, 1)], "race")
    paystore.set_delivery(w["mch_id"], "never", out_trade_no=pay.out_trade_no)
    paynotify.pay_order(w["mch_id"], pay.out_trade_no)
    job_ids = _settle_jobs(brand_id)

    # WeChat posts the notify five times at once while the settlement job runs twice.
    def notify():
        return paynotify.redeliver(w["mch_id"], pay.out_trade_no)[0]["status"]

    results = _released_together(
        w["app"], [notify] * 5 + [lambda i=i: run_outbox_job(i) for i in job_ids]
    )
    statuses, runs = results[:5], results[5:]
    assert runs == ["done", "done"]
    # a notify that lost the race may be told to come back (503); WeChat's next retry is
    # then acknowledged like the rest
    assert set(statuses) <= {204, 503} and 204 in statuses, statuses
    if 503 in statuses:
        assert notify() == 204
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == PAID
    got = lines(order)
    assert [(cl.base_fen, cl.amount_fen, cl.state) for cl in got] == [
        (4000, 400, "pending"),
        (3000, 300, "pending"),
    ]
    assert _count("earn", g.id) == 2  # the earlier order's and this one's
    # the earlier order settled exactly once, whichever run took it
    assert _settle_entries(g.id) == [(1, 600)]
    bal = assert_consistent(g.id)
    assert (bal.pending, bal.frozen, bal.settled) == (700, 0, 600)

    # The order arrives and completes; the job runs twice at once again.
    receive_and_complete(order, m)
    job_ids = _settle_jobs(brand_id)
    runs = _released_together(w["app"], [lambda i=i: run_outbox_job(i) for i in job_ids])
    assert runs == ["done", "done"]
    assert _settle_entries(g.id) == [(1, 600), (2, 700)]
    assert [cl.state for cl in lines(order)] == ["settled", "settled"]
    bal = assert_consistent(g.id)
    assert (bal.pending, bal.frozen, bal.settled) == (0, 0, 1300)
    done = db.session.execute(
        select(func.count()).where(OutboxJob.id.in_(job_ids), OutboxJob.status == "done")
    ).scalar_one()
    assert done == 2
