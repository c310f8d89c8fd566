"""Catalog writes: categories, products (SPU) with their SKUs and images, on/off sale, stock
adjustments and flash sales. Services flush; the caller commits.

Stock never changes here by assignment: a new SKU's opening stock and every adjustment go
through ``shop.stock.change`` (a ledger entry plus a conditional UPDATE), so two operators
adjusting the same SKU at once both count and the stock never goes below zero. Selling a
flash sale belongs to the order core; this module only defines them.
"""

from __future__ import annotations

import datetime as dt
import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core import audit, storage
from core.db import db, utcnow
from core.errors import NotFound, ValidationError
from core.tenancy import require_brand_id
from core.validators import whole
from shop import flash, stock
from shop.models import Category, FlashSale, Product, Sku

MAX_FEN = 10**9  # the price columns are 32-bit integers
MAX_STOCK = 10**7
MAX_LIMIT = 999
MAX_SORT = 1_000_000
MAX_IMAGES = 9
MAX_SKUS = 100
MAX_SPEC_DIMENSIONS = 3
MAX_FLASH_DAYS = 31
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$")
SPEC_SEPARATORS = re.compile(r"[;；]")
SPEC_PAIR = re.compile(r"[:：]")


# --- small checks ------------------------------------------------------------------------------


_whole = whole


def _text(value, field: str, *, max_len: int, required: bool = False) -> str:
    value = (value or "").strip() if isinstance(value, str) or value is None else None
    if value is None:
        raise ValidationError(_l("This field is required."), field=field)
    if required and not value:
        raise ValidationError(_l("This field is required."), field=field)
    if len(value) > max_len:
        raise ValidationError(_l("At most %(n)d characters.", n=max_len), field=field)
    return value


def _code(value, field: str) -> str:
    value = _text(value, field, max_len=60, required=True)
    if not CODE_PATTERN.match(value):
        raise ValidationError(
            _l("Use letters, digits, dots, dashes and underscores (at most 60)."), field=field
        )
    return value


def _own(model, ident):
    """A row of the current brand by id, or None: the session's identity map answers
    without a query (so without the brand filter), hence the explicit check."""
    if not isinstance(ident, int) or isinstance(ident, bool) or not 0 < ident < 2**63:
        return None
    obj = db.session.get(model, ident)
    return obj if obj is not None and obj.brand_id == require_brand_id() else None


def _flush_unique(field: str, message) -> None:
    """Flush; a unique code taken meanwhile by another request answers on ``field``."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError as exc:
        if "unique" not in str(exc.orig).lower() and "duplicate" not in str(exc.orig).lower():
            raise
        raise ValidationError(message, field=field) from exc


def parse_spec(text: str | dict | None, *, field: str = "spec") -> dict[str, str]:
    """``颜色:黑;尺码:M`` (half- or full-width separators) as ``{"颜色": "黑", "尺码": "M"}``.

    An empty text is a product with one plain SKU (``{}``). At most three dimensions, each
    name and value 1-20 characters, no name twice.
    """
    if isinstance(text, dict):
        pairs = [(str(k), str(v)) for k, v in text.items()]
    else:
        pairs = []
        for part in SPEC_SEPARATORS.split((text or "").strip()):
            part = part.strip()
            if not part:
                continue
            bits = SPEC_PAIR.split(part, maxsplit=1)
            if len(bits) != 2:
                raise ValidationError(
                    _l("Write the spec as name:value;name:value, e.g. 颜色:黑;尺码:M."),
                    field=field,
                )
            pairs.append((bits[0], bits[1]))
    spec: dict[str, str] = {}
    for name, value in pairs:
        name, value = name.strip(), value.strip()
        if not name or not value or len(name) > 20 or len(value) > 20:
            raise ValidationError(
                _l("Each spec name and value has 1 to 20 characters."), field=field
            )
        if name in spec:
            raise ValidationError(_l("The spec names %(name)s twice.", name=name), field=field)
        spec[name] = value
    if len(spec) > MAX_SPEC_DIMENSIONS:
        raise ValidationError(
            _l("At most %(n)d spec dimensions.", n=MAX_SPEC_DIMENSIONS), field=field
        )
    return spec


def spec_text(spec: dict | None) -> str:
    """What a person reads: ``黑 / M``."""
    return " / ".join(str(v) for v in (spec or {}).values())


def spec_source(spec: dict | None) -> str:
    """The spec as it is typed: ``颜色:黑;尺码:M``."""
    return ";".join(f"{k}:{v}" for k, v in (spec or {}).items())


# --- categories ------------------------------------------------------------------------------


def get_category(category_id: int) -> Category:
    """A category of the current brand, or NotFound."""
    cat = _own(Category, category_id)
    if cat is None:
        raise NotFound(_l("No such category."), field="category_id")
    return cat


def create_category(*, code: str, name: str, sort: int = 0, active: bool = True) -> Category:
    """A new category; ``code`` is unique per brand and fixed once made."""
    code = _code(code, "code")
    name = _text(name, "name", max_len=60, required=True)
    _whole(sort, "sort", -MAX_SORT, MAX_SORT)
    taken = db.session.execute(select(Category.id).where(Category.code == code)).first()
    if taken:
        raise ValidationError(_l("This code is already used."), field="code")
    cat = Category(code=code, name=name, sort=sort, active=bool(active))
    db.session.add(cat)
    _flush_unique("code", _l("This code is already used."))
    return cat


def update_category(*, category_id: int, name: str, sort: int, active: bool) -> Category:
    """Rename, reorder, show or hide a category."""
    cat = get_category(category_id)
    cat.name = _text(name, "name", max_len=60, required=True)
    cat.sort = _whole(sort, "sort", -MAX_SORT, MAX_SORT)
    cat.active = bool(active)
    db.session.flush()
    return cat


# --- products and SKUs ---------------------------------------------------------------------


def get_product(product_id: int) -> Product:
    """A product of the current brand, or NotFound (another brand's id as well)."""
    p = _own(Product, product_id)
    if p is None:
        raise NotFound(_l("No such product."), field="product_id")
    return p


def get_sku(sku_id: int) -> Sku:
    """A SKU of the current brand, or NotFound."""
    s = _own(Sku, sku_id)
    if s is None:
        raise NotFound(_l("No such SKU."), field="sku_id")
    return s


def _product_values(
    *,
    code: str,
    name: str,
    category_id: int | None,
    subtitle: str,
    description: str,
    images: list[str],
    on_sale: bool,
    limit_per_member: int,
    promotion: bool,
    sort: int,
) -> dict:
    if category_id is not None:
        get_category(category_id)  # brand-scoped: another brand's category is unknown
    images = list(images or [])
    if len(images) > MAX_IMAGES:
        raise ValidationError(_l("At most %(n)d images.", n=MAX_IMAGES), field="images")
    if not all(storage.is_key(k) for k in images):
        raise ValidationError(storage.BAD_IMAGE, field="images")
    return {
        "code": _code(code, "code"),
        "name": _text(name, "name", max_len=120, required=True),
        "category_id": category_id,
        "subtitle": _text(subtitle, "subtitle", max_len=200),
        "description": _text(description, "description", max_len=5000),
        "images": list(dict.fromkeys(images)),
        "on_sale": bool(on_sale),
        "limit_per_member": _whole(limit_per_member, "limit_per_member", 0, MAX_LIMIT),
        "promotion": bool(promotion),
        "sort": _whole(sort, "sort", -MAX_SORT, MAX_SORT),
    }


def _sku_rows(skus: list[dict], *, existing: dict[int, Sku]) -> list[dict]:
    """Validate the SKU rows of a product form (``id`` for a SKU that exists)."""
    if not skus:
        raise ValidationError(_l("Add at least one SKU."), field="skus")
    if len(skus) > MAX_SKUS:
        raise ValidationError(_l("At most %(n)d SKUs.", n=MAX_SKUS), field="skus")
    rows, codes, specs = [], {}, {}
    for i, raw in enumerate(skus):
        f = f"skus.{i}."
        sku_id = raw.get("id")
        if sku_id is not None and sku_id not in existing:
            raise ValidationError(_l("No such SKU."), field=f + "id")
        code = _code(raw.get("code"), f + "code")
        if code in codes:
            raise ValidationError(
                _l("Two SKUs have the code %(code)s.", code=code), field=f + "code"
            )
        codes[code] = i
        spec = parse_spec(raw.get("spec"), field=f + "spec")
        key = tuple(spec.items())
        if key in specs:
            raise ValidationError(_l("Two SKUs have the same spec."), field=f + "spec")
        specs[key] = i
        price = _whole(raw.get("price_fen"), f + "price_fen", 1, MAX_FEN)
        original = _whole(raw.get("original_price_fen", 0), f + "original_price_fen", 0, MAX_FEN)
        if original and original <= price:
            raise ValidationError(
                _l("The list price must be higher than the price (or 0 for none)."),
                field=f + "original_price_fen",
            )
        opening = 0
        if sku_id is None:
            opening = _whole(raw.get("stock", 0), f + "stock", 0, MAX_STOCK)
        rows.append(
            {
                "id": sku_id,
                "code": code,
                "spec": spec,
                "price_fen": price,
                "original_price_fen": original,
                "stock": opening,
                "active": bool(raw.get("active", True)),
            }
        )
    if len({tuple(r["spec"]) for r in rows}) > 1 and any(not r["spec"] for r in rows):
        raise ValidationError(
            _l("With several SKUs, every SKU needs its spec."), field="skus.0.spec"
        )
    # A code must not belong to another product's SKU of the brand.
    mine = {s.id for s in existing.values()}
    clash = db.session.execute(
        select(Sku.code).where(Sku.code.in_(list(codes)), Sku.id.notin_(mine or {0}))
    ).first()
    if clash:
        raise ValidationError(
            _l("The SKU code %(code)s is already used.", code=clash[0]),
            field=f"skus.{codes[clash[0]]}.code",
        )
    return rows


def _open_stock(sku: Sku, quantity: int, operator: str | None) -> None:
    if quantity:
        stock.change(
            sku_id=sku.id,
            delta=quantity,
            reason="adjust",
            idempotency_key=f"sku:{sku.id}:opening",
            operator=operator,
            note=str(_l("Opening stock")),
        )


def create_product(*, skus: list[dict], operator: str | None = None, **values) -> Product:
    """A new product with its SKUs (``code``, ``spec``, ``price_fen``, ``original_price_fen``,
    ``stock`` as opening stock)."""
    fields = _product_values(**values)
    if db.session.execute(select(Product.id).where(Product.code == fields["code"])).first():
        raise ValidationError(_l("This code is already used."), field="code")
    rows = _sku_rows(skus, existing={})
    product = Product(**fields)
    db.session.add(product)
    _flush_unique("code", _l("This code is already used."))
    _save_skus(product, rows, existing={}, operator=operator)
    return product


def update_product(
    *, product_id: int, skus: list[dict], operator: str | None = None, **values
) -> Product:
    """Change a product and its SKUs: rows with an ``id`` change that SKU (its stock only
    through ``adjust_stock``), rows without one are new SKUs, SKUs left out stop being sold
    (they stay, for the orders that name them)."""
    product = get_product(product_id)
    fields = _product_values(**values)
    taken = db.session.execute(
        select(Product.id).where(Product.code == fields["code"], Product.id != product.id)
    ).first()
    if taken:
        raise ValidationError(_l("This code is already used."), field="code")
    existing = {
        s.id: s for s in db.session.scalars(select(Sku).where(Sku.product_id == product.id))
    }
    rows = _sku_rows(skus, existing=existing)
    for name, value in fields.items():
        setattr(product, name, value)
    _flush_unique("code", _l("This code is already used."))
    _save_skus(product, rows, existing=existing, operator=operator)
    return product


def _save_skus(product: Product, rows: list[dict], *, existing: dict[int, Sku], operator) -> None:
    kept = {row["id"] for row in rows if row["id"] is not None}
    for sku_id, sku in existing.items():
        if sku_id not in kept:
            sku.active = False
    new: list[tuple[Sku, int]] = []
    for row in rows:
        if row["id"] is not None:
            sku = existing[row["id"]]
            sku.code = row["code"]
            sku.spec = row["spec"]
            sku.price_fen = row["price_fen"]
            sku.original_price_fen = row["original_price_fen"]
            sku.active = row["active"]
        else:
            sku = Sku(
                product_id=product.id,
                code=row["code"],
                spec=row["spec"],
                price_fen=row["price_fen"],
                original_price_fen=row["original_price_fen"],
                stock=0,
                active=row["active"],
            )
            db.session.add(sku)
            new.append((sku, row["stock"]))
    _flush_unique("skus", _l("A SKU code is already used."))
    for sku, opening in new:
        _open_stock(sku, opening, operator)


def set_on_sale(*, product_id: int, on_sale: bool) -> Product:
    """Put a product on sale or take it off; on sale needs an active SKU."""
    product = get_product(product_id)
    if on_sale:
        has_sku = db.session.execute(
            select(Sku.id).where(Sku.product_id == product.id, Sku.active.is_(True)).limit(1)
        ).first()
        if not has_sku:
            raise ValidationError(_l("Add at least one SKU."), field="on_sale")
    product.on_sale = bool(on_sale)
    db.session.flush()
    return product


# --- stock -----------------------------------------------------------------------------------


def adjust_stock(
    *, sku_id: int, delta: int, note: str, operator: str | None, idempotency_key: str
) -> bool:
    """Add (or with a negative ``delta`` take) stock by hand, once per ``idempotency_key``,
    with who and why in the stock ledger and the audit log. OutOfStock when it would go
    below zero. Returns False for a repeated key (nothing changed)."""
    sku = get_sku(sku_id)
    _whole(delta, "delta", -MAX_STOCK, MAX_STOCK)
    if delta == 0:
        raise ValidationError(
            _l("The quantity must be a whole number other than 0."), field="delta"
        )
    note = _text(note, "note", max_len=200, required=True)
    key = _text(idempotency_key, "idempotency_key", max_len=64, required=True)
    changed = stock.change(
        sku_id=sku.id,
        delta=delta,
        reason="adjust",
        idempotency_key=f"adjust:{key}",
        operator=(operator or "")[:120] or None,
        note=note,
    )
    if changed:
        audit.record(
            action="stock_adjust",
            object_type="Sku",
            object_id=sku.id,
            after={"delta": delta, "note": note, "code": sku.code},
        )
    return changed


# --- flash sales -----------------------------------------------------------------------------


def get_flash_sale(flash_sale_id: int) -> FlashSale:
    fs = _own(FlashSale, flash_sale_id)
    if fs is None:
        raise NotFound(_l("No such flash sale."), field="flash_sale_id")
    return fs


def _flash_window(starts_at: dt.datetime, ends_at: dt.datetime, now: dt.datetime) -> None:
    for value, field in ((starts_at, "starts_at"), (ends_at, "ends_at")):
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValidationError(_l("Enter a date and time."), field=field)
    if ends_at <= starts_at:
        raise ValidationError(_l("The end must be after the start."), field="ends_at")
    if ends_at <= now:
        raise ValidationError(_l("The end must be in the future."), field="ends_at")
    if ends_at - starts_at > dt.timedelta(days=MAX_FLASH_DAYS):
        raise ValidationError(
            _l("A flash sale lasts at most %(n)d days.", n=MAX_FLASH_DAYS), field="ends_at"
        )


def _overlapping(sku_id: int, starts_at, ends_at, exclude: int | None) -> bool:
    stmt = select(FlashSale.id).where(
        FlashSale.sku_id == sku_id,
        FlashSale.active.is_(True),
        FlashSale.starts_at < ends_at,
        FlashSale.ends_at > starts_at,
    )
    if exclude is not None:
        stmt = stmt.where(FlashSale.id != exclude)
    return db.session.execute(stmt.limit(1)).first() is not None


def create_flash_sale(
    *,
    sku_id: int,
    name: str,
    price_fen: int,
    quantity: int,
    per_member_limit: int,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    now: dt.datetime | None = None,
) -> FlashSale:
    """A flash sale of one SKU: ``quantity`` units (at most its stock now) at ``price_fen``
    (below its price) between ``starts_at`` and ``ends_at`` (ending in the future), at most
    ``per_member_limit`` units per member; one at a time per SKU."""
    now = now or utcnow()
    sku = get_sku(sku_id)
    name = _text(name, "name", max_len=120, required=True)
    _whole(price_fen, "price_fen", 1, MAX_FEN)
    if price_fen >= sku.price_fen:
        raise ValidationError(
            _l("The flash-sale price must be below the SKU's price."), field="price_fen"
        )
    _whole(quantity, "quantity", 1, MAX_STOCK)
    # The stock as committed now (not a value read earlier in this session).
    db.session.refresh(sku, ["stock"])
    if quantity > sku.stock:
        raise ValidationError(
            _l("Only %(n)d in stock for this SKU.", n=sku.stock), field="quantity"
        )
    _whole(per_member_limit, "per_member_limit", 1, MAX_LIMIT)
    _flash_window(starts_at, ends_at, now)
    if not sku.active:
        raise ValidationError(_l("This SKU is not sold any more."), field="sku_id")
    if _overlapping(sku.id, starts_at, ends_at, None):
        raise ValidationError(
            _l("This SKU already has a flash sale in that time."), field="starts_at"
        )
    fs = FlashSale(
        sku_id=sku.id,
        name=name,
        price_fen=price_fen,
        quantity=quantity,
        per_member_limit=per_member_limit,
        starts_at=starts_at,
        ends_at=ends_at,
        active=True,
    )
    db.session.add(fs)
    db.session.flush()
    return fs


def update_flash_sale(
    *,
    flash_sale_id: int,
    name: str,
    price_fen: int,
    quantity: int,
    per_member_limit: int,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    now: dt.datetime | None = None,
) -> FlashSale:
    """Edit a flash sale. Before it starts everything may change; once running only its name
    and its end (buyers have seen the price, the quantity and the limit)."""
    now = now or utcnow()
    fs = get_flash_sale(flash_sale_id)
    if not fs.active or fs.ends_at <= now:
        raise ValidationError(_l("This flash sale has ended."), field="name")
    name = _text(name, "name", max_len=120, required=True)
    running = fs.starts_at <= now
    if running:
        changed = (
            price_fen != fs.price_fen
            or quantity != fs.quantity
            or per_member_limit != fs.per_member_limit
            or starts_at != fs.starts_at
        )
        if changed:
            raise ValidationError(
                _l("A running flash sale can change only its name and its end."), field="name"
            )
        _flash_window(fs.starts_at, ends_at, now)
        fs.name, fs.ends_at = name, ends_at
        db.session.flush()
        flash.forget(fs.id)  # Redis keeps the sale's state until its old end only
        return fs
    sku = get_sku(fs.sku_id)
    _whole(price_fen, "price_fen", 1, MAX_FEN)
    if price_fen >= sku.price_fen:
        raise ValidationError(
            _l("The flash-sale price must be below the SKU's price."), field="price_fen"
        )
    _whole(quantity, "quantity", max(1, fs.sold), MAX_STOCK)
    db.session.refresh(sku, ["stock"])
    if quantity > sku.stock + fs.sold:
        raise ValidationError(
            _l("Only %(n)d in stock for this SKU.", n=sku.stock), field="quantity"
        )
    _whole(per_member_limit, "per_member_limit", 1, MAX_LIMIT)
    _flash_window(starts_at, ends_at, now)
    if _overlapping(sku.id, starts_at, ends_at, fs.id):
        raise ValidationError(
            _l("This SKU already has a flash sale in that time."), field="starts_at"
        )
    fs.name, fs.price_fen, fs.quantity = name, price_fen, quantity
    fs.per_member_limit, fs.starts_at, fs.ends_at = per_member_limit, starts_at, ends_at
    db.session.flush()
    flash.forget(fs.id)
    return fs


def stop_flash_sale(*, flash_sale_id: int) -> FlashSale:
    """End a flash sale now: nothing more sells at its price (units already held stay)."""
    fs = get_flash_sale(flash_sale_id)
    fs.active = False
    db.session.flush()
    flash.forget(fs.id)
    return fs
