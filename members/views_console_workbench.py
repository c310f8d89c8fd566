"""The guide workbench (导购工作台): a phone-first home of tiles (``members.workbench``: every
package registers its sections), the guide's own customers with one-tap quick tags and their
history, and the guide's own QR code and poster. Phones are always masked here."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core.auth import roles_required
from core.console import nav_item
from core.db import db
from core.errors import AppError
from core.paging import newest_first, page_from_request
from core.tenancy import get_or_404
from core.validators import mask_phone
from members import queries
from members.activation import qrcodes
from members.forms import EmptyForm
from members.models import Member, TagDefinition
from members.privacy import access
from members.tiers_tags import tags
from members.workbench import (
    customer_views_for,
    panels_for,
    register_customer_view,
    register_workbench_tile,
    tiles_for,
)
from wechat import gateway

bp = Blueprint("workbench", __name__, url_prefix="/console/workbench")
ROLES = ("guide", "store_manager", "brand_admin")
PER_PAGE = 20

nav_item(
    "workbench.home",
    _l("Workbench"),
    group="stores",
    roles=("guide", "store_manager"),
    order=5,
)
nav_item("workbench.my_qr", _l("My QR code"), group="stores", roles=("guide",), order=6)
register_workbench_tile("workbench.customers", _l("My customers"), icon="users", order=10)
register_workbench_tile("workbench.my_qr", _l("My QR code"), icon="qr", order=90, roles=("guide",))
register_customer_view("workbench.customers", _l("All my customers"), order=10)


@bp.get("/home")
@roles_required(*ROLES)
def home():
    return render_template(
        "members/console/workbench/home.html",
        tiles=tiles_for(current_user.role),
        panels=panels_for(current_user),
    )


@bp.get("")
@roles_required(*ROLES)
def customers():
    q = (request.args.get("q") or "").strip()[: queries.SEARCH_MAX]
    stmt = queries.search_customers(staff=current_user, q=q)
    page = page_from_request(stmt, order=newest_first(Member.id), per_page=PER_PAGE)
    return render_template(
        "members/console/workbench/customers.html",
        page=page,
        q=q,
        quick=tags.list_tags(quick_only=True),
        on=queries.tags_by_member([m.id for m in page.items]),
        masked=lambda m: mask_phone(m.phone) if m.phone else "",
        views=customer_views_for(current_user.role),
        form=EmptyForm(),
    )


@bp.get("/<int:member_id>")
@roles_required(*ROLES)
def customer(member_id: int):
    return _render_customer(access.get_member_for(staff=current_user, member_id=member_id))


def _render_customer(member: Member, status: int = 200):
    return render_template(
        "members/console/workbench/customer.html",
        member=member,
        masked=mask_phone(member.phone) if member.phone else "",
        quick=tags.list_tags(quick_only=True),
        on=queries.tags_by_member([member.id])[member.id],
        member_tags=tags.member_tags(member_id=member.id),
        history=tags.tag_history(member_id=member.id, limit=50),
        tag_names=queries.tag_names(),
        form=EmptyForm(),
    ), status


@bp.post("/<int:member_id>/tags/<int:tag_id>")
@roles_required(*ROLES)
def toggle_tag(member_id: int, tag_id: int):
    member = access.get_member_for(staff=current_user, member_id=member_id)
    tag = get_or_404(TagDefinition, tag_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    remove = request.form.get("action") == "remove"
    try:
        changed = tags.quick_tag(
            member_id=member.id, tag_id=tag.id, staff_id=current_user.id, remove=remove
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _render_customer(member, exc.status)
    if changed:
        msg = (
            _l("Removed %(tag)s.", tag=tag.name) if remove else _l("Tagged %(tag)s.", tag=tag.name)
        )
        flash(msg, "success")
    back = request.form.get("back")
    if back == "list":
        return redirect(url_for("workbench.customers")), 303
    return redirect(url_for("workbench.customer", member_id=member.id)), 303


@bp.get("/qr")
@roles_required("guide")
def my_qr():
    return render_template(
        "members/console/workbench/qr.html",
        qr=qrcodes.guide_qr_of(staff_id=current_user.id),
        form=EmptyForm(),
    )


@bp.post("/qr")
@roles_required("guide")
def create_my_qr():
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        qrcodes.ensure_guide_qr(staff_id=current_user.id)
    except gateway.NotConfigured:
        db.session.rollback()
        flash(_l("The official account is not set up yet: ask your brand admin."), "error")
        return redirect(url_for("workbench.my_qr")), 303
    except gateway.WeChatError:
        db.session.rollback()
        flash(_l("WeChat could not create the QR code now. Please try again later."), "error")
        return redirect(url_for("workbench.my_qr")), 303
    db.session.commit()
    flash(_l("Your QR code is ready."), "success")
    return redirect(url_for("workbench.my_qr")), 303
