"""`flask demo` step: paid orders of the demo brand in every fulfilment state, after-sale
requests and a reconciliation difference, so that the orders, after-sale, pick-up and
reconciliation pages have something to show (idempotent: keyed by the demo order numbers)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.cli import demo_step
from core.db import db, utcnow
from core.tenancy import use_brand
from members.models import Member
from org.models import Brand
from org.services import list_stores
from shop import aftersale, fulfilment, reconcile, refunds
from shop.models import (
    DELIVERY,
    MINI_PROGRAM,
    PAID,
    PAY_PAID,
    PICKUP,
    Category,
    Order,
    OrderLine,
    Payment,
    Product,
    Sku,
)

DEMO_SLUG = "demo"
# (order suffix, fulfilment, SKU index and quantity per line, what happens next)
DEMO_ORDERS = (
    ("01", DELIVERY, ((0, 2), (1, 1)), "after_sale"),
    ("02", DELIVERY, ((1, 1),), "shipped"),
    ("03", PICKUP, ((0, 1),), "ready"),
    ("04", DELIVERY, ((0, 1),), "paid"),
)


def _catalog() -> list[Sku]:
    product = db.session.execute(
        select(Product).where(Product.code == "DEMO-AS-TEE")
    ).scalar_one_or_none()
    if product is None:
        cat = db.session.execute(
            select(Category).where(Category.code == "tee")
        ).scalar_one_or_none() or Category(code="tee", name="T恤")
        db.session.add(cat)
        db.session.flush()
        product = Product(code="DEMO-AS-TEE", name="经典纯棉T恤", category_id=cat.id, on_sale=True)
        db.session.add(product)
        db.session.flush()
        for code, size in (("DEMO-AS-TEE-M", "M"), ("DEMO-AS-TEE-L", "L")):
            db.session.add(
                Sku(
                    product_id=product.id,
                    code=code,
                    spec={"颜色": "白", "尺码": size},
                    price_fen=9900,
                    stock=50,
                )
            )
        db.session.flush()
    return list(
        db.session.scalars(select(Sku).where(Sku.product_id == product.id).order_by(Sku.code))
    )


def _order(no: str, member: Member, store_id, fulfil: str, lines, skus, paid_at) -> Order:
    goods = [skus[i].price_fen * q for i, q in lines]
    order = Order(
        order_no=no,
        channel=MINI_PROGRAM,
        status=PAID,
        fulfilment=fulfil,
        member_id=member.id,
        store_id=store_id,
        goods_fen=sum(goods),
        pay_fen=sum(goods),
        paid_fen=sum(goods),
        paid_at=paid_at,
        address={"name": member.name or "会员", "phone": member.phone, "province": "上海",
                 "city": "上海", "district": "静安区", "detail": "南京西路1号"}
        if fulfil == DELIVERY
        else None,
    )  # fmt: skip
    db.session.add(order)
    db.session.flush()
    for (i, q), g in zip(lines, goods, strict=True):
        sku = skus[i]
        db.session.add(
            OrderLine(
                order_id=order.id,
                sku_id=sku.id,
                product_id=sku.product_id,
                name="经典纯棉T恤",
                spec_text=" ".join(sku.spec.values()),
                sku_code=sku.code,
                category="tee",
                unit_price_fen=sku.price_fen,
                quantity=q,
                goods_fen=g,
                pay_fen=g,
            )
        )
    db.session.add(
        Payment(
            order_id=order.id,
            out_trade_no=f"{no}P1",
            transaction_id=f"4200000{no[-9:]}",
            amount_fen=order.pay_fen,
            status=PAY_PAID,
            confirmed_by="notify",
            paid_at=paid_at,
        )
    )
    db.session.flush()
    return order


@demo_step(68)
def demo_orders_after_sale() -> list[str]:
    """Four paid orders (to ship, shipped, ready for pick-up, with after-sale requests)."""
    brand = Brand.by_slug(DEMO_SLUG)
    if brand is None:
        return []
    with use_brand(brand.id):
        members = list(db.session.scalars(select(Member).order_by(Member.phone).limit(3)))
        stores = list_stores()
        if not members or not stores:
            return ["shop orders: no demo members or stores, skipped"]
        now = utcnow()
        day = now.astimezone(brand.tz) - dt.timedelta(days=1)
        prefix = f"{day:%Y%m%d}99"
        if db.session.execute(
            select(Order.id).where(Order.order_no.like(f"{prefix}%")).limit(1)
        ).first():
            return ["shop orders: already loaded"]
        skus = _catalog()
        made = {}
        for n, (suffix, fulfil, lines, then) in enumerate(DEMO_ORDERS):
            member = members[n % len(members)]
            order = _order(
                f"{prefix}000000{suffix}", member, stores[0].id, fulfil, lines, skus,
                now - dt.timedelta(hours=20 - n),
            )  # fmt: skip
            made[then] = (order, member)
        order, _m = made["shipped"]
        fulfilment.ship(order_id=order.id, carrier="顺丰速运", tracking_no="SF1400000001")
        order, _m = made["ready"]
        fulfilment.mark_ready(order_id=order.id)
        order, member = made["after_sale"]
        first, second = db.session.scalars(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
        ).all()
        aftersale.request(
            order_id=order.id, member_id=member.id, kind="refund_only",
            items=[refunds.Item(first.id, 1)], reason="买多了一件",
        )  # fmt: skip
        aftersale.request(
            order_id=order.id, member_id=member.id, kind="return_refund",
            items=[refunds.Item(second.id, 1)], reason="尺码偏大",
        )  # fmt: skip
        # Yesterday's bill as WeChat Pay would have it, with one payment of another amount.
        rows = [
            {"out_trade_no": f"{o.order_no}P1", "trade_state": "SUCCESS",
             "amount_fen": o.pay_fen - (100 if then == "paid" else 0)}
            for then, (o, _m) in made.items()
        ]  # fmt: skip
        reconcile.record(bill_date=day.date(), rows=rows)
        db.session.flush()
    return ["Shop orders: 4 paid orders (to ship, shipped, ready for pick-up, 2 after-sales)"]
