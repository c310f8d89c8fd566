"""Refunds: exact amounts per line, the points, coupons and stock that follow, the WeChat Pay
outcome applied once (answer, query or notify), till refunds."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.db import db
from core.errors import ValidationError
from coupons.models import Coupon
from members.models import MemberActivity
from points import queries as points_queries
from points.models import PointsEntry
from shop import refunds, signals
from shop.models import (
    PICKUP,
    RF_FAILED,
    RF_PROCESSING,
    RF_SUCCESS,
    TILL,
    MemberPurchaseFacts,
    Order,
    OrderLine,
    PayNotifyLog,
    Refund,
    SalesDayRollup,
    Sku,
    StockEntry,
)
from tests.shop import factories as sf
from tests.shop.aftersale_fixtures import *  # noqa: F403 - the fixtures
from tests.shop.aftersale_fixtures import Notice


def _lines(order) -> list[OrderLine]:
    return list(
        db.session.execute(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
        ).scalars()
    )


def _reload(model, ident):
    return db.session.execute(
        select(model).where(model.id == ident).execution_options(populate_existing=True)
    ).scalar_one()


def _balance(member_id: int) -> int:
    return points_queries.balance(member_id).balance


def test_partial_quantities_return_exact_shares_and_the_last_unit_the_remainder(
    brand, store, skus, member_id, fake_pay
):
    coupon = sf.coupon_for(member_id, value_fen=1000)
    order = sf.paid_order(
        member_id=member_id, lines=[(skus[0], 3), (skus[1], 1)], store_id=store.id, coupon=coupon,
        points_used=700,
    )  # fmt: skip
    line = _lines(order)[0]
    assert line.pay_fen == line.goods_fen - line.discount_fen - line.points_fen
    got = []
    for _unit in range(3):
        r = refunds.start(order_id=order.id, items=[refunds.Item(line.id, 1)], reason="size")
        db.session.commit()
        assert refunds.submit(refund_id=r.id) == RF_SUCCESS
        db.session.commit()
        got.append(_reload(Refund, r.id).amount_fen)
    line = _reload(OrderLine, line.id)
    assert sum(got) == line.pay_fen == line.refunded_fen
    p = line.pay_fen
    assert got == [p // 3, 2 * p // 3 - p // 3, p - 2 * p // 3]
    assert line.refunded_points == line.points_used
    # WeChat Pay was asked for each refund with our numbers.
    assert [c["out_refund_no"] for c in fake_pay.calls] == [
        f"{order.order_no}R1", f"{order.order_no}R2", f"{order.order_no}R3"
    ]  # fmt: skip
    assert {c["out_trade_no"] for c in fake_pay.calls} == {f"{order.order_no}P1"}
    assert {c["total_fen"] for c in fake_pay.calls} == {order.pay_fen}
    # Nothing more to refund on that line.
    with pytest.raises(ValidationError):
        refunds.start(order_id=order.id, items=[refunds.Item(line.id, 1)])


def test_full_refund_returns_pay_fen_points_coupon_and_signals_once(
    brand, store, skus, member_id, fake_pay
):
    coupon = sf.coupon_for(member_id, value_fen=1500)
    before = _balance(member_id)
    order = sf.paid_order(
        member_id=member_id, lines=[(skus[0], 2), (skus[2], 1)], store_id=store.id,
        coupon=coupon, points_used=1000, shipping_fen=800, fulfilment=PICKUP,
    )  # fmt: skip
    assert _balance(member_id) == before - 1000
    assert db.session.get(Coupon, coupon.id).status == "redeemed"
    sent = []
    with signals.order_refunded.connected_to(lambda sender, **kw: sent.append(kw)):
        items = [refunds.Item(ln.id, ln.quantity) for ln in _lines(order)]
        r = refunds.start(order_id=order.id, items=items, reason="cancel")
        db.session.commit()
        refunds.submit(refund_id=r.id)
        db.session.commit()
        refunds.submit(refund_id=r.id)  # a retried job changes nothing
        db.session.commit()
    r = _reload(Refund, r.id)
    order = _reload(Order, order.id)
    # Not shipped yet: the shipping fee goes back too, so exactly what was paid.
    assert r.amount_fen == order.pay_fen == order.refunded_fen
    assert order.refund_state == "full"
    assert len(sent) == 1 and sent[0]["amount_fen"] == order.pay_fen
    # Spent points back, earned points reversed (pending lot), the coupon usable again.
    assert r.points_returned == 1000
    assert r.points_reversed == order.points_earned
    assert _balance(member_id) == before
    assert db.session.get(Coupon, coupon.id).status == "available"
    # The member's refund activity, the facts and the rollup, once.
    key = f"shop:{r.out_refund_no}:refund"
    acts = db.session.scalars(
        select(MemberActivity).where(MemberActivity.idempotency_key == key)
    ).all()
    assert len(acts) == 1 and acts[0].amount_fen == -order.pay_fen
    facts = db.session.get(MemberPurchaseFacts, member_id)
    assert facts.spend_fen == 0
    roll = db.session.scalars(select(SalesDayRollup)).one()
    assert roll.paid_fen == roll.refunded_fen == order.pay_fen
    # Not a return: no restock.
    assert db.session.scalar(select(func.count()).select_from(StockEntry).where(
        StockEntry.reason == "restock")) == 0  # fmt: skip


def test_partial_refund_keeps_the_coupon_and_reverses_points_in_proportion(
    brand, store, skus, member_id, fake_pay
):
    coupon = sf.coupon_for(member_id, value_fen=500)
    order = sf.paid_order(
        member_id=member_id, lines=[(skus[0], 1), (skus[1], 2)], store_id=store.id, coupon=coupon,
        points_used=300,
    )  # fmt: skip
    first = _lines(order)[0]
    r = refunds.start(order_id=order.id, items=[refunds.Item(first.id, 1)])
    db.session.commit()
    refunds.submit(refund_id=r.id)
    db.session.commit()
    r = _reload(Refund, r.id)
    order = _reload(Order, order.id)
    assert order.refund_state == "partial"
    assert db.session.get(Coupon, coupon.id).status == "redeemed"
    total = order.pay_fen - order.shipping_fen
    assert r.points_reversed == order.points_earned * first.pay_fen // total
    assert r.points_returned == first.points_used


def test_return_restocks_the_returned_units_once(brand, store, skus, member_id, fake_pay):
    order = sf.paid_order(member_id=member_id, lines=[(skus[1], 4)], store_id=store.id)
    line = _lines(order)[0]
    stock_before = _reload(Sku, skus[1].id).stock
    r = refunds.start(order_id=order.id, items=[refunds.Item(line.id, 3)], restock=True)
    db.session.commit()
    refunds.submit(refund_id=r.id)
    refunds.submit(refund_id=r.id)
    db.session.commit()
    assert _reload(Sku, skus[1].id).stock == stock_before + 3
    keys = db.session.scalars(select(StockEntry.idempotency_key).where(
        StockEntry.reason == "restock")).all()  # fmt: skip
    assert keys == [f"refund:{r.id}:restock:{line.id}"]


def test_a_refund_refused_by_wechat_gives_its_reservation_back(
    brand, store, skus, member_id, fake_pay
):
    order = sf.paid_order(member_id=member_id, lines=[(skus[0], 1)], store_id=store.id)
    line = _lines(order)[0]
    fake_pay.mode = "ABNORMAL"
    r = refunds.start(order_id=order.id, items=[refunds.Item(line.id, 1)])
    db.session.commit()
    assert _reload(OrderLine, line.id).refunded_fen == line.pay_fen  # reserved
    assert refunds.submit(refund_id=r.id) == RF_FAILED
    db.session.commit()
    assert _reload(OrderLine, line.id).refunded_fen == 0
    assert _reload(Order, order.id).refunded_fen == 0
    assert _reload(Order, order.id).refund_state == "none"
    # and it can be refunded again
    fake_pay.mode = "SUCCESS"
    r2 = refunds.start(order_id=order.id, items=[refunds.Item(line.id, 1)])
    db.session.commit()
    assert refunds.submit(refund_id=r2.id) == RF_SUCCESS
    assert _reload(Refund, r2.id).out_refund_no == f"{order.order_no}R2"


def test_two_refunds_in_flight_cannot_pass_what_was_paid(brand, store, skus, member_id, fake_pay):
    order = sf.paid_order(member_id=member_id, lines=[(skus[0], 2)], store_id=store.id)
    line = _lines(order)[0]
    fake_pay.mode = "PROCESSING"
    refunds.start(order_id=order.id, items=[refunds.Item(line.id, 2)])
    db.session.commit()
    with pytest.raises(ValidationError):
        refunds.start(order_id=order.id, items=[refunds.Item(line.id, 0, 1)])


def test_refund_notify_applies_once_and_refuses_wrong_amounts(
    brand, store, skus, member_id, fake_pay
):
    order = sf.paid_order(member_id=member_id, lines=[(skus[0], 1)], store_id=store.id)
    line = _lines(order)[0]
    fake_pay.mode = "PROCESSING"
    r = refunds.start(order_id=order.id, items=[refunds.Item(line.id, 1)])
    db.session.commit()
    assert refunds.submit(refund_id=r.id) == RF_PROCESSING
    db.session.commit()
    good = Notice(f"{order.order_no}P1", r.out_refund_no, "5030001", "SUCCESS", r.amount_fen)
    wrong = Notice(f"{order.order_no}P1", r.out_refund_no, "5030001", "SUCCESS", r.amount_fen - 1)
    other = Notice("999P1", r.out_refund_no, "5030001", "SUCCESS", r.amount_fen)
    assert refunds.on_refund_notify(wrong) == "refused:amount"
    assert refunds.on_refund_notify(other) == "refused:order"
    db.session.commit()
    assert _reload(Refund, r.id).status == RF_PROCESSING
    assert refunds.on_refund_notify(good) == "applied"
    db.session.commit()
    assert refunds.on_refund_notify(good) == "duplicate"
    db.session.commit()
    assert _reload(Refund, r.id).status == RF_SUCCESS
    assert _reload(Refund, r.id).refund_id == "5030001"
    reversed_ = db.session.scalars(select(PointsEntry).where(
        PointsEntry.idempotency_key == f"shop:{r.out_refund_no}:reverse")).all()  # fmt: skip
    assert len(reversed_) == 1
    outcomes = db.session.scalars(select(PayNotifyLog.outcome).order_by(PayNotifyLog.id)).all()
    assert outcomes == ["refused:amount", "refused:order", "applied", "duplicate"]


def test_processing_refunds_are_queried_and_decided(brand, store, skus, member_id, fake_pay):
    import datetime as dt

    order = sf.paid_order(member_id=member_id, lines=[(skus[0], 1)], store_id=store.id)
    fake_pay.mode = "PROCESSING"
    r = refunds.start(order_id=order.id, items=[refunds.Item(_lines(order)[0].id, 1)])
    db.session.commit()
    refunds.submit(refund_id=r.id)
    db.session.commit()
    later = r.created_at + dt.timedelta(minutes=6)
    assert refunds.query_processing(now=later) == 0  # still processing there
    fake_pay.states[r.out_refund_no].status = "SUCCESS"
    assert refunds.query_processing(now=later) == 1
    db.session.commit()
    assert _reload(Refund, r.id).status == RF_SUCCESS
    assert refunds.query_processing(now=later) == 0


def test_till_refund_succeeds_at_once_without_wechat(brand, store, skus, member_id, fake_pay):
    order = sf.paid_order(
        member_id=member_id, lines=[(skus[0], 2)], store_id=store.id, channel=TILL,
        fulfilment="in_store",
    )  # fmt: skip
    r = refunds.start(
        order_id=order.id, items=[refunds.Item(_lines(order)[0].id, 1)], restock=True,
        idempotency_key="till-1",
    )  # fmt: skip
    db.session.commit()
    assert _reload(Refund, r.id).status == RF_SUCCESS
    assert fake_pay.calls == []
    again = refunds.start(
        order_id=order.id, items=[refunds.Item(_lines(order)[0].id, 1)], restock=True,
        idempotency_key="till-1",
    )  # fmt: skip
    assert again.id == r.id
    assert _reload(Order, order.id).refunded_fen == r.amount_fen


def test_bad_refund_input_is_refused_with_the_field(brand, store, skus, member_id, fake_pay):
    order = sf.paid_order(member_id=member_id, lines=[(skus[0], 2)], store_id=store.id)
    line = _lines(order)[0]
    for item, field in [
        (refunds.Item(line.id, -1), "lines.0.quantity"),
        (refunds.Item(line.id, 3), "lines.0.quantity"),
        (refunds.Item(line.id, 0, line.pay_fen + 1), "lines.0.amount_fen"),
        (refunds.Item(line.id, 0, -5), "lines.0.amount_fen"),
    ]:
        with pytest.raises(ValidationError) as err:
            refunds.start(order_id=order.id, items=[item])
        assert err.value.field == field
        db.session.rollback()
    assert _reload(Order, order.id).refunded_fen == 0
    assert db.session.scalar(select(func.count()).select_from(Refund)) == 0
