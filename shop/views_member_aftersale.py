"""Member pages of orders (H5, phone first): my orders, an order's detail with its pick-up
code (QR and digits), confirm receipt, an after-sale request per line and its status.

The member comes from the members package's session; an order of another member (or of
another brand) answers 404.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm

from core.db import db
from core.errors import AppError
from core.paging import newest_first, page_from_request
from coupons.queries import qr_svg
from members.center import member_blueprint, require_member
from shop import aftersale, fulfilment, queries, refunds
from shop.models import AS_APPROVED, AS_REQUESTED, RETURN_REFUND, AfterSale, Order

bp = member_blueprint(Blueprint("shop_member_aftersale", __name__, url_prefix="/m/<brand_slug>"))
PER_PAGE = 20


class ActionForm(FlaskForm):
    pass


def _my_order(order_no: str, member_id: int) -> Order:
    order = queries.order_by_no(order_no)
    if order is None or order.member_id != member_id:
        abort(404)
    return order


@bp.get("/shop/orders")
def orders():
    member_id = require_member()
    page = page_from_request(
        queries.member_orders(member_id=member_id),
        order=newest_first(Order.id),
        per_page=PER_PAGE,
        count=False,
    )
    return render_template("shop/member/orders.html", page=page)


@bp.get("/shop/orders/<order_no>")
def order(order_no: str):
    member_id = require_member()
    o = _my_order(order_no, member_id)
    view = aftersale.member_view(o)
    return render_template(
        "shop/member/order.html",
        o=o,
        qr=qr_svg(o.pickup_code) if o.status == "ready" and o.pickup_code else None,
        form=ActionForm(),
        **view,
    )


def _act(o: Order, work, saved) -> object:
    """A member's action on the order page: the form's token checked, one service call,
    the commit, a message (``saved(result)``, or the refusal's), and back to the order."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        result = work()
        db.session.commit()
        flash(saved(result), "success")
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for(".order", order_no=o.order_no), 303)


@bp.post("/shop/orders/<order_no>/receive")
def receive(order_no: str):
    member_id = require_member()
    o = _my_order(order_no, member_id)
    return _act(
        o,
        lambda: fulfilment.confirm_receipt(order_id=o.id, member_id=member_id),
        lambda _o: _l("Thank you: receipt confirmed."),
    )


def _whole(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and len(raw) <= 6 else None


@bp.post("/shop/orders/<order_no>/after-sale")
def request_after_sale(order_no: str):
    member_id = require_member()
    o = _my_order(order_no, member_id)

    def work() -> AfterSale:
        line_id = _whole(request.form.get("line_id"))
        quantity = _whole(request.form.get("quantity"))
        if line_id is None:
            raise AppError(_l("Choose what to refund."), field="lines")
        if quantity is None:
            raise AppError(_l("Enter a whole number of at least %(n)d.", n=0), field="quantity")
        return aftersale.request(
            order_id=o.id,
            member_id=member_id,
            kind=request.form.get("kind", ""),
            items=[refunds.Item(order_line_id=line_id, quantity=quantity)],
            reason=request.form.get("reason", ""),
        )

    return _act(
        o,
        work,
        lambda req: _l("Request %(no)s sent. The shop will answer soon.", no=req.request_no),
    )


def _my_request(request_no: str, member_id: int) -> AfterSale:
    from sqlalchemy import select

    req = db.session.execute(
        select(AfterSale).where(AfterSale.request_no == (request_no or "")[:32])
    ).scalar_one_or_none()
    if req is None or req.member_id != member_id:
        abort(404)
    return req


@bp.post("/shop/after-sales/<request_no>/cancel")
def cancel(request_no: str):
    member_id = require_member()
    req = _my_request(request_no, member_id)
    o = db.session.get(Order, req.order_id)
    return _act(
        o,
        lambda: aftersale.cancel(after_sale_id=req.id, member_id=member_id),
        lambda _r: _l("Request withdrawn."),
    )


@bp.post("/shop/after-sales/<request_no>/tracking")
def tracking(request_no: str):
    member_id = require_member()
    req = _my_request(request_no, member_id)
    o = db.session.get(Order, req.order_id)
    return _act(
        o,
        lambda: aftersale.set_return_tracking(
            after_sale_id=req.id,
            member_id=member_id,
            tracking_no=request.form.get("return_tracking_no", ""),
        ),
        lambda _r: _l("Tracking number saved."),
    )


@bp.context_processor
def _after_sale_states():
    return {"AS_OPEN_MEMBER": (AS_REQUESTED, AS_APPROVED), "AS_RETURN": RETURN_REFUND}
