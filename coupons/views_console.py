"""Console pages: coupon templates, issuing, partner codes, the redemption log, POS keys,
the points mall and the reports."""

from __future__ import annotations

import hashlib
import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core import charts
from core.auth import roles_required
from core.console import nav_item, save_form
from core.db import db
from core.labels import label
from core.paging import newest_first, page_from_request
from core.tenancy import get_or_404
from coupons import queries, services
from coupons.forms import ImportForm, IssueForm, MallItemForm, PosKeyForm, TemplateForm
from coupons.issuance import brand_tz
from coupons.models import CouponTemplate, MallItem, Redemption
from org.services import list_stores

bp = Blueprint("coupons_console", __name__, url_prefix="/console/coupons")
ADMIN = ("brand_admin",)
MANAGERS = ("brand_admin", "store_manager")
PER_PAGE = 30
nav_item("coupons_console.templates", _l("Coupons"), group="coupons", roles=ADMIN, order=59)
nav_item(
    "coupons_console.redemptions", _l("Redemption log"), group="coupons", roles=MANAGERS, order=62
)
nav_item("coupons_console.mall_items", _l("Points mall"), group="points", roles=ADMIN, order=43)
nav_item("coupons_console.pos_keys", _l("POS API keys"), group="settings", roles=ADMIN, order=86)
nav_item("coupons_console.report", _l("Coupon report"), group="coupons", roles=ADMIN, order=65)


@bp.app_template_global("coupon_kind_label")
def coupon_kind_label(kind: str) -> str:
    return label(kind, "coupon_kind")


@bp.get("/templates")
@roles_required(*ADMIN)
def templates():
    page = page_from_request(
        queries.all_templates(), order=newest_first(CouponTemplate.id), per_page=PER_PAGE
    )
    return render_template("coupons/console/templates.html", page=page)


@bp.route("/templates/new", methods=["GET", "POST"])
@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
@roles_required(*ADMIN)
def template_edit(template_id: int | None = None):
    tpl = get_or_404(CouponTemplate, template_id) if template_id else None
    form = TemplateForm(obj=tpl)
    tz = brand_tz()
    if request.method == "GET" and tpl is not None:
        form.fill(tpl, tz)

    def save():
        if tpl is None:
            return services.create_template(**form.values(tz))
        return services.update_template(template=tpl, **form.values(tz))

    done = save_form(form, save, saved=_l("Saved."), then=lambda _tpl: url_for(".templates"))
    if done.response:
        return done.response
    return render_template("coupons/console/template_form.html", form=form, tpl=tpl), done.status


@bp.route("/templates/<int:template_id>/issue", methods=["GET", "POST"])
@roles_required(*ADMIN)
def issue(template_id: int):
    tpl = get_or_404(CouponTemplate, template_id)
    form = IssueForm()
    if request.method == "GET":
        form.request_key.data = uuid.uuid4().hex
    reach = None
    if request.form.get("preview") and form.validate_on_submit():
        reach = services.count_target(target=form.target())
        return render_template("coupons/console/issue.html", form=form, tpl=tpl, reach=reach)
    done = save_form(
        form,
        lambda: services.bulk_issue(
            template_id=tpl.id, target=form.target(), idempotency_key=form.request_key.data
        ),
        saved=lambda batch: _l("%(n)d coupons issued.", n=batch.issued),
        then=lambda _batch: url_for(".templates"),
    )
    if done.response:
        return done.response
    return render_template(
        "coupons/console/issue.html", form=form, tpl=tpl, reach=reach
    ), done.status


def _read_codes(storage) -> tuple[str, str]:
    """The text of an uploaded codes file (UTF-8, or GB18030 as Excel on Chinese Windows
    saves it) and its digest, the same in every process, so the same file is added once."""
    raw = storage.read()
    digest = hashlib.sha256(raw).hexdigest()
    try:
        return raw.decode("utf-8-sig"), digest
    except UnicodeDecodeError:
        return raw.decode("gb18030", errors="replace"), digest


@bp.route("/templates/<int:template_id>/codes", methods=["GET", "POST"])
@roles_required(*ADMIN)
def import_codes(template_id: int):
    tpl = get_or_404(CouponTemplate, template_id)
    form = ImportForm()

    def save() -> int:
        text, digest = _read_codes(form.file.data)
        return services.import_partner_codes(
            template_id=tpl.id, lines=text.splitlines(), idempotency_key=f"file:{digest}"
        )

    done = save_form(
        form,
        save,
        saved=lambda n: _l("%(n)d codes added.", n=n),
        then=lambda _n: url_for(".templates"),
    )
    if done.response:
        return done.response
    return render_template("coupons/console/import.html", form=form, tpl=tpl), done.status


@bp.get("/redemptions")
@roles_required(*MANAGERS)
def redemptions():
    scope = (
        None
        if current_user.is_platform_admin or current_user.role == "brand_admin"
        else current_user.store_id
    )
    store_id = scope or request.args.get("store_id", type=int)
    return render_template(
        "coupons/console/redemptions.html",
        page=page_from_request(
            queries.redemption_log(store_id=store_id),
            order=newest_first(Redemption.id),
            per_page=PER_PAGE,
        ),
        stores=list_stores(),
        store_id=store_id,
        scoped=scope,
    )


@bp.route("/pos-keys", methods=["GET", "POST"])
@roles_required(*ADMIN)
def pos_keys():
    form = PosKeyForm()
    form.store_id.choices = [(s.id, f"{s.code} {s.name}") for s in list_stores()]
    new_key = None
    status = 200
    if form.validate_on_submit():
        if request.form.get("revoke", type=int):
            services.revoke_key(key_id=request.form.get("revoke", type=int))
            db.session.commit()
            flash(_l("Key revoked."), "success")
            return redirect(url_for(".pos_keys"))
        # No redirect: the new key is shown once, on this page.
        _row, new_key = services.create_key(store_id=form.store_id.data, label=form.label.data)
        db.session.commit()
    elif request.method == "POST":
        status = 400
    return render_template(
        "coupons/console/pos_keys.html", form=form, keys=queries.pos_keys(), new_key=new_key
    ), status


@bp.get("/mall")
@roles_required(*ADMIN)
def mall_items():
    return render_template("coupons/console/mall.html", rows=queries.mall_items())


@bp.route("/mall/new", methods=["GET", "POST"])
@bp.route("/mall/<int:item_id>", methods=["GET", "POST"])
@roles_required(*ADMIN)
def mall_item_edit(item_id: int | None = None):
    item = get_or_404(MallItem, item_id) if item_id else None
    form = MallItemForm(obj=item)
    form.template_id.choices = [(t.id, t.name) for t in queries.templates(active_only=True)]
    if request.method == "GET" and item is not None:
        form.fill(item)

    def save():
        if item is None:
            return services.create_mall_item(**form.values())
        return services.update_mall_item(item=item, **form.values())

    done = save_form(form, save, saved=_l("Saved."), then=lambda _item: url_for(".mall_items"))
    if done.response:
        return done.response
    return render_template("coupons/console/mall_form.html", form=form, item=item), done.status


@bp.get("/report")
@roles_required(*ADMIN)
def report():
    per_template = queries.template_report()
    per_store = queries.store_report()
    if request.args.get("format") == "json":
        return {"templates": per_template, "stores": per_store}
    return render_template(
        "coupons/console/report.html",
        per_template=per_template,
        per_store=per_store,
        template_chart=charts.bars(
            per_template,
            x="name",
            series=[("issued", _("Issued")), ("redeemed", _("Redeemed"))],
            horizontal=True,
        ),
        store_chart=charts.bars(
            per_store, x="name", series=[("redeemed", _("Redeemed"))], horizontal=True
        ),
    )
