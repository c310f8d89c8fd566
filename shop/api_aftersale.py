"""The member's orders and after-sale in the mini-program API (``/api/mp/<brand_slug>/shop/
orders...``, documented in ``/api/mp/openapi.json``)."""

from __future__ import annotations

from flask import Blueprint, Flask
from flask_babel import gettext

from core.api import api_operation
from core.db import db
from core.errors import NotFound
from core.paging import keyset_page, newest_first
from members import api as mp
from shop import aftersale, fulfilment, queries, refunds
from shop.models import AfterSale, Order
from shop.schemas_orders import (
    AfterSaleLineOut,
    AfterSaleOut,
    AfterSaleRequest,
    LineOut,
    OrderList,
    OrderOut,
    OrdersQuery,
    OrderSummary,
    RefundOut,
    TrackingRequest,
)

bp = mp.mp_blueprint(Blueprint("shop_mp_aftersale", __name__, url_prefix="/api/mp/<brand_slug>"))
PREFIX = mp.PREFIX
PER_PAGE = 20


def _mine(order_no: str, member_id: int) -> Order:
    order = queries.order_by_no(order_no)
    if order is None or order.member_id != member_id:
        raise NotFound(gettext("Not found."))
    return order


def _order_out(order: Order) -> OrderOut:
    view = aftersale.member_view(order)
    s = view["s"]
    return OrderOut(
        order_no=order.order_no,
        status=order.status,
        refund_state=order.refund_state,
        channel=order.channel,
        fulfilment=order.fulfilment,
        goods_fen=order.goods_fen,
        discount_fen=order.discount_fen,
        points_used=order.points_used,
        points_fen=order.points_fen,
        shipping_fen=order.shipping_fen,
        pay_fen=order.pay_fen,
        refunded_fen=order.refunded_fen,
        points_earned=order.points_earned,
        carrier=order.carrier,
        tracking_no=order.tracking_no,
        pickup_code=order.pickup_code if order.status == "ready" else None,
        pickup_store=s.store.name if s.store and order.fulfilment == "pickup" else None,
        created_at=order.created_at,
        paid_at=order.paid_at,
        lines=[
            LineOut(
                line_id=v["line"].id,
                name=v["line"].name,
                spec=v["line"].spec_text,
                unit_price_fen=v["line"].unit_price_fen,
                quantity=v["line"].quantity,
                goods_fen=v["line"].goods_fen,
                discount_fen=v["line"].discount_fen,
                points_fen=v["line"].points_fen,
                pay_fen=v["line"].pay_fen,
                refunded_fen=v["line"].refunded_fen,
                refunded_qty=v["line"].refunded_qty,
                refundable_fen=v["fen_left"],
                refundable_qty=v["units_left"],
                may_request=v["requestable"],
            )
            for v in view["lines"]
        ],
        after_sales=[_after_sale_out(a, als) for a, als in s.after_sales],
        refunds=[
            RefundOut(
                out_refund_no=r.out_refund_no,
                amount_fen=r.amount_fen,
                status=r.status,
                points_returned=r.points_returned,
                paid_twice=r.payment_id is not None,
            )
            for r, _rls in s.refunds
        ],
    )


def _after_sale_out(a: AfterSale, als) -> AfterSaleOut:
    return AfterSaleOut(
        request_no=a.request_no,
        kind=a.kind,
        status=a.status,
        reason=a.reason,
        amount_fen=a.amount_fen,
        refuse_reason=a.refuse_reason,
        return_tracking_no=a.return_tracking_no,
        lines=[
            AfterSaleLineOut(
                line_id=al.order_line_id, quantity=al.quantity, amount_fen=al.amount_fen
            )
            for al in als
        ],
    )


@bp.get("/shop/orders")
@api_operation(
    "mp", "get", f"{PREFIX}/shop/orders", summary="The member's orders, newest first",
    query=OrdersQuery, response=OrderList, errors=(403,),
)  # fmt: skip
def orders(query: OrdersQuery):
    member_id = mp.current_member().id
    page = keyset_page(
        queries.member_orders(member_id=member_id),
        order=newest_first(Order.id),
        per_page=PER_PAGE,
        after=query.after,
        count=False,
    )
    return OrderList(
        items=[
            OrderSummary(
                order_no=o.order_no,
                status=o.status,
                refund_state=o.refund_state,
                channel=o.channel,
                pay_fen=o.pay_fen,
                created_at=o.created_at,
            )
            for o in page.items
        ],
        next_after=page.older,
    )


@bp.get("/shop/orders/<order_no>")
@api_operation(
    "mp", "get", f"{PREFIX}/shop/orders/{{order_no}}",
    summary="One of the member's orders: lines with their shares, pick-up code, after-sales",
    response=OrderOut, errors=(403,),
)  # fmt: skip
def order(order_no: str):
    return _order_out(_mine(order_no, mp.current_member().id))


@bp.post("/shop/orders/<order_no>/receive")
@api_operation(
    "mp", "post", f"{PREFIX}/shop/orders/{{order_no}}/receive",
    summary="Confirm that a shipped order arrived", response=OrderOut, errors=(403, 409),
)  # fmt: skip
def receive(order_no: str):
    member_id = mp.current_member().id
    o = _mine(order_no, member_id)
    fulfilment.confirm_receipt(order_id=o.id, member_id=member_id)
    out = _order_out(o)
    db.session.commit()
    return out


@bp.post("/shop/orders/<order_no>/after-sales")
@api_operation(
    "mp", "post", f"{PREFIX}/shop/orders/{{order_no}}/after-sales",
    summary="Ask for a refund (or a return and refund) of lines of the order",
    body=AfterSaleRequest, response=AfterSaleOut, status=201, errors=(403, 409),
)  # fmt: skip
def request_after_sale(order_no: str, body: AfterSaleRequest):
    member_id = mp.current_member().id
    o = _mine(order_no, member_id)
    req = aftersale.request(
        order_id=o.id,
        member_id=member_id,
        kind=body.kind,
        reason=body.reason,
        items=[
            refunds.Item(order_line_id=i.line_id, quantity=i.quantity, amount_fen=i.amount_fen)
            for i in body.lines
        ],
    )
    out = _after_sale_out(req, _lines_of(req))
    db.session.commit()
    return out, 201


def _lines_of(req: AfterSale):
    from sqlalchemy import select

    from shop.models import AfterSaleLine

    return list(
        db.session.scalars(select(AfterSaleLine).where(AfterSaleLine.after_sale_id == req.id))
    )


def _my_request(request_no: str, member_id: int) -> AfterSale:
    from sqlalchemy import select

    req = db.session.execute(
        select(AfterSale).where(AfterSale.request_no == request_no[:32])
    ).scalar_one_or_none()
    if req is None or req.member_id != member_id:
        raise NotFound(gettext("Not found."))
    return req


@bp.post("/shop/after-sales/<request_no>/cancel")
@api_operation(
    "mp", "post", f"{PREFIX}/shop/after-sales/{{request_no}}/cancel",
    summary="Withdraw an after-sale request not yet being refunded",
    response=AfterSaleOut, errors=(403, 409),
)  # fmt: skip
def cancel(request_no: str):
    member_id = mp.current_member().id
    req = aftersale.cancel(after_sale_id=_my_request(request_no, member_id).id, member_id=member_id)
    out = _after_sale_out(req, _lines_of(req))
    db.session.commit()
    return out


@bp.post("/shop/after-sales/<request_no>/tracking")
@api_operation(
    "mp", "post", f"{PREFIX}/shop/after-sales/{{request_no}}/tracking",
    summary="Tell the shop the tracking number of the returned goods",
    body=TrackingRequest, response=AfterSaleOut, errors=(403, 409),
)  # fmt: skip
def tracking(request_no: str, body: TrackingRequest):
    member_id = mp.current_member().id
    req = aftersale.set_return_tracking(
        after_sale_id=_my_request(request_no, member_id).id,
        member_id=member_id,
        tracking_no=body.return_tracking_no,
    )
    out = _after_sale_out(req, _lines_of(req))
    db.session.commit()
    return out


def init_app(app: Flask) -> None:
    mp.init_app(app, bp)
