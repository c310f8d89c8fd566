"""An order paid twice, through WeChat Pay APIv3's sandbox: the member opened the pay sheet in
the official account's pages and in the mini-program (two attempts) and paid both.

- the second payment is kept as a surplus payment and returned whole, once; the order, the
  points, the purchase and the figures count one payment;
- once the order is paid, its other attempts are closed at WeChat Pay (a job), and one paid
  meanwhile is returned;
- the active query closes the attempts of orders no longer waiting, so none stays pending;
- both payments learned at once, from many notifies and queries: one applied, one returned;
- a return WeChat Pay refuses becomes a reconciliation issue for the brand's operators;
- the member's order page, the console's order page and the reconciliation say so in words.
"""

from __future__ import annotations

import datetime as dt
import threading
import zoneinfo

import pytest
from sqlalchemy import func, select, text

from core.db import db
from core.jobs import OutboxJob, run_outbox_job
from core.tenancy import use_brand
from members.models import MemberActivity
from shop import jobs, payments, reconcile, refunds
from shop.models import (
    PAID,
    PAY_CLOSED,
    PAY_PAID,
    PAY_PENDING,
    PAY_SURPLUS,
    REFUND_NONE,
    RF_FAILED,
    RF_PROCESSING,
    RF_SUCCESS,
    MemberPurchaseFacts,
    Order,
    Payment,
    ReconciliationIssue,
    Refund,
    SalesDayRollup,
)
from tests import factories
from tests.shop.pay_world import (
    World,
    control,
    counts,
    fresh,
    outcomes,
    place,
    points_now,
    start_attempt,
)
from wechat import gateway
from wechat.sandbox import paynotify, paystore

CHINA = zoneinfo.ZoneInfo("Asia/Shanghai")
SUBMIT = "shop.jobs_aftersale.submit_refund"
CLOSE = "shop.jobs.close_attempts"


def _two_attempts(w: World, *, quantity: int = 2):
    """An order with an attempt in the official account's pages and one in the
    mini-program, both waiting at WeChat Pay."""
    order = place(w, quantity=quantity)
    h5, _ = start_attempt(w, order)
    mp, _ = start_attempt(w, order, mini_program=True)
    assert (h5.out_trade_no, mp.out_trade_no) == (order.order_no + "P1", order.order_no + "P2")
    return order, h5, mp


def _jobs(name: str, *args) -> list[int]:
    fresh()
    rows = db.session.execute(
        select(OutboxJob.id, OutboxJob.args).where(OutboxJob.func == name).order_by(OutboxJob.id)
    ).all()
    return [rid for rid, a in rows if not args or list(args) == (a or {}).get("args")]


def _run(name: str, *args) -> None:
    ids = _jobs(name, *args)
    assert ids, f"no {name} job for {args}"
    for rid in ids:
        assert run_outbox_job(rid) != "failed"
    fresh()


def _surplus_refund(payment: Payment) -> Refund:
    fresh()
    return db.session.scalars(select(Refund).where(Refund.payment_id == payment.id)).one()


def _paid_in_both(w: World):
    """An order paid in the pages (H5) and then again in the mini-program: (order, the H5
    payment, the mini-program's, the return of the mini-program's, not yet sent)."""
    order, h5, mp = _two_attempts(w)
    paynotify.pay_order(w.mch_id, h5.out_trade_no)
    paynotify.pay_order(w.mch_id, mp.out_trade_no)
    return order, h5, mp, _surplus_refund(mp)


def _facts(w: World) -> tuple[int, int]:
    fresh()
    row = db.session.get(MemberPurchaseFacts, w.member.id)
    return (row.order_count, row.spend_fen) if row else (0, 0)


def _day_figures(w: World) -> tuple[int, int, int]:
    fresh()
    row = db.session.execute(
        select(
            func.sum(SalesDayRollup.orders),
            func.sum(SalesDayRollup.paid_fen),
            func.sum(SalesDayRollup.refunded_fen),
        ).where(SalesDayRollup.brand_id == w.brand.id)
    ).one()
    return tuple(int(v or 0) for v in row)


def test_an_order_paid_in_both_places_keeps_one_payment_and_returns_the_other(world, paid_signals):
    w = world
    order, h5, mp = _two_attempts(w)
    points_before = points_now(w)
    paid = paynotify.pay_order(w.mch_id, h5.out_trade_no)
    assert [n["status"] for n in paid["notifies"]] == [204]
    assert _jobs(CLOSE, order.id), "the paid order's other attempt is to be closed"
    earned = db.session.get(Order, order.id).points_earned
    facts_once, figures_once = _facts(w), _day_figures(w)
    assert facts_once == (1, order.pay_fen) and figures_once == (1, order.pay_fen, 0)

    # Before the close job ran, the member also paid in the mini-program's pay sheet.
    second = paynotify.pay_order(w.mch_id, mp.out_trade_no)
    assert [n["status"] for n in second["notifies"]] == [204]  # taken: WeChat stops retrying
    again = paynotify.redeliver(w.mch_id, mp.out_trade_no, times=2)
    assert [n["status"] for n in again] == [204, 204]

    fresh()
    row = db.session.get(Order, order.id)
    assert (row.status, row.paid_fen, row.refunded_fen, row.refund_state) == (
        PAID,
        order.pay_fen,
        0,
        REFUND_NONE,
    )
    surplus = db.session.get(Payment, mp.id)
    assert surplus.status == PAY_SURPLUS
    assert surplus.transaction_id == second["order"]["transaction_id"]
    assert db.session.get(Payment, h5.id).status == PAY_PAID
    back = _surplus_refund(mp)
    assert (back.amount_fen, back.status, back.out_refund_no) == (
        order.pay_fen,
        RF_PROCESSING,
        order.order_no + "R1",
    )
    assert outcomes(order) == ["applied", "duplicate", "duplicate", "surplus"]
    assert counts(w, order) == {"status": PAID, "paid_payments": 1, "earned": 1, "purchases": 1}
    assert paid_signals.count(order.id) == 1

    # The job sends the return to WeChat Pay, which returns the second payment whole.
    paystore.hold_refunds(w.mch_id, True)
    _run(SUBMIT, back.id)
    there = paystore.get_refund(w.mch_id, back.out_refund_no)
    assert (there["out_trade_no"], there["refund"], there["total"]) == (
        mp.out_trade_no,
        order.pay_fen,
        order.pay_fen,
    )
    assert there["reason"] == "重复支付，原路退回"
    answer = paynotify.complete_refund(w.mch_id, back.out_refund_no)
    assert answer["status"] == "SUCCESS"
    fresh()
    assert db.session.get(Refund, back.id).status == RF_SUCCESS
    row = db.session.get(Order, order.id)
    assert (row.status, row.refunded_fen, row.refund_state, row.points_earned) == (
        PAID,
        0,
        REFUND_NONE,
        earned,
    )
    # Nothing the order earned or counted moved: one purchase, no refund of the member's.
    assert points_now(w) == points_before + earned
    assert _facts(w) == facts_once and _day_figures(w) == figures_once
    assert (
        db.session.scalar(
            select(func.count()).where(
                MemberActivity.member_id == w.member.id, MemberActivity.kind == "refund"
            )
        )
        == 0
    )

    # WeChat Pay's bill has two payments and one refund: it agrees with our books.
    today = dt.datetime.now(CHINA).date()
    assert reconcile.compare(bill_date=today, rows=gateway.pay_trade_bill(w.brand.id, today)) == []

    # What the member and the operator read.
    client = w.app.test_client()
    factories.sign_in_member(client, w.brand, w.member.id)
    page = client.get(f"/m/{w.brand.slug}/shop/orders/{order.order_no}").get_data(as_text=True)
    assert f"此订单支付了两次，多付的 ¥{order.pay_fen / 100:.2f} 已原路退回" in page
    console = w.app.test_client()
    factories.login(console, w.brand, factories.staff(w.brand))
    page = console.get(f"/console/shop/orders/{order.id}").get_data(as_text=True)
    assert "重复支付，已退回" in page and "重复支付：多付的一笔全额原路退回" in page


def test_the_other_attempt_is_closed_at_wechat_once_the_order_is_paid(world):
    w = world
    order, h5, mp = _two_attempts(w)
    paynotify.pay_order(w.mch_id, h5.out_trade_no)
    _run(CLOSE, order.id)
    assert db.session.get(Payment, mp.id).status == PAY_CLOSED
    assert paystore.get_order(w.mch_id, mp.out_trade_no)["trade_state"] == "CLOSED"
    with pytest.raises(paynotify.PayRefused):
        paynotify.pay_order(w.mch_id, mp.out_trade_no)
    assert db.session.scalar(select(func.count()).where(Refund.order_id == order.id)) == 0
    assert counts(w, order)["paid_payments"] == 1


def test_the_close_finds_the_other_attempt_paid_meanwhile_and_returns_it(world, paid_signals):
    w = world
    order, h5, mp = _two_attempts(w)
    paynotify.pay_order(w.mch_id, h5.out_trade_no)
    control(w, mode="never", out_trade_no=mp.out_trade_no)  # its notify is lost
    paynotify.pay_order(w.mch_id, mp.out_trade_no)
    assert db.session.get(Payment, mp.id).status == PAY_PENDING

    _run(CLOSE, order.id)
    surplus = db.session.get(Payment, mp.id)
    assert (surplus.status, surplus.confirmed_by) == (PAY_SURPLUS, "query")
    back = _surplus_refund(mp)
    assert back.amount_fen == order.pay_fen and _jobs(SUBMIT, back.id)
    assert counts(w, order) == {"status": PAID, "paid_payments": 1, "earned": 1, "purchases": 1}
    assert paid_signals.count(order.id) == 1


def test_the_active_query_closes_the_attempts_of_orders_no_longer_waiting(world):
    w = world
    leftovers = []
    for _ in range(3):
        order, h5, mp = _two_attempts(w, quantity=1)
        paynotify.pay_order(w.mch_id, h5.out_trade_no)
        leftovers.append(mp)
    db.session.execute(text("DELETE FROM outbox_job WHERE func = :f"), {"f": CLOSE})
    db.session.execute(
        text("UPDATE shop_payment SET created_at = created_at - interval '3 minutes'")
    )
    db.session.commit()

    assert jobs.query_pending() == 0  # none paid by the query
    fresh()
    for mp in leftovers:
        assert db.session.get(Payment, mp.id).status == PAY_CLOSED
        assert paystore.get_order(w.mch_id, mp.out_trade_no)["trade_state"] == "CLOSED"
    left = db.session.scalar(
        select(func.count()).where(Payment.brand_id == w.brand.id, Payment.status == PAY_PENDING)
    )
    assert left == 0


def test_both_attempts_learned_at_once_apply_one_and_return_the_other(world, paid_signals):
    """Three orders, each paid in both places with the notifies held back; then for each,
    three deliveries of each payment's notify and two of the pay page's queries, all at
    once."""
    w = world
    orders = []
    for _ in range(3):
        order, h5, mp = _two_attempts(w, quantity=1)
        for p in (h5, mp):
            control(w, mode="never", out_trade_no=p.out_trade_no)
            paynotify.pay_order(w.mch_id, p.out_trade_no)
        orders.append((order, h5, mp))
    paystore.clear_controls(w.mch_id)
    tasks = []
    for order, h5, mp in orders:
        tasks += [("notify", h5.out_trade_no)] * 3 + [("notify", mp.out_trade_no)] * 3
        tasks += [("query", order.order_no)] * 2
    barrier = threading.Barrier(len(tasks))
    answers: list[int] = []
    lock = threading.Lock()

    def run(kind: str, ref: str):
        with w.app.app_context(), use_brand(w.brand.id):
            barrier.wait()
            try:
                if kind == "notify":
                    got = paynotify.redeliver(w.mch_id, ref)
                    with lock:
                        answers.extend(a["status"] for a in got)
                else:
                    payments.refresh(order_no=ref, member_id=w.member.id)
                    db.session.commit()
            except Exception:  # a query that loses a race is refused; the effects are counted
                db.session.rollback()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=t) for t in tasks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(a in (204, 503) for a in answers)
    # WeChat Pay retries what was not acknowledged: each payment's notify once more.
    for _order, h5, mp in orders:
        for p in (h5, mp):
            assert [a["status"] for a in paynotify.redeliver(w.mch_id, p.out_trade_no)] == [204]

    fresh()
    for order, h5, mp in orders:
        states = sorted(db.session.get(Payment, p.id).status for p in (h5, mp))
        assert states == [PAY_PAID, PAY_SURPLUS]
        returned = db.session.scalars(select(Refund).where(Refund.order_id == order.id)).all()
        assert len(returned) == 1
        surplus_id = h5.id if db.session.get(Payment, h5.id).status == PAY_SURPLUS else mp.id
        assert (returned[0].payment_id, returned[0].amount_fen) == (surplus_id, order.pay_fen)
        assert counts(w, order) == {
            "status": PAID,
            "paid_payments": 1,
            "earned": 1,
            "purchases": 3,  # the member's purchases: one per order
        }
        assert db.session.get(Order, order.id).paid_fen == order.pay_fen
        assert paid_signals.count(order.id) == 1
    assert _facts(w) == (3, sum(o.pay_fen for o, _h, _m in orders))


def test_a_return_wechat_pay_refuses_is_a_reconciliation_issue(world):
    w = world
    order, h5, mp, back = _paid_in_both(w)
    paystore.hold_refunds(w.mch_id, True)
    _run(SUBMIT, back.id)
    paynotify.complete_refund(w.mch_id, back.out_refund_no, status="ABNORMAL")
    fresh()
    assert db.session.get(Refund, back.id).status == RF_FAILED
    row = db.session.get(Order, order.id)
    assert (row.refunded_fen, row.refund_state) == (0, REFUND_NONE)
    issue = db.session.scalars(
        select(ReconciliationIssue).where(ReconciliationIssue.brand_id == w.brand.id)
    ).one()
    assert (issue.kind, issue.out_trade_no, issue.resolved) == ("surplus", mp.out_trade_no, False)
    assert issue.ours == f"failed {order.pay_fen} {back.out_refund_no}"

    client = w.app.test_client()
    factories.login(client, w.brand, factories.staff(w.brand))
    page = client.get("/console/shop/reconciliation").get_data(as_text=True)
    assert "重复支付，未能退回" in page and mp.out_trade_no in page
    assert f"退款失败 ¥{order.pay_fen / 100:.2f} {back.out_refund_no}" in page


def test_a_return_the_balance_cannot_pay_is_sent_again_until_it_goes_through(world):
    w = world
    order, h5, mp, back = _paid_in_both(w)
    paystore.short_of_funds(w.mch_id)  # WeChat Pay answers NOT_ENOUGH
    _run(SUBMIT, back.id)
    assert db.session.get(Refund, back.id).status == RF_PROCESSING
    assert paystore.get_refund(w.mch_id, back.out_refund_no) is None
    assert refunds.query_processing(older_than=dt.timedelta(0)) == 0
    db.session.commit()
    fresh()
    assert db.session.get(Refund, back.id).status == RF_PROCESSING
    assert db.session.scalar(select(func.count()).select_from(ReconciliationIssue)) == 0

    # The merchant tops the balance up: the refund query sends it again.
    paystore.short_of_funds(w.mch_id, False)
    paystore.hold_refunds(w.mch_id, True)
    refunds.query_processing(older_than=dt.timedelta(0))
    db.session.commit()
    assert paystore.get_refund(w.mch_id, back.out_refund_no)["refund"] == order.pay_fen
    paynotify.complete_refund(w.mch_id, back.out_refund_no)
    fresh()
    assert db.session.get(Refund, back.id).status == RF_SUCCESS


def test_a_return_the_balance_cannot_pay_for_a_day_is_handed_to_the_operators(world):
    w = world
    order, h5, mp, back = _paid_in_both(w)
    paystore.short_of_funds(w.mch_id)
    _run(SUBMIT, back.id)
    db.session.execute(
        text("UPDATE shop_refund SET created_at = created_at - interval '25 hours' WHERE id = :id"),
        {"id": back.id},
    )
    db.session.commit()
    assert refunds.query_processing(older_than=dt.timedelta(0)) == 1
    db.session.commit()
    fresh()
    assert db.session.get(Refund, back.id).status == RF_FAILED
    issue = db.session.scalars(select(ReconciliationIssue)).one()
    assert (issue.kind, issue.out_trade_no) == ("surplus", mp.out_trade_no)
    assert db.session.get(Order, order.id).refunded_fen == 0
