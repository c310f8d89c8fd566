"""The guide's "my shop & share tools" in the workbench (phone first): the face picture and
intro, the products picked from the catalog with a line about each, the share link and the
poster with the shop's mini-program code."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from core import storage
from core.auth import has_role, roles_required
from core.console import form_error
from core.db import db
from core.errors import AppError
from guide_distribution import posters, shops
from guide_distribution.forms import EmptyForm, ItemForm, ProfileForm
from guide_distribution.models import GuideShopItem
from org.models import Brand
from wechat import gateway

bp = Blueprint("guide_workbench_shop", __name__, url_prefix="/console/workbench/shop")
GUIDE = ("guide",)
ROLES = ("brand_admin", "store_manager", "guide")


def _share_url() -> str:
    brand = db.session.get(Brand, current_user.brand_id)
    return url_for(
        "guide_member_shop.shop",
        brand_slug=brand.slug,
        token=shops.share_token(current_user.id),
        _external=True,
    )


def _render(*, profile_form=None, status: int = 200):
    profile = shops.ensure_profile(guide_id=current_user.id)
    db.session.commit()  # the profile (and its token) is made once, on the first visit
    if profile_form is None:
        profile_form = ProfileForm(data={"intro": profile.intro})
    return render_template(
        "guide_distribution/workbench/shop.html",
        profile=profile,
        photo_url=storage.url(profile.photo_key) if profile.photo_key else None,
        lines=shops.shop_lines(current_user.id),
        share_url=_share_url(),
        profile_form=profile_form,
        item_form=ItemForm(),
        form=EmptyForm(),
    ), status


@bp.get("")
@roles_required(*GUIDE)
def index():
    return _render()


@bp.post("/profile")
@roles_required(*GUIDE)
def profile():
    form = ProfileForm()
    if not form.validate_on_submit():
        return _render(profile_form=form, status=400)
    upload = form.photo.data
    photo = upload.read() if upload and getattr(upload, "filename", "") else None
    try:
        shops.update_profile(guide_id=current_user.id, intro=form.intro.data or "", photo=photo)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        form_error(form, exc)
        return _render(profile_form=form, status=exc.status)
    flash(_l("Saved."), "success")
    return redirect(url_for(".index"), 303)


@bp.get("/products")
@roles_required(*GUIDE)
def pick():
    q = (request.args.get("q") or "").strip()[:60]
    picked = {line.item.product_id for line in shops.shop_lines(current_user.id)}
    return render_template(
        "guide_distribution/workbench/pick.html",
        q=q,
        products=shops.search_products(q),
        picked=picked,
        form=ItemForm(),
    )


@bp.post("/items")
@roles_required(*GUIDE)
def add_item():
    form = ItemForm()
    product_id = request.form.get("product_id", type=int)
    if not form.validate_on_submit() or not product_id:
        flash(_l("Write at most 120 characters."), "error")
        return redirect(url_for(".pick"), 303)
    try:
        shops.add_item(guide_id=current_user.id, product_id=product_id, line=form.line.data or "")
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for(".pick"), 303)
    flash(_l("Added to your shop."), "success")
    return redirect(url_for(".index"), 303)


@bp.post("/items/<int:item_id>")
@roles_required(*ROLES)
def edit_item(item_id: int):
    # Another brand's item is unknown here (404) whoever asks; only its guide may change it.
    if (
        db.session.execute(select(GuideShopItem.id).where(GuideShopItem.id == item_id)).first()
        is None
    ):
        abort(404)
    if not has_role(*GUIDE):
        abort(403)
    form = ItemForm()
    action = request.form.get("action", "save")
    if not form.validate_on_submit():
        flash(_l("Write at most 120 characters."), "error")
        return redirect(url_for(".index"), 303)
    try:
        if action == "remove":
            shops.remove_item(guide_id=current_user.id, item_id=item_id)
        elif action in ("up", "down"):
            shops.move_item(guide_id=current_user.id, item_id=item_id, up=action == "up")
        else:
            shops.update_item(guide_id=current_user.id, item_id=item_id, line=form.line.data)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        if exc.status == 404:
            abort(404)
        flash(exc.message, "error")
    return redirect(url_for(".index"), 303)


@bp.post("/code")
@roles_required(*GUIDE)
def make_code():
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        shops.ensure_wxacode(guide_id=current_user.id)
        db.session.commit()
    except gateway.NotConfigured:
        db.session.rollback()
        flash(_l("The mini-program is not set up yet: ask your brand admin."), "error")
    except gateway.WeChatError:
        db.session.rollback()
        flash(_l("WeChat could not make the code now. Please try again later."), "error")
    else:
        flash(_l("Your poster is ready."), "success")
    return redirect(url_for(".index"), 303)


@bp.get("/poster.png")
@roles_required(*GUIDE)
def poster():
    profile = shops.profile_of(current_user.id)
    if profile is None or not profile.wxacode_key:
        abort(404)
    brand = db.session.get(Brand, current_user.brand_id)
    store = current_user.store
    png = posters.render(
        brand=(brand.name, brand.slug),
        name=(current_user.name, f"Guide {current_user.id}"),
        store=(store.name if store else "", store.code if store else ""),
        intro=(profile.intro, ""),
        call_to_action=(gettext("Scan to visit my shop"), "Scan to visit my shop"),
        photo=storage.open(profile.photo_key) if profile.photo_key else None,
        code_png=storage.open(profile.wxacode_key),
    )
    download = request.args.get("download") == "1"
    headers = {"Cache-Control": "private, max-age=60"}
    if download:
        headers["Content-Disposition"] = "attachment; filename=my-shop-poster.png"
    return Response(png, mimetype="image/png", headers=headers)
