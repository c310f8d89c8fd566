"""The console page of the shop rules (brand admins): points at checkout, payment time,
delivery and pick-up, shipping fees, completion and the after-sale window."""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from core.auth import roles_required
from core.console import nav_item, save_form
from core.formfields import fen_to_yuan
from shop import settings as shop_settings
from shop.forms_settings import ShopSettingsForm

bp = Blueprint("shop_settings", __name__, url_prefix="/console/shop")
nav_item("shop_settings.edit", _l("Shop rules"), group="shop", roles=("brand_admin",), order=99)


def _regions_text(regions: dict) -> str:
    return "\n".join(f"{name} {fen_to_yuan(fen)}" for name, fen in (regions or {}).items())


@bp.route("/settings", methods=["GET", "POST"])
@roles_required("brand_admin")
def edit():
    current = shop_settings.get_settings()
    form = ShopSettingsForm(obj=current if request.method == "GET" else None)
    if request.method == "GET":
        form.shipping_fee.data = fen_to_yuan(current.shipping_fee_fen)
        form.free_shipping.data = fen_to_yuan(current.free_shipping_fen)
        form.shipping_by_region.data = _regions_text(current.shipping_by_region)
    done = save_form(
        form,
        lambda: shop_settings.update_settings(
            points_per_yuan=form.points_per_yuan.data,
            max_points_percent=form.max_points_percent.data,
            pay_timeout_minutes=form.pay_timeout_minutes.data,
            allow_delivery=form.allow_delivery.data,
            allow_pickup=form.allow_pickup.data,
            shipping_fee_fen=form.shipping_fee.fen,
            free_shipping_fen=form.free_shipping.fen,
            shipping_by_region=shop_settings.parse_regions(form.shipping_by_region.data or ""),
            auto_receive_days=form.auto_receive_days.data,
            auto_complete_days=form.auto_complete_days.data,
            return_window_days=form.return_window_days.data,
        ),
        saved=_l("Saved."),
        then=lambda _row: url_for("shop_settings.edit"),
    )
    if done.response:
        return done.response
    return render_template("shop/console/settings.html", form=form), done.status
