"""Console pages of members: the list, a member's detail (with the audited full phone),
merges, CSV import with its progress view, segment export and the till-code lookup.

Who sees what comes from ``members.privacy.access``: store managers their store's members,
guides their own customers with masked phones; anything else answers 404.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core import exports_view
from core.auth import roles_required
from core.console import nav_item, save_form
from core.db import db
from core.errors import AppError
from core.jobs import enqueue
from core.labels import label
from core.paging import newest_first, page_from_request
from core.tenancy import get_or_404
from members import identities, imports, queries, tillcode
from members.forms import EmptyForm, ExportForm, ImportForm, TillCodeForm
from members.jobs import import_members_job
from members.models import Member, MemberImport, MemberMerge
from members.privacy import access, export
from members.tiers_tags import tags, tiers

bp = Blueprint("members_console", __name__, url_prefix="/console/members")
ALL = ("brand_admin", "store_manager", "guide")
MANAGERS = ("brand_admin", "store_manager")
ADMIN = ("brand_admin",)
PER_PAGE = 20

nav_item("members_console.members", _l("Members"), group="members", roles=ALL, order=20)
nav_item("members_console.till_code", _l("Member code"), group="members", roles=ALL, order=21)
nav_item("members_console.imports", _l("Member import"), group="members", roles=ADMIN, order=27)
nav_item(
    "members_console.export_segment", _l("Member export"), group="members", roles=MANAGERS, order=28
)
nav_item("members_console.merges", _l("Merges"), group="members", roles=ADMIN, order=29)


@bp.app_template_global("tag_kind_label")
def tag_kind_label(kind: str) -> str:
    return label(kind, "tag_kind")


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 19 else None


@bp.get("")
@roles_required(*ALL)
def members():
    q = request.args.get("q", "")
    store_id, tier_id, tag_id = _int_arg("store_id"), _int_arg("tier_id"), _int_arg("tag_id")
    stmt = queries.search_members(
        staff=current_user, q=q, store_id=store_id, tier_id=tier_id, tag_id=tag_id
    )
    page = page_from_request(stmt, order=newest_first(Member.id), per_page=PER_PAGE)
    names = queries.names_of(
        store_ids=[m.store_id for m in page.items], guide_ids=[m.guide_id for m in page.items]
    )
    return render_template(
        "members/console/members.html",
        page=page,
        q=q,
        store_id=store_id,
        tier_id=tier_id,
        tag_id=tag_id,
        names=names,
        display_phone=lambda m: access.display_phone(staff=current_user, member=m),
        **queries.filter_choices(staff=current_user),
    )


def _render_detail(member: Member, *, full_phone: str | None = None):
    history = tags.tag_history(member_id=member.id)
    attributions = queries.attributions_of(member_id=member.id)
    names = queries.names_of(
        store_ids=[member.store_id] + [a.store_id for a in attributions],
        guide_ids=[member.guide_id]
        + [a.guide_id for a in attributions]
        + [h.staff_id for h in history],
    )
    return render_template(
        "members/console/member.html",
        member=member,
        phone=full_phone or access.display_phone(staff=current_user, member=member),
        full_phone=full_phone is not None,
        may_reveal=access.may_see_full_phones(staff=current_user) and bool(member.phone),
        identities=identities.identities_of(member_id=member.id),
        progress=tiers.tier_progress(member_id=member.id),
        member_tags=tags.member_tags(member_id=member.id),
        history=history,
        tag_names=queries.tag_names(),
        attributions=attributions,
        merges=queries.merges_of(member_id=member.id),
        names=names,
        form=EmptyForm(),
    )


@bp.get("/<int:member_id>")
@roles_required(*ALL)
def member(member_id: int):
    return _render_detail(access.get_member_for(staff=current_user, member_id=member_id))


@bp.post("/<int:member_id>/phone")
@roles_required(*ALL)
def reveal_phone(member_id: int):
    member = access.get_member_for(staff=current_user, member_id=member_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    phone = access.reveal_phone(staff=current_user, member_id=member.id)
    db.session.commit()  # the audit entry stays even if the page is never shown
    return _render_detail(member, full_phone=phone)


@bp.get("/merges")
@roles_required(*ADMIN)
def merges():
    page = page_from_request(
        queries.all_merges(), order=newest_first(MemberMerge.id), per_page=PER_PAGE
    )
    cards = queries.card_numbers(
        [m.kept_id for m in page.items] + [m.merged_id for m in page.items]
    )
    return render_template("members/console/merges.html", page=page, cards=cards)


# --- import -------------------------------------------------------------------------------------


def _start_import(form: ImportForm) -> MemberImport:
    imp = imports.receive_upload(
        upload=form.file.data,
        folder=imports.upload_dir(current_app.config["INSTANCE_PATH"]),
        created_by=current_user.id,
    )
    enqueue(import_members_job, imp.id, brand_id=g.brand_id)
    return imp


@bp.route("/imports", methods=["GET", "POST"], endpoint="imports")
@roles_required(*ADMIN)
def imports_page():
    form = ImportForm()
    done = save_form(
        form,
        lambda: _start_import(form),
        saved=_l("Import started."),
        then=lambda imp: url_for("members_console.import_progress", import_id=imp.id),
    )
    if done.response is not None:
        return done.response
    page = page_from_request(
        queries.all_imports(), order=newest_first(MemberImport.id), per_page=PER_PAGE
    )
    return render_template("members/console/imports.html", form=form, page=page), done.status


def _progress_dict(imp: MemberImport) -> dict:
    return {
        "status": imp.status,
        "percent": imp.percent,
        "total_rows": imp.total_rows,
        "processed": imp.processed,
        "inserted": imp.inserted,
        "updated": imp.updated,
        "unchanged": imp.unchanged,
        "bad": imp.bad,
        "finished": imp.status in ("done", "failed"),
    }


@bp.get("/imports/<int:import_id>")
@roles_required(*ADMIN)
def import_progress(import_id: int):
    imp = get_or_404(MemberImport, import_id)
    return render_template("members/console/import_progress.html", imp=imp, p=_progress_dict(imp))


@bp.get("/imports/<int:import_id>/progress.json")
@roles_required(*ADMIN)
def import_progress_json(import_id: int):
    db.session.expire_all()  # the import commits on its own connection
    return jsonify(_progress_dict(get_or_404(MemberImport, import_id)))


# --- export -------------------------------------------------------------------------------------


def _export_form() -> ExportForm:
    form = ExportForm()
    choices = queries.filter_choices(staff=current_user)
    any_ = [("", _l("Any"))]
    form.store_id.choices = any_ + [(str(s.id), f"{s.code} {s.name}") for s in choices["stores"]]
    form.tier_id.choices = any_ + [(str(t.id), t.name) for t in choices["levels"]]
    form.tag_id.choices = any_ + [(str(t.id), t.name) for t in choices["tag_library"]]
    return form


@bp.route("/export", methods=["GET", "POST"])
@roles_required(*ALL)
def export_segment():
    """The export form: a POST queues the export (a job writes the file) and comes back here,
    where "my recent exports" follows its progress and offers the download."""
    form = _export_form()
    status = 200
    if form.validate_on_submit():
        segment = export.Segment(
            store_ids=(int(form.store_id.data),) if form.store_id.data else (),
            tier_ids=(int(form.tier_id.data),) if form.tier_id.data else (),
            tag_ids=(int(form.tag_id.data),) if form.tag_id.data else (),
        )
        staff = current_user._get_current_object()
        full = bool(form.full_phones.data) and access.may_see_full_phones(staff=staff)
        try:
            export.request_member_export(segment=segment, staff=staff, full_phones=full)
            db.session.commit()
        except AppError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            status = exc.status
        else:
            flash(_l("Export queued. It appears below when ready."), "success")
            return redirect(url_for("members_console.export_segment"))
    elif request.method == "POST":
        status = 400
    reach = export.reach(segment=export.Segment(), staff=current_user)
    return render_template(
        "members/console/export.html",
        form=form,
        reach=reach,
        recent=exports_view.recent_items(kind=export.KIND),
    ), status


# --- till code ------------------------------------------------------------------------------------


@bp.route("/till-code", methods=["GET", "POST"])
@roles_required(*ALL)
def till_code():
    form = TillCodeForm()
    status = 200
    if form.validate_on_submit():
        try:
            member_id = tillcode.verify_till_code(form.code.data.strip())
            member = access.get_member_for(staff=current_user, member_id=member_id)
        except AppError as exc:
            form.code.errors.append(exc.message)
            status = 404 if exc.status == 404 else 400
        else:
            return redirect(url_for("members_console.member", member_id=member.id))
    elif request.method == "POST":
        status = 400
    return render_template("members/console/till_code.html", form=form), status
