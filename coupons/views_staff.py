"""The staff redemption page (核销): scan the coupon's QR code with WeChat's JSAPI
``scanQRCode`` inside WeChat, with the camera in any other browser (the vendored jsQR reader,
static/coupons/redeem.js), or type the code. The chosen store is remembered in the session."""

from __future__ import annotations

import uuid

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core.auth import roles_required
from core.console import nav_item
from core.db import db
from core.errors import AppError
from coupons import services
from coupons.forms import RedeemForm
from org.services import list_stores

bp = Blueprint("coupons_staff", __name__, url_prefix="/console/coupons")
ROLES = ("guide", "store_manager", "brand_admin")
nav_item("coupons_staff.redeem", _l("Redeem a coupon"), group="coupons", roles=ROLES, order=60)


def _jsapi_config() -> dict | None:
    """wx.config parameters for this page, or None outside a configured official account."""
    from wechat import gateway

    try:
        return gateway.jsapi_signature(g.brand_id, request.url)
    except Exception:  # noqa: BLE001 - the page still works with typed codes
        return None


def _store_key() -> str:
    return f"redeem_store:{g.brand_id}"


@bp.route("/redeem", methods=["GET", "POST"])
@roles_required(*ROLES)
def redeem():
    form = RedeemForm()
    own_store = current_user.store_id
    form.store_id.choices = [(s.id, f"{s.code} {s.name}") for s in list_stores(active_only=True)]
    status = 200
    result = None
    if request.method == "GET":
        form.request_key.data = uuid.uuid4().hex
        remembered = session.get(_store_key())
        if remembered in {value for value, _label in form.store_id.choices}:
            form.store_id.data = remembered
    elif form.validate_on_submit():
        store_id = own_store or form.store_id.data
        try:
            if not store_id:
                raise AppError(_l("Choose a store."), field="store_id")
            result = services.redeem(
                code=form.code.data,
                store_id=store_id,
                order_id=form.order_id.data,
                order_amount_fen=form.amount.fen,
                idempotency_key=f"staff:{current_user.id}:{form.request_key.data}",
                channel="staff",
                staff_id=None if current_user.is_platform_admin else current_user.id,
                guess_ident=f"staff:{current_user.get_id()}",
            )
            db.session.commit()
            if not own_store:
                session[_store_key()] = store_id
            flash(_l("Redeemed. Discount: ¥%(y)s", y=f"{result.discount_fen / 100:.2f}"), "success")
            return redirect(url_for(".redeem"), 303)
        except AppError as exc:
            db.session.rollback()
            form.code.errors = list(form.code.errors) + [exc.message]
            status = exc.status
    else:
        status = 400
    return render_template(
        "coupons/console/redeem.html",
        form=form,
        own_store=own_store,
        wx_config=_jsapi_config() if request.method == "GET" else None,
    ), status
