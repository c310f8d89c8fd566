"""A member's cart: SKUs with quantities (1-99) and the price the member saw when adding.

Every SKU must be one of the current brand's, active and on sale; another brand's SKU is as
unknown as a missing one (404). Adding a SKU already in the cart adds to its quantity in one
statement (``ON CONFLICT ... DO UPDATE ... WHERE`` the sum stays within 99).
"""

from __future__ import annotations

import dataclasses

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select, text

from core.db import db, utcnow
from core.errors import Conflict, NotFound, ValidationError
from core.tenancy import require_brand_id
from shop.models import CartItem, Product, Sku

MAX_QUANTITY = 99
MAX_LINES = 50


def check_quantity(value, field: str = "quantity") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_QUANTITY:
        raise ValidationError(
            _l("The quantity must be a whole number from 1 to %(n)d.", n=MAX_QUANTITY),
            field=field,
        )
    return value


def buyable_sku(sku_id, field: str = "sku_id") -> tuple[Sku, Product]:
    """The current brand's SKU and its product, active and on sale (NotFound otherwise)."""
    if not isinstance(sku_id, int) or isinstance(sku_id, bool) or not 0 < sku_id < 2**63:
        raise NotFound(_l("This product is not available."), field=field)
    row = db.session.execute(
        select(Sku, Product).join(Product, Product.id == Sku.product_id).where(Sku.id == sku_id)
    ).first()
    if row is None:
        raise NotFound(_l("This product is not available."), field=field)
    sku, product = row
    if not sku.active or not product.on_sale:
        raise Conflict(_l("This product is no longer on sale."), field=field, code="off_sale")
    return sku, product


_ADD = text(
    "INSERT INTO shop_cart_item AS c (brand_id, member_id, sku_id, quantity, seen_price_fen,"
    " added_at) VALUES (:b, :m, :s, :q, :p, :now)"
    " ON CONFLICT (member_id, sku_id) DO UPDATE SET quantity = c.quantity + EXCLUDED.quantity,"
    " seen_price_fen = EXCLUDED.seen_price_fen, added_at = EXCLUDED.added_at"
    " WHERE c.quantity + EXCLUDED.quantity <= :max"
    " RETURNING id"
)


def add(*, member_id: int, sku_id: int, quantity: int) -> CartItem:
    """Put ``quantity`` more of a SKU in the member's cart (at its current price)."""
    check_quantity(quantity)
    sku, _product = buyable_sku(sku_id)
    lines = db.session.execute(
        select(CartItem.sku_id).where(CartItem.member_id == member_id)
    ).scalars()
    lines = set(lines)
    if sku.id not in lines and len(lines) >= MAX_LINES:
        raise Conflict(_l("The cart is full."), field="sku_id", code="cart_full")
    db.session.flush()
    item_id = db.session.execute(
        _ADD,
        {
            "b": require_brand_id(),
            "m": member_id,
            "s": sku.id,
            "q": quantity,
            "p": sku.price_fen,
            "now": utcnow(),
            "max": MAX_QUANTITY,
        },
    ).scalar()
    if item_id is None:
        raise ValidationError(
            _l("At most %(n)d of one item fit in the cart.", n=MAX_QUANTITY), field="quantity"
        )
    item = db.session.get(CartItem, item_id, populate_existing=True)
    return item


def _item(member_id: int, sku_id: int) -> CartItem:
    item = db.session.execute(
        select(CartItem).where(CartItem.member_id == member_id, CartItem.sku_id == sku_id)
    ).scalar_one_or_none()
    if item is None:
        raise NotFound(_l("This item is not in the cart."), field="sku_id")
    return item


def update(*, member_id: int, sku_id: int, quantity: int) -> CartItem:
    """Set the quantity of a SKU in the cart (the price seen is refreshed)."""
    check_quantity(quantity)
    item = _item(member_id, sku_id)
    sku, _product = buyable_sku(sku_id)
    item.quantity = quantity
    item.seen_price_fen = sku.price_fen
    db.session.flush()
    return item


def remove(*, member_id: int, sku_ids: list[int]) -> int:
    """Take SKUs out of the cart; returns how many lines went."""
    if not sku_ids:
        return 0
    return db.session.execute(
        delete(CartItem)
        .where(CartItem.member_id == member_id, CartItem.sku_id.in_(sku_ids))
        .execution_options(synchronize_session=False)
    ).rowcount


@dataclasses.dataclass(frozen=True)
class CartLine:
    sku_id: int
    product_id: int
    name: str
    spec_text: str
    image: str | None
    quantity: int
    seen_price_fen: int
    price_fen: int
    buyable: bool

    @property
    def price_changed(self) -> bool:
        return self.seen_price_fen != self.price_fen

    @property
    def amount_fen(self) -> int:
        return self.price_fen * self.quantity


def spec_text(spec: dict | None) -> str:
    return " ".join(str(v) for v in (spec or {}).values())[:120]


def lines(*, member_id: int) -> list[CartLine]:
    """The member's cart, newest first, with each SKU's current price and whether it can
    still be bought."""
    rows = db.session.execute(
        select(CartItem, Sku, Product)
        .join(Sku, Sku.id == CartItem.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .where(CartItem.member_id == member_id)
        .order_by(CartItem.added_at.desc(), CartItem.id.desc())
    ).all()
    return [
        CartLine(
            sku_id=sku.id,
            product_id=product.id,
            name=product.name,
            spec_text=spec_text(sku.spec),
            image=(product.images or [None])[0],
            quantity=item.quantity,
            seen_price_fen=item.seen_price_fen,
            price_fen=sku.price_fen,
            buyable=sku.active and product.on_sale,
        )
        for item, sku, product in rows
    ]
