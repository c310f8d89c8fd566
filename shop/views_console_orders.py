"""Console pages of orders: the list (search by number, phone, store; filters by state and
channel), an order's detail with its fulfilment actions and its payment, refund, notify and
after-sale history, the after-sale queue, the pick-up code check (the redemption page's
pattern) and the reconciliation against WeChat Pay's bill.

A store manager sees the orders of their own store only (any other order answers 404);
brand admins see all.
"""

from __future__ import annotations

import datetime as dt
import re

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core.auth import roles_required
from core.console import form_error, nav_item
from core.db import db
from core.errors import AppError
from core.labels import has_label, label
from core.paging import newest_first, page_from_request
from core.tenancy import get_or_404
from core.validators import mask_phone
from org.services import list_stores
from shop import aftersale, fulfilment, queries, reconcile
from shop.forms_orders import ActionForm, PickupForm, RefuseForm, ShipForm
from shop.models import CHANNELS, ORDER_STATES, AfterSale, Order

bp = Blueprint("shop_orders", __name__, url_prefix="/console/shop")
ADMIN = ("brand_admin",)
MANAGERS = ("brand_admin", "store_manager")
STAFF = ("guide", "store_manager", "brand_admin")
PER_PAGE = 30
nav_item("shop_orders.orders", _l("Orders"), group="shop", roles=MANAGERS, order=20)
nav_item("shop_orders.after_sales", _l("After-sale"), group="shop", roles=MANAGERS, order=22)
nav_item("shop_orders.pickup", _l("Pick-up check"), group="shop", roles=STAFF, order=24)
nav_item("shop_orders.reconciliation", _l("Reconciliation"), group="shop", roles=ADMIN, order=28)


def recon_text(value: str | None) -> str:
    """A reconciliation side ("<state> <fen> [<refund number>]") in words."""
    parts = (value or "").split()
    if not parts:
        return ""
    out = [label(parts[0], "shop_recon_state")]
    if len(parts) > 1 and parts[1].lstrip("-").isdigit():
        out.append(f"¥{int(parts[1]) / 100:.2f}")
    out.extend(parts[2:])
    return " ".join(out)


def notify_text(value: str | None) -> str:
    """A notify's outcome ("applied", "refused:amount") in words."""
    return "：".join(label(p, "shop_notify_outcome") for p in (value or "").split(":"))


_FAILED_WHY = re.compile(r"\s*\[([^\]]*)\]$")


def refund_reason(refund) -> str:
    """A refund's reason in words: the one given, the return of a second payment, and why it
    failed (``refunds.fail`` keeps that code in brackets at the end)."""
    reason, why = refund.reason or "", ""
    found = _FAILED_WHY.search(reason)
    if found:
        reason = reason[: found.start()]
        kind, _, detail = found.group(1).partition(":")
        why = label(kind, "shop_refund_failure")
        if detail and has_label(detail, "shop_refund_failure"):
            why += f"（{label(detail, 'shop_refund_failure')}）"
    if not reason.strip() and refund.payment_id is not None:
        reason = str(_l("Paid twice: the second payment is returned whole"))
    return "；".join(part for part in (reason.strip(), why) if part)


@bp.context_processor
def _helpers():
    return {
        "mask_phone": mask_phone,
        "recon_text": recon_text,
        "notify_text": notify_text,
        "refund_reason": refund_reason,
    }


def _scope() -> int | None:
    """The store whose orders this user may see (None: the whole brand)."""
    if current_user.is_platform_admin or current_user.role == "brand_admin":
        return None
    return current_user.store_id or -1  # a manager without a store sees nothing


def _operator() -> str:
    return f"{current_user.name}" if hasattr(current_user, "name") else str(current_user.get_id())


def _order(order_id: int) -> Order:
    order = get_or_404(Order, order_id)
    scope = _scope()
    if scope is not None and order.store_id != scope:
        abort(404)
    return order


@bp.get("/orders")
@roles_required(*MANAGERS)
def orders():
    scope = _scope()
    q = request.args.get("q", "").strip()[:64]
    status = request.args.get("status") or None
    channel = request.args.get("channel") or None
    store_id = scope or request.args.get("store_id", type=int)
    page = page_from_request(
        queries.orders(q=q, status=status, channel=channel, store_id=store_id),
        order=newest_first(Order.id),
        per_page=PER_PAGE,
    )
    return render_template(
        "shop/console/orders.html",
        page=page,
        q=q,
        status=status,
        channel=channel,
        store_id=store_id,
        scoped=scope,
        stores=[] if scope else list_stores(),
        states=ORDER_STATES,
        channels=CHANNELS,
    )


def _detail(order: Order, *, ship_form=None, status: int = 200):
    return render_template(
        "shop/console/order.html",
        s=queries.story(order),
        ship_form=ship_form or ShipForm(),
        form=ActionForm(),
    ), status


@bp.get("/orders/<int:order_id>")
@roles_required(*MANAGERS)
def order(order_id: int):
    return _detail(_order(order_id))


@bp.post("/orders/<int:order_id>/ship")
@roles_required(*MANAGERS)
def ship(order_id: int):
    o = _order(order_id)
    form = ShipForm()
    if not form.validate_on_submit():
        return _detail(o, ship_form=form, status=400)
    try:
        fulfilment.ship(order_id=o.id, carrier=form.carrier.data, tracking_no=form.tracking_no.data)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        form_error(form, exc)
        return _detail(_order(order_id), ship_form=form, status=exc.status)
    flash(_l("Shipped."), "success")
    return redirect(url_for(".order", order_id=o.id), 303)


def _act(order_id: int, action, done_message):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        action()
        db.session.commit()
        flash(done_message, "success")
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for(".order", order_id=order_id), 303)


@bp.post("/orders/<int:order_id>/ready")
@roles_required(*MANAGERS)
def ready(order_id: int):
    o = _order(order_id)
    return _act(
        o.id,
        lambda: fulfilment.mark_ready(order_id=o.id),
        _l("Ready for pick-up: the member sees the pick-up code."),
    )


@bp.get("/after-sales")
@roles_required(*MANAGERS)
def after_sales():
    tab = request.args.get("tab", "open")
    if tab not in queries.QUEUE_TABS:
        tab = "open"
    page = page_from_request(
        queries.after_sale_queue(tab=tab, store_id=_scope()),
        order=newest_first(AfterSale.id),
        per_page=PER_PAGE,
    )
    lines = queries.after_sale_lines([row[0].id for row in page.items])
    return render_template(
        "shop/console/after_sales.html",
        page=page,
        tab=tab,
        tabs=list(queries.QUEUE_TABS),
        lines=lines,
        form=ActionForm(),
        refuse_form=RefuseForm(),
    )


def _request(after_sale_id: int) -> AfterSale:
    req = get_or_404(AfterSale, after_sale_id)
    _order(req.order_id)  # a store manager's own store only
    return req


def _back() -> str:
    nxt = request.form.get("next", "")
    if nxt.startswith("/console/shop/") and "//" not in nxt:
        return nxt
    return url_for(".after_sales")


def _decide(action, done_message):
    try:
        action()
        db.session.commit()
        flash(done_message, "success")
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(_back(), 303)


@bp.post("/after-sales/<int:after_sale_id>/approve")
@roles_required(*MANAGERS)
def approve(after_sale_id: int):
    req = _request(after_sale_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    return _decide(
        lambda: aftersale.approve(after_sale_id=req.id, operator=_operator()),
        _l("Approved. The refund was started.")
        if req.kind == "refund_only"
        else _l("Approved. Refund when the goods are back."),
    )


@bp.post("/after-sales/<int:after_sale_id>/received")
@roles_required(*MANAGERS)
def received(after_sale_id: int):
    req = _request(after_sale_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    return _decide(
        lambda: aftersale.receive_return(after_sale_id=req.id, operator=_operator()),
        _l("The refund was started."),
    )


@bp.post("/after-sales/<int:after_sale_id>/refuse")
@roles_required(*MANAGERS)
def refuse(after_sale_id: int):
    req = _request(after_sale_id)
    form = RefuseForm()
    if not form.validate_on_submit():
        flash(_l("Write the reason the member will read."), "error")
        return redirect(_back(), 303)
    return _decide(
        lambda: aftersale.refuse(
            after_sale_id=req.id, reason=form.refuse_reason.data, operator=_operator()
        ),
        _l("Refused."),
    )


def _store_key() -> str:
    from flask import g

    return f"pickup_store:{g.brand_id}"


@bp.route("/pickup", methods=["GET", "POST"])
@roles_required(*STAFF)
def pickup():
    form = PickupForm()
    own_store = current_user.store_id
    form.store_id.choices = [(s.id, f"{s.code} {s.name}") for s in list_stores(active_only=True)]
    status = 200
    if request.method == "GET":
        remembered = session.get(_store_key())
        if remembered in {value for value, _label in form.store_id.choices}:
            form.store_id.data = remembered
    elif form.validate_on_submit():
        store_id = own_store or form.store_id.data
        try:
            done = fulfilment.verify_pickup(
                code=form.code.data,
                store_id=store_id,
                guess_ident=f"staff:{current_user.get_id()}",
            )
            db.session.commit()
            if not own_store:
                session[_store_key()] = store_id
            flash(_l("Order %(no)s picked up.", no=done.order_no), "success")
            return redirect(url_for(".pickup"), 303)
        except AppError as exc:
            db.session.rollback()
            form_error(form, exc)
            status = exc.status
    else:
        status = 400
    return render_template("shop/console/pickup.html", form=form, own_store=own_store), status


@bp.get("/reconciliation")
@roles_required(*ADMIN)
def reconciliation():
    days = queries.reconciliation_days()
    day = None
    raw = request.args.get("day", "")
    try:
        day = dt.date.fromisoformat(raw) if raw else (days[0][0] if days else None)
    except ValueError:
        day = None
    issues = queries.reconciliation_issues(day=day) if day else []
    return render_template(
        "shop/console/reconciliation.html", days=days, day=day, issues=issues, form=ActionForm()
    )


@bp.post("/reconciliation/<int:issue_id>/resolve")
@roles_required(*ADMIN)
def resolve(issue_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        issue = reconcile.resolve(issue_id=issue_id, operator=_operator())
    except AppError:
        abort(404)
    db.session.commit()
    flash(_l("Marked as resolved."), "success")
    return redirect(url_for(".reconciliation", day=issue.bill_date.isoformat()), 303)
