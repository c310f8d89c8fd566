"""Console configuration of members: tier levels and settings, the tag library, the store map."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.auth import roles_required
from core.console import form_error, nav_item
from core.db import db
from core.errors import AppError
from core.tenancy import get_or_404
from members import store_locations, tags, tiers
from members.models_tags import TAG_KINDS, TagDefinition
from members.models_tiers import TierLevel
from members.web_console_forms import (
    EmptyForm,
    LevelEditForm,
    LevelForm,
    StoreLocationForm,
    TagEditForm,
    TagForm,
    TierSettingsForm,
)
from org.models import Store

bp = Blueprint("members_config", __name__, url_prefix="/console/members")
ADMIN = ("brand_admin",)

nav_item("members_config.tier_levels", _l("Tiers"), roles=ADMIN, order=22)
nav_item("members_config.tag_library", _l("Tags"), roles=ADMIN, order=23)
nav_item("members_config.store_locations_page", _l("Store map"), roles=ADMIN, order=24)


# --- tiers --------------------------------------------------------------------------------------


def _tiers_page(form=None, settings_form=None, status=200):
    settings = tiers.get_settings()
    if settings_form is None:
        settings_form = TierSettingsForm(obj=settings, formdata=None)
    levels = tiers.list_levels(include_inactive=True)
    edit_forms = {lv.id: LevelEditForm(obj=lv, formdata=None, prefix=f"l{lv.id}") for lv in levels}
    return (
        render_template(
            "members/console/tiers.html",
            form=form or LevelForm(formdata=None),
            settings_form=settings_form,
            levels=levels,
            edit_forms=edit_forms,
        ),
        status,
    )


@bp.route("/tiers", methods=["GET", "POST"])
@roles_required(*ADMIN)
def tier_levels():
    if request.method == "GET":
        return _tiers_page()
    form = LevelForm()
    if not form.validate_on_submit():
        db.session.rollback()
        return _tiers_page(form=form, status=400)
    try:
        tiers.create_level(
            code=form.code.data,
            name=form.name.data,
            rank=form.rank.data,
            threshold=form.threshold.data,
            points_multiplier_permille=form.points_multiplier_permille.data,
            birthday_gift=form.birthday_gift.data or "",
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        form_error(form, exc)
        return _tiers_page(form=form, status=exc.status)
    flash(_l("Level created."), "success")
    return redirect(url_for("members_config.tier_levels"))


@bp.post("/tiers/<int:level_id>")
@roles_required(*ADMIN)
def tier_level_edit(level_id: int):
    level = get_or_404(TierLevel, level_id)
    form = LevelEditForm(prefix=f"l{level.id}")
    if not form.validate_on_submit():
        flash(_l("Please correct the level's fields."), "error")
        db.session.rollback()
        return _tiers_page(status=400)
    try:
        tiers.update_level(
            level_id=level.id,
            name=form.name.data.strip(),
            threshold=form.threshold.data,
            points_multiplier_permille=form.points_multiplier_permille.data,
            birthday_gift=form.birthday_gift.data or "",
            active=bool(form.active.data),
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _tiers_page(status=exc.status)
    flash(_l("Level saved."), "success")
    return redirect(url_for("members_config.tier_levels"))


@bp.post("/tiers/settings")
@roles_required(*ADMIN)
def tier_settings():
    form = TierSettingsForm()
    if not form.validate_on_submit():
        return _tiers_page(settings_form=form, status=400)
    try:
        tiers.update_settings(
            basis=form.basis.data,
            review_month=form.review_month.data,
            review_day=form.review_day.data,
            growth_per_yuan=form.growth_per_yuan.data,
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        form_error(form, exc)
        return _tiers_page(settings_form=form, status=exc.status)
    flash(_l("Saved."), "success")
    return redirect(url_for("members_config.tier_levels"))


# --- tag library --------------------------------------------------------------------------------


def _tags_page(form=None, status=200):
    library = tags.list_tags(include_inactive=True)
    edit_forms = {
        t.id: TagEditForm(obj=t, formdata=None, prefix=f"t{t.id}")
        for t in library
        if not t.is_system
    }
    by_kind = {k: [t for t in library if t.kind == k] for k in TAG_KINDS}
    return (
        render_template(
            "members/console/tags.html",
            form=form or TagForm(formdata=None),
            by_kind=by_kind,
            edit_forms=edit_forms,
        ),
        status,
    )


@bp.route("/tags", methods=["GET", "POST"])
@roles_required(*ADMIN)
def tag_library():
    if request.method == "GET":
        return _tags_page()
    form = TagForm()
    if not form.validate_on_submit():
        return _tags_page(form=form, status=400)
    try:
        tags.create_tag(
            kind=form.kind.data,
            name=form.name.data,
            code=form.code.data or None,
            is_quick=bool(form.is_quick.data),
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        form_error(form, exc)
        return _tags_page(form=form, status=exc.status)
    flash(_l("Tag created."), "success")
    return redirect(url_for("members_config.tag_library"))


@bp.post("/tags/<int:tag_id>")
@roles_required(*ADMIN)
def tag_edit(tag_id: int):
    tag = get_or_404(TagDefinition, tag_id)
    form = TagEditForm(prefix=f"t{tag.id}")
    if tag.is_system or not form.validate_on_submit():
        flash(
            _l("System tags cannot be edited.")
            if tag.is_system
            else _l("Please correct the tag's fields."),
            "error",
        )
        return _tags_page(status=400)
    try:
        tags.update_tag(
            tag_id=tag.id,
            name=form.name.data,
            kind=form.kind.data,
            is_quick=bool(form.is_quick.data),
            active=bool(form.active.data),
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _tags_page(status=exc.status)
    flash(_l("Tag saved."), "success")
    return redirect(url_for("members_config.tag_library"))


# --- store locations ----------------------------------------------------------------------------


def _locations_page(failed: tuple[int, StoreLocationForm] | None = None, status=200):
    located = store_locations.locations()
    stores = db.session.execute(select(Store).order_by(Store.code)).scalars().all()
    forms = {}
    for store in stores:
        if failed is not None and failed[0] == store.id:
            forms[store.id] = failed[1]
            continue
        lat, lng = located.get(store.id, (None, None))
        forms[store.id] = StoreLocationForm(
            formdata=None, prefix=f"s{store.id}", data={"lat": lat, "lng": lng}
        )
    return (
        render_template(
            "members/console/store_locations.html",
            stores=stores,
            located=located,
            forms=forms,
            clear_form=EmptyForm(formdata=None),
        ),
        status,
    )


@bp.get("/store-locations")
@roles_required(*ADMIN)
def store_locations_page():
    return _locations_page()


@bp.post("/store-locations/<int:store_id>")
@roles_required(*ADMIN)
def store_location_set(store_id: int):
    store = get_or_404(Store, store_id)
    form = StoreLocationForm(prefix=f"s{store.id}")
    if not form.validate_on_submit():
        db.session.rollback()
        return _locations_page(failed=(store.id, form), status=400)
    try:
        store_locations.set_store_location(
            store_id=store.id, lat=float(form.lat.data), lng=float(form.lng.data)
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        form_error(form, exc)
        return _locations_page(failed=(store.id, form), status=exc.status)
    flash(_l("%(store)s is on the map.", store=store.name), "success")
    return redirect(url_for("members_config.store_locations_page"))


@bp.post("/store-locations/<int:store_id>/clear")
@roles_required(*ADMIN)
def store_location_clear(store_id: int):
    store = get_or_404(Store, store_id)
    if not EmptyForm().validate_on_submit():
        db.session.rollback()
        return _locations_page(status=400)
    store_locations.clear_store_location(store_id=store.id)
    db.session.commit()
    flash(_l("%(store)s is off the map.", store=store.name), "success")
    return redirect(url_for("members_config.store_locations_page"))
