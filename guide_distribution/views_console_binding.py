"""Console pages of customer binding (brand admins): the binding rules, a customer's binding
and its history with a forced change, the guides and their customers with the hand-over of a
leaving guide, and the bindings import."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from core.auth import roles_required
from core.console import form_error, nav_item, save_form
from core.db import db, utcnow
from core.errors import AppError
from core.paging import newest_first, page_from_request
from core.tenancy import get_or_404
from core.validators import mask_phone
from guide_distribution import binding, binding_import, handover, jobs
from guide_distribution import binding_queries as queries
from guide_distribution import settings as gd_settings
from guide_distribution.forms import (
    BindingRulesForm,
    ForceForm,
    HandOverForm,
    ImportForm,
    LookupForm,
)
from members.models import Member
from org.models import Staff

bp = Blueprint("guide_binding_console", __name__, url_prefix="/console/distribution/binding")
ADMIN = ("brand_admin",)
PER_PAGE = 30

nav_item(
    "guide_binding_console.rules", _l("Binding rules"), group="distribution", roles=ADMIN, order=10
)
nav_item(
    "guide_binding_console.customer", _l("Customer binding"), group="distribution", roles=ADMIN,
    order=11,
)  # fmt: skip
nav_item(
    "guide_binding_console.guides",
    _l("Guides' customers"),
    group="distribution",
    roles=ADMIN,
    order=12,
)
nav_item(
    "guide_binding_console.import_page",
    _l("Import bindings"),
    group="distribution",
    roles=ADMIN,
    order=13,
)


@bp.route("/rules", methods=["GET", "POST"])
@roles_required(*ADMIN)
def rules():
    current = gd_settings.get_settings()
    form = BindingRulesForm(obj=current if request.method == "GET" else None)
    if request.method == "GET":
        form.validity.data = "days" if current.validity_days else "permanent"
    done = save_form(
        form,
        lambda: gd_settings.update_settings(
            bind_mode=form.bind_mode.data,
            validity_days=form.validity_days.data if form.validity.data == "days" else None,
            protection_days=form.protection_days.data,
            link_days=form.link_days.data,
        ),
        saved=_l("Saved."),
        then=lambda _row: url_for(".rules"),
    )
    if done.response:
        return done.response
    return render_template("guide_distribution/console/rules.html", form=form), done.status


def _member_view(member: Member) -> dict:
    b = binding.binding_of(member.id)
    events = binding.history(member.id)
    now = utcnow()
    guides = queries.guide_names(
        [b.guide_id if b else None]
        + [e.old_guide_id for e in events]
        + [e.new_guide_id for e in events]
        + [e.actor_id for e in events if e.actor_kind == "staff"]
    )
    stores = queries.store_names(
        [b.store_id if b else None]
        + [e.old_store_id for e in events]
        + [e.new_store_id for e in events]
    )
    forced = binding.forced_changes_since(member.id, now - binding.FORCED_WINDOW)
    return {
        "member": member,
        "masked": mask_phone(member.phone) if member.phone else "",
        "b": b,
        "in_force": binding.guide_in_force(b, now),
        "protected": binding.is_protected(b, now),
        "events": events,
        "guides": guides,
        "stores": stores,
        "source_label": queries.source_label,
        "forced_left": max(binding.FORCED_LIMIT - forced, 0),
    }


@bp.get("/customers")
@roles_required(*ADMIN)
def customer():
    lookup = LookupForm(request.args)
    ctx: dict = {}
    if request.args.get("member"):
        if lookup.validate() and lookup.member.data:
            member = get_or_404(Member, lookup.member.data[0])
            ctx = _member_view(member)
    return render_template(
        "guide_distribution/console/customer.html", lookup=lookup, force=ForceForm(), **ctx
    )


@bp.post("/customers/<int:member_id>/force")
@roles_required(*ADMIN)
def force(member_id: int):
    member = get_or_404(Member, member_id)
    form = ForceForm()
    status = 400
    if form.validate_on_submit():
        try:
            binding.force_change(
                member_id=member.id, guide_id=form.guide.data[0], reason=form.reason.data
            )
            db.session.commit()
        except AppError as exc:
            db.session.rollback()
            form_error(form, exc)
            status = exc.status
        else:
            flash(_l("The customer's guide was changed."), "success")
            return redirect(url_for(".customer", member=member.id), 303)
    lookup = LookupForm(data={"member": [member.id]})
    return render_template(
        "guide_distribution/console/customer.html",
        lookup=lookup,
        force=form,
        **_member_view(member),
    ), status


@bp.get("/guides")
@roles_required(*ADMIN)
def guides():
    q = (request.args.get("q") or "").strip()[:40]
    rows = queries.guides_with_counts(q)
    return render_template(
        "guide_distribution/console/guides.html",
        rows=rows,
        q=q,
        stores=queries.store_names(s.store_id for s, _n in rows),
    )


def _render_guide(guide: Staff, form: HandOverForm, status: int = 200):
    page = page_from_request(
        queries.customers_of(guide.id), order=newest_first(Member.id), per_page=PER_PAGE
    )
    return render_template(
        "guide_distribution/console/guide.html",
        guide=guide,
        store=queries.store_names([guide.store_id]).get(guide.store_id),
        page=page,
        bindings=queries.bindings_of([m.id for m in page.items]),
        count=handover.customers_count(guide.id),
        masked=lambda m: mask_phone(m.phone) if m.phone else "",
        source_label=queries.source_label,
        form=form,
    ), status


@bp.get("/guides/<int:guide_id>")
@roles_required(*ADMIN)
def guide(guide_id: int):
    g = get_or_404(Staff, guide_id)
    if g.role != "guide":
        abort(404)
    return _render_guide(g, HandOverForm())


@bp.post("/guides/<int:guide_id>/hand-over")
@roles_required(*ADMIN)
def hand_over(guide_id: int):
    g = get_or_404(Staff, guide_id)
    if g.role != "guide":
        abort(404)
    form = HandOverForm()
    if not form.validate_on_submit():
        return _render_guide(g, form, 400)
    to = form.to_guide.data[0] if form.mode.data == "named" else None
    try:
        token, taken = jobs.start_hand_over(guide_id=g.id, to_guide_id=to, reason=form.reason.data)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        form_error(form, exc)
        if exc.field == "to_guide":
            form.mode.errors = list(form.mode.errors) + [exc.message]
        return _render_guide(g, form, exc.status)
    if taken is not None:
        flash(_l("%(n)d customers were handed over.", n=sum(taken.values())), "success")
    return redirect(url_for(".hand_over_status", token=token), 303)


@bp.get("/hand-overs/<token>")
@roles_required(*ADMIN)
def hand_over_status(token: str):
    state = jobs.progress(token)
    if state is None:
        abort(404)
    guide = get_or_404(Staff, state["guide_id"])
    taken = {int(k): v for k, v in (state.get("taken") or {}).items()}
    return render_template(
        "guide_distribution/console/hand_over.html",
        state=state,
        guide=guide,
        taken=taken,
        names=queries.guide_names(taken),
    )


# --- import -----------------------------------------------------------------------------------


@bp.route("/import", methods=["GET", "POST"])
@roles_required(*ADMIN)
def import_page():
    form = ImportForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            upload = form.file.data
            try:
                token, result = binding_import.start(
                    upload.read(), filename=(upload.filename or "")[:200]
                )
                db.session.commit()
            except AppError as exc:
                db.session.rollback()
                form_error(form, exc)
                status = exc.status
            else:
                if result is not None and result.ok:
                    flash(_l("Imported %(n)d rows.", n=result.total), "success")
                return redirect(url_for(".import_status", token=token), 303)
        else:
            status = 400
    return render_template(
        "guide_distribution/console/import.html",
        form=form,
        columns=[binding_import.column_title(c) for c in binding_import.COLUMNS],
    ), status


@bp.get("/import/<token>")
@roles_required(*ADMIN)
def import_status(token: str):
    state = binding_import.progress(token)
    if state is None:
        abort(404)
    return render_template(
        "guide_distribution/console/import_status.html", state=state, token=token
    )


@bp.get("/import/<token>/errors.csv")
@roles_required(*ADMIN)
def import_errors(token: str):
    state = binding_import.progress(token)
    if state is None or not state.get("errors"):
        abort(404)
    return Response(
        binding_import.export_errors(state["errors"]),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=binding-errors-{token[:8]}.csv"},
    )


@bp.get("/import/template.csv")
@roles_required(*ADMIN)
def import_template():
    header = ",".join(binding_import.column_title(c) for c in binding_import.COLUMNS)
    sample = "13800138000,,13900139000,,门店调整"
    return Response(
        "\ufeff" + header + "\r\n" + sample + "\r\n",
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=bindings-template.csv"},
    )
