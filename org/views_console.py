"""Console pages for brands, stores and staff."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup

from core.auth import PLATFORM_ADMIN, PlatformAdmin, register_user_loader, roles_required
from core.console import nav_item, register_authenticator, save_form
from core.db import db
from core.paging import Key, page_from_request
from core.tenancy import get_or_404
from core.validators import mask_phone
from org import queries, services
from org.forms import ROLE_LABELS, BrandForm, EmptyForm, StaffForm, StoreForm
from org.models import Brand, Staff, Store

bp = Blueprint("org", __name__, url_prefix="/console")


# Sections other packages add to a store's own page, below its form (members: where the
# store is on the map): ``fn(store=, can_edit=)`` returns the section's HTML.
STORE_PANELS: list[Callable[..., str]] = []


def register_store_panel(fn: Callable[..., str]) -> None:
    """Show ``fn(store=store, can_edit=bool)`` on each store's page."""
    if fn not in STORE_PANELS:
        STORE_PANELS.append(fn)


register_user_loader("s", queries.staff_any_brand)
register_authenticator(queries.find_login)
register_authenticator(
    lambda slug, account: PlatformAdmin.by_username(account) if not slug else None
)


@bp.before_app_request
def _brand_timezone():
    bid = g.get("brand_id")
    # Member pages set the time zone from the brand they found in the cache.
    if bid is not None and "brand_tz" not in g:
        brand = db.session.get(Brand, bid)
        g.brand_tz = brand.timezone if brand else None
        g.brand_name = brand.name if brand else None


def topbar_name(user) -> str:
    """Who the top bar says is signed in: the staff's name; without one, their role's Chinese
    name and masked phone (a full phone never shows on a console page)."""
    if getattr(user, "is_platform_admin", False):
        return user.display_name
    name = (getattr(user, "name", "") or "").strip()
    if name:
        return name
    return f"{ROLE_LABELS.get(user.role, '')} {mask_phone(user.phone or '')}".strip()


@bp.app_template_global("roles_label")
def roles_label(role: str) -> str:
    return ROLE_LABELS.get(role, role)


bp.add_app_template_global(topbar_name, "topbar_name")


def _store_scope() -> int | None:
    """The one store a store manager or guide may see; None for brand-wide roles."""
    if current_user.is_platform_admin or current_user.role == "brand_admin":
        return None
    return current_user.store_id


# --- brands (platform admin) ---------------------------------------------------------------


@bp.route("/brands", methods=["GET", "POST"])
@roles_required(PLATFORM_ADMIN, need_brand=False)
def brands():
    form = EmptyForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        brand = db.session.get(Brand, request.form.get("brand_id", type=int) or 0)
        if brand is None:
            abort(404)
        session["brand_id"] = brand.id
        flash(_l("Now working on %(name)s.", name=brand.name), "success")
        return redirect(url_for("console.dashboard"))
    q = (request.args.get("q") or "").strip()
    page = page_from_request(
        queries.search_brands(q=q), order=(Key(Brand.slug), Key(Brand.id)), per_page=50
    )
    return render_template("org/console/brands.html", page=page, q=q, form=form)


@bp.route("/brand", methods=["GET", "POST"])
@roles_required("brand_admin")
def brand_settings():
    brand = db.session.get(Brand, g.brand_id)
    form = BrandForm(obj=brand if request.method == "GET" else None)
    if request.method == "GET":
        for secret_field in ("secret", "token", "aes_key", "mp_secret", "pay_private_key"):
            getattr(form, secret_field).data = ""
    done = save_form(
        form,
        lambda: services.update_brand_credentials(
            brand=brand,
            name=form.name.data,
            timezone=form.timezone.data.strip(),
            appid=(form.appid.data or "").strip(),
            secret=form.secret.data,
            token=form.token.data,
            aes_key=form.aes_key.data,
            message_mode=form.message_mode.data or None,
            mp_appid=(form.mp_appid.data or "").strip(),
            mp_secret=form.mp_secret.data,
            mch_id=(form.mch_id.data or "").strip(),
            pay_apiv3_key=form.pay_apiv3_key.data,
            pay_private_key=form.pay_private_key.data,
            pay_cert_serial_no=(form.pay_cert_serial_no.data or "").strip(),
            pay_public_key=form.pay_public_key.data,
            pay_public_key_id=(form.pay_public_key_id.data or "").strip(),
        ),
        saved=_l("Saved."),
        then=lambda _brand: url_for("org.brand_settings"),
    )
    if done.response:
        return done.response
    # Like the password fields, the private key is never sent back, even after an error (nor
    # one pasted into the public key's field by mistake).
    form.pay_private_key.data = ""
    if "PRIVATE KEY" in (form.pay_public_key.data or ""):
        form.pay_public_key.data = ""
    return render_template("org/console/brand_form.html", form=form, brand=brand), done.status


# --- stores --------------------------------------------------------------------------------


@bp.get("/stores")
@roles_required("brand_admin", "store_manager")
def stores():
    q = (request.args.get("q") or "").strip()
    page = page_from_request(
        queries.search_stores(q=q, store_id=_store_scope()),
        order=(Key(Store.code), Key(Store.id)),
        per_page=20,
    )
    return render_template("org/console/stores.html", page=page, q=q)


@bp.route("/stores/new", methods=["GET", "POST"])
@roles_required("brand_admin")
def store_new():
    form = StoreForm()
    done = save_form(
        form,
        lambda: services.create_store(
            code=form.code.data,
            name=form.name.data,
            city=form.city.data,
            region=form.region.data or "",
            address=form.address.data or "",
        ),
        saved=_l("Store created."),
        then=lambda _store: url_for("org.stores"),
    )
    if done.response:
        return done.response
    return render_template(
        "org/console/store_form.html", form=form, store=None, can_edit=True
    ), done.status


@bp.route("/stores/<int:store_id>", methods=["GET", "POST"])
@roles_required("brand_admin", "store_manager")
def store_edit(store_id: int):
    store = get_or_404(Store, store_id)
    scope = _store_scope()
    if scope is not None and scope != store.id:
        abort(404)
    form = StoreForm(obj=store)
    can_edit = scope is None
    if request.method == "POST" and not can_edit:
        abort(403)
    done = save_form(
        form,
        lambda: services.update_store(
            store=store,
            code=form.code.data,
            name=form.name.data,
            city=form.city.data,
            region=form.region.data or "",
            address=form.address.data or "",
            active=form.active.data,
        ),
        saved=_l("Saved."),
        then=lambda _store: url_for("org.stores"),
    )
    if done.response:
        return done.response
    staff = queries.store_staff(store.id)
    panels = [Markup(fn(store=store, can_edit=can_edit)) for fn in STORE_PANELS]  # noqa: S704 - rendered templates
    return render_template(
        "org/console/store_form.html",
        form=form,
        store=store,
        staff=staff,
        can_edit=can_edit,
        panels=panels,
    ), done.status


# --- staff ---------------------------------------------------------------------------------


def _staff_form(form: StaffForm, *, editing: Staff | None) -> StaffForm:
    scope = _store_scope()
    if scope is None:
        form.role.choices = [(k, v) for k, v in ROLE_LABELS.items()]
        form.store_id.choices = [("", "—")] + [
            (s.id, f"{s.code} {s.name}") for s in services.list_stores()
        ]
    else:  # a store manager manages the guides of their own store
        form.role.choices = [("guide", ROLE_LABELS["guide"])]
        store = db.session.get(Store, scope)
        form.store_id.choices = [(store.id, f"{store.code} {store.name}")]
    return form


@bp.get("/staff")
@roles_required("brand_admin", "store_manager")
def staff_list():
    q = (request.args.get("q") or "").strip()
    role = request.args.get("role") or None
    if role is not None and role not in ROLE_LABELS:
        abort(400)
    stmt = queries.search_staff(q=q, store_id=_store_scope(), role=role)
    page = page_from_request(
        stmt, order=(Key(Staff.role), Key(Staff.name), Key(Staff.id)), per_page=20
    )
    return render_template("org/console/staff.html", page=page, q=q, role=role, roles=ROLE_LABELS)


@bp.route("/staff/new", methods=["GET", "POST"])
@roles_required("brand_admin", "store_manager")
def staff_new():
    form = _staff_form(StaffForm(), editing=None)
    done = save_form(
        form,
        lambda: services.create_staff(
            name=form.name.data,
            phone=form.phone.data,
            role=form.role.data,
            store_id=form.store_id.data,
            password=form.password.data,
        ),
        saved=_l("Staff member added."),
        then=lambda _staff: url_for("org.staff_list"),
    )
    if done.response:
        return done.response
    return render_template("org/console/staff_form.html", form=form, staff=None), done.status


@bp.route("/staff/<int:staff_id>", methods=["GET", "POST"])
@roles_required("brand_admin", "store_manager")
def staff_edit(staff_id: int):
    staff = get_or_404(Staff, staff_id)
    scope = _store_scope()
    if scope is not None and (staff.store_id != scope or staff.role != "guide"):
        abort(404)
    form = _staff_form(StaffForm(obj=staff), editing=staff)
    if request.method == "GET":
        form.password.data = ""
    done = save_form(
        form,
        lambda: services.update_staff(
            staff=staff,
            name=form.name.data,
            phone=form.phone.data,
            role=form.role.data,
            store_id=form.store_id.data,
            active=form.active.data,
            password=form.password.data or None,
        ),
        saved=_l("Saved."),
        then=lambda _staff: url_for("org.staff_list"),
    )
    if done.response:
        return done.response
    return render_template("org/console/staff_form.html", form=form, staff=staff), done.status


@bp.get("/me")
@roles_required("brand_admin", "store_manager", "guide")
def profile():
    if current_user.is_platform_admin:
        return redirect(url_for("org.brands"))
    return render_template("org/console/profile.html", staff=current_user)


nav_item(
    "org.stores", _l("Stores"), group="stores", roles=("brand_admin", "store_manager"), order=10
)
nav_item(
    "org.staff_list", _l("Staff"), group="stores", roles=("brand_admin", "store_manager"), order=20
)
nav_item(
    "org.profile", _l("My profile"), group="settings", roles=("store_manager", "guide"), order=80
)
nav_item(
    "org.brand_settings", _l("Brand settings"), group="settings", roles=("brand_admin",), order=85
)
nav_item("org.brands", _l("Brands"), group="settings", roles=(PLATFORM_ADMIN,), order=99)
