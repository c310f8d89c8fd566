"""Stock: every change of a SKU's ``stock`` is one ledger entry plus one conditional UPDATE.

``change`` never reads, computes and writes: a decrement is
``UPDATE shop_sku SET stock = stock - n WHERE id = :sku AND stock >= n``, so two checkouts
for the last unit cannot both win, and the ledger entry's unique key makes a repeated call
(a retried job, a replayed request) change nothing.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import text

from core.db import db, insert_ignoring, utcnow
from core.errors import Conflict, ValidationError
from core.tenancy import require_brand_id
from shop.models import STOCK_REASONS

MAX_KEY = 200


class OutOfStock(Conflict):
    """Not enough stock for the change."""

    def __init__(self, message=None, *, field: str | None = "quantity"):
        super().__init__(message or _l("Not enough stock."), field=field, code="out_of_stock")


_ENTRY = insert_ignoring(
    "shop_stock_entry",
    (
        "brand_id",
        "sku_id",
        "delta",
        "reason",
        "order_id",
        "operator",
        "note",
        "idempotency_key",
        "created_at",
    ),
    ("brand_id", "idempotency_key"),
    returning="id",
)
_MOVE = text(
    "UPDATE shop_sku SET stock = stock + :delta, updated_at = :now"
    " WHERE id = :sku_id AND brand_id = :brand_id AND stock + :delta >= 0"
    " RETURNING stock"
)


def change(
    *,
    sku_id: int,
    delta: int,
    reason: str,
    idempotency_key: str,
    order_id: int | None = None,
    operator: str | None = None,
    note: str = "",
) -> bool:
    """Add ``delta`` (negative: take) to a SKU's stock once per key.

    Returns True when this call changed the stock, False when the key was already used
    (nothing changes). Raises OutOfStock when a decrement would go below zero (the ledger
    entry is rolled back with it: the caller's savepoint or transaction ends).
    """
    if reason not in STOCK_REASONS:
        raise ValueError(f"unknown stock reason {reason!r}")
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
        raise ValidationError(
            _l("The quantity must be a whole number other than 0."), field="quantity"
        )
    key = (idempotency_key or "").strip()
    if not key or len(key) > MAX_KEY:
        raise ValueError("a stock change needs an idempotency key of 1-200 characters")
    brand_id = require_brand_id()
    now = utcnow()
    db.session.flush()
    with db.session.begin_nested():
        entry = db.session.execute(
            _ENTRY,
            {
                "brand_id": brand_id,
                "sku_id": sku_id,
                "delta": delta,
                "reason": reason,
                "order_id": order_id,
                "operator": operator,
                "note": (note or "")[:200],
                "idempotency_key": key,
                "created_at": now,
            },
        ).scalar()
        if entry is None:
            return False
        moved = db.session.execute(
            _MOVE, {"delta": delta, "now": now, "sku_id": sku_id, "brand_id": brand_id}
        ).scalar()
        if moved is None:
            raise OutOfStock()
    return True
