"""Member pages of the catalog (H5, phone first): the product list by category and a
product's page with its SKU picker. Browsing needs no sign-in; the page's form posts the
chosen ``sku_id`` and ``quantity`` to the cart (``/m/<brand_slug>/shop/cart``), which asks
a guest to sign in."""

from __future__ import annotations

import json

from flask import Blueprint, abort, g, render_template, request
from flask_wtf import FlaskForm

from core.api import MAX_ID
from core.paging import keyset_page
from members.center import member_blueprint
from shop import catalog_queries as queries
from shop.api_catalog import stock_state
from shop.catalog import spec_text

bp = member_blueprint(Blueprint("shop_catalog_member", __name__, url_prefix="/m/<brand_slug>/shop"))
PER_PAGE = 20


class CartForm(FlaskForm):
    pass


def cart_url() -> str:
    """The order core's cart endpoint: a fixed URL (see the shop's contract)."""
    return f"{request.script_root}/m/{g.brand.slug}/shop/cart"


@bp.get("")
def product_list():
    category_id = request.args.get("category", type=int)
    if category_id is not None and not 0 < category_id <= MAX_ID:
        category_id = None
    page = keyset_page(
        queries.listed_products(category_id=category_id),
        order=queries.LISTING_ORDER,
        per_page=PER_PAGE,
        after=request.args.get("after"),
        count=False,
    )
    return render_template(
        "shop/member/product_list.html",
        cards=queries.cards(page.items),
        page=page,
        categories=queries.categories(active_only=True),
        category_id=category_id,
    )


@bp.get("/products/<int:product_id>")
def product_detail(product_id: int):
    detail = queries.product_detail(product_id)
    if detail is None:
        abort(404)
    p, skus, flash = detail
    choices = [
        {
            "id": s.id,
            "spec": {str(k): str(v) for k, v in (s.spec or {}).items()},
            "text": spec_text(s.spec),
            "price_fen": flash[s.id].price_fen if s.id in flash else s.price_fen,
            "original_fen": s.price_fen if s.id in flash else s.original_price_fen,
            "stock": s.stock,
            "state": stock_state(s.stock),
            "flash_ends": flash[s.id].ends_at.isoformat() if s.id in flash else None,
            "flash_limit": flash[s.id].per_member_limit if s.id in flash else None,
        }
        for s in skus
    ]
    first = next((c for c in choices if c["stock"] > 0), choices[0] if choices else None)
    return render_template(
        "shop/member/product_detail.html",
        product=p,
        choices=choices,
        # inside <script>: no "<" that could close it
        choices_json=json.dumps(choices, ensure_ascii=False).replace("<", "\\u003c"),
        specs=queries.spec_options(skus),
        selected=first,
        form=CartForm(),
        cart_url=cart_url(),
        low_stock=queries.LOW_STOCK,
    )
