"""Console pages of the guides' workbench content (nav group 导购分销): the materials library,
tasks from HQ with their completion, and monthly targets (per guide, per store, CSV)."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select

from core import storage
from core.api import MAX_ID
from core.auth import roles_required
from core.console import form_error, nav_item
from core.db import db, utcnow
from core.errors import AppError, ValidationError
from core.paging import newest_first, page_from_request
from core.tenancy import get_or_404, require_brand_id
from guide_distribution import materials as materials_svc
from guide_distribution import queries, targets, tasks
from guide_distribution.forms_workbench import (
    NONE,
    MaterialForm,
    StoreTargetForm,
    TargetForm,
    TargetImportForm,
    TaskForm,
)
from guide_distribution.models import (
    GuideSalesDay,
    GuideTarget,
    GuideTask,
    GuideTaskAssignee,
    Material,
)
from members.forms import EmptyForm
from members.models import TagDefinition
from org.models import Brand, Staff
from shop import numbers
from shop.models import Product

bp = Blueprint("guide_workbench_console", __name__, url_prefix="/console/distribution")
ADMIN = ("brand_admin",)
PER_PAGE = 30
GROUP = "distribution"
nav_item("guide_workbench_console.materials", _l("Materials"), group=GROUP, roles=ADMIN, order=40)
nav_item("guide_workbench_console.tasks", _l("HQ tasks"), group=GROUP, roles=ADMIN, order=41)
nav_item("guide_workbench_console.targets", _l("Sales targets"), group=GROUP, roles=ADMIN, order=42)


@bp.url_value_preprocessor
def _ids_in_range(_endpoint, values):
    if any(isinstance(v, int) and v > MAX_ID for v in (values or {}).values()):
        abort(404)


def _store_image(upload, *, prefix: str, field: str) -> str | None:
    if not upload or not getattr(upload, "filename", ""):
        return None
    try:
        return storage.save_image(upload.read(), prefix=prefix, field=field)
    except storage.StorageError:
        raise ValidationError(
            _l("The image could not be stored just now. Try again in a moment."), field=field
        ) from None


# --- materials ------------------------------------------------------------------------------


@bp.get("/materials")
@roles_required(*ADMIN)
def materials():
    page = page_from_request(
        queries.materials(active_only=False), order=newest_first(Material.id), per_page=PER_PAGE
    )
    return render_template(
        "guide_distribution/console/materials.html",
        page=page,
        file_url=storage.url,
        form=EmptyForm(),
    )


@bp.route("/materials/new", methods=["GET", "POST"])
@bp.route("/materials/<int:material_id>", methods=["GET", "POST"])
@roles_required(*ADMIN)
def material_edit(material_id: int | None = None):
    material = get_or_404(Material, material_id) if material_id else None
    form = MaterialForm(obj=material)
    images = list(material.images or []) if material else []
    status = 200
    if request.method == "POST":
        own = materials_svc.image_prefix() + "/"
        images = [
            k
            for k in request.form.getlist("image")
            if k in images or (storage.is_key(k) and k.startswith(own))
        ]
        if form.validate_on_submit():
            try:
                for upload in form.new_images.data or []:
                    key = _store_image(
                        upload, prefix=materials_svc.image_prefix(), field="new_images"
                    )
                    if key:
                        images.append(key)
                if material is None:
                    saved = materials_svc.create_material(
                        title=form.title.data,
                        body=form.body.data or "",
                        images=images,
                        staff_id=current_user.id,
                    )
                else:
                    saved = materials_svc.update_material(
                        material_id=material.id,
                        title=form.title.data,
                        body=form.body.data or "",
                        images=images,
                        active=form.active.data,
                    )
                db.session.commit()
            except AppError as exc:
                db.session.rollback()
                status = exc.status
                form_error(form, exc)
            else:
                flash(_l("Saved."), "success")
                return redirect(url_for(".material_edit", material_id=saved.id))
        else:
            status = 400
    return render_template(
        "guide_distribution/console/material_form.html",
        form=form,
        material=material,
        images=images,
        file_url=storage.url,
    ), status


@bp.post("/materials/<int:material_id>/delete")
@roles_required(*ADMIN)
def material_delete(material_id: int):
    material = get_or_404(Material, material_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    materials_svc.delete_material(material_id=material.id)
    db.session.commit()
    flash(_l("Deleted."), "success")
    return redirect(url_for(".materials"), 303)


# --- tasks ----------------------------------------------------------------------------------


@bp.get("/tasks", endpoint="tasks")
@roles_required(*ADMIN)
def tasks_page():
    page = page_from_request(queries.tasks(), order=newest_first(GuideTask.id), per_page=PER_PAGE)
    return render_template("guide_distribution/console/tasks.html", page=page, now=utcnow())


def _brand_tz():
    return db.session.get(Brand, require_brand_id()).tz


def _task_choices(form: TaskForm) -> None:
    products = db.session.execute(
        select(Product.id, Product.name)
        .where(Product.on_sale.is_(True))
        .order_by(Product.id.desc())
        .limit(500)
    ).all()
    form.product_id.choices = [(NONE, gettext("None"))] + [(i, n) for i, n in products]
    tag_rows = db.session.execute(
        select(TagDefinition.id, TagDefinition.name).order_by(TagDefinition.name).limit(500)
    ).all()
    form.tag_id.choices = [(NONE, gettext("All bound customers"))] + [(i, n) for i, n in tag_rows]
    form.guides.choices = [
        (g.id, f"{g.name} · {g.store.name}" if g.store else g.name) for g in queries.guides()
    ]
    form.stores.choices = [(s.id, s.name) for s in queries.stores()]


@bp.route("/tasks/new", methods=["GET", "POST"])
@roles_required(*ADMIN)
def task_new():
    form = TaskForm()
    _task_choices(form)
    status = 200
    if request.method == "GET" and not form.deadline.data:
        local = utcnow().astimezone(_brand_tz()) + dt.timedelta(days=3)
        form.deadline.data = local.replace(second=0, microsecond=0, tzinfo=None)
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                image = _store_image(form.image.data, prefix=tasks.image_prefix(), field="image")
                deadline = form.deadline.data.replace(tzinfo=_brand_tz()).astimezone(dt.UTC)
                task = tasks.create_task(
                    title=form.title.data,
                    body=form.body.data or "",
                    image=image,
                    product_id=form.product_id.data or None,
                    tag_id=form.tag_id.data or None,
                    deadline=deadline,
                    guide_ids=form.guides.data or [],
                    store_ids=form.stores.data or [],
                    created_by=current_user.id,
                )
                db.session.commit()
            except AppError as exc:
                db.session.rollback()
                status = exc.status
                form_error(form, exc)
            else:
                flash(_l("The task was sent to %(n)d guides.", n=task.guides_total), "success")
                return redirect(url_for(".task", task_id=task.id))
        else:
            status = 400
    return render_template("guide_distribution/console/task_form.html", form=form), status


@bp.get("/tasks/<int:task_id>")
@roles_required(*ADMIN)
def task(task_id: int):
    task_row = get_or_404(GuideTask, task_id)
    page = page_from_request(
        queries.assignees(task_row.id),
        order=newest_first(GuideTaskAssignee.id),
        per_page=PER_PAGE,
    )
    product = db.session.get(Product, task_row.product_id) if task_row.product_id else None
    tag = db.session.get(TagDefinition, task_row.tag_id) if task_row.tag_id else None
    return render_template(
        "guide_distribution/console/task.html",
        task=task_row,
        page=page,
        product=product,
        tag=tag,
        stores=queries.store_names(a.store_id for a, _n in page.items),
        file_url=storage.url,
        now=utcnow(),
    )


# --- targets --------------------------------------------------------------------------------


def _month_from_args() -> dt.date:
    value = request.args.get("month")
    if value:
        try:
            return targets.parse_month(value)
        except AppError:
            pass
    return targets.month_start(numbers.local_day())


@bp.route("/targets", methods=["GET", "POST"], endpoint="targets")
@roles_required(*ADMIN)
def targets_page():
    month = _month_from_args()
    guide_form = TargetForm(prefix="g")
    store_form = StoreTargetForm(prefix="s")
    import_form = TargetImportForm(prefix="f")
    guide_form.guide_id.choices = [
        (g.id, f"{g.name} · {g.store.name}" if g.store else g.name) for g in queries.guides()
    ]
    store_form.store_id.choices = [(s.id, s.name) for s in queries.stores()]
    if request.method == "GET":
        guide_form.month.data = store_form.month.data = month.strftime("%Y-%m")
    status = 200
    action = request.form.get("action") if request.method == "POST" else None
    form = {"guide": guide_form, "store": store_form, "import": import_form}.get(action or "")
    if request.method == "POST":
        if form is None:
            abort(400)
        if form.validate_on_submit():
            try:
                if action == "import":
                    n = targets.import_csv(data=form.file.data.read(), set_by=current_user.id)
                    then = month
                else:
                    then = targets.parse_month(form.month.data)
                    if action == "guide":
                        targets.set_guide_target(
                            guide_id=form.guide_id.data,
                            month=then,
                            target_fen=form.target.fen,
                            set_by=current_user.id,
                        )
                        n = 1
                    else:
                        n = targets.set_store_target(
                            store_id=form.store_id.data,
                            month=then,
                            target_fen=form.target.fen,
                            set_by=current_user.id,
                        )
                db.session.commit()
            except AppError as exc:
                db.session.rollback()
                status = exc.status
                form_error(form, exc)
            else:
                flash(_l("Targets set for %(n)d guides.", n=n), "success")
                return redirect(url_for(".targets", month=then.strftime("%Y-%m")), 303)
        else:
            status = 400
    page = page_from_request(
        select(GuideTarget, Staff.name)
        .join(Staff, Staff.id == GuideTarget.guide_id)
        .where(GuideTarget.month == month),
        order=newest_first(GuideTarget.id),
        per_page=PER_PAGE,
    )
    ids = [t.guide_id for t, _n in page.items]
    actual = (
        dict(
            db.session.execute(
                select(
                    GuideSalesDay.guide_id,
                    func.sum(GuideSalesDay.sales_fen - GuideSalesDay.refunded_fen),
                )
                .where(
                    GuideSalesDay.guide_id.in_(ids),
                    GuideSalesDay.day >= month,
                    GuideSalesDay.day < targets.next_month(month),
                )
                .group_by(GuideSalesDay.guide_id)
            ).all()
        )
        if ids
        else {}
    )
    return render_template(
        "guide_distribution/console/targets.html",
        page=page,
        actual={k: int(v) for k, v in actual.items()},
        stores=queries.store_names(t.store_id for t, _n in page.items),
        month=month,
        prev=targets.prev_month(month),
        next=targets.next_month(month),
        guide_form=guide_form,
        store_form=store_form,
        import_form=import_form,
    ), status
