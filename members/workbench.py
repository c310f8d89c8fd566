"""The guide workbench (导购工作台): a phone-first page of the guide's own customers, with
one-tap quick tags and their history. Phones are always masked here."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import or_, select

from core.auth import roles_required
from core.console import nav_item
from core.db import db
from core.errors import AppError
from core.validators import mask_phone
from members import access, tags
from members.models import Member
from members.models_tags import MemberTag, TagDefinition
from members.web_console_forms import EmptyForm

bp = Blueprint("workbench", __name__, url_prefix="/console/workbench")
ROLES = ("guide", "store_manager", "brand_admin")
PER_PAGE = 20

nav_item("workbench.customers", _l("Workbench"), roles=("guide", "store_manager"), order=5)


def _tags_by_member(member_ids: list[int]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {mid: set() for mid in member_ids}
    if member_ids:
        for mid, tid in db.session.execute(
            select(MemberTag.member_id, MemberTag.tag_id).where(MemberTag.member_id.in_(member_ids))
        ):
            out[mid].add(tid)
    return out


@bp.get("")
@roles_required(*ROLES)
def customers():
    q = (request.args.get("q") or "").strip()[:80]
    stmt = access.visible_members(staff=current_user)
    if q:
        conds = [Member.name.ilike(f"%{q}%"), Member.card_no == q]
        if q.isdigit() and len(q) == 4:
            conds.append(Member.phone.endswith(q))  # guides know customers by the last 4 digits
        stmt = stmt.where(or_(*conds))
    page = db.paginate(stmt, per_page=PER_PAGE, error_out=False)
    return render_template(
        "members/workbench/customers.html",
        page=page,
        q=q,
        quick=tags.list_tags(quick_only=True),
        on=_tags_by_member([m.id for m in page.items]),
        masked=lambda m: mask_phone(m.phone) if m.phone else "",
        form=EmptyForm(),
    )


@bp.get("/<int:member_id>")
@roles_required(*ROLES)
def customer(member_id: int):
    return _render_customer(access.get_member_for(staff=current_user, member_id=member_id))


def _render_customer(member: Member, status: int = 200):
    names = dict(db.session.execute(select(TagDefinition.id, TagDefinition.name)).all())
    return render_template(
        "members/workbench/customer.html",
        member=member,
        masked=mask_phone(member.phone) if member.phone else "",
        quick=tags.list_tags(quick_only=True),
        on=_tags_by_member([member.id])[member.id],
        member_tags=tags.member_tags(member_id=member.id),
        history=tags.tag_history(member_id=member.id, limit=50),
        tag_names=names,
        form=EmptyForm(),
    ), status


@bp.post("/<int:member_id>/tags/<int:tag_id>")
@roles_required(*ROLES)
def toggle_tag(member_id: int, tag_id: int):
    member = access.get_member_for(staff=current_user, member_id=member_id)
    tag = db.session.get(TagDefinition, tag_id)
    if tag is None or tag.brand_id != member.brand_id:
        abort(404)
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
