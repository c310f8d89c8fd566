"""Console pages of members: the list, a member's detail (with the audited full phone),
merges, CSV import with its progress view, segment export and the till-code lookup.

Who sees what comes from ``members.access``: store managers their store's members, guides
their own customers with masked phones; anything else answers 404.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterable

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, or_, select

from core.auth import roles_required
from core.cli import demo_step
from core.console import nav_item
from core.db import db, is_postgres
from core.errors import AppError
from core.jobs import enqueue
from core.tenancy import get_or_404
from core.validators import normalize_phone
from members import access, activation, export, identities, importer, tags, tiers, tillcode
from members.jobs import import_members_job
from members.models import Member, MemberImport, MemberMerge
from members.models_tags import MemberTag, TagDefinition
from members.models_tiers import TierLevel
from members.web_console_forms import KIND_LABELS, EmptyForm, ExportForm, ImportForm, TillCodeForm
from org.models import Staff, Store

bp = Blueprint("members_console", __name__, url_prefix="/console/members")
ALL = ("brand_admin", "store_manager", "guide")
MANAGERS = ("brand_admin", "store_manager")
ADMIN = ("brand_admin",)
PER_PAGE = 20

nav_item("members_console.members", _l("Members"), roles=ALL, order=20)
nav_item("members_console.till_code", _l("Member code"), roles=ALL, order=21)
nav_item("members_console.imports", _l("Member import"), roles=ADMIN, order=24)
nav_item("members_console.export_segment", _l("Member export"), roles=MANAGERS, order=25)
nav_item("members_console.merges", _l("Merges"), roles=ADMIN, order=26)


@bp.app_context_processor
def _globals():
    return {"tag_kind_label": lambda k: KIND_LABELS.get(k, k)}


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 19 else None


def _filter_choices() -> dict:
    """Stores, tiers and tags the current user may filter by."""
    stores = db.session.execute(select(Store).order_by(Store.code)).scalars().all()
    if current_user.role != "brand_admin":
        stores = [s for s in stores if s.id == current_user.store_id]
    return {
        "stores": stores,
        "levels": tiers.list_levels(),
        "tag_library": tags.list_tags(),
    }


def _search(stmt, q: str):
    q = q.strip()[:80]
    if not q:
        return stmt
    digits = normalize_phone(q)
    conds = [Member.name.ilike(f"%{q}%"), Member.card_no == q]
    if digits.isdigit():
        conds.append(Member.phone.contains(digits))
    return stmt.where(or_(*conds))


@bp.get("")
@roles_required(*ALL)
def members():
    q = request.args.get("q", "")
    store_id, tier_id, tag_id = _int_arg("store_id"), _int_arg("tier_id"), _int_arg("tag_id")
    stmt = _search(access.visible_members(staff=current_user), q)
    if store_id:
        stmt = stmt.where(Member.store_id == store_id)
    if tier_id:
        stmt = stmt.where(Member.tier_id == tier_id)
    if tag_id:
        stmt = stmt.where(
            select(MemberTag.id)
            .where(MemberTag.member_id == Member.id, MemberTag.tag_id == tag_id)
            .exists()
        )
    page = db.paginate(stmt, per_page=PER_PAGE, error_out=False)
    names = _names([m.store_id for m in page.items], [m.guide_id for m in page.items])
    return render_template(
        "members/console/members.html",
        page=page,
        q=q,
        store_id=store_id,
        tier_id=tier_id,
        tag_id=tag_id,
        names=names,
        display_phone=lambda m: access.display_phone(staff=current_user, member=m),
        **_filter_choices(),
    )


def _names(store_ids, guide_ids) -> dict:
    stores = {i for i in store_ids if i}
    guides = {i for i in guide_ids if i}
    out = {"stores": {}, "guides": {}, "tiers": {}}
    if stores:
        out["stores"] = dict(
            db.session.execute(select(Store.id, Store.name).where(Store.id.in_(stores))).all()
        )
    if guides:
        out["guides"] = dict(
            db.session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(guides))).all()
        )
    out["tiers"] = dict(db.session.execute(select(TierLevel.id, TierLevel.name)).all())
    return out


def _merges_of(member_id: int) -> list[MemberMerge]:
    return list(
        db.session.execute(
            select(MemberMerge)
            .where(or_(MemberMerge.kept_id == member_id, MemberMerge.merged_id == member_id))
            .order_by(MemberMerge.created_at.desc())
        ).scalars()
    )


def _render_detail(member: Member, *, full_phone: str | None = None):
    history = tags.tag_history(member_id=member.id)
    tag_names = dict(db.session.execute(select(TagDefinition.id, TagDefinition.name)).all())
    attributions = activation.attributions_of(member_id=member.id)
    names = _names(
        [member.store_id] + [a.store_id for a in attributions],
        [member.guide_id] + [a.guide_id for a in attributions] + [h.staff_id for h in history],
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
        tag_names=tag_names,
        attributions=attributions,
        merges=_merges_of(member.id),
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
    stmt = select(MemberMerge).order_by(MemberMerge.created_at.desc(), MemberMerge.id.desc())
    page = db.paginate(stmt, per_page=PER_PAGE, error_out=False)
    ids = {m.kept_id for m in page.items} | {m.merged_id for m in page.items}
    cards = (
        dict(db.session.execute(select(Member.id, Member.card_no).where(Member.id.in_(ids))).all())
        if ids
        else {}
    )
    return render_template("members/console/merges.html", page=page, cards=cards)


# --- import -------------------------------------------------------------------------------------


def _instance_imports(instance_path: str) -> str:
    path = os.path.join(instance_path, "imports")
    os.makedirs(path, exist_ok=True)
    return path


def _upload_dir() -> str:
    return _instance_imports(current_app.config["INSTANCE_PATH"])


@bp.route("/imports", methods=["GET", "POST"])
@roles_required(*ADMIN)
def imports():
    form = ImportForm()
    status = 200
    if form.validate_on_submit():
        upload = form.file.data
        name = os.path.basename(upload.filename or "members.csv")
        path = os.path.join(_upload_dir(), f"{g.brand_id}-{uuid.uuid4().hex}.csv")
        upload.save(path)
        if not name.lower().endswith((".csv", ".txt")):
            form.file.errors.append(_l("Upload a .csv file."))
        elif os.path.getsize(path) == 0:
            form.file.errors.append(_l("The file is empty."))
        else:
            imp = importer.create_import(filename=name, path=path, created_by=current_user.id)
            enqueue(import_members_job, imp.id, brand_id=g.brand_id)
            db.session.commit()
            flash(_l("Import started."), "success")
            return redirect(url_for("members_console.import_progress", import_id=imp.id))
        os.remove(path)
        status = 400
    elif request.method == "POST":
        status = 400
    recent = (
        db.session.execute(select(MemberImport).order_by(MemberImport.id.desc()).limit(20))
        .scalars()
        .all()
    )
    return render_template("members/console/imports.html", form=form, recent=recent), status


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


def _export_form() -> tuple[ExportForm, dict]:
    form = ExportForm()
    choices = _filter_choices()
    any_ = [("", _l("Any"))]
    form.store_id.choices = any_ + [(str(s.id), f"{s.code} {s.name}") for s in choices["stores"]]
    form.tier_id.choices = any_ + [(str(t.id), t.name) for t in choices["levels"]]
    form.tag_id.choices = any_ + [(str(t.id), t.name) for t in choices["tag_library"]]
    return form, choices


@bp.route("/export", methods=["GET", "POST"])
@roles_required(*ALL)
def export_segment():
    form, _choices = _export_form()
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
            chunks = export.export_members(segment=segment, staff=staff, full_phones=full)
        except AppError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            status = exc.status
        else:
            db.session.commit()  # the audit entry is kept even if the download is cancelled
            return _send_csv(chunks, "members.csv")
    elif request.method == "POST":
        status = 400
    count = export.count_segment(segment=export.Segment(), staff=current_user)
    return render_template("members/console/export.html", form=form, count=count), status


def _send_csv(chunks: Iterable[str], filename: str) -> Response:
    """Spool the CSV to a temporary file (memory stays bounded for big segments) while this
    request's session and brand are still there, then stream the file."""
    tmp = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - closed by send_file
    for chunk in chunks:
        tmp.write(chunk.encode("utf-8"))
    tmp.seek(0)
    return send_file(tmp, mimetype="text/csv", as_attachment=True, download_name=filename)


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


def member_count() -> int:
    """How many members the current user may see (for the dashboard)."""
    sub = access.visible_members(staff=current_user).order_by(None).subquery()
    return db.session.execute(select(func.count()).select_from(sub)).scalar_one()


DEMO_IMPORT = "demo-pos-export.csv"
# The POS ids of three demo members (it adds identities, no members) and one bad row.
DEMO_IMPORT_ROWS = (
    "手机号,POS会员号,门店编码\n"
    "13900000001,POS1001,SH001\n"
    "13900000002,POS1002,\n"
    "13900000003,POS1003,\n"
    "1390000100,POS1004,SH001\n"
)


@demo_step(34)
def demo_import() -> list[str]:
    """A small POS export for the demo brand (a finished import to look at in the console)."""
    from core.tenancy import use_brand
    from org.models import Brand

    brand = Brand.by_slug("demo")
    if brand is None:
        return []
    if not is_postgres():
        return ["Member import: the importer needs PostgreSQL; demo import skipped"]
    with use_brand(brand.id):
        done = db.session.execute(
            select(MemberImport.id).where(MemberImport.filename == DEMO_IMPORT)
        ).first()
        if done is not None:
            return []
        path = os.path.join(_instance_imports(current_app.config["INSTANCE_PATH"]), DEMO_IMPORT)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(DEMO_IMPORT_ROWS)
        imp = importer.import_file(path=path, filename=DEMO_IMPORT)
    return [f"Member import: demo POS export, {imp.updated} updated, {imp.bad} bad row"]


def init_app(app: Flask) -> None:
    """Register the mini-program API, the console pages and the guide workbench."""
    from members import mp_api, store_locations, web_console_config, workbench  # noqa: F401

    mp_api.init_app(app)
    app.register_blueprint(bp)
    app.register_blueprint(web_console_config.bp)
    app.register_blueprint(workbench.bp)
