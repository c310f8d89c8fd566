"""Flash sales: Redis decides first, PostgreSQL confirms; 100 units sell exactly 100 times
to 500 buyers at once, unpaid units return to the pool exactly once, a lost Redis state is
rebuilt from PostgreSQL and a PostgreSQL refusal gives Redis its units back."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import func, select

from core.db import db
from core.errors import AppError
from members.identities import attach_identity
from shop import checkout, flash, jobs, payments
from shop.models import (
    CLOSED,
    PAID,
    RES_HELD,
    FlashSale,
    Order,
    Reservation,
    Sku,
    StockEntry,
)
from shop.pricing import Item
from tests import factories
from tests.shop.conftest import ADDRESS, flash_sale, member, product
from tests.support.concurrency import run_concurrently


def _buy(sale, sku, member_id, key, quantity=1):
    return checkout.checkout(
        member_id=member_id,
        items=[Item(sku.id, quantity, flash_sale_id=sale.id)],
        channel="mini_program",
        idempotency_key=key,
        address=ADDRESS,
    ).order.id


def _sale(sale_id):
    db.session.expire_all()
    return db.session.get(FlashSale, sale_id)


def _stock_consistent(sku_id):
    db.session.expire_all()
    stock = db.session.get(Sku, sku_id).stock
    ledger = db.session.scalar(
        select(func.sum(StockEntry.delta)).where(StockEntry.sku_id == sku_id)
    )
    assert stock == ledger and stock >= 0
    return stock


def _pay(order_id, member_id):
    order = db.session.get(Order, order_id)
    payment, _ = payments.start_payment(
        order_no=order.order_no, member_id=member_id, mini_program=True, notify_url="u"
    )
    assert (
        payments.mark_paid(
            out_trade_no=payment.out_trade_no,
            transaction_id=f"T{order_id}",
            amount_fen=order.pay_fen,
            via="notify",
        )
        == "applied"
    )
    db.session.commit()


def test_500_buyers_for_100_units_make_exactly_100_paid_orders(app, shop, fake_pay):
    sku = product(name="秒杀茶", price_fen=5000, stock_units=1000)
    sale = flash_sale(sku, quantity=100)
    buyers = [factories.member().id for _ in range(500)]
    results = run_concurrently(
        app, shop.brand.id, 500, lambda i: _buy(sale, sku, buyers[i], f"flash-{i}")
    )
    won = [(i, r[1]) for i, r in enumerate(results) if r[0] == "ok"]
    assert len(won) == 100, {r[1] for r in results}
    assert {r[1] for r in results if r[0] != "ok"} == {"SoldOut"}
    assert _sale(sale.id).sold == 100
    assert _stock_consistent(sku.id) == 900
    assert flash.remaining(sale.id) == 0
    assert db.session.scalar(select(func.count()).where(Reservation.status == RES_HELD)) == 100

    # 70 pay; the other 30 are released at their deadline, exactly once each
    for i, _ in won:
        attach_identity(member_id=buyers[i], kind="mp_openid", value=f"mp-{buyers[i]}")
    db.session.commit()
    for i, order_id in won[:70]:
        _pay(order_id, buyers[i])
    unpaid = [order_id for _, order_id in won[70:]]
    deadline = max(db.session.get(Order, order_id).pay_deadline for order_id in unpaid)
    results = run_concurrently(
        app, shop.brand.id, 60, lambda i: jobs.release(unpaid[i % 30], now=deadline)
    )
    assert sorted(r[1] for r in results) == ["closed"] * 30 + ["done"] * 30, results
    assert _sale(sale.id).sold == 70
    assert flash.remaining(sale.id) == 30
    assert _stock_consistent(sku.id) == 930

    # a second wave of 100 buyers finds exactly the 30 returned units
    more = [factories.member().id for _ in range(100)]
    results = run_concurrently(
        app, shop.brand.id, 100, lambda i: _buy(sale, sku, more[i], f"wave2-{i}")
    )
    second = [(i, r[1]) for i, r in enumerate(results) if r[0] == "ok"]
    assert len(second) == 30
    for i, _ in second:
        attach_identity(member_id=more[i], kind="mp_openid", value=f"mp-{more[i]}")
    db.session.commit()
    for i, order_id in second:
        _pay(order_id, more[i])
    assert db.session.scalar(select(func.count()).where(Order.status == PAID)) == 100
    assert db.session.scalar(select(func.count()).where(Order.status == CLOSED)) == 30
    assert _sale(sale.id).sold == 100
    assert _stock_consistent(sku.id) == 900
    assert db.session.get(Sku, sku.id).sold == 100


def test_the_per_member_limit_holds_in_redis_and_postgresql(shop):
    sku = product(stock_units=50)
    sale = flash_sale(sku, quantity=10, per_member_limit=2)
    m = member()
    _buy(sale, sku, m.id, "a", quantity=2)
    db.session.commit()
    with pytest.raises(AppError) as err:
        _buy(sale, sku, m.id, "b")
    assert err.value.code == "limit_reached"
    db.session.rollback()
    get = lambda: flash.remaining(sale.id)  # noqa: E731
    assert get() == 8
    # Redis forgot everything: rebuilt from PostgreSQL, the member still has their two
    from core.redis import get_redis

    get_redis().flushdb()
    with pytest.raises(AppError) as err:
        _buy(sale, sku, m.id, "c")
    assert err.value.code == "limit_reached"
    db.session.rollback()
    other = member()
    _buy(sale, sku, other.id, "d")
    db.session.commit()
    assert get() == 7 and _sale(sale.id).sold == 3


def test_postgresql_refusing_gives_the_units_back_to_redis(shop):
    sku = product(stock_units=50)
    sale = flash_sale(sku, quantity=5)
    m = member()
    flash.rebuild(sale)
    db.session.execute(
        FlashSale.__table__.update().where(FlashSale.id == sale.id).values(sold=5)
    )  # PostgreSQL already sold them (Redis behind)
    db.session.commit()
    assert flash.remaining(sale.id) == 5
    with pytest.raises(flash.SoldOut):
        _buy(sale, sku, m.id, "a")
    db.session.rollback()
    assert flash.remaining(sale.id) == 5
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0
    assert _stock_consistent(sku.id) == 50


def test_a_flash_sale_outside_its_window_is_refused(shop):
    import datetime as dt

    sku = product()
    sale = flash_sale(sku, quantity=5)
    sale.starts_at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    sale.ends_at = sale.starts_at + dt.timedelta(hours=1)
    db.session.commit()
    with pytest.raises(AppError) as err:
        _buy(sale, sku, member().id, "a")
    assert err.value.code == "flash_closed"


def test_redis_unreachable_sells_nothing(shop, monkeypatch, app):
    sku = product(stock_units=50)
    sale = flash_sale(sku, quantity=5)
    m = member()
    down = redis.Redis(port=1, socket_connect_timeout=0.2)
    monkeypatch.setitem(app.extensions, "wmb_redis", down)
    with pytest.raises(redis.exceptions.ConnectionError):
        _buy(sale, sku, m.id, "a")
    db.session.rollback()
    assert _sale(sale.id).sold == 0
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0


def test_editing_or_stopping_a_running_sale_refreshes_redis_from_postgresql(shop, fake_pay):
    import datetime as dt

    from core.redis import get_redis
    from core.tenancy import require_brand_id
    from shop import catalog

    sku = product(name="秒杀杯", price_fen=5000, stock_units=50)
    sale = flash_sale(sku, quantity=10, per_member_limit=2)
    _buy(sale, sku, member().id, "a")
    db.session.commit()
    keys = flash.redis_keys(require_brand_id(), sale.id)
    assert flash.remaining(sale.id) == 9
    old_ttl = get_redis().ttl(keys[0])
    later = sale.ends_at + dt.timedelta(days=5)
    catalog.update_flash_sale(
        flash_sale_id=sale.id,
        name="秒杀杯（延长）",
        price_fen=sale.price_fen,
        quantity=sale.quantity,
        per_member_limit=sale.per_member_limit,
        starts_at=sale.starts_at,
        ends_at=later,
    )
    assert flash.remaining(sale.id) == 9  # nothing changes before the commit
    db.session.commit()
    assert get_redis().exists(*keys) == 0
    _buy(sale, sku, member().id, "b")
    db.session.commit()
    # Rebuilt from PostgreSQL: one unit sold before, one now; kept until the new end.
    assert flash.remaining(sale.id) == 8
    assert get_redis().ttl(keys[0]) > old_ttl + 4 * 86400
    catalog.stop_flash_sale(flash_sale_id=sale.id)
    db.session.commit()
    assert get_redis().exists(*keys) == 0
    with pytest.raises(AppError):
        _buy(sale, sku, member().id, "c")
    db.session.rollback()
    assert _sale(sale.id).sold == 2
