"""Paid orders built directly in the tables, for the fulfilment, after-sale, refund and
reconciliation tests, the way the order core leaves them (SHOP_CONTRACT.md): amounts and
the coupon and points shares allocated over the lines by largest remainder, stock taken,
points spent under ``shop:{order_no}:spend``, coupons redeemed with ``order_id`` = the order
number, points earned under ``shop:{order_no}:earn`` on what was paid for goods, the
member's purchase, facts and sales rollup recorded, a paid Payment ``order_no`` + "P1".

Everything here commits, so a test's requests see the data.
"""

from __future__ import annotations

import datetime as dt
import itertools

from core.db import db, utcnow
from coupons import services as coupons
from coupons.models import Coupon, CouponTemplate
from coupons.redemption import discount_for
from members.tiers_tags import tiers
from points import services as points
from shop import facts, stock
from shop.models import (
    DELIVERY,
    H5,
    MINI_PROGRAM,
    PAID,
    PAY_PAID,
    PICKUP,
    TILL,
    Category,
    Order,
    OrderLine,
    Payment,
    Product,
    Sku,
)
from shop.settings import get_settings

_seq = itertools.count(1)

__all__ = ["DELIVERY", "H5", "MINI_PROGRAM", "PICKUP", "TILL", "catalog", "paid_order"]


def allocate(total: int, weights: list[int]) -> list[int]:
    """``total`` spread over ``weights`` by largest remainder (sums exactly to ``total``)."""
    base = sum(weights)
    if base == 0 or total == 0:
        return [0] * len(weights)
    shares = [total * w // base for w in weights]
    rest = total - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % base), i))
    for i in order[:rest]:
        shares[i] += 1
    return shares


def catalog(prices: tuple[int, ...] = (9900, 4550, 1999), stock_each: int = 100) -> list[Sku]:
    """A category, a product on sale and one SKU per price, each with ``stock_each`` units."""
    n = next(_seq)
    cat = Category(code=f"cat{n}", name=f"类目{n}")
    db.session.add(cat)
    db.session.flush()
    product = Product(code=f"P{n:04d}", name=f"商品{n}", category_id=cat.id, on_sale=True)
    db.session.add(product)
    db.session.flush()
    skus = []
    for i, price in enumerate(prices):
        sku = Sku(
            product_id=product.id,
            code=f"SKU{n:04d}{i}",
            spec={"尺码": "SML"[i % 3]},
            price_fen=price,
            stock=0,
        )
        db.session.add(sku)
        db.session.flush()
        stock.change(sku_id=sku.id, delta=stock_each, reason="import", idempotency_key=f"i{sku.id}")
        skus.append(sku)
    db.session.commit()
    return skus


def give_points(member_id: int, amount: int) -> None:
    points.adjust(
        member_id=member_id,
        points=amount,
        reason="test",
        idempotency_key=f"gift:{member_id}:{next(_seq)}",
    )
    db.session.commit()


def coupon_for(member_id: int, **template) -> Coupon:
    values = dict(
        name="满减券",
        kind="cash",
        value_fen=1000,
        threshold_fen=0,
        valid_from=utcnow() - dt.timedelta(days=1),
        valid_until=utcnow() + dt.timedelta(days=30),
    )
    values.update(template)
    tpl = coupons.create_template(**values)
    db.session.flush()
    c = coupons.issue(
        template_id=tpl.id, member_id=member_id, source="claim", idempotency_key=f"c{next(_seq)}"
    )
    db.session.commit()
    return c


def paid_order(
    *,
    member_id: int | None,
    lines: list[tuple[Sku, int]],
    store_id: int | None = None,
    coupon: Coupon | None = None,
    points_used: int = 0,
    shipping_fen: int = 0,
    fulfilment: str = DELIVERY,
    channel: str = MINI_PROGRAM,
    paid_at: dt.datetime | None = None,
) -> Order:
    """A paid order of these SKUs and quantities, as the order core leaves it."""
    paid_at = paid_at or utcnow()
    settings = get_settings()
    n = next(_seq)
    order_no = f"{paid_at:%Y%m%d}{n:08d}"
    goods = [sku.price_fen * qty for sku, qty in lines]
    goods_fen = sum(goods)
    discount_fen = 0
    if coupon is not None:
        tpl = db.session.get(CouponTemplate, coupon.template_id)
        discount_fen = discount_for(tpl, goods_fen)
    discounts = allocate(discount_fen, goods)
    after_coupon = [g - d for g, d in zip(goods, discounts, strict=True)]
    points_fen = points_used * 100 // settings.points_per_yuan
    assert points_fen <= sum(after_coupon), "more points than the goods are worth"
    points_shares = allocate(points_fen, after_coupon)
    points_used_shares = allocate(points_used, after_coupon)
    pay_fen = goods_fen - discount_fen - points_fen + shipping_fen
    order = Order(
        order_no=order_no,
        channel=channel,
        status=PAID,
        fulfilment=fulfilment,
        member_id=member_id,
        store_id=store_id,
        goods_fen=goods_fen,
        discount_fen=discount_fen,
        points_used=points_used,
        points_fen=points_fen,
        shipping_fen=shipping_fen,
        pay_fen=pay_fen,
        paid_fen=pay_fen,
        coupon_ids=[coupon.id] if coupon else [],
        paid_at=paid_at,
        address={"name": "张三", "phone": "13800000000", "province": "上海", "city": "上海",
                 "district": "黄浦区", "detail": "南京东路1号"}
        if fulfilment == DELIVERY
        else None,
    )  # fmt: skip
    db.session.add(order)
    db.session.flush()
    for (sku, qty), g, d, pf, pu in zip(
        lines, goods, discounts, points_shares, points_used_shares, strict=True
    ):
        db.session.add(
            OrderLine(
                order_id=order.id,
                sku_id=sku.id,
                product_id=sku.product_id,
                name=f"商品 {sku.code}",
                spec_text=" ".join(sku.spec.values()),
                sku_code=sku.code,
                unit_price_fen=sku.price_fen,
                quantity=qty,
                goods_fen=g,
                discount_fen=d,
                points_fen=pf,
                points_used=pu,
                pay_fen=g - d - pf,
            )
        )
        stock.change(
            sku_id=sku.id,
            delta=-qty,
            reason="reserve",
            idempotency_key=f"order:{order.id}:reserve:{sku.id}",
            order_id=order.id,
        )
    if points_used:
        points.spend(
            member_id=member_id,
            points=points_used,
            reason="shop",
            idempotency_key=f"shop:{order_no}:spend",
        )
    if coupon is not None:
        coupons.redeem(
            code=coupon.code,
            store_id=store_id,
            order_id=order_no,
            order_amount_fen=goods_fen,
            idempotency_key=f"shop:{order_no}:coupon:{coupon.id}",
            channel="pos",
            member_id=member_id,
        )
    if channel != TILL:
        db.session.add(
            Payment(
                order_id=order.id,
                out_trade_no=f"{order_no}P1",
                transaction_id=f"42000{n:015d}",
                mini_program=channel == MINI_PROGRAM,
                amount_fen=pay_fen,
                status=PAY_PAID,
                confirmed_by="notify",
                paid_at=paid_at,
            )
        )
    if member_id is not None and pay_fen - shipping_fen > 0:
        entry = points.earn_for_purchase(
            member_id=member_id,
            amount_fen=pay_fen - shipping_fen,
            store_id=store_id,
            occurred_at=paid_at,
            idempotency_key=f"shop:{order_no}:earn",
        )
        order.points_earned = entry.points
        tiers.record_purchase(
            member_id=member_id,
            amount_fen=pay_fen,
            store_id=store_id,
            occurred_at=paid_at,
            idempotency_key=f"shop:{order_no}:purchase",
        )
    db.session.flush()
    facts.record_paid(order, day=paid_at.astimezone(dt.timezone(dt.timedelta(hours=8))).date())
    db.session.commit()
    return order
