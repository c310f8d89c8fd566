"""The member center's points page: balance, pending points, history with reasons, and
what expires when."""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request
from flask_babel import lazy_gettext as _l

from core.tenancy import set_brand
from members import session as member_session
from members.web_member import register_center_slot
from org.models import Brand
from points import queries

bp = Blueprint("points_member", __name__, url_prefix="/m/<brand_slug>")


@bp.url_value_preprocessor
def _load_brand(_endpoint, values):
    brand = Brand.by_slug((values or {}).pop("brand_slug", "") or "")
    if brand is None or not brand.active:
        abort(404)
    g.brand, g.brand_id, g.brand_tz = brand, brand.id, brand.timezone
    g._brand_token = set_brand(brand.id)


@bp.url_defaults
def _add_brand(endpoint, values):
    if "brand_slug" not in values and g.get("brand") is not None:
        values["brand_slug"] = g.brand.slug


@bp.get("/points")
def my_points():
    member_id = member_session.current_member_id()
    if member_id is None:
        abort(401)
    page = request.args.get("page", 1, type=int)
    return render_template(
        "points/member/points.html",
        balance=queries.balance(member_id),
        history=queries.history(member_id, page=max(1, page or 1)),
        expiring=queries.expiring_soon(member_id),
    )


def init_app(app) -> None:
    app.register_blueprint(bp)
    register_center_slot("points", _l("My points"), "points_member.my_points", order=10)
