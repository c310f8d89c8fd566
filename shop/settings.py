"""A brand's shop rules (``ShopSettings``): read with the product's defaults until the brand
saves its own, changed only through ``update_settings`` (every value checked first, audited).
Reading never writes."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core import audit
from core.db import db
from core.errors import ValidationError
from core.tenancy import require_brand_id
from core.validators import whole
from shop.models import ShopSettings

DEFAULTS: dict = {
    "points_per_yuan": 100,
    "max_points_percent": 50,
    "pay_timeout_minutes": 15,
    "auto_receive_days": 10,
    "auto_complete_days": 7,
    "return_window_days": 15,
    "allow_delivery": True,
    "allow_pickup": True,
    "shipping_fee_fen": 0,
    "free_shipping_fen": 0,
    "shipping_by_region": {},
}
# Each whole-number rule and its range (the table's CHECK constraints say the same).
RANGES = {
    "points_per_yuan": (1, 100_000),
    "max_points_percent": (0, 100),
    "pay_timeout_minutes": (5, 120),
    "auto_receive_days": (3, 30),
    "auto_complete_days": (1, 60),
    "return_window_days": (0, 180),
    "shipping_fee_fen": (0, 1_000_000),
    "free_shipping_fen": (0, 100_000_000),
}
MAX_REGIONS = 40


def get_settings() -> ShopSettings:
    """The current brand's rules; the defaults (an unsaved row) when it has set none."""
    row = db.session.execute(select(ShopSettings)).scalar_one_or_none()
    if row is not None:
        return row
    return ShopSettings(**{k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()})


def _whole(field: str, value) -> int:
    return whole(value, field, *RANGES[field])


def parse_regions(text: str) -> dict[str, int]:
    """``新疆 20`` per line (a province and its fee in yuan, up to 2 decimals) into
    {province: fen}; a clear error naming the line otherwise."""
    out: dict[str, int] = {}
    for n, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.replace("\u3000", " ").replace("：", " ").replace(":", " ").strip()
        if not line:
            continue
        name, _, fee = line.rpartition(" ")
        name = name.strip()
        fen = _fen(fee.strip())
        if not name or len(name) > 20 or fen < 0 or fen > RANGES["shipping_fee_fen"][1]:
            raise ValidationError(
                _l("Line %(n)s: write a province and its fee in yuan, e.g. 新疆 20.", n=n),
                field="shipping_by_region",
            )
        out[name] = fen
    if len(out) > MAX_REGIONS:
        raise ValidationError(
            _l("At most %(n)s provinces.", n=MAX_REGIONS), field="shipping_by_region"
        )
    return out


def _fen(text: str) -> int:
    """A fee in yuan ("20", "25.5") in fen; -1 when it is not one."""
    try:
        d = Decimal(text.replace("．", "."))
    except InvalidOperation:
        return -1
    if not d.is_finite() or d < 0 or d != d.quantize(Decimal("0.01")):
        return -1
    return int(d * 100)


def update_settings(**values) -> ShopSettings:
    """Change the current brand's rules (only the given ones); flushes, the caller commits."""
    unknown = set(values) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown shop settings {sorted(unknown)}")
    clean: dict = {}
    for key, value in values.items():
        if key in RANGES:
            clean[key] = _whole(key, value)
        elif key in ("allow_delivery", "allow_pickup"):
            clean[key] = bool(value)
        elif key == "shipping_by_region":
            if not isinstance(value, dict) or any(
                not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in value.values()
            ):
                raise ValidationError(_l("Invalid shipping fees."), field=key)
            clean[key] = dict(value)
    row = db.session.execute(select(ShopSettings)).scalar_one_or_none()
    merged = {**DEFAULTS, **({} if row is None else _values(row)), **clean}
    if not (merged["allow_delivery"] or merged["allow_pickup"]):
        raise ValidationError(
            _l("Offer delivery, pick-up in store, or both."), field="allow_delivery"
        )
    before = None if row is None else _values(row)
    if row is None:
        row = ShopSettings(brand_id=require_brand_id())
        db.session.add(row)
    for key, value in merged.items():
        setattr(row, key, value)
    db.session.flush()
    audit.record(
        action="update", object_type="shop_settings", object_id=row.id, before=before, after=merged
    )
    return row


def _values(row: ShopSettings) -> dict:
    return {k: getattr(row, k) for k in DEFAULTS}
