"""A guide's shop in the mini-program API: ``GET /api/mp/<brand_slug>/guide-shops/<scene>``
resolves the scene of the guide's mini-program code (``g=`` + the guide's token) to their
shop. With an activated member's session (``Authorization: Bearer``) the visit is recorded
and the brand's binding rules applied; without one the shop is shown all the same."""

from __future__ import annotations

from flask import Blueprint, Flask, request

from core import storage
from core.api import api_operation
from core.db import db
from core.errors import AppError
from guide_distribution import shops
from guide_distribution.schemas import GuideOut, GuideShopOut, ShopItemOut
from members import api as mp
from shop.api_catalog import absolute, image_urls
from shop.catalog_schemas import ProductCard

bp = mp.mp_blueprint(Blueprint("guide_shop_mp", __name__, url_prefix="/api/mp/<brand_slug>"))
PREFIX = mp.PREFIX


@bp.get("/guide-shops/<scene>")
@api_operation(
    "mp",
    "get",
    f"{PREFIX}/guide-shops/{{scene}}",
    summary="A guide's shop by the scene of their mini-program code; records the visit of the "
    "signed-in member",
    response=GuideShopOut,
    auth=False,
)
def guide_shop(scene: str):
    guide = shops.guide_of_scene(scene[:40])
    recorded = False
    if request.headers.get("Authorization"):
        try:
            member = mp.current_member()
        except AppError:
            member = None  # an expired session or a card not activated: browse as a guest
        if member is not None:
            shops.record_visit(member_id=member.id, guide_id=guide.id)
            db.session.commit()
            recorded = True
    profile = shops.profile_of(guide.id)
    items = [
        ShopItemOut(
            line=line.item.line,
            product=ProductCard(
                id=c.product.id,
                name=c.product.name,
                subtitle=c.product.subtitle or "",
                cover_url=(image_urls(c.product) or [None])[0],
                price_fen=c.price_fen,
                original_price_fen=c.original_price_fen,
                in_stock=c.in_stock,
                flash_sale=c.flash,
                category_id=c.product.category_id,
            ),
        )
        for line in shops.shop_lines(guide.id)
        for c in (line.card,)
    ]
    return GuideShopOut(
        guide=GuideOut(
            name=guide.name,
            store_name=guide.store.name if guide.store else None,
            intro=profile.intro if profile else "",
            photo_url=absolute(storage.url(profile.photo_key))
            if profile and profile.photo_key
            else None,
        ),
        items=items,
        visit_recorded=recorded,
    )


def init_app(app: Flask) -> None:
    mp.init_app(app, bp)
