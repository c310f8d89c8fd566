"""The member's cart, checkout and pay pages (H5 in the official account, phone first).

``POST /m/<slug>/shop/cart`` (``sku_id``, ``quantity``; ``buy_now=1`` goes straight to the
checkout with that SKU), ``GET /m/<slug>/shop/cart``, ``GET|POST /m/<slug>/shop/checkout``,
``GET /m/<slug>/shop/orders/<order_no>/pay``. The order detail and list are the after-sale
part's pages (``/m/<slug>/shop/orders/<order_no>``).
"""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm

from core.db import db
from core.errors import AppError
from coupons import queries as coupon_queries
from members.center import member_blueprint, require_member
from members.models import Member
from org.services import list_stores
from points import queries as points_queries
from shop import cart, checkout, payments, pricing
from shop import settings as shop_settings
from shop.models import CREATED, DELIVERY, H5, PICKUP

FLASH_REFUSALS = ("sold_out", "limit_reached", "flash_closed")
bp = member_blueprint(Blueprint("shop_member_orders", __name__, url_prefix="/m/<brand_slug>"))


class ActionForm(FlaskForm):
    pass


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _check_form() -> None:
    if not ActionForm().validate_on_submit():
        abort(400)


def order_url(order_no: str) -> str:
    """The after-sale part's order page (a plain path: that blueprint may not be loaded)."""
    return f"/m/{g.brand.slug}/shop/orders/{order_no}"


@bp.post("/shop/cart")
def add():
    member_id = require_member()
    _check_form()
    sku_id = _int(request.form.get("sku_id"))
    quantity = _int(request.form.get("quantity"), 0)
    if request.form.get("buy_now") == "1":
        if sku_id is None:
            abort(404)
        flash_sale_id = _int(request.form.get("flash_sale_id"))
        return redirect(
            url_for(
                ".checkout_page", sku_id=sku_id, quantity=quantity, flash_sale_id=flash_sale_id
            ),
            303,
        )
    try:
        cart.add(member_id=member_id, sku_id=sku_id, quantity=quantity)
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(request.referrer or url_for(".cart_page"), 303)
    db.session.commit()
    flash(_l("Added to the cart."), "success")
    return redirect(url_for(".cart_page"), 303)


@bp.get("/shop/cart")
def cart_page():
    member_id = require_member()
    lines = cart.lines(member_id=member_id)
    total = sum(line.amount_fen for line in lines if line.buyable)
    return render_template(
        "shop/member/cart.html", lines=lines, total=total, form=ActionForm(), yuan=pricing.yuan
    )


@bp.post("/shop/cart/<int:sku_id>")
def set_quantity(sku_id: int):
    member_id = require_member()
    _check_form()
    try:
        if request.form.get("remove") == "1":
            cart.remove(member_id=member_id, sku_ids=[sku_id])
        else:
            cart.update(
                member_id=member_id, sku_id=sku_id, quantity=_int(request.form.get("quantity"), 0)
            )
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for(".cart_page"), 303)
    db.session.commit()
    return redirect(url_for(".cart_page"), 303)


def _wanted(member_id: int, source) -> tuple[list[pricing.Item], bool, dict]:
    """What is being bought: one SKU (buy now) or the cart's buyable lines; the prices the
    page showed come back with the form and are checked."""
    sku_id = _int(source.get("sku_id"))
    if sku_id is not None:
        seen = _int(source.get(f"price_{sku_id}"))
        flash_sale_id = _int(source.get("flash_sale_id"))
        quantity = _int(source.get("quantity"), 0)
        return [pricing.Item(sku_id, quantity, seen, flash_sale_id)], False, {}
    lines = [line for line in cart.lines(member_id=member_id) if line.buyable]
    changed = {line.sku_id: line for line in lines if line.price_changed}
    items = [
        pricing.Item(line.sku_id, line.quantity, _int(source.get(f"price_{line.sku_id}")))
        for line in lines
    ]
    return items, True, changed


def _address(source) -> dict:
    return {
        name: (source.get(f"address_{name}") or "").strip()
        for name in ("name", "phone", "province", "city", "district", "detail")
    }


def _render_checkout(member_id: int, source, *, error=None, status=200):
    items, from_cart, changed = _wanted(member_id, source)
    fulfilment = source.get("fulfilment") or DELIVERY
    address = _address(source)
    store_id = _int(source.get("store_id"))
    quote = None
    quote_error = None
    if items:
        try:
            quote = pricing.quote(
                member_id=member_id,
                items=[pricing.Item(i.sku_id, i.quantity, None, i.flash_sale_id) for i in items],
                coupons=[c for c in [source.get("coupon")] if c],
                points=_int(source.get("points"), 0) or 0,
                fulfilment=fulfilment if fulfilment in (DELIVERY, PICKUP) else DELIVERY,
                province=address.get("province") or None,
                store_id=store_id
                if fulfilment == PICKUP
                else db.session.get(Member, member_id).store_id,
            )
        except AppError as exc:
            quote_error = exc.message
            db.session.rollback()
            try:  # the figures without the coupon and points that were refused
                quote = pricing.quote(
                    member_id=member_id,
                    items=[pricing.Item(i.sku_id, i.quantity) for i in items],
                    fulfilment=DELIVERY,
                )
            except AppError:
                db.session.rollback()
                quote = None
    settings = shop_settings.get_settings()
    return (
        render_template(
            "shop/member/checkout.html",
            quote=quote,
            error=error or quote_error,
            changed=changed,
            from_cart=from_cart,
            buy_now=None if from_cart else items[0],
            coupons=coupon_queries.member_coupons(member_id=member_id, tab="available"),
            balance=points_queries.available_points(member_id),
            settings=settings,
            stores=list_stores(active_only=True) if settings.allow_pickup else [],
            values=source,
            address=address,
            fulfilment=fulfilment,
            request_key=source.get("request_key") or uuid.uuid4().hex,
            form=ActionForm(),
            yuan=pricing.yuan,
        ),
        status,
    )


@bp.route("/shop/checkout", methods=["GET", "POST"])
def checkout_page():
    member_id = require_member()
    if request.method == "GET":
        return _render_checkout(member_id, request.args)
    _check_form()
    form = request.form
    if form.get("preview") == "1":  # recalculate with the coupon, points and address chosen
        return _render_checkout(member_id, form)
    items, from_cart, _changed = _wanted(member_id, form)
    fulfilment = form.get("fulfilment") or DELIVERY
    try:
        placed = checkout.checkout(
            member_id=member_id,
            items=items,
            channel=H5,
            idempotency_key=form.get("request_key") or "",
            coupons=[c for c in [form.get("coupon")] if c],
            points=_int(form.get("points"), 0) or 0,
            fulfilment=fulfilment,
            address=_address(form) if fulfilment == DELIVERY else None,
            pickup_store_id=_int(form.get("store_id")),
            note=form.get("note") or "",
            from_cart=from_cart,
        )
    except AppError as exc:
        db.session.rollback()
        if exc.code in FLASH_REFUSALS:  # a short page: thousands may be refused at once
            page = render_template(
                "shop/member/sold_out.html", message=exc.message, shop_url=f"/m/{g.brand.slug}/shop"
            )
            return page, exc.status
        return _render_checkout(member_id, form, error=exc.message, status=exc.status)
    order_no = placed.order.order_no
    status = placed.order.status
    db.session.commit()
    if status != CREATED:  # nothing to pay: coupons and points covered it
        return redirect(order_url(order_no), 303)
    return redirect(url_for(".pay_page", order_no=order_no), 303)


@bp.get("/shop/orders/<order_no>/pay")
def pay_page(order_no: str):
    member_id = require_member()
    order = checkout.order_of_member(order_no=order_no, member_id=member_id)
    if order.status != CREATED:
        return redirect(order_url(order.order_no))
    return render_template(
        "shop/member/pay.html",
        order=order,
        order_page=order_url(order.order_no),
        form=ActionForm(),
        yuan=pricing.yuan,
    )


@bp.post("/shop/orders/<order_no>/pay")
def start_pay(order_no: str):
    """The pay button: WeChat Pay's parameters for WeixinJSBridge (JSON)."""
    member_id = require_member()
    _check_form()
    from shop.api_orders import notify_url

    payment, params = payments.start_payment(
        order_no=order_no, member_id=member_id, mini_program=False, notify_url=notify_url()
    )
    db.session.commit()
    return jsonify({"out_trade_no": payment.out_trade_no, "params": params})


@bp.post("/shop/orders/<order_no>/pay/check")
def check_pay(order_no: str):
    member_id = require_member()
    _check_form()
    order = payments.refresh(order_no=order_no, member_id=member_id)
    status = order.status
    db.session.commit()
    return jsonify({"status": status, "next": order_url(order_no)})


@bp.post("/shop/orders/<order_no>/cancel")
def cancel(order_no: str):
    member_id = require_member()
    _check_form()
    try:
        checkout.cancel(order_no=order_no, member_id=member_id)
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for(".pay_page", order_no=order_no), 303)
    db.session.commit()
    flash(_l("The order was cancelled."), "success")
    return redirect(url_for(".cart_page"), 303)
