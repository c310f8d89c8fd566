"""Console pages of the catalog: products with their SKUs and images, categories, stock
adjustments, flash sales and the CSV import."""

from __future__ import annotations

import uuid
import zoneinfo

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core import storage
from core.api import MAX_ID
from core.auth import roles_required
from core.console import form_error, nav_item, save_form
from core.db import db
from core.errors import AppError, ValidationError
from core.formfields import fen_to_yuan
from core.paging import page_from_request
from core.tenancy import get_or_404, require_brand_id
from org.models import Brand
from shop import catalog, catalog_import
from shop import catalog_queries as queries
from shop.catalog_forms import (
    NO_CATEGORY,
    ActionForm,
    CategoryForm,
    FlashSaleForm,
    ImportForm,
    ProductForm,
    StockForm,
    sku_form_rows,
    sku_rows,
)
from shop.models import Category, FlashSale, Product, Sku

bp = Blueprint("shop_catalog_console", __name__, url_prefix="/console/shop")
ADMIN = ("brand_admin",)
PER_PAGE = 30
nav_item("shop_catalog_console.products", _l("Products"), group="shop", roles=ADMIN, order=70)
nav_item("shop_catalog_console.categories", _l("Categories"), group="shop", roles=ADMIN, order=71)
nav_item("shop_catalog_console.flash_sales", _l("Flash sales"), group="shop", roles=ADMIN, order=72)
nav_item(
    "shop_catalog_console.import_page", _l("Import products"), group="shop", roles=ADMIN, order=73
)


@bp.url_value_preprocessor
def _ids_in_range(_endpoint, values):
    """An id past BIGINT in the URL names no row: 404, not a database error."""
    if any(isinstance(v, int) and v > MAX_ID for v in (values or {}).values()):
        abort(404)


@bp.app_template_filter("yuan")
def _yuan(fen) -> str:
    return "¥" + fen_to_yuan(fen)


@bp.app_template_global("spec_text")
def _spec_text(spec) -> str:
    return catalog.spec_text(spec)


def _operator() -> str:
    return (getattr(current_user, "display_name", "") or str(current_user.id))[:120]


def _tz() -> zoneinfo.ZoneInfo:
    return db.session.get(Brand, require_brand_id()).tz


# --- products --------------------------------------------------------------------------------


@bp.get("/products")
@roles_required(*ADMIN)
def products():
    q = (request.args.get("q") or "").strip()
    category_id = request.args.get("category_id", type=int)
    if category_id is not None and not 0 < category_id <= MAX_ID:
        category_id = None
    on_sale = {"1": True, "0": False}.get(request.args.get("on_sale", ""))
    page = page_from_request(
        queries.console_products(q=q, category_id=category_id, on_sale=on_sale),
        order=queries.CONSOLE_ORDER,
        per_page=PER_PAGE,
    )
    return render_template(
        "shop/console/catalog_products.html",
        page=page,
        skus=queries.skus_by_product([p.id for p in page.items], active_only=True),
        categories=queries.categories(),
        category_names=queries.category_names(),
        q=q,
        category_id=category_id,
        on_sale=request.args.get("on_sale", ""),
        low_stock=queries.LOW_STOCK,
        stock_form=StockForm(),
        action_form=ActionForm(),
        request_key=uuid.uuid4().hex,
    )


def _image_prefix() -> str:
    return f"shop/b{require_brand_id()}"


def _store_uploads(form: ProductForm) -> list[str]:
    """Store the form's new images (checked and re-encoded) and give their keys."""
    keys = []
    for upload in form.new_images.data or []:
        if not getattr(upload, "filename", ""):
            continue
        try:
            key = storage.save_image(upload.read(), prefix=_image_prefix(), field="new_images")
        except storage.StorageError:
            raise ValidationError(
                _l("The image could not be stored just now. Try again in a moment."),
                field="new_images",
            ) from None
        keys.append(key)
    return keys


@bp.route("/products/new", methods=["GET", "POST"])
@bp.route("/products/<int:product_id>", methods=["GET", "POST"])
@roles_required(*ADMIN)
def product_edit(product_id: int | None = None):
    product = get_or_404(Product, product_id) if product_id else None
    form = ProductForm(obj=product)
    form.category_id.choices = [(NO_CATEGORY, gettext("None"))] + [
        (c.id, c.name) for c in queries.categories()
    ]
    existing = queries.skus_by_product([product.id])[product.id] if product else []
    rows = sku_form_rows(existing) or [
        {"id": None, "code": "", "spec": "", "price": "", "original": "", "stock": "", "errors": {}}
    ]
    images = list(product.images or []) if product else []
    status = 200
    if request.method == "GET" and product is not None:
        form.fill(product)
    if request.method == "POST":
        rows, sku_values = sku_rows(request.form)
        # The product's own images, or ones this brand uploaded with a form that then failed.
        own = f"{_image_prefix()}/"
        kept = [
            k
            for k in request.form.getlist("image")
            if k in images or (storage.is_key(k) and k.startswith(own))
        ]
        images = kept
        row_errors = any(r["errors"] for r in rows)
        if form.validate_on_submit() and not row_errors:
            try:
                images = kept + _store_uploads(form)
                values = form.values(images)
                if product is None:
                    saved = catalog.create_product(skus=sku_values, operator=_operator(), **values)
                else:
                    saved = catalog.update_product(
                        product_id=product.id, skus=sku_values, operator=_operator(), **values
                    )
                db.session.commit()
            except AppError as exc:
                db.session.rollback()
                status = exc.status
                _show_error(form, rows, exc)
            else:
                flash(_l("Saved."), "success")
                return redirect(url_for(".product_edit", product_id=saved.id))
        else:
            status = 400
            if row_errors and not form.errors:
                flash(_l("Check the SKU rows."), "error")
    return render_template(
        "shop/console/catalog_product_form.html",
        form=form,
        product=product,
        rows=rows,
        images=images,
        max_images=catalog.MAX_IMAGES,
    ), status


def _show_error(form, rows: list[dict], exc: AppError) -> None:
    """A service error on its field, or on its SKU row (``skus.<i>.<name>``)."""
    parts = (exc.field or "").split(".")
    if len(parts) == 3 and parts[0] == "skus" and parts[1].isdigit() and int(parts[1]) < len(rows):
        rows[int(parts[1])]["errors"][parts[2]] = exc.message
        flash(_l("Check the SKU rows."), "error")
        return
    if exc.field == "images":
        exc.field = "new_images"
    form_error(form, exc)


@bp.post("/products/<int:product_id>/on-sale")
@roles_required(*ADMIN)
def product_on_sale(product_id: int):
    product = get_or_404(Product, product_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    on = request.form.get("on_sale") == "1"
    try:
        catalog.set_on_sale(product_id=product.id, on_sale=on)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash(_l("Put on sale.") if on else _l("Taken off sale."), "success")
    return redirect(request.referrer or url_for(".products"), 303)


@bp.post("/skus/<int:sku_id>/stock")
@roles_required(*ADMIN)
def adjust_stock(sku_id: int):
    sku = get_or_404(Sku, sku_id)
    form = StockForm()
    back = request.form.get("back") or url_for(".products")
    if not back.startswith("/console/"):
        back = url_for(".products")
    if not form.validate_on_submit():
        errors = [e for errs in form.errors.values() for e in errs]
        flash(" ".join(str(e) for e in errors) or gettext("Check the form."), "error")
        return redirect(back, 303)
    try:
        changed = catalog.adjust_stock(
            sku_id=sku.id,
            delta=form.delta.data,
            note=form.note.data,
            operator=_operator(),
            idempotency_key=f"{current_user.id}:{form.request_key.data}",
        )
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(back, 303)
    if changed:
        flash(
            _l("Stock of %(code)s changed by %(n)+d.", code=sku.code, n=form.delta.data), "success"
        )
    return redirect(back, 303)


# --- categories ------------------------------------------------------------------------------


@bp.route("/categories", methods=["GET", "POST"])
@roles_required(*ADMIN)
def categories():
    form = CategoryForm()
    done = save_form(
        form,
        lambda: catalog.create_category(
            code=form.code.data,
            name=form.name.data,
            sort=form.sort.data or 0,
            active=form.active.data,
        ),
        saved=_l("Saved."),
        then=lambda _c: url_for(".categories"),
    )
    if done.response:
        return done.response
    return render_template(
        "shop/console/catalog_categories.html",
        form=form,
        rows=queries.categories(),
        action_form=ActionForm(),
    ), done.status


@bp.route("/categories/<int:category_id>", methods=["GET", "POST"])
@roles_required(*ADMIN)
def category_edit(category_id: int):
    cat = get_or_404(Category, category_id)
    form = CategoryForm(obj=cat)
    form.code.data = cat.code  # fixed once made: coupons and campaigns name it
    done = save_form(
        form,
        lambda: catalog.update_category(
            category_id=cat.id,
            name=form.name.data,
            sort=form.sort.data or 0,
            active=form.active.data,
        ),
        saved=_l("Saved."),
        then=lambda _c: url_for(".categories"),
    )
    if done.response:
        return done.response
    return render_template(
        "shop/console/catalog_category_form.html", form=form, cat=cat
    ), done.status


# --- flash sales -----------------------------------------------------------------------------


@bp.get("/flash-sales")
@roles_required(*ADMIN)
def flash_sales():
    from core.db import utcnow

    return render_template(
        "shop/console/catalog_flash_sales.html",
        rows=queries.flash_sales(),
        now=utcnow(),
        action_form=ActionForm(),
    )


@bp.route("/flash-sales/new", methods=["GET", "POST"])
@bp.route("/flash-sales/<int:flash_sale_id>", methods=["GET", "POST"])
@roles_required(*ADMIN)
def flash_sale_edit(flash_sale_id: int | None = None):
    fs = get_or_404(FlashSale, flash_sale_id) if flash_sale_id else None
    form = FlashSaleForm(obj=fs)
    form.sku_id.choices = queries.sku_choices()
    tz = _tz()
    if request.method == "GET" and fs is not None:
        form.fill(fs, tz)
    if request.method == "GET" and fs is None and request.args.get("sku_id", type=int):
        form.sku_id.data = request.args.get("sku_id", type=int)
    if fs is not None:
        form.sku_id.data = fs.sku_id  # a flash sale keeps its SKU
        if fs.sku_id not in dict(form.sku_id.choices):
            sku = db.session.get(Sku, fs.sku_id)
            form.sku_id.choices.append((fs.sku_id, sku.code))

    def save():
        if fs is None:
            return catalog.create_flash_sale(sku_id=form.sku_id.data, **form.values(tz))
        return catalog.update_flash_sale(flash_sale_id=fs.id, **form.values(tz))

    done = save_form(form, save, saved=_l("Saved."), then=lambda _fs: url_for(".flash_sales"))
    if done.response:
        return done.response
    return render_template(
        "shop/console/catalog_flash_sale_form.html", form=form, fs=fs
    ), done.status


@bp.post("/flash-sales/<int:flash_sale_id>/stop")
@roles_required(*ADMIN)
def flash_sale_stop(flash_sale_id: int):
    fs = get_or_404(FlashSale, flash_sale_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    catalog.stop_flash_sale(flash_sale_id=fs.id)
    db.session.commit()
    flash(_l("Flash sale stopped."), "success")
    return redirect(url_for(".flash_sales"), 303)


# --- import ----------------------------------------------------------------------------------


@bp.route("/import", methods=["GET", "POST"])
@roles_required(*ADMIN)
def import_page():
    form = ImportForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            upload = form.file.data
            try:
                token, result = catalog_import.start(
                    upload.read(), filename=(upload.filename or "")[:200], operator=_operator()
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
        "shop/console/catalog_import.html",
        form=form,
        columns=[catalog_import.column_title(c) for c in catalog_import.COLUMNS],
    ), status


@bp.get("/import/<token>")
@roles_required(*ADMIN)
def import_status(token: str):
    state = catalog_import.progress(token)
    if state is None:
        abort(404)
    return render_template("shop/console/catalog_import_status.html", state=state, token=token)


@bp.get("/import/<token>/errors.csv")
@roles_required(*ADMIN)
def import_errors(token: str):
    state = catalog_import.progress(token)
    if state is None or not state.get("errors"):
        abort(404)
    body = catalog_import.export_errors(state["errors"])
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=import-errors-{token[:8]}.csv"},
    )


@bp.get("/import/template.csv")
@roles_required(*ADMIN)
def import_template():
    header = ",".join(catalog_import.column_title(c) for c in catalog_import.COLUMNS)
    sample = "P1001,经典圆领T恤,tops,P1001-BK-M,颜色:黑;尺码:M,99.00,129.00,50,是"
    return Response(
        "\ufeff" + header + "\r\n" + sample + "\r\n",
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=products-template.csv"},
    )
