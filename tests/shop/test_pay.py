"""Payment: mark_paid applies a payment once (one payment, one points award, one order_paid)
however often and however concurrently it is learned; forged or mismatched notifies are
refused with nothing changed; the release asks WeChat Pay before closing."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import func, select

from core.db import db
from core.errors import AppError
from core.tenancy import use_brand
from members.models import MemberActivity
from points import services as points
from points.models import PointsEntry
from shop import checkout, jobs, payments, signals
from shop.models import (
    CREATED,
    PAID,
    PAY_CLOSED,
    PAY_PAID,
    RES_CONFIRMED,
    MemberPurchaseFacts,
    Order,
    Payment,
    PayNotifyLog,
    Reservation,
    SalesDayRollup,
    Sku,
)
from shop.pricing import Item
from tests.shop.conftest import ADDRESS, member


def _order(shop, m, *, quantity=2, **kw):
    placed = checkout.checkout(
        member_id=m.id,
        items=[Item(shop.sku.id, quantity)],
        channel="mini_program",
        idempotency_key=kw.pop("key", "k"),
        address=ADDRESS,
        **kw,
    )
    db.session.commit()
    return placed.order


def _start(order, m):
    payment, params = payments.start_payment(
        order_no=order.order_no, member_id=m.id, mini_program=True, notify_url="https://x/n"
    )
    db.session.commit()
    return payment, params


def _earned(m):
    return db.session.scalar(
        select(func.count()).where(PointsEntry.member_id == m.id, PointsEntry.kind == "earn")
    )


def test_start_payment_asks_for_the_prepay_with_the_members_mini_program_openid(shop, fake_pay):
    m = member()
    order = _order(shop, m)
    payment, params = _start(order, m)
    assert payment.out_trade_no == order.order_no + "P1"
    assert params["package"] == "prepay_id=wx1"
    (prepay,) = fake_pay.prepays
    assert prepay["openid"] == f"mp-{m.id}" and prepay["amount_fen"] == order.pay_fen
    assert prepay["mini_program"] is True and prepay["time_expire"] == order.pay_deadline
    again, _ = _start(order, m)
    assert again.id == payment.id  # the pending attempt is asked for again


def test_mark_paid_applies_everything_once(shop, fake_pay):
    m = member(store=shop.store)
    order = _order(shop, m)  # 2 x 20.00 + 8.00 shipping
    payment, _ = _start(order, m)
    paid = []
    with signals.order_paid.connected_to(lambda s, **kw: paid.append(kw)):
        out = payments.mark_paid(
            out_trade_no=payment.out_trade_no, transaction_id="T1", amount_fen=4800, via="notify"
        )
        db.session.commit()
        again = payments.mark_paid(
            out_trade_no=payment.out_trade_no, transaction_id="T1", amount_fen=4800, via="query"
        )
        db.session.commit()
    assert (out, again) == ("applied", "duplicate")
    assert paid == [
        {
            "order_id": order.id,
            "member_id": m.id,
            "store_id": shop.store.id,
            "channel": "mini_program",
        }
    ]
    db.session.expire_all()
    order = db.session.get(Order, order.id)
    assert (order.status, order.paid_fen) == (PAID, 4800)
    # points on the goods (40.00 yuan), not the shipping: the default 1 point a yuan, pending
    # through the return window
    assert order.points_earned == 40 and points.balance(m.id).pending == 40
    assert db.session.get(Payment, payment.id).confirmed_by == "notify"
    assert db.session.scalars(select(Reservation.status)).all() == [RES_CONFIRMED]
    assert db.session.get(Sku, shop.sku.id).sold == 2
    facts = db.session.get(MemberPurchaseFacts, m.id)
    assert (facts.order_count, facts.spend_fen, facts.online_count) == (1, 4800, 1)
    rollup = db.session.scalars(select(SalesDayRollup)).one()
    assert (rollup.orders, rollup.paid_fen, rollup.store_key) == (1, 4800, shop.store.id)
    activity = db.session.scalars(select(MemberActivity)).one()
    assert activity.amount_fen == 4800


@pytest.mark.parametrize(
    ("out_trade_no", "amount", "reason"),
    [("{no}P1", 4799, "amount"), ("{no}P9", 4800, "unknown_order"), ("", 4800, "incomplete")],
)
def test_a_payment_that_does_not_match_is_refused_and_changes_nothing(
    shop, fake_pay, out_trade_no, amount, reason
):
    m = member()
    order = _order(shop, m)
    _start(order, m)
    with pytest.raises(payments.PaymentRefused) as err:
        payments.mark_paid(
            out_trade_no=out_trade_no.format(no=order.order_no),
            transaction_id="T1",
            amount_fen=amount,
            via="notify",
        )
    assert err.value.reason == reason and err.value.status == 409
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == CREATED
    assert db.session.scalars(select(Payment.status)).all() == ["pending"]
    assert _earned(m) == 0


def test_a_second_transaction_id_for_a_paid_attempt_is_refused(shop, fake_pay):
    m = member()
    order = _order(shop, m)
    payment, _ = _start(order, m)
    payments.mark_paid(
        out_trade_no=payment.out_trade_no, transaction_id="T1", amount_fen=4800, via="notify"
    )
    db.session.commit()
    with pytest.raises(payments.PaymentRefused):
        payments.mark_paid(
            out_trade_no=payment.out_trade_no, transaction_id="T2", amount_fen=4800, via="notify"
        )


def _notify(client, brand, payload, signature="good"):
    return client.post(
        f"/pay/notify/{brand.slug}",
        data=json.dumps(payload),
        headers={"Wechatpay-Signature": signature, "Content-Type": "application/json"},
    )


def _txn(out_trade_no, amount=4800, txn="4200001"):
    return {
        "out_trade_no": out_trade_no,
        "transaction_id": txn,
        "trade_state": "SUCCESS",
        "amount_total": amount,
        "payer_total": amount,
        "appid": "wx-app",
        "mchid": "1900000001",
        "openid": "o",
        "out_refund_no": None,
        "refund_id": None,
        "refund_status": None,
        "refund_fen": None,
        "notify_id": "n1",
    }


def test_notify_five_times_some_concurrently_with_the_pages_query_pays_once(app, shop, fake_pay):
    m = member()
    order = _order(shop, m)
    payment, _ = _start(order, m)
    fake_pay.paid[payment.out_trade_no] = ("4200001", 4800)
    brand = shop.brand
    paid = []
    lock = threading.Lock()

    def on_paid(sender, **kw):
        with lock:
            paid.append(kw["order_id"])

    statuses = []
    results = []
    barrier = threading.Barrier(5)

    def page_query():
        with app.app_context(), use_brand(brand.id):
            barrier.wait()
            results.append(payments.refresh(order_no=order.order_no, member_id=m.id).status)
            db.session.commit()
            db.session.remove()

    def notify():
        c = app.test_client()
        barrier.wait()
        r = _notify(c, brand, _txn(payment.out_trade_no))
        with lock:
            statuses.append(r.status_code)

    with signals.order_paid.connected_to(on_paid):
        # the page's own query and four notifies at once, then one late
        threads = [threading.Thread(target=page_query)]
        threads += [threading.Thread(target=notify) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        statuses.append(_notify(app.test_client(), brand, _txn(payment.out_trade_no)).status_code)
    assert results == [PAID]
    assert statuses == [204] * 5
    assert paid == [order.id]
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == PAID
    assert db.session.scalars(select(Payment.status)).all() == [PAY_PAID]
    assert _earned(m) == 1 and points.balance(m.id).pending == 40
    outcomes = db.session.scalars(select(PayNotifyLog.outcome)).all()
    assert len(outcomes) == 5 and outcomes.count("applied") <= 1
    assert set(outcomes) <= {"applied", "duplicate"}


@pytest.mark.parametrize(
    ("payload", "signature", "reason"),
    [
        (lambda no: _txn(no), "forged", "refused:signature"),
        (lambda no: _txn(no, amount=1), "good", "refused:amount"),
        (lambda no: _txn("2026120599999999P1"), "good", "refused:unknown_order"),
    ],
)
def test_forged_or_mismatched_notifies_are_refused_and_change_nothing(
    client, shop, fake_pay, payload, signature, reason
):
    m = member()
    order = _order(shop, m)
    payment, _ = _start(order, m)
    r = _notify(client, shop.brand, payload(payment.out_trade_no), signature)
    assert r.status_code == 400
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == CREATED
    assert db.session.get(Payment, payment.id).status == "pending"
    assert _earned(m) == 0
    assert db.session.scalars(select(PayNotifyLog.outcome)).all() == [reason]


def test_a_replayed_notify_for_a_closed_order_is_refused(client, shop, fake_pay):
    m = member()
    order = _order(shop, m)
    payment, _ = _start(order, m)
    checkout.cancel(order_no=order.order_no, member_id=m.id)
    db.session.commit()
    assert fake_pay.closed == [payment.out_trade_no]
    r = _notify(client, shop.brand, _txn(payment.out_trade_no))
    assert r.status_code == 400
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).status == PAY_CLOSED
    assert _earned(m) == 0


def test_the_release_marks_an_order_paid_when_wechat_says_it_was(shop, fake_pay):
    m = member()
    order = _order(shop, m)
    payment, _ = _start(order, m)
    fake_pay.paid[payment.out_trade_no] = ("4200009", 4800)
    assert jobs.release(order.id, now=order.pay_deadline) == "paid"
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == PAID
    assert db.session.get(Payment, payment.id).confirmed_by == "query"
    assert fake_pay.closed == []


def test_the_release_closes_the_attempt_at_wechat_before_closing_the_order(shop, fake_pay):
    m = member()
    order = _order(shop, m)
    payment, _ = _start(order, m)
    assert jobs.release(order.id, now=order.pay_deadline) == "closed"
    db.session.commit()
    assert fake_pay.closed == [payment.out_trade_no]
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).status == PAY_CLOSED


def test_the_active_query_pays_pending_attempts_older_than_two_minutes(shop, fake_pay):
    import datetime as dt

    m = member()
    order = _order(shop, m)
    payment, _ = _start(order, m)
    fake_pay.paid[payment.out_trade_no] = ("4200010", 4800)
    assert jobs.query_pending() == 0  # too fresh
    payment.created_at = payment.created_at - dt.timedelta(minutes=3)
    db.session.commit()
    assert jobs.query_pending() == 1
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == PAID


def test_an_order_paid_by_coupons_and_points_alone_is_paid_at_checkout(shop):
    from tests.shop.conftest import coupon

    shop.settings.max_points_percent = 100
    db.session.commit()
    m = member(points_balance=5000)
    c = coupon(m.id, value_fen=1000)
    order = _order(
        shop,
        m,
        quantity=1,
        coupons=[c.code],
        points=1000,
        fulfilment="pickup",
        pickup_store_id=shop.store.id,
    )
    assert order.pay_fen == 0 and order.status == PAID
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 0


def test_payment_cannot_start_for_a_paid_or_foreign_order(shop, fake_pay):
    m, other = member(), member()
    order = _order(shop, m)
    with pytest.raises(AppError):
        payments.start_payment(
            order_no=order.order_no, member_id=other.id, mini_program=True, notify_url="u"
        )
