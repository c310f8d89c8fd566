"""Console pages: coupon templates, issuing, partner codes, the redemption log, POS keys,
the points mall and the reports."""

from __future__ import annotations

import datetime as dt
import uuid

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from core.auth import roles_required
from core.console import form_error, nav_item
from core.db import db
from core.errors import AppError
from core.tenancy import get_or_404
from coupons import issuance, pos_api, queries
from coupons.forms import (
    KIND_LABELS,
    ImportForm,
    IssueForm,
    MallItemForm,
    PosKeyForm,
    TemplateForm,
    parse_ids,
)
from coupons.models import CouponTemplate, MallItem, PosKey
from org.models import Brand, Store

bp = Blueprint("coupons_console", __name__, url_prefix="/console/coupons")
ADMIN = ("brand_admin",)
MANAGERS = ("brand_admin", "store_manager")
nav_item("coupons_console.templates", _l("Coupons"), roles=ADMIN, order=61)
nav_item("coupons_console.redemptions", _l("Redemption log"), roles=MANAGERS, order=62)
nav_item("coupons_console.mall_items", _l("Points mall"), roles=ADMIN, order=63)
nav_item("coupons_console.pos_keys", _l("POS API keys"), roles=ADMIN, order=64)
nav_item("coupons_console.report", _l("Coupon report"), roles=ADMIN, order=65)


@bp.app_context_processor
def _globals():
    return {"coupon_kind_label": lambda k: KIND_LABELS.get(k, k)}


def _tz():
    return db.session.get(Brand, g.brand_id).tz


def _to_utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=_tz()).astimezone(dt.UTC) if value else None


def _to_local(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(_tz()).replace(tzinfo=None) if value else None


@bp.get("/templates")
@roles_required(*ADMIN)
def templates():
    rows = db.session.execute(select(CouponTemplate).order_by(CouponTemplate.id.desc())).scalars()
    return render_template("coupons/console/templates.html", rows=list(rows))


@bp.route("/templates/new", methods=["GET", "POST"])
@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
@roles_required(*ADMIN)
def template_edit(template_id: int | None = None):
    tpl = get_or_404(CouponTemplate, template_id) if template_id else None
    form = TemplateForm(obj=tpl)
    if request.method == "GET" and tpl is not None:
        form.value.data = f"{tpl.value_fen / 100:.2f}"
        form.threshold.data = f"{tpl.threshold_fen / 100:.2f}"
        form.cap.data = f"{tpl.cap_fen / 100:.2f}"
        form.valid_from.data = _to_local(tpl.valid_from)
        form.valid_until.data = _to_local(tpl.valid_until)
        form.store_ids.data = ",".join(str(i) for i in tpl.store_ids or [])
        form.categories.data = ",".join(tpl.categories or [])
        form.product_ids.data = ",".join(str(i) for i in tpl.product_ids or [])
    status = 200
    if form.validate_on_submit():
        tpl = tpl or CouponTemplate()
        for name in ("name", "kind", "percent_off", "gift_name", "valid_days", "stock"):
            setattr(tpl, name, getattr(form, name).data)
        for name in ("per_member_limit", "per_day_limit"):
            setattr(tpl, name, getattr(form, name).data or 0)
        for name in ("stackable", "shareable", "active"):
            setattr(tpl, name, bool(getattr(form, name).data))
        tpl.description = form.description.data or ""
        tpl.value_fen, tpl.threshold_fen, tpl.cap_fen = (
            form.value.fen,
            form.threshold.fen,
            form.cap.fen,
        )
        tpl.valid_from = _to_utc(form.valid_from.data)
        tpl.valid_until = None if form.valid_days.data else _to_utc(form.valid_until.data)
        tpl.store_ids = parse_ids(form.store_ids.data)
        tpl.categories = [c.strip() for c in (form.categories.data or "").split(",") if c.strip()]
        tpl.product_ids = [p.strip() for p in (form.product_ids.data or "").split(",") if p.strip()]
        if tpl.stock is not None and tpl.stock < (tpl.issued or 0):
            form.stock.errors.append(_l("Stock cannot be below what was already issued."))
            status = 400
        else:
            db.session.add(tpl)
            db.session.commit()
            flash(_l("Saved."), "success")
            return redirect(url_for(".templates"))
    elif request.method == "POST":
        status = 400
    return render_template("coupons/console/template_form.html", form=form, tpl=tpl), status


@bp.route("/templates/<int:template_id>/issue", methods=["GET", "POST"])
@roles_required(*ADMIN)
def issue(template_id: int):
    tpl = get_or_404(CouponTemplate, template_id)
    form = IssueForm()
    status = 200
    reach = None
    if request.method == "GET":
        form.request_key.data = uuid.uuid4().hex
    elif form.validate_on_submit():
        try:
            target = form.target()
            if request.form.get("preview"):
                reach = issuance.count_target(target=target)
            else:
                batch = issuance.bulk_issue(
                    template_id=tpl.id, target=target, idempotency_key=form.request_key.data
                )
                db.session.commit()
                flash(_l("%(n)d coupons issued.", n=batch.issued), "success")
                return redirect(url_for(".templates"))
        except (AppError, ValueError) as exc:
            db.session.rollback()
            flash(getattr(exc, "message", str(exc)), "error")
            status = getattr(exc, "status", 400)
    else:
        status = 400
    return render_template("coupons/console/issue.html", form=form, tpl=tpl, reach=reach), status


@bp.route("/templates/<int:template_id>/codes", methods=["GET", "POST"])
@roles_required(*ADMIN)
def import_codes(template_id: int):
    tpl = get_or_404(CouponTemplate, template_id)
    form = ImportForm()
    status = 200
    if form.validate_on_submit():
        raw = form.file.data.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("gb18030", errors="replace")
        try:
            n = issuance.import_partner_codes(
                template_id=tpl.id, lines=text.splitlines(), idempotency_key=f"file:{hash(raw)}"
            )
            db.session.commit()
            flash(_l("%(n)d codes added.", n=n), "success")
            return redirect(url_for(".templates"))
        except AppError as exc:
            db.session.rollback()
            form_error(form, exc)
            status = exc.status
    elif request.method == "POST":
        status = 400
    return render_template("coupons/console/import.html", form=form, tpl=tpl), status


@bp.get("/redemptions")
@roles_required(*MANAGERS)
def redemptions():
    scope = (
        None
        if current_user.is_platform_admin or current_user.role == "brand_admin"
        else current_user.store_id
    )
    store_id = scope or request.args.get("store_id", type=int)
    stores = db.session.execute(select(Store).order_by(Store.code)).scalars().all()
    rows = queries.redemption_log(store_id=store_id)
    return render_template(
        "coupons/console/redemptions.html",
        rows=rows,
        stores=stores,
        store_id=store_id,
        scoped=scope,
    )


@bp.route("/pos-keys", methods=["GET", "POST"])
@roles_required(*ADMIN)
def pos_keys():
    form = PosKeyForm()
    stores = db.session.execute(select(Store).order_by(Store.code)).scalars().all()
    form.store_id.choices = [(s.id, f"{s.code} {s.name}") for s in stores]
    new_key = None
    status = 200
    if form.validate_on_submit():
        if request.form.get("revoke", type=int):
            pos_api.revoke_key(key_id=request.form.get("revoke", type=int))
            db.session.commit()
            flash(_l("Key revoked."), "success")
            return redirect(url_for(".pos_keys"))
        _row, new_key = pos_api.create_key(store_id=form.store_id.data, label=form.label.data)
        db.session.commit()
    elif request.method == "POST":
        status = 400
    keys = db.session.execute(
        select(PosKey, Store).join(Store, Store.id == PosKey.store_id).order_by(PosKey.id.desc())
    ).all()
    return render_template(
        "coupons/console/pos_keys.html", form=form, keys=keys, new_key=new_key
    ), status


@bp.get("/mall")
@roles_required(*ADMIN)
def mall_items():
    rows = db.session.execute(
        select(MallItem, CouponTemplate.name)
        .join(CouponTemplate, CouponTemplate.id == MallItem.template_id)
        .order_by(MallItem.sort, MallItem.id)
    ).all()
    return render_template("coupons/console/mall.html", rows=rows)


@bp.route("/mall/new", methods=["GET", "POST"])
@bp.route("/mall/<int:item_id>", methods=["GET", "POST"])
@roles_required(*ADMIN)
def mall_item_edit(item_id: int | None = None):
    item = get_or_404(MallItem, item_id) if item_id else None
    form = MallItemForm(obj=item)
    tpls = (
        db.session.execute(
            select(CouponTemplate)
            .where(CouponTemplate.active.is_(True))
            .order_by(CouponTemplate.name)
        )
        .scalars()
        .all()
    )
    form.template_id.choices = [(t.id, t.name) for t in tpls]
    if request.method == "GET" and item is not None:
        form.tier_ids.data = ",".join(str(t) for t in item.tier_ids or [])
    status = 200
    if form.validate_on_submit():
        item = item or MallItem()
        item.template_id = form.template_id.data
        item.title = form.title.data
        item.price_points = form.price_points.data
        item.stock = form.stock.data
        item.per_member_limit = form.per_member_limit.data or 0
        item.tier_ids = parse_ids(form.tier_ids.data)
        item.active = bool(form.active.data)
        if item.stock is not None and item.stock < (item.sold or 0):
            form.stock.errors.append(_l("Stock cannot be below what was already exchanged."))
            status = 400
        else:
            db.session.add(item)
            db.session.commit()
            flash(_l("Saved."), "success")
            return redirect(url_for(".mall_items"))
    elif request.method == "POST":
        status = 400
    return render_template("coupons/console/mall_form.html", form=form, item=item), status


@bp.get("/report")
@roles_required(*ADMIN)
def report():
    per_template = queries.template_report()
    per_store = queries.store_report()
    if request.args.get("format") == "json":
        return {"templates": per_template, "stores": per_store}
    return render_template(
        "coupons/console/report.html", per_template=per_template, per_store=per_store
    )
