"""A guide's shop as the customer sees it (H5, phone first, WeUI): the guide's face, name,
store and intro, and the products they picked with their lines, linking to the shop's
product pages. Opening it as a signed-in member records the visit and applies the binding
rules; a guest's open is remembered until their card is activated."""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template

from core import storage
from core.db import db
from core.errors import NotFound
from guide_distribution import receivers, shops
from members.center import member_blueprint
from members.session import current_member_id

bp = member_blueprint(Blueprint("guide_member_shop", __name__, url_prefix="/m/<brand_slug>/guide"))


@bp.get("/<token>")
def shop(token: str):
    if len(token) > 200:
        abort(404)
    try:
        guide = shops.guide_of_share_token(token)
    except NotFound:
        abort(404)
    member_id = current_member_id()
    if member_id is not None:
        shops.record_visit(member_id=member_id, guide_id=guide.id)
    else:
        receivers.remember_share(g.brand.id, guide.id)
    db.session.commit()
    profile = shops.profile_of(guide.id)
    return render_template(
        "guide_distribution/member/shop.html",
        guide=guide,
        store=guide.store,
        profile=profile,
        photo_url=storage.url(profile.photo_key) if profile and profile.photo_key else None,
        lines=shops.shop_lines(guide.id),
        signed_in=member_id is not None,
    )
