"""The catalog in the mini-program API (``/api/mp/<brand_slug>/products``,
``.../products/<id>``, documented in ``/api/mp/openapi.json``): browsing needs no session."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app

from core import storage
from core.api import api_operation
from core.errors import NotFound
from core.paging import keyset_page
from members import api as mp
from shop import catalog_queries as queries
from shop.catalog import spec_text
from shop.catalog_schemas import (
    CategoryOut,
    FlashSaleOut,
    ProductCard,
    ProductOut,
    ProductPage,
    ProductsQuery,
    SkuOut,
)
from shop.models import Product

bp = mp.mp_blueprint(Blueprint("shop_catalog_mp", __name__, url_prefix="/api/mp/<brand_slug>"))
PREFIX = mp.PREFIX


def absolute(url: str) -> str:
    """A mini-program needs whole URLs; the local store gives paths."""
    return current_app.config["PUBLIC_URL"] + url if url.startswith("/") else url


def image_urls(product: Product) -> list[str]:
    return [absolute(storage.url(k)) for k in product.images or [] if storage.is_key(k)]


def stock_state(n: int) -> str:
    return "sold_out" if n <= 0 else ("low" if n <= queries.LOW_STOCK else "in_stock")


@bp.get("/products")
@api_operation(
    "mp",
    "get",
    f"{PREFIX}/products",
    summary="Products on sale, larger sort first (keyset-paginated by `after`), and the categories",
    query=ProductsQuery,
    response=ProductPage,
    auth=False,
)
def products(query: ProductsQuery):
    page = keyset_page(
        queries.listed_products(category_id=query.category_id),
        order=queries.LISTING_ORDER,
        per_page=query.limit,
        after=query.after,
        count=False,
    )
    items = [
        ProductCard(
            id=c.product.id,
            name=c.product.name,
            subtitle=c.product.subtitle or "",
            cover_url=(image_urls(c.product) or [None])[0],
            price_fen=c.price_fen,
            original_price_fen=c.original_price_fen,
            in_stock=c.in_stock,
            flash_sale=c.flash,
            category_id=c.product.category_id,
        )
        for c in queries.cards(page.items)
    ]
    cats = [
        CategoryOut(id=c.id, code=c.code, name=c.name) for c in queries.categories(active_only=True)
    ]
    return ProductPage(items=items, categories=cats, next_after=page.older)


@bp.get("/products/<int:product_id>")
@api_operation(
    "mp",
    "get",
    f"{PREFIX}/products/{{product_id}}",
    summary="A product on sale with its SKUs, prices, stock and any running flash sale",
    response=ProductOut,
    auth=False,
)
def product(product_id: int):
    detail = queries.product_detail(product_id)
    if detail is None:
        raise NotFound("not found", field="product_id")
    p, skus, flash = detail
    out = []
    for s in skus:
        fs = flash.get(s.id)
        out.append(
            SkuOut(
                id=s.id,
                code=s.code,
                spec={str(k): str(v) for k, v in (s.spec or {}).items()},
                spec_text=spec_text(s.spec),
                price_fen=s.price_fen,
                original_price_fen=s.original_price_fen,
                stock=s.stock,
                stock_state=stock_state(s.stock),
                flash_sale=None
                if fs is None
                else FlashSaleOut(
                    id=fs.id,
                    price_fen=fs.price_fen,
                    per_member_limit=fs.per_member_limit,
                    remaining=max(0, fs.quantity - fs.sold),
                    ends_at=fs.ends_at,
                ),
            )
        )
    return ProductOut(
        id=p.id,
        code=p.code,
        name=p.name,
        subtitle=p.subtitle or "",
        description=p.description or "",
        category_id=p.category_id,
        image_urls=image_urls(p),
        limit_per_member=p.limit_per_member,
        specs=queries.spec_options(skus),
        skus=out,
    )


def init_app(app: Flask) -> None:
    mp.init_app(app, bp)
