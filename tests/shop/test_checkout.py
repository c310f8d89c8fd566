"""Cart and checkout: an order with its stock reserved, points spent and coupons redeemed in
one transaction; a double tap answers one order; bad input writes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, text

from core.db import db
from core.errors import AppError, NotFound
from core.jobs import OutboxJob
from core.tenancy import use_brand
from coupons.models import Coupon, Redemption
from points import services as points
from shop import cart, checkout, signals
from shop.models import (
    CLOSED,
    CREATED,
    PICKUP,
    RES_HELD,
    RES_RELEASED,
    CartItem,
    Order,
    OrderLine,
    Reservation,
    Sku,
    StockEntry,
)
from shop.pricing import Item
from tests import factories
from tests.shop.conftest import ADDRESS, coupon, member, product


def _buy(m, items, key="tap-1", **kw):
    kw.setdefault("address", ADDRESS)
    placed = checkout.checkout(
        member_id=m.id, items=items, channel="mini_program", idempotency_key=key, **kw
    )
    db.session.commit()
    return placed.order


def _stock(sku_id):
    db.session.expire_all()
    return db.session.get(Sku, sku_id).stock


def _count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_cart_add_update_remove_and_the_price_seen_is_kept(shop):
    m = member()
    cart.add(member_id=m.id, sku_id=shop.sku.id, quantity=2)
    cart.add(member_id=m.id, sku_id=shop.sku.id, quantity=3)
    db.session.commit()
    lines = cart.lines(member_id=m.id)
    assert [(line.sku_id, line.quantity, line.seen_price_fen) for line in lines] == [
        (shop.sku.id, 5, 2000)
    ]
    shop.sku.price_fen = 2500
    db.session.commit()
    (line,) = cart.lines(member_id=m.id)
    assert line.price_changed and line.price_fen == 2500 and line.seen_price_fen == 2000
    cart.update(member_id=m.id, sku_id=shop.sku.id, quantity=1)
    (line,) = cart.lines(member_id=m.id)
    assert (line.quantity, line.seen_price_fen) == (1, 2500)
    assert cart.remove(member_id=m.id, sku_ids=[shop.sku.id]) == 1
    assert cart.lines(member_id=m.id) == []


@pytest.mark.parametrize("quantity", [0, -1, 100, 1.5, True, "2"])
def test_cart_refuses_quantities_outside_1_to_99(shop, quantity):
    m = member()
    with pytest.raises(AppError) as err:
        cart.add(member_id=m.id, sku_id=shop.sku.id, quantity=quantity)
    assert err.value.status == 400 and err.value.field == "quantity"
    db.session.rollback()
    assert _count(CartItem) == 0


def test_cart_sum_past_99_is_refused_and_keeps_the_first_quantity(shop):
    m = member()
    cart.add(member_id=m.id, sku_id=shop.sku.id, quantity=60)
    db.session.commit()
    with pytest.raises(AppError):
        cart.add(member_id=m.id, sku_id=shop.sku.id, quantity=40)
    db.session.rollback()
    assert cart.lines(member_id=m.id)[0].quantity == 60


def test_another_brands_sku_is_not_found(shop):
    other = factories.brand()
    with use_brand(other.id):
        foreign = product(name="别家的茶")
    m = member()
    with pytest.raises(NotFound):
        cart.add(member_id=m.id, sku_id=foreign.id, quantity=1)
    db.session.rollback()
    with pytest.raises(NotFound):
        _buy(m, [Item(foreign.id, 1)])
    db.session.rollback()
    assert _count(Order) == 0


def test_checkout_reserves_spends_redeems_and_empties_the_cart(shop):
    m = member(points_balance=1000)
    c = coupon(m.id, value_fen=500, threshold_fen=3000)
    cart.add(member_id=m.id, sku_id=shop.sku.id, quantity=2)
    cart.add(member_id=m.id, sku_id=shop.other_sku.id, quantity=1)
    db.session.commit()
    paid_signals = []
    order = _buy(
        m,
        [Item(shop.sku.id, 2, 2000), Item(shop.other_sku.id, 1, 3000)],
        coupons=[c.code],
        points=700,
    )
    # 7000 goods - 500 coupon - 700 points (1 point = 1 fen) + 800 shipping
    assert (order.goods_fen, order.discount_fen, order.points_fen, order.shipping_fen) == (
        7000,
        500,
        700,
        800,
    )
    assert order.pay_fen == 6600 and order.points_used == 700 and order.status == CREATED
    assert len(order.order_no) == 18 and order.order_no.isdigit()
    lines = db.session.scalars(select(OrderLine).order_by(OrderLine.id)).all()
    assert sum(line.discount_fen for line in lines) == 500
    assert sum(line.points_fen for line in lines) == 700
    assert [line.pay_fen for line in lines] == [
        line.goods_fen - line.discount_fen - line.points_fen for line in lines
    ]
    # 4000 and 3000 share 500: 285.7 and 214.3 -> 286 and 214
    assert [line.discount_fen for line in lines] == [286, 214]
    assert _stock(shop.sku.id) == 98 and _stock(shop.other_sku.id) == 99
    held = db.session.scalars(select(Reservation)).all()
    assert {(r.sku_id, r.quantity, r.status) for r in held} == {
        (shop.sku.id, 2, RES_HELD),
        (shop.other_sku.id, 1, RES_HELD),
    }
    assert held[0].expires_at == order.pay_deadline
    assert points.balance(m.id).balance == 300
    db.session.refresh(c)
    assert c.status == "redeemed"
    red = db.session.scalars(select(Redemption)).one()
    assert (red.order_id, red.channel, red.discount_fen) == (order.order_no, "online", 500)
    assert cart.lines(member_id=m.id) == []
    job = db.session.scalars(
        select(OutboxJob).where(OutboxJob.func == "shop.jobs.release_order")
    ).one()
    assert job.args["args"] == [order.id] and job.available_at >= order.pay_deadline
    assert not paid_signals


def test_a_double_tap_creates_one_order(shop):
    m = member(points_balance=500)
    first = _buy(m, [Item(shop.sku.id, 1)], key="same", points=100)
    again = _buy(m, [Item(shop.sku.id, 1)], key="same", points=100)
    assert again.id == first.id
    assert _count(Order) == 1 and _stock(shop.sku.id) == 99
    assert points.balance(m.id).balance == 400


def test_double_tap_concurrently_creates_one_order(app, shop):
    from tests.support.concurrency import run_concurrently

    m = member(points_balance=500)
    results = run_concurrently(
        app,
        shop.brand.id,
        6,
        lambda i: checkout.checkout(
            member_id=m.id,
            items=[Item(shop.sku.id, 1)],
            channel="h5",
            idempotency_key="double",
            points=100,
            address=ADDRESS,
        ).order.id,
    )
    assert {r[0] for r in results} == {"ok"}
    assert len({r[1] for r in results}) == 1
    assert _count(Order) == 1 and _stock(shop.sku.id) == 99
    assert points.balance(m.id).balance == 400


def test_a_price_changed_since_the_cart_is_a_409_with_the_new_price(shop):
    m = member(points_balance=500)
    cart.add(member_id=m.id, sku_id=shop.sku.id, quantity=1)
    db.session.commit()
    shop.sku.price_fen = 2200
    db.session.commit()
    with pytest.raises(AppError) as err:
        _buy(m, [Item(shop.sku.id, 1, 2000)], points=100)
    assert err.value.status == 409 and err.value.code == "price_changed"
    assert "22.00" in err.value.message
    db.session.rollback()
    assert _count(Order) == 0 and _stock(shop.sku.id) == 100
    assert points.balance(m.id).balance == 500
    assert len(cart.lines(member_id=m.id)) == 1


@pytest.mark.parametrize("quantity", [0, -3])
def test_zero_or_negative_quantities_are_refused(shop, quantity):
    m = member()
    with pytest.raises(AppError) as err:
        _buy(m, [Item(shop.sku.id, quantity)])
    assert err.value.status == 400 and err.value.field == "items.0.quantity"
    db.session.rollback()
    assert _count(Order) == 0 and _count(StockEntry) == 2  # the two initial stockings


def test_a_coupon_that_does_not_apply_is_refused_with_its_reason(shop):
    m = member()
    other_member = member()
    below = coupon(m.id, value_fen=500, threshold_fen=10000)
    for_cups = coupon(m.id, value_fen=500, categories=["cups"])
    not_mine = coupon(other_member.id)
    cases = [
        (below, 400, "below_threshold"),
        (for_cups, 409, "coupon_not_usable"),
        (not_mine, 404, "coupon_unavailable"),
    ]
    for c, status, code in cases:
        with pytest.raises(AppError) as err:
            _buy(m, [Item(shop.sku.id, 1)], coupons=[c.code])
        assert (err.value.status, err.value.code, err.value.field) == (status, code, "coupons")
        db.session.rollback()
    assert _count(Order) == 0 and _count(Redemption) == 0
    assert db.session.scalar(select(func.count()).where(Coupon.status == "available")) == 3


def test_a_coupon_for_one_category_discounts_only_its_lines(shop):
    m = member()
    c = coupon(m.id, value_fen=600, categories=["tea"])
    order = _buy(m, [Item(shop.sku.id, 1), Item(shop.other_sku.id, 1)], coupons=[c.code])
    lines = db.session.scalars(select(OrderLine).order_by(OrderLine.id)).all()
    assert [line.discount_fen for line in lines] == [600, 0]
    assert order.discount_fen == 600


def test_two_coupons_that_do_not_stack_are_refused(shop):
    m = member()
    a, b = coupon(m.id), coupon(m.id)
    with pytest.raises(AppError) as err:
        _buy(m, [Item(shop.sku.id, 3)], coupons=[a.code, b.code])
    assert err.value.code == "coupon_not_stackable"
    db.session.rollback()
    a2, b2 = coupon(m.id, stackable=True), coupon(m.id, stackable=True)
    order = _buy(m, [Item(shop.sku.id, 3)], coupons=[a2.code, b2.code])
    assert order.discount_fen == 1000


def test_more_points_than_the_balance_or_the_cap_are_refused(shop):
    m = member(points_balance=300)
    with pytest.raises(AppError) as err:
        _buy(m, [Item(shop.sku.id, 1)], points=400)
    assert (err.value.status, err.value.code, err.value.field) == (
        409,
        "insufficient_points",
        "points",
    )
    db.session.rollback()
    rich = member(points_balance=5000)
    with pytest.raises(AppError) as err:  # at most 50% of 20.00 yuan: 1000 points
        _buy(rich, [Item(shop.sku.id, 1)], points=1001)
    assert err.value.status == 400 and "1000" in err.value.message
    db.session.rollback()
    assert _count(Order) == 0
    assert points.balance(m.id).balance == 300 and points.balance(rich.id).balance == 5000


def test_points_at_another_rate_charge_the_fewest_points_for_the_fen(shop):
    shop.settings.points_per_yuan = 1000  # 10 points a fen
    db.session.commit()
    m = member(points_balance=10000)
    order = _buy(m, [Item(shop.sku.id, 1)], points=5005)
    assert (order.points_fen, order.points_used) == (500, 5000)
    assert points.balance(m.id).balance == 5000


def test_out_of_stock_is_a_409_and_nothing_is_written(shop):
    m = member(points_balance=500)
    low = product(name="限量", stock_units=2)
    c = coupon(m.id)
    with pytest.raises(AppError) as err:
        _buy(m, [Item(shop.sku.id, 1), Item(low.id, 3)], coupons=[c.code], points=100)
    assert (err.value.code, err.value.field) == ("out_of_stock", "items.1.quantity")
    db.session.rollback()
    assert _count(Order) == 0 and _count(Reservation) == 0 and _count(Redemption) == 0
    assert _stock(shop.sku.id) == 100 and _stock(low.id) == 2
    assert points.balance(m.id).balance == 500


def test_purchase_limit_per_member_counts_earlier_orders(shop):
    limited = product(name="限购", limit_per_member=2)
    m = member()
    _buy(m, [Item(limited.id, 2)], key="a")
    with pytest.raises(AppError) as err:
        _buy(m, [Item(limited.id, 1)], key="b")
    assert err.value.code == "limit_reached"


def test_shipping_by_region_free_above_the_threshold_and_none_for_pickup(shop):
    m = member()
    far = dict(ADDRESS, province="新疆")
    assert _buy(m, [Item(shop.sku.id, 1)], key="a", address=far).shipping_fen == 2000
    assert _buy(m, [Item(shop.sku.id, 5)], key="b").shipping_fen == 0  # 100.00 yuan
    pickup = _buy(
        m, [Item(shop.sku.id, 1)], key="c", fulfilment=PICKUP, pickup_store_id=shop.store.id
    )
    assert pickup.shipping_fen == 0 and pickup.store_id == shop.store.id


def test_a_delivery_is_attributed_to_the_members_store(shop):
    m = member(store=shop.store)
    assert _buy(m, [Item(shop.sku.id, 1)]).store_id == shop.store.id


def test_a_bad_address_is_refused(shop):
    m = member()
    with pytest.raises(AppError) as err:
        _buy(m, [Item(shop.sku.id, 1)], address=dict(ADDRESS, phone="12345"))
    assert err.value.field == "address.phone"


def test_cancel_returns_stock_points_and_coupon_once(shop, fake_pay):
    m = member(points_balance=500)
    c = coupon(m.id)
    order = _buy(m, [Item(shop.sku.id, 2)], coupons=[c.code], points=300)
    closed = []
    with signals.order_closed.connected_to(lambda s, **kw: closed.append(kw["order_id"])):
        checkout.cancel(order_no=order.order_no, member_id=m.id)
        db.session.commit()
        with pytest.raises(AppError):
            checkout.cancel(order_no=order.order_no, member_id=m.id)
        db.session.rollback()
        assert checkout.close_order(order.id, reason="again") is False
    db.session.commit()
    db.session.refresh(order)
    assert order.status == CLOSED and order.close_reason == "cancelled"
    assert closed == [order.id]
    assert _stock(shop.sku.id) == 100
    assert points.balance(m.id).balance == 500
    db.session.refresh(c)
    assert c.status == "available"
    assert db.session.scalars(select(Reservation.status)).all() == [RES_RELEASED]


def test_another_members_order_cannot_be_cancelled(shop, fake_pay):
    m, other = member(), member()
    order = _buy(m, [Item(shop.sku.id, 1)])
    with pytest.raises(NotFound):
        checkout.cancel(order_no=order.order_no, member_id=other.id)


def test_release_at_the_deadline_happens_exactly_once_under_concurrency(app, shop, fake_pay):
    from shop import jobs
    from tests.support.concurrency import run_concurrently

    m = member(points_balance=500)
    order = _buy(m, [Item(shop.sku.id, 3)], points=200)
    later = order.pay_deadline + dt.timedelta(seconds=1)
    assert jobs.release(order.id, now=order.pay_deadline - dt.timedelta(minutes=1)) == "not_due"
    db.session.rollback()
    closed = []
    with signals.order_closed.connected_to(lambda s, **kw: closed.append(kw["order_id"])):
        results = run_concurrently(
            app, shop.brand.id, 8, lambda i: jobs.release(order.id, now=later)
        )
    assert sorted(r[1] for r in results) == ["closed"] + ["done"] * 7
    assert closed == [order.id]
    assert _stock(shop.sku.id) == 100
    assert points.balance(m.id).balance == 500
    releases = db.session.scalar(
        select(func.count()).where(StockEntry.reason == "release", StockEntry.order_id == order.id)
    )
    assert releases == 1


def test_the_sweep_closes_orders_past_their_deadline(shop, fake_pay):
    from shop import jobs

    m = member()
    due = _buy(m, [Item(shop.sku.id, 1)], key="due")
    fresh = _buy(m, [Item(shop.sku.id, 1)], key="fresh")
    due.pay_deadline = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    db.session.commit()
    assert jobs.release_due() == 1
    db.session.expire_all()
    assert db.session.get(Order, due.id).status == CLOSED
    assert db.session.get(Order, fresh.id).status == CREATED


def test_an_online_redemption_without_a_store_is_counted_by_the_coupon_rollups(shop):
    import datetime as dt

    from core import rollups
    from coupons.rollups import REDEMPTIONS, REVERSALS
    from tests.shop.conftest import coupon as make_coupon

    m = member()  # no home store: the delivery belongs to no store
    c = make_coupon(m.id)
    order = _buy(m, [Item(shop.sku.id, 1)], coupons=[c.code])
    assert order.store_id is None
    red = db.session.scalars(select(Redemption)).one()
    assert red.store_id is None and red.channel == "online"
    checkout.close_order(order.id, reason="test")
    db.session.commit()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    for r in (REDEMPTIONS, REVERSALS):
        rollups.advance(r.name, brand_id=shop.brand.id, tz="Asia/Shanghai", hi=later)
    db.session.commit()
    rows = db.session.execute(
        text("SELECT store_id, n FROM coupon_redemption_rollup WHERE brand_id = :b"),
        {"b": shop.brand.id},
    ).all()
    assert [tuple(r) for r in rows] == [(0, 1)]
