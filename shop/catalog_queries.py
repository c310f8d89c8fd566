"""Catalog reads for the console, the member pages and the mini-program API.

Every statement is an ORM select of brand-scoped models: the current brand filters it, so
another brand's product is simply not found.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import Select, func, or_, select

from core.api import MAX_ID
from core.db import db, utcnow
from core.paging import Key
from shop.models import Category, FlashSale, Product, Sku

LOW_STOCK = 5  # at or under this, the console highlights a SKU and the member page says so
# The member list: larger sort numbers first, then newest (ix_shop_product_listing).
LISTING_ORDER = (Key(Product.sort, descending=True), Key(Product.id, descending=True))
CONSOLE_ORDER = (Key(Product.id, descending=True),)


def categories(*, active_only: bool = False) -> list[Category]:
    stmt = select(Category).order_by(Category.sort.desc(), Category.id)
    if active_only:
        stmt = stmt.where(Category.active.is_(True))
    return list(db.session.scalars(stmt))


def category_names() -> dict[int, str]:
    return {c.id: c.name for c in categories()}


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def console_products(
    *, q: str = "", category_id: int | None = None, on_sale: bool | None = None
) -> Select:
    """The console's product list: by name (part of it) or product / SKU code (exact)."""
    stmt = select(Product)
    q = (q or "").strip()[:60]
    if q:
        by_sku = select(Sku.product_id).where(Sku.code == q)
        stmt = stmt.where(
            or_(Product.name.ilike(_like(q)), Product.code == q, Product.id.in_(by_sku))
        )
    if category_id is not None:
        stmt = stmt.where(Product.category_id == category_id)
    if on_sale is not None:
        stmt = stmt.where(Product.on_sale.is_(on_sale))
    return stmt


def skus_by_product(product_ids: list[int], *, active_only: bool = False) -> dict[int, list[Sku]]:
    out: dict[int, list[Sku]] = {pid: [] for pid in product_ids}
    if not product_ids:
        return out
    stmt = select(Sku).where(Sku.product_id.in_(product_ids)).order_by(Sku.id)
    if active_only:
        stmt = stmt.where(Sku.active.is_(True))
    for sku in db.session.scalars(stmt):
        out[sku.product_id].append(sku)
    return out


def listed_products(*, category_id: int | None = None) -> Select:
    """What members browse: products on sale (of an active category, or none)."""
    stmt = select(Product).where(Product.on_sale.is_(True))
    if category_id is not None:
        stmt = stmt.where(Product.category_id == category_id)
    hidden = select(Category.id).where(Category.active.is_(False))
    return stmt.where(or_(Product.category_id.is_(None), Product.category_id.notin_(hidden)))


def running_flash_sales(sku_ids: list[int], *, now: dt.datetime | None = None) -> dict:
    """The flash sale running now for each SKU that has one (active, in its window)."""
    if not sku_ids:
        return {}
    now = now or utcnow()
    rows = db.session.scalars(
        select(FlashSale).where(
            FlashSale.sku_id.in_(sku_ids),
            FlashSale.active.is_(True),
            FlashSale.starts_at <= now,
            FlashSale.ends_at > now,
        )
    )
    return {fs.sku_id: fs for fs in rows}


def flash_sales() -> list[tuple[FlashSale, Sku, Product]]:
    """Every flash sale, newest first, with its SKU and product (the console page)."""
    rows = db.session.execute(
        select(FlashSale, Sku, Product)
        .join(Sku, Sku.id == FlashSale.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .order_by(FlashSale.id.desc())
        .limit(200)
    ).all()
    return [tuple(r) for r in rows]


def sku_choices() -> list[tuple[int, str]]:
    """Active SKUs as "product · spec (code)" for the flash-sale form."""
    rows = db.session.execute(
        select(Sku.id, Sku.code, Sku.spec, Product.name)
        .join(Product, Product.id == Sku.product_id)
        .where(Sku.active.is_(True))
        .order_by(Product.name, Sku.id)
        .limit(2000)
    ).all()
    from shop.catalog import spec_text

    return [
        (r.id, f"{r.name} · {spec_text(r.spec) or '-'} ({r.code})".replace(" · - ", " "))
        for r in rows
    ]


@dataclasses.dataclass
class Card:
    """A product as a list shows it: the lowest price of its SKUs on sale."""

    product: Product
    price_fen: int
    original_price_fen: int
    in_stock: bool
    flash: bool


def cards(products: list[Product], *, now: dt.datetime | None = None) -> list[Card]:
    skus = skus_by_product([p.id for p in products], active_only=True)
    flash = running_flash_sales([s.id for ss in skus.values() for s in ss], now=now)
    out = []
    for p in products:
        own = skus.get(p.id) or []
        prices = [flash[s.id].price_fen if s.id in flash else s.price_fen for s in own]
        originals = [s.original_price_fen for s in own if s.original_price_fen]
        out.append(
            Card(
                product=p,
                price_fen=min(prices) if prices else 0,
                original_price_fen=max(originals) if originals else 0,
                in_stock=any(s.stock > 0 for s in own),
                flash=any(s.id in flash for s in own),
            )
        )
    return out


def stock_total(product_id: int) -> int:
    return db.session.execute(
        select(func.coalesce(func.sum(Sku.stock), 0)).where(
            Sku.product_id == product_id, Sku.active.is_(True)
        )
    ).scalar_one()


def product_detail(product_id: int, *, now: dt.datetime | None = None):
    """A product members may see (on sale, its category shown) with its active SKUs and the
    flash sales running for them; None otherwise (another brand's id as well)."""
    if not isinstance(product_id, int) or not 0 < product_id <= MAX_ID:
        return None
    p = db.session.execute(listed_products().where(Product.id == product_id)).scalar_one_or_none()
    if p is None:
        return None
    skus = skus_by_product([p.id], active_only=True)[p.id]
    return p, skus, running_flash_sales([s.id for s in skus], now=now)


def spec_options(skus: list[Sku]) -> dict[str, list[str]]:
    """Each spec name with its values in the order the SKUs give them (a picker's rows)."""
    out: dict[str, list[str]] = {}
    for s in skus:
        for k, v in (s.spec or {}).items():
            values = out.setdefault(str(k), [])
            if str(v) not in values:
                values.append(str(v))
    return out
