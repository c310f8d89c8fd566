"""Partial refunds on generated orders: money never passes what was paid, per line and in
total, to the fen; spent points, earned points and the coupon follow the refunded share."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.db import db
from core.errors import AppError
from coupons.models import Coupon
from points import queries as points_queries
from shop import refunds
from shop.models import RF_SUCCESS, Order, OrderLine, Refund
from tests import factories
from tests.shop import factories as sf
from tests.shop.aftersale_fixtures import FakePay

orders = st.fixed_dictionaries(
    {
        "lines": st.lists(
            st.tuples(st.integers(1, 30000), st.integers(1, 5)), min_size=1, max_size=4
        ),
        "coupon_fen": st.integers(0, 3000),
        "points": st.integers(0, 4000),
        "shipping": st.sampled_from([0, 0, 600, 1234]),
    }
)
# (line index, quantity, amount: None = the share, else per-mille of what is left, outcome)
steps = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.integers(0, 5),
        st.one_of(st.none(), st.integers(1, 1000)),
        st.sampled_from(["SUCCESS", "SUCCESS", "ABNORMAL"]),
    ),
    max_size=10,
)


def _fresh(model, ident):
    return db.session.execute(
        select(model).where(model.id == ident).execution_options(populate_existing=True)
    ).scalar_one()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=orders, ops=steps, finish=st.booleans())
def test_generated_orders_and_refunds_stay_exact(brand, monkeypatch, spec, ops, finish):
    from wechat import gateway

    pay = FakePay()
    monkeypatch.setattr(gateway, "pay_refund", pay.pay_refund, raising=False)
    store = factories.store(brand)
    member = factories.member().id
    sf.give_points(member, 5000)
    skus = sf.catalog(prices=tuple(p for p, _q in spec["lines"]), stock_each=50)
    goods = sum(p * q for p, q in spec["lines"])
    coupon = sf.coupon_for(member, value_fen=spec["coupon_fen"]) if spec["coupon_fen"] else None
    discount = min(spec["coupon_fen"], goods) if coupon else 0
    points_used = min(spec["points"], goods - discount)
    order = sf.paid_order(
        member_id=member, lines=[(s, q) for s, (_p, q) in zip(skus, spec["lines"], strict=True)],
        store_id=store.id, coupon=coupon, points_used=points_used, shipping_fen=spec["shipping"],
    )  # fmt: skip
    lines = list(
        db.session.scalars(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
        )
    )
    assert sum(ln.pay_fen for ln in lines) + order.shipping_fen == order.pay_fen
    balance0 = points_queries.balance(member).balance

    def refund(items, outcome):
        pay.mode = outcome
        try:
            r = refunds.start(order_id=order.id, items=items)
            db.session.commit()
        except AppError:
            db.session.rollback()
            return
        refunds.submit(refund_id=r.id)
        db.session.commit()

    for idx, qty, permille, outcome in ops:
        line = _fresh(OrderLine, lines[idx % len(lines)].id)
        units_left, fen_left = refunds.left(line)
        amount = None if permille is None else fen_left * permille // 1000
        refund([refunds.Item(line.id, min(qty, units_left), amount)], outcome)
        check(order, lines)
    if finish:
        items = []
        for ln in lines:
            line = _fresh(OrderLine, ln.id)
            units_left, fen_left = refunds.left(line)
            if units_left or fen_left:
                items.append(refunds.Item(line.id, units_left, fen_left))
        if items:
            refund(items, "SUCCESS")
        check(order, lines)
        o = _fresh(Order, order.id)
        succeeded = db.session.scalar(
            select(func.coalesce(func.sum(Refund.amount_fen), 0)).where(
                Refund.order_id == order.id, Refund.status == RF_SUCCESS
            )
        )
        goods_paid = sum(ln.pay_fen for ln in lines)
        if goods_paid > 0:
            assert o.refund_state == "full"
            # every fen of the goods back (shipping too, as the order was never shipped)
            assert succeeded == o.pay_fen
            if coupon is not None:
                assert db.session.get(Coupon, coupon.id).status == "available"
            assert points_queries.balance(member).balance == balance0 + points_used
            reversed_ = db.session.scalar(
                select(func.coalesce(func.sum(Refund.points_reversed), 0)).where(
                    Refund.order_id == order.id
                )
            )
            assert reversed_ == o.points_earned


def check(order, lines) -> None:
    o = _fresh(Order, order.id)
    succeeded = db.session.scalar(
        select(func.coalesce(func.sum(Refund.amount_fen), 0)).where(
            Refund.order_id == order.id, Refund.status == RF_SUCCESS
        )
    )
    returned = db.session.scalar(
        select(func.coalesce(func.sum(Refund.points_returned), 0)).where(
            Refund.order_id == order.id, Refund.status == RF_SUCCESS
        )
    )
    assert 0 <= succeeded <= o.refunded_fen <= o.paid_fen
    assert returned <= o.points_used
    for ln in lines:
        line = _fresh(OrderLine, ln.id)
        assert 0 <= line.refunded_fen <= line.pay_fen
        assert 0 <= line.refunded_qty <= line.quantity
        assert 0 <= line.refunded_points <= line.points_used
    if o.refund_state != "full" and succeeded:
        assert o.refund_state == "partial"
    partial_coupon = o.coupon_ids and o.refund_state != "full"
    if partial_coupon:
        assert db.session.get(Coupon, o.coupon_ids[0]).status == "redeemed"
