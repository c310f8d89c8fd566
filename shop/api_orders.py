"""Cart, checkout and payment in the mini-program API (``/api/mp/<brand_slug>/shop/...``,
documented in ``/api/mp/openapi.json``). The member's orders and after-sale are another
part's (``/shop/orders`` reads)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from flask import Blueprint, Flask, current_app, url_for
from pydantic import BaseModel, ConfigDict, Field

from core.api import api_operation
from core.db import db
from members import api as mp
from shop import cart, checkout, payments, pricing
from shop.models import MINI_PROGRAM, Order

bp = mp.mp_blueprint(Blueprint("shop_mp_orders", __name__, url_prefix="/api/mp/<brand_slug>"))
PREFIX = mp.PREFIX


class CartLineOut(BaseModel):
    sku_id: int
    product_id: int
    name: str
    spec: str
    image: str | None
    quantity: int
    price_fen: int = Field(description="Today's price")
    seen_price_fen: int = Field(description="The price when the member added it")
    buyable: bool


class CartOut(BaseModel):
    items: list[CartLineOut]
    goods_fen: int = Field(description="Buyable lines at today's prices")


class CartAddIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku_id: int
    quantity: int = Field(description="1-99; added to what is in the cart")


class CartSetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int = Field(description="1-99")


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku_id: int
    quantity: int
    seen_price_fen: int | None = Field(None, description="The price shown (checked)")
    flash_sale_id: int | None = None


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=40)
    phone: str = Field(max_length=20)
    province: str = Field(max_length=20)
    city: str = Field(max_length=30)
    district: str = Field("", max_length=30)
    detail: str = Field(max_length=120)


class QuoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ItemIn] | None = Field(None, description="None: the whole cart", max_length=50)
    coupons: list[str] = Field(default_factory=list, max_length=5, description="Coupon codes")
    points: int = Field(0, ge=0)
    fulfilment: Literal["delivery", "pickup"] = "delivery"
    address: AddressIn | None = None
    pickup_store_id: int | None = None


class CheckoutIn(QuoteIn):
    idempotency_key: str = Field(min_length=1, max_length=100, description="One per tap")
    note: str = Field("", max_length=200)


class QuoteLineOut(BaseModel):
    sku_id: int
    name: str
    spec: str
    unit_price_fen: int
    quantity: int
    goods_fen: int
    discount_fen: int
    points_fen: int
    pay_fen: int


class QuoteOut(BaseModel):
    lines: list[QuoteLineOut]
    goods_fen: int
    discount_fen: int
    points_used: int
    points_fen: int
    shipping_fen: int
    pay_fen: int
    max_points: int = Field(description="The most points this order can take")


class OrderOut(BaseModel):
    order_no: str
    status: str
    pay_fen: int
    pay_deadline: dt.datetime | None
    created: bool = Field(description="False: the same checkout again")


class PayOut(BaseModel):
    out_trade_no: str
    params: dict = Field(description="What wx.requestPayment takes")


def _cart(member_id: int) -> CartOut:
    lines = cart.lines(member_id=member_id)
    return CartOut(
        items=[
            CartLineOut(
                sku_id=ln.sku_id,
                product_id=ln.product_id,
                name=ln.name,
                spec=ln.spec_text,
                image=ln.image,
                quantity=ln.quantity,
                price_fen=ln.price_fen,
                seen_price_fen=ln.seen_price_fen,
                buyable=ln.buyable,
            )
            for ln in lines
        ],
        goods_fen=sum(ln.amount_fen for ln in lines if ln.buyable),
    )


def _items(member_id: int, body: QuoteIn) -> tuple[list[pricing.Item], bool]:
    if body.items is None:
        return [
            pricing.Item(ln.sku_id, ln.quantity, ln.seen_price_fen)
            for ln in cart.lines(member_id=member_id)
        ], True
    return [
        pricing.Item(i.sku_id, i.quantity, i.seen_price_fen, i.flash_sale_id) for i in body.items
    ], False


def _order_out(order: Order, created: bool) -> OrderOut:
    return OrderOut(
        order_no=order.order_no,
        status=order.status,
        pay_fen=order.pay_fen,
        pay_deadline=order.pay_deadline,
        created=created,
    )


@bp.get("/shop/cart")
@api_operation("mp", "get", f"{PREFIX}/shop/cart", summary="The member's cart", response=CartOut,
               errors=(403,))  # fmt: skip
def get_cart():
    return _cart(mp.current_member().id)


@bp.post("/shop/cart")
@api_operation(
    "mp", "post", f"{PREFIX}/shop/cart", summary="Add a SKU to the cart", body=CartAddIn,
    response=CartOut, errors=(403, 409),
)  # fmt: skip
def add_to_cart(body: CartAddIn):
    member_id = mp.current_member().id
    cart.add(member_id=member_id, sku_id=body.sku_id, quantity=body.quantity)
    out = _cart(member_id)
    db.session.commit()
    return out


@bp.post("/shop/cart/<int:sku_id>")
@api_operation(
    "mp", "post", f"{PREFIX}/shop/cart/{{sku_id}}", summary="Set a cart line's quantity",
    body=CartSetIn, response=CartOut, errors=(403, 409),
)  # fmt: skip
def set_quantity(sku_id: int, body: CartSetIn):
    member_id = mp.current_member().id
    cart.update(member_id=member_id, sku_id=sku_id, quantity=body.quantity)
    out = _cart(member_id)
    db.session.commit()
    return out


@bp.delete("/shop/cart/<int:sku_id>")
@api_operation(
    "mp", "delete", f"{PREFIX}/shop/cart/{{sku_id}}", summary="Take a SKU out of the cart",
    response=CartOut, errors=(403,),
)  # fmt: skip
def remove_from_cart(sku_id: int):
    member_id = mp.current_member().id
    cart.remove(member_id=member_id, sku_ids=[sku_id])
    out = _cart(member_id)
    db.session.commit()
    return out


def _quote(member_id: int, body: QuoteIn) -> pricing.Quote:
    from members.models import Member
    from shop.checkout import _pickup_store, check_address

    items, _ = _items(member_id, body)
    address = body.address.model_dump() if body.address else None
    if body.fulfilment == "pickup":
        store_id, province = _pickup_store(body.pickup_store_id).id, None
    else:
        province = check_address(address)["province"] if address else None
        store_id = db.session.get(Member, member_id).store_id
    return pricing.quote(
        member_id=member_id,
        items=items,
        coupons=body.coupons,
        points=body.points,
        fulfilment=body.fulfilment,
        province=province,
        store_id=store_id,
    )


@bp.post("/shop/checkout/quote")
@api_operation(
    "mp", "post", f"{PREFIX}/shop/checkout/quote",
    summary="Price the cart (or the items) with coupons, points and shipping; writes nothing",
    body=QuoteIn, response=QuoteOut, errors=(403, 409),
)  # fmt: skip
def quote(body: QuoteIn):
    q = _quote(mp.current_member().id, body)
    out = QuoteOut(
        lines=[
            QuoteLineOut(
                sku_id=ln.sku.id,
                name=ln.product.name,
                spec=ln.spec_text,
                unit_price_fen=ln.unit_price_fen,
                quantity=ln.quantity,
                goods_fen=ln.goods_fen,
                discount_fen=ln.discount_fen,
                points_fen=ln.points_fen,
                pay_fen=ln.pay_fen,
            )
            for ln in q.lines
        ],
        goods_fen=q.goods_fen,
        discount_fen=q.discount_fen,
        points_used=q.points_used,
        points_fen=q.points_fen,
        shipping_fen=q.shipping_fen,
        pay_fen=q.pay_fen,
        max_points=q.max_points,
    )
    db.session.rollback()
    return out


@bp.post("/shop/checkout")
@api_operation(
    "mp", "post", f"{PREFIX}/shop/checkout",
    summary="Create the order: stock reserved, points spent, coupons redeemed (one per key)",
    body=CheckoutIn, response=OrderOut, status=201, errors=(403, 409),
)  # fmt: skip
def create_order(body: CheckoutIn):
    member_id = mp.current_member().id
    items, from_cart = _items(member_id, body)
    placed = checkout.checkout(
        member_id=member_id,
        items=items,
        channel=MINI_PROGRAM,
        idempotency_key=body.idempotency_key,
        coupons=body.coupons,
        points=body.points,
        fulfilment=body.fulfilment,
        address=body.address.model_dump() if body.address else None,
        pickup_store_id=body.pickup_store_id,
        note=body.note,
        from_cart=from_cart,
    )
    out = _order_out(placed.order, placed.created)
    db.session.commit()
    return out, 201 if placed.created else 200


@bp.post("/shop/orders/<order_no>/pay")
@api_operation(
    "mp", "post", f"{PREFIX}/shop/orders/{{order_no}}/pay",
    summary="WeChat Pay parameters for wx.requestPayment", response=PayOut, errors=(403, 409),
)  # fmt: skip
def pay(order_no: str):
    member_id = mp.current_member().id
    payment, params = payments.start_payment(
        order_no=order_no,
        member_id=member_id,
        mini_program=True,
        notify_url=notify_url(),
    )
    out = PayOut(out_trade_no=payment.out_trade_no, params=params)
    db.session.commit()
    return out


@bp.post("/shop/orders/<order_no>/pay/check")
@api_operation(
    "mp", "post", f"{PREFIX}/shop/orders/{{order_no}}/pay/check",
    summary="After wx.requestPayment: ask WeChat Pay and answer the order's state",
    response=OrderOut, errors=(403,),
)  # fmt: skip
def pay_check(order_no: str):
    order = payments.refresh(order_no=order_no, member_id=mp.current_member().id)
    out = _order_out(order, False)
    db.session.commit()
    return out


@bp.post("/shop/orders/<order_no>/cancel")
@api_operation(
    "mp", "post", f"{PREFIX}/shop/orders/{{order_no}}/cancel",
    summary="Cancel an unpaid order (stock, points and coupons come back)",
    response=OrderOut, errors=(403, 409),
)  # fmt: skip
def cancel(order_no: str):
    order = checkout.cancel(order_no=order_no, member_id=mp.current_member().id)
    out = _order_out(order, False)
    db.session.commit()
    return out


def notify_url() -> str:
    from core.tenancy import require_brand_id
    from org.models import Brand

    # PUBLIC_URL, like the refunds' notify: the host a request came in by may be an
    # internal one behind the proxy.
    brand = db.session.get(Brand, require_brand_id())
    path = url_for("shop_pay.notify", brand_slug=brand.slug)
    return current_app.config["PUBLIC_URL"].rstrip("/") + path


def init_app(app: Flask) -> None:
    mp.init_app(app, bp)
