"""Writes of the coupon engine; the one module other packages call. Services flush; the
caller commits.

Coupon templates and points-mall items are created and changed here. Issuing, claiming,
redeeming, the mall exchange and POS keys live in their own modules (the hot paths are long)
and are re-exported here under the same names.
"""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.db import db
from core.errors import ValidationError
from core.validators import whole
from coupons.claims import claim, claim_share, create_share
from coupons.issuance import (
    bulk_issue,
    count_target,
    get_template,
    import_partner_codes,
    issue,
    issue_many,
)
from coupons.mall import exchange
from coupons.models import KINDS, CouponTemplate, MallItem
from coupons.pos_api import create_key, revoke_key
from coupons.redemption import redeem, reverse
from org.models import Store

__all__ = [
    "bulk_issue",
    "claim",
    "claim_share",
    "count_target",
    "create_key",
    "create_mall_item",
    "create_share",
    "create_template",
    "exchange",
    "import_partner_codes",
    "issue",
    "issue_many",
    "redeem",
    "reverse",
    "revoke_key",
    "update_mall_item",
    "update_template",
]

MAX_LIMIT = 1000
MAX_STOCK = 10**9
MAX_FEN = 10**9  # the columns are 32-bit integers


_whole = whole


def _text(value: str | None, field: str, *, max_len: int, required: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise ValidationError(_l("This field is required."), field=field)
    if len(value) > max_len:
        raise ValidationError(_l("At most %(n)d characters.", n=max_len), field=field)
    return value


def _stock(value: int | None, used: int, message) -> int | None:
    if value is None:
        return None
    _whole(value, "stock", 0, MAX_STOCK)
    if value < used:
        raise ValidationError(message, field="stock")
    return value


def _flush_stock(constraint: str, message) -> None:
    """Flush a changed stock: an issue or exchange committed since the row was read may have
    passed it, which the table's CHECK refuses; that answers as an error on the stock field."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError as exc:
        if getattr(getattr(exc.orig, "diag", None), "constraint_name", None) != constraint:
            raise
        raise ValidationError(message, field="stock") from exc


# --- templates -------------------------------------------------------------------------------

BELOW_ISSUED = _l("Stock cannot be below what was already issued.")


def _store_scope(store_ids: list[int] | None) -> list[int]:
    """The stores a coupon is limited to: each one a store of the current brand."""
    try:
        ids = sorted({int(i) for i in store_ids or []})
    except (TypeError, ValueError):
        raise ValidationError(_l("Choose stores of this brand."), field="store_ids") from None
    if not ids:
        return []
    # brand-scoped: another brand's store is as unknown as a missing one
    known = set(db.session.execute(select(Store.id).where(Store.id.in_(ids))).scalars())
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValidationError(
            _l("No such store: %(ids)s.", ids=", ".join(map(str, unknown))), field="store_ids"
        )
    return ids


def _template_values(
    *,
    name: str,
    kind: str,
    value_fen: int,
    threshold_fen: int,
    percent_off: int,
    cap_fen: int,
    gift_name: str,
    description: str,
    valid_from: dt.datetime | None,
    valid_until: dt.datetime | None,
    valid_days: int | None,
    store_ids: list[int] | None,
    categories: list[str] | None,
    product_ids: list[str] | None,
    per_member_limit: int,
    per_day_limit: int,
    stackable: bool,
    shareable: bool,
    active: bool,
) -> dict:
    """Checked column values of a template (stock apart: it depends on what was issued)."""
    if kind not in KINDS:
        raise ValidationError(_l("Unknown coupon kind."), field="kind")
    for field, fen in (
        ("value_fen", value_fen),
        ("threshold_fen", threshold_fen),
        ("cap_fen", cap_fen),
    ):
        if not isinstance(fen, int) or isinstance(fen, bool) or not 0 <= fen <= MAX_FEN:
            raise ValidationError(_l("Enter an amount in yuan, e.g. 12.50."), field=field)
    _whole(percent_off, "percent_off", 0, 99)
    if valid_days:
        _whole(valid_days, "valid_days", 1, 3650)
    elif valid_until is None:
        raise ValidationError(_l("Give an end date or a number of days."), field="valid_days")
    return {
        "name": _text(name, "name", max_len=120, required=True),
        "kind": kind,
        "value_fen": value_fen,
        "threshold_fen": threshold_fen,
        "percent_off": percent_off,
        "cap_fen": cap_fen,
        "gift_name": _text(gift_name, "gift_name", max_len=120),
        "description": _text(description, "description", max_len=2000),
        "valid_from": valid_from,
        # "N days after issue" wins over a fixed end
        "valid_until": None if valid_days else valid_until,
        "valid_days": valid_days or None,
        "store_ids": _store_scope(store_ids),
        "categories": [str(c) for c in categories or []],
        "product_ids": [str(p) for p in product_ids or []],
        "per_member_limit": _whole(per_member_limit, "per_member_limit", 0, MAX_LIMIT),
        "per_day_limit": _whole(per_day_limit, "per_day_limit", 0, MAX_LIMIT),
        "stackable": bool(stackable),
        "shareable": bool(shareable),
        "active": bool(active),
    }


def create_template(
    *,
    name: str,
    kind: str,
    value_fen: int = 0,
    threshold_fen: int = 0,
    percent_off: int = 0,
    cap_fen: int = 0,
    gift_name: str = "",
    description: str = "",
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
    valid_days: int | None = None,
    store_ids: list[int] | None = None,
    categories: list[str] | None = None,
    product_ids: list[str] | None = None,
    stock: int | None = None,
    per_member_limit: int = 0,
    per_day_limit: int = 0,
    stackable: bool = False,
    shareable: bool = True,
    active: bool = True,
) -> CouponTemplate:
    """Create a coupon template in the current brand (``stock`` None: unlimited)."""
    values = _template_values(
        name=name,
        kind=kind,
        value_fen=value_fen,
        threshold_fen=threshold_fen,
        percent_off=percent_off,
        cap_fen=cap_fen,
        gift_name=gift_name,
        description=description,
        valid_from=valid_from,
        valid_until=valid_until,
        valid_days=valid_days,
        store_ids=store_ids,
        categories=categories,
        product_ids=product_ids,
        per_member_limit=per_member_limit,
        per_day_limit=per_day_limit,
        stackable=stackable,
        shareable=shareable,
        active=active,
    )
    tpl = CouponTemplate(**values, stock=_stock(stock, 0, BELOW_ISSUED), issued=0)
    db.session.add(tpl)
    db.session.flush()
    return tpl


def update_template(
    *,
    template: CouponTemplate,
    name: str,
    kind: str,
    value_fen: int = 0,
    threshold_fen: int = 0,
    percent_off: int = 0,
    cap_fen: int = 0,
    gift_name: str = "",
    description: str = "",
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
    valid_days: int | None = None,
    store_ids: list[int] | None = None,
    categories: list[str] | None = None,
    product_ids: list[str] | None = None,
    stock: int | None = None,
    per_member_limit: int = 0,
    per_day_limit: int = 0,
    stackable: bool = False,
    shareable: bool = True,
    active: bool = True,
) -> CouponTemplate:
    """Set every field of a template; its stock never goes below what was already issued."""
    values = _template_values(
        name=name,
        kind=kind,
        value_fen=value_fen,
        threshold_fen=threshold_fen,
        percent_off=percent_off,
        cap_fen=cap_fen,
        gift_name=gift_name,
        description=description,
        valid_from=valid_from,
        valid_until=valid_until,
        valid_days=valid_days,
        store_ids=store_ids,
        categories=categories,
        product_ids=product_ids,
        per_member_limit=per_member_limit,
        per_day_limit=per_day_limit,
        stackable=stackable,
        shareable=shareable,
        active=active,
    )
    values["stock"] = _stock(stock, template.issued or 0, BELOW_ISSUED)
    for key, value in values.items():
        setattr(template, key, value)
    _flush_stock("ck_coupon_template_issued_within_stock", BELOW_ISSUED)
    return template


# --- points mall -----------------------------------------------------------------------------

BELOW_SOLD = _l("Stock cannot be below what was already exchanged.")


def _item_values(
    *,
    template_id: int,
    title: str,
    price_points: int,
    per_member_limit: int,
    tier_ids: list[int] | None,
    active: bool,
    sort: int,
) -> dict:
    get_template(template_id)  # the current brand's, or NotFound on template_id
    return {
        "template_id": template_id,
        "title": _text(title, "title", max_len=120, required=True),
        "price_points": _whole(price_points, "price_points", 1, 10**8),
        "per_member_limit": _whole(per_member_limit, "per_member_limit", 0, MAX_LIMIT),
        "tier_ids": [int(t) for t in tier_ids or []],
        "active": bool(active),
        "sort": _whole(sort, "sort", -(10**6), 10**6),
    }


def create_mall_item(
    *,
    template_id: int,
    title: str,
    price_points: int,
    stock: int | None = None,
    per_member_limit: int = 0,
    tier_ids: list[int] | None = None,
    active: bool = True,
    sort: int = 0,
) -> MallItem:
    """Offer a coupon in the points mall at a price in points (``tier_ids`` empty: everyone)."""
    values = _item_values(
        template_id=template_id,
        title=title,
        price_points=price_points,
        per_member_limit=per_member_limit,
        tier_ids=tier_ids,
        active=active,
        sort=sort,
    )
    item = MallItem(**values, stock=_stock(stock, 0, BELOW_SOLD), sold=0)
    db.session.add(item)
    db.session.flush()
    return item


def update_mall_item(
    *,
    item: MallItem,
    template_id: int,
    title: str,
    price_points: int,
    stock: int | None = None,
    per_member_limit: int = 0,
    tier_ids: list[int] | None = None,
    active: bool = True,
    sort: int | None = None,
) -> MallItem:
    """Set every field of a mall item (``sort`` None: unchanged); stock stays >= sold."""
    values = _item_values(
        template_id=template_id,
        title=title,
        price_points=price_points,
        per_member_limit=per_member_limit,
        tier_ids=tier_ids,
        active=active,
        sort=item.sort if sort is None else sort,
    )
    values["stock"] = _stock(stock, item.sold or 0, BELOW_SOLD)
    for key, value in values.items():
        setattr(item, key, value)
    _flush_stock("ck_coupon_mall_item_sold_within_stock", BELOW_SOLD)
    return item
