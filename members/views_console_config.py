"""Console configuration of members: tier levels and settings, the tag library, the store map.

A form that fails is shown again in place with its errors (status 400, or the domain
error's status); nothing is written.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from wtforms import ValidationError

from core.auth import roles_required
from core.console import nav_item, save_form
from core.db import db
from core.errors import ValidationError as FormValidationError
from core.formfields import permille_to_times
from core.tenancy import get_or_404
from members import store_locations
from members.forms import (
    EmptyForm,
    LevelEditForm,
    LevelForm,
    StoreLocationForm,
    TagEditForm,
    TagForm,
    TierSettingsForm,
)
from members.models import TAG_KINDS, TagDefinition, TierLevel
from members.tiers_tags import tags, tiers
from org.models import Store
from org.services import list_stores
from org.views_console import register_store_panel

bp = Blueprint("members_config", __name__, url_prefix="/console/members")
ADMIN = ("brand_admin",)

nav_item("members_config.tier_levels", _l("Tiers"), group="members", roles=ADMIN, order=22)
nav_item("members_config.tag_library", _l("Tags"), group="members", roles=ADMIN, order=23)
nav_item(
    "members_config.store_locations_page", _l("Store map"), group="stores", roles=ADMIN, order=15
)


# --- tiers --------------------------------------------------------------------------------------


def _tiers_page(form=None, settings_form=None, failed=None, status=200):
    """The tiers page; ``failed`` is (level id, its edit form) to show with its errors."""
    if settings_form is None:
        settings_form = TierSettingsForm(obj=tiers.get_settings(), formdata=None)
    levels = tiers.list_levels(include_inactive=True)
    basis = tiers.get_settings().basis
    edit_forms = {}
    for lv in levels:
        ef = edit_forms[lv.id] = LevelEditForm(obj=lv, formdata=None, prefix=f"l{lv.id}")
        ef.threshold.show(lv.threshold, basis)
        ef.points_multiplier.data = permille_to_times(lv.points_multiplier_permille)
    if failed is not None:
        edit_forms[failed[0]] = failed[1]
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


def _threshold(form) -> int:
    """The typed threshold in the brand's basis (fen of spend or growth value)."""
    try:
        return form.threshold.value(tiers.get_settings().basis)
    except ValidationError as exc:
        raise FormValidationError(str(exc), field="threshold") from exc


def _tiers_url(_result=None) -> str:
    return url_for("members_config.tier_levels")


@bp.route("/tiers", methods=["GET", "POST"])
@roles_required(*ADMIN)
def tier_levels():
    form = LevelForm()
    done = save_form(
        form,
        lambda: tiers.create_level(
            code=form.code.data,
            name=form.name.data,
            rank=form.rank.data,
            threshold=_threshold(form),
            points_multiplier_permille=form.points_multiplier.permille,
            birthday_gift=form.birthday_gift.data or "",
        ),
        saved=_l("Level created."),
        then=_tiers_url,
    )
    if done.response is not None:
        return done.response
    return _tiers_page(form=form, status=done.status)


@bp.post("/tiers/<int:level_id>")
@roles_required(*ADMIN)
def tier_level_edit(level_id: int):
    level = get_or_404(TierLevel, level_id)
    form = LevelEditForm(prefix=f"l{level.id}")
    done = save_form(
        form,
        lambda: tiers.update_level(
            level_id=level.id,
            name=form.name.data.strip(),
            threshold=_threshold(form),
            points_multiplier_permille=form.points_multiplier.permille,
            birthday_gift=form.birthday_gift.data or "",
            active=bool(form.active.data),
        ),
        saved=_l("Level saved."),
        then=_tiers_url,
    )
    if done.response is not None:
        return done.response
    return _tiers_page(failed=(level.id, form), status=done.status)


@bp.post("/tiers/settings")
@roles_required(*ADMIN)
def tier_settings():
    form = TierSettingsForm()
    done = save_form(
        form,
        lambda: tiers.update_settings(
            basis=form.basis.data,
            review_month=form.review_month.data,
            review_day=form.review_day.data,
            growth_per_yuan=form.growth_per_yuan.data,
        ),
        saved=_l("Saved."),
        then=_tiers_url,
    )
    if done.response is not None:
        return done.response
    return _tiers_page(settings_form=form, status=done.status)


# --- tag library --------------------------------------------------------------------------------


def _tags_page(form=None, failed=None, status=200):
    """The tag library; ``failed`` is (tag id, its edit form) to show with its errors."""
    library = tags.list_tags(include_inactive=True)
    edit_forms = {
        t.id: TagEditForm(obj=t, formdata=None, prefix=f"t{t.id}")
        for t in library
        if not t.is_system
    }
    if failed is not None:
        edit_forms[failed[0]] = failed[1]
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


def _tags_url(_result=None) -> str:
    return url_for("members_config.tag_library")


@bp.route("/tags", methods=["GET", "POST"])
@roles_required(*ADMIN)
def tag_library():
    form = TagForm()
    done = save_form(
        form,
        lambda: tags.create_tag(
            kind=form.kind.data,
            name=form.name.data,
            code=form.code.data or None,
            is_quick=bool(form.is_quick.data),
        ),
        saved=_l("Tag created."),
        then=_tags_url,
    )
    if done.response is not None:
        return done.response
    return _tags_page(form=form, status=done.status)


@bp.post("/tags/<int:tag_id>")
@roles_required(*ADMIN)
def tag_edit(tag_id: int):
    tag = get_or_404(TagDefinition, tag_id)
    if tag.is_system:
        flash(_l("System tags cannot be edited."), "error")
        return _tags_page(status=400)
    form = TagEditForm(prefix=f"t{tag.id}")
    done = save_form(
        form,
        lambda: tags.update_tag(
            tag_id=tag.id,
            name=form.name.data,
            kind=form.kind.data,
            is_quick=bool(form.is_quick.data),
            active=bool(form.active.data),
        ),
        saved=_l("Tag saved."),
        then=_tags_url,
    )
    if done.response is not None:
        return done.response
    return _tags_page(failed=(tag.id, form), status=done.status)


# --- store locations ----------------------------------------------------------------------------
# The coordinate picker (one field for what a map's coordinate picker gives, a preview on an
# offline map of China drawn by the vendored ECharts) lives on the store map page, on each
# store's location page and, through org's store panels, on the store's own page.


_LNG_LAT = {"lng": "{lng}", "lat": "{lat}"}  # filled in by the script


def _map_config(*, located, stores, current: Store | None, picker: bool) -> dict:
    """What static/console/storemap.js draws: the brand's stores as dots, ``current`` marked."""
    dots = []
    for store in stores:
        if store.id not in located or (current is not None and store.id == current.id):
            continue
        lat, lng = located[store.id]
        url = url_for("org.store_edit", store_id=store.id, _anchor="location")
        dots.append({"name": store.name, "city": store.city, "lng": lng, "lat": lat, "url": url})
    here = located.get(current.id) if current is not None else None
    return {
        "geo": url_for("static", filename="vendor/echarts-map-china-4.9.0.json"),
        "cities": url_for("static", filename="vendor/echarts-map-china-cities-4.9.0.json"),
        "stores": dots,
        "current": (
            {"name": current.name, "city": current.city, "lat": here[0], "lng": here[1]}
            if here
            else ({"name": current.name, "city": current.city} if current is not None else None)
        ),
        "picker": picker,
        "text": {
            **{key: str(text) for key, text in store_locations.MESSAGES.items()},
            "marked": str(_l("On the map: longitude %(lng)s, latitude %(lat)s.", **_LNG_LAT)),
            "failed": str(_l("The map could not be loaded; the coordinates can still be saved.")),
        },
    }


def _location_form(store: Store, located, form: StoreLocationForm | None = None, back=""):
    if form is None:
        here = located.get(store.id)
        text = store_locations.format_coordinates(*here) if here else ""
        form = StoreLocationForm(formdata=None, data={"coords": text, "back": back})
    return form


def _picker_context(store: Store, *, form=None, back="", can_edit=True) -> dict:
    located = store_locations.locations()
    if not can_edit:  # a store manager sees their own store only
        located = {k: v for k, v in located.items() if k == store.id}
    stores = list_stores() if can_edit else [store]
    return {
        "store": store,
        "form": _location_form(store, located, form, back),
        "located": located.get(store.id),
        "map_config": _map_config(located=located, stores=stores, current=store, picker=can_edit),
        "can_edit": can_edit,
    }


def _store_panel(*, store: Store, can_edit: bool):
    """The store's location on its own page (org's store form)."""
    return render_template(
        "members/console/_location_picker.html",
        **_picker_context(store, back="store", can_edit=can_edit),
    )


register_store_panel(_store_panel)


def _locations_url(_result=None) -> str:
    return url_for("members_config.store_locations_page")


@bp.get("/store-locations")
@roles_required(*ADMIN)
def store_locations_page():
    located = store_locations.locations()
    stores = list_stores()
    return render_template(
        "members/console/store_locations.html",
        stores=stores,
        located=located,
        coords={sid: store_locations.format_coordinates(*ll) for sid, ll in located.items()},
        cities=sorted({s.city for s in stores if s.id in located and s.city}),
        map_config=_map_config(located=located, stores=stores, current=None, picker=False),
        clear_form=EmptyForm(formdata=None),
    )


@bp.route("/store-locations/<int:store_id>", methods=["GET", "POST"])
@roles_required(*ADMIN)
def store_location_set(store_id: int):
    store = get_or_404(Store, store_id)
    form = StoreLocationForm()
    back = form.back.data if form.back.data == "store" else ""
    done = save_form(
        form,
        lambda: store_locations.set_store_location(
            store_id=store.id, lat=form.parsed[0], lng=form.parsed[1]
        ),
        saved=_l("%(store)s is on the map.", store=store.name),
        then=lambda _row: (
            url_for("org.store_edit", store_id=store.id, _anchor="location")
            if back
            else _locations_url()
        ),
    )
    if done.response is not None:
        return done.response
    return render_template(
        "members/console/store_location.html",
        **_picker_context(store, form=form if request.method == "POST" else None, back=back),
    ), done.status


@bp.post("/store-locations/<int:store_id>/clear")
@roles_required(*ADMIN)
def store_location_clear(store_id: int):
    store = get_or_404(Store, store_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    store_locations.clear_store_location(store_id=store.id)
    db.session.commit()
    flash(_l("%(store)s is off the map.", store=store.name), "success")
    return redirect(_locations_url())
