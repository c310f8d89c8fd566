"""Checkout: an online order from what the member chose, with its stock reserved, its points
spent and its coupons redeemed, all in the caller's transaction; and the closing of an
unpaid order (cancelled by the member or past its pay deadline), exactly once.

One checkout per member at a time (a transaction-scoped advisory lock on the member), and one
order per checkout request: the client's idempotency key is the order's, so a double tap
answers the first order. Anything refused (a price changed, a coupon, points, stock, the
flash sale) raises before the caller commits, so nothing of it is written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, text

from core import validators
from core.db import db, utcnow
from core.errors import Conflict, NotFound, ValidationError
from core.jobs import enqueue
from core.tenancy import require_brand_id
from coupons import redemption
from members.models import ACTIVE, Member
from org.models import Store
from points import services as points_services
from shop import cart, flash, numbers, pricing, signals, stock
from shop import settings as shop_settings
from shop.models import (
    CLOSED,
    CREATED,
    DELIVERY,
    H5,
    MINI_PROGRAM,
    PICKUP,
    RES_HELD,
    RES_RELEASED,
    FlashSale,
    Order,
    OrderLine,
    Reservation,
)

ONLINE_CHANNELS = (MINI_PROGRAM, H5)
MAX_KEY = 100
POINTS_REASON = "shop"


def spend_key(order_no: str) -> str:
    return f"shop:{order_no}:spend"


def return_key(order_no: str) -> str:
    """Spent points given back when the unpaid order closes."""
    return f"shop:{order_no}:return"


def coupon_key(order_no: str, coupon_id: int) -> str:
    return f"shop:{order_no}:coupon:{coupon_id}"


def lock_member(member_id: int) -> None:
    """Serialise this member's checkouts (and their limits) until the transaction ends."""
    db.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
        {"k": f"shop-member:{require_brand_id()}:{member_id}"},
    )


def check_address(address) -> dict:
    if not isinstance(address, dict):
        raise ValidationError(_l("A delivery address is required."), field="address")
    return validators.check_address(address, prefix="address.")


def _pickup_store(store_id) -> Store:
    if not isinstance(store_id, int) or isinstance(store_id, bool):
        raise ValidationError(_l("Choose a store for pick-up."), field="store_id")
    store = db.session.execute(select(Store).where(Store.id == store_id)).scalar_one_or_none()
    if store is None or not store.active:
        raise ValidationError(_l("Choose a store for pick-up."), field="store_id")
    return store


@dataclasses.dataclass(frozen=True)
class Placed:
    order: Order
    created: bool  # False: the same request again, answered with its order


def checkout(
    *,
    member_id: int,
    items: list[pricing.Item],
    channel: str,
    idempotency_key: str,
    coupons: list[str] | None = None,
    points: int = 0,
    fulfilment: str = DELIVERY,
    address: dict | None = None,
    pickup_store_id: int | None = None,
    note: str = "",
    from_cart: bool = True,
    now: dt.datetime | None = None,
) -> Placed:
    """Create the member's order (see the module's text); the caller commits."""
    if channel not in ONLINE_CHANNELS:
        raise ValidationError(_l("Unknown channel."), field="channel")
    client_key = (idempotency_key or "").strip() if isinstance(idempotency_key, str) else ""
    if not client_key or len(client_key) > MAX_KEY:
        raise ValidationError(
            _l("An idempotency key of 1-100 characters is required."), field="idempotency_key"
        )
    note = (note or "").strip() if isinstance(note, str) else ""
    if len(note) > 200:
        raise ValidationError(_l("At most %(n)d characters.", n=200), field="note")
    now = now or utcnow()
    key = f"checkout:{member_id}:{client_key}"
    lock_member(member_id)
    existing = db.session.execute(
        select(Order).where(Order.idempotency_key == key)
    ).scalar_one_or_none()
    if existing is not None:
        return Placed(existing, False)
    # A flash sale's buyers are mostly refused: Redis decides before anything else is read.
    sales = _take_flash_units(items, member_id=member_id, now=now)
    member = db.session.get(Member, member_id)
    if member is None or member.status != ACTIVE:
        raise NotFound(_l("Unknown member."), field="member_id")

    province = None
    if fulfilment == PICKUP:
        store_id = _pickup_store(pickup_store_id).id
        address = None
    else:
        address = check_address(address) if fulfilment == DELIVERY else None
        province = address["province"] if address else None
        store_id = member.store_id
    quote = pricing.quote(
        member_id=member_id,
        items=items,
        coupons=coupons,
        points=points,
        fulfilment=fulfilment,
        province=province,
        store_id=store_id,
        now=now,
    )

    if any(ln.flash_sale_id is not None and i not in sales for i, ln in enumerate(quote.lines)):
        raise Conflict(_l("This flash sale is not running."), field="items", code="flash_closed")
    settings = shop_settings.get_settings()
    deadline = now + dt.timedelta(minutes=settings.pay_timeout_minutes)
    order = Order(
        order_no=numbers.new_order_no(now=now),
        channel=channel,
        status=CREATED,
        fulfilment=fulfilment,
        member_id=member_id,
        store_id=store_id,
        goods_fen=quote.goods_fen,
        discount_fen=quote.discount_fen,
        points_used=quote.points_used,
        points_fen=quote.points_fen,
        shipping_fen=quote.shipping_fen,
        pay_fen=quote.pay_fen,
        coupon_ids=[a.coupon.id for a in quote.coupons],
        flash_sale_id=next((s.id for s in sales.values()), None),
        idempotency_key=key,
        address=address,
        note=note,
        pay_deadline=deadline,
        created_at=now,
        updated_at=now,
    )
    db.session.add(order)
    db.session.flush()
    for line in quote.lines:
        db.session.add(
            OrderLine(
                order_id=order.id,
                sku_id=line.sku.id,
                product_id=line.product.id,
                name=line.product.name[:120],
                spec_text=line.spec_text,
                sku_code=line.sku.code,
                category=line.category,
                unit_price_fen=line.unit_price_fen,
                quantity=line.quantity,
                goods_fen=line.goods_fen,
                discount_fen=line.discount_fen,
                points_fen=line.points_fen,
                points_used=line.points_used,
                pay_fen=line.pay_fen,
                flash_sale_id=line.flash_sale_id,
                promotion=line.product.promotion,
            )
        )
    db.session.flush()
    signals.order_created.send(
        require_brand_id(),
        order_id=order.id,
        member_id=member_id,
        store_id=store_id,
        guide_id=None,
        channel=channel,
    )
    if quote.points_used:
        points_services.spend(
            member_id=member_id,
            points=quote.points_used,
            reason=POINTS_REASON,
            idempotency_key=spend_key(order.order_no),
            now=now,
        )
    for applied in quote.coupons:
        red = redemption.redeem(
            code=applied.coupon.code,
            store_id=store_id,
            order_id=order.order_no,
            order_amount_fen=applied.amount_fen,
            idempotency_key=coupon_key(order.order_no, applied.coupon.id),
            channel="online",
            member_id=member_id,
            categories=applied.categories,
            product_ids=applied.product_ids,
            now=now,
        )
        if red.discount_fen != applied.discount_fen:  # the coupon changed meanwhile
            raise Conflict(_l("A coupon changed. Check the order again."), field="coupons")
    if from_cart:
        cart.remove(member_id=member_id, sku_ids=[line.sku.id for line in quote.lines])
    # The shared rows last (a best-seller's stock, the flash sale): locked until the commit.
    for i, line in enumerate(quote.lines):
        try:
            stock.change(
                sku_id=line.sku.id,
                delta=-line.quantity,
                reason="reserve",
                idempotency_key=f"order:{order.id}:reserve:{line.sku.id}",
                order_id=order.id,
            )
        except stock.OutOfStock as exc:
            exc.field = f"items.{i}.quantity"
            raise
        db.session.add(
            Reservation(
                order_id=order.id,
                sku_id=line.sku.id,
                flash_sale_id=line.flash_sale_id,
                member_id=member_id,
                quantity=line.quantity,
                status=RES_HELD,
                expires_at=deadline,
                created_at=now,
            )
        )
    db.session.flush()
    for i, sale in sales.items():
        try:
            flash.confirm(
                sale, member_id=member_id, quantity=quote.lines[i].quantity, order_id=order.id
            )
        except flash.SoldOut as exc:
            exc.field = f"items.{i}.quantity"
            raise
    if order.pay_fen == 0:  # coupons and points paid for everything
        from shop import payments

        payments.settle(order, paid_at=now, via="free")
    else:
        from shop import jobs

        enqueue(
            jobs.release_order,
            order.id,
            delay=max(0, (deadline - utcnow()).total_seconds()),
            dedupe_key=f"shop-release:{order.id}",
        )
    return Placed(order, True)


def _take_flash_units(items, *, member_id: int, now: dt.datetime) -> dict[int, FlashSale]:
    """Redis's decision for the items bought in a running flash sale (by item index); an
    item that is not (another SKU, outside the window, a bad quantity) is left to pricing,
    which refuses it with its reason."""
    sales = {}
    for i, item in enumerate(items):
        if getattr(item, "flash_sale_id", None) is None:
            continue
        quantity = item.quantity
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 < quantity < 100:
            continue
        sale = db.session.get(FlashSale, item.flash_sale_id)
        if sale is None or sale.sku_id != item.sku_id or not sale.active:
            continue
        if not sale.starts_at <= now < sale.ends_at:
            continue
        try:
            flash.take(sale, member_id=member_id, quantity=quantity)
        except flash.SoldOut as exc:
            exc.field = f"items.{i}.quantity"
            raise
        sales[i] = sale
    return sales


_CLOSE = text(
    "UPDATE shop_order SET status = :closed, closed_at = :now, close_reason = :reason,"
    " updated_at = :now WHERE id = :id AND brand_id = :b AND status = :created RETURNING id"
)
_RELEASE = text(
    "UPDATE shop_reservation SET status = :released, settled_at = :now"
    " WHERE order_id = :order_id AND brand_id = :b AND status = :held"
    " RETURNING sku_id, quantity, flash_sale_id, member_id"
)


def close_order(order_id: int, *, reason: str, now: dt.datetime | None = None) -> bool:
    """Close an unpaid order once: stock, flash-sale units, spent points and coupons go
    back and ``order_closed`` is sent, by the caller that flips it from created to closed.
    False when it was not open (paid or closed already). Payments must be settled first
    (``payments.settle_before_close``)."""
    now = now or utcnow()
    brand_id = require_brand_id()
    won = db.session.execute(
        _CLOSE,
        {
            "closed": CLOSED,
            "created": CREATED,
            "now": now,
            "reason": reason[:40],
            "id": order_id,
            "b": brand_id,
        },
    ).scalar()
    if won is None:
        return False
    order = db.session.get(Order, order_id, populate_existing=True)
    released = db.session.execute(
        _RELEASE,
        {
            "released": RES_RELEASED,
            "held": RES_HELD,
            "now": now,
            "order_id": order_id,
            "b": brand_id,
        },
    ).all()
    for sku_id, quantity, sale_id, member_id in released:
        stock.change(
            sku_id=sku_id,
            delta=quantity,
            reason="release",
            idempotency_key=f"order:{order_id}:release:{sku_id}",
            order_id=order_id,
        )
        if sale_id is not None:
            flash.give_back(sale_id=sale_id, member_id=member_id, quantity=quantity)
    if order.points_used and order.member_id is not None:
        points_services.adjust(
            member_id=order.member_id,
            points=int(order.points_used),
            reason=POINTS_REASON,
            idempotency_key=return_key(order.order_no),
            note=order.order_no,
            now=now,
        )
    if order.coupon_ids:
        redemption.reverse(
            store_id=order.store_id, order_id=order.order_no, reason=f"order {reason}", now=now
        )
    signals.order_closed.send(brand_id, order_id=order.id)
    return True


def cancel(*, order_no: str, member_id: int) -> Order:
    """The member cancels an unpaid order. If WeChat Pay says it was paid meanwhile, it is
    marked paid instead (and answered as it is)."""
    from shop import payments

    order = order_of_member(order_no=order_no, member_id=member_id, lock=True)
    if order.status != CREATED:
        raise Conflict(_l("Only an unpaid order can be cancelled."), field="order_no")
    if payments.settle_before_close(order):
        db.session.refresh(order)
        return order
    close_order(order.id, reason="cancelled")
    db.session.refresh(order)
    return order


def order_of_member(*, order_no: str, member_id: int, lock: bool = False) -> Order:
    """The member's order of this number in the current brand (NotFound otherwise)."""
    if not numbers.well_formed(order_no):
        raise NotFound(_l("No such order."), field="order_no")
    stmt = select(Order).where(Order.order_no == order_no, Order.member_id == member_id)
    if lock:
        stmt = stmt.with_for_update()
    order = db.session.execute(stmt).scalar_one_or_none()
    if order is None:
        raise NotFound(_l("No such order."), field="order_no")
    return order


def open_orders_count(member_id: int) -> int:
    return db.session.execute(
        select(func.count()).where(Order.member_id == member_id, Order.status == CREATED)
    ).scalar_one()
