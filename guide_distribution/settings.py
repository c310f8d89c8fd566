"""A brand's distribution rules (``DistributionSettings``): read with the product's defaults
until the brand saves its own, changed only through ``update_settings`` (every value checked
first; the row is audited). Reading never writes."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.db import db
from core.errors import ValidationError
from core.tenancy import require_brand_id
from core.validators import whole
from guide_distribution.models import BIND_MODES, DistributionSettings
from wechat import brand_settings

DEFAULTS: dict = {
    "bind_mode": "first",
    "validity_days": None,
    "protection_days": 15,
    "link_days": 7,
    "self_purchase_earns": False,
    "default_rate_bp": 0,
    "commission_on_promotions": True,
    "settle_after_days": 15,
    "payout_min_fen": 1000,
    "approval_over_fen": 500_000,
}
# Each whole-number rule and its range (the table's CHECK constraints say the same).
RANGES = {
    "validity_days": (1, 3650),
    "protection_days": (0, 365),
    "link_days": (1, 30),
    "default_rate_bp": (0, 10_000),
    "settle_after_days": (0, 180),
    "payout_min_fen": (0, 100_000_000),
    "approval_over_fen": (0, 1_000_000_000),
}
FLAGS = ("self_purchase_earns", "commission_on_promotions")


def get_settings() -> DistributionSettings:
    """The current brand's rules; the defaults (an unsaved row) when it has set none. Member
    requests read a copy cached in the process (``wechat.brand_settings``); ``update_settings``
    reads the row itself."""
    return brand_settings.get("distribution", _load, _copy)


def _load() -> dict:
    row = db.session.execute(select(DistributionSettings)).scalar_one_or_none()
    return brand_settings.columns(row) if row is not None else dict(DEFAULTS)


def _copy(values: dict) -> DistributionSettings:
    return brand_settings.instance(DistributionSettings, values)


brand_settings.watch(DistributionSettings)


def _whole(field: str, value) -> int:
    return whole(value, field, *RANGES[field])


def update_settings(**values) -> DistributionSettings:
    """Change the current brand's rules (only the given ones); flushes, the caller commits."""
    unknown = set(values) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown distribution settings {sorted(unknown)}")
    clean: dict = {}
    for key, value in values.items():
        if key == "bind_mode":
            if value not in BIND_MODES:
                raise ValidationError(_l("Choose how customers are bound."), field=key)
            clean[key] = value
        elif key == "validity_days" and value is None:
            clean[key] = None  # permanent
        elif key in RANGES:
            clean[key] = _whole(key, value)
        elif key in FLAGS:
            if not isinstance(value, bool):
                raise ValidationError(_l("Choose yes or no."), field=key)
            clean[key] = value
    row = db.session.execute(select(DistributionSettings)).scalar_one_or_none()
    if row is None:
        row = DistributionSettings(brand_id=require_brand_id(), **DEFAULTS)
        db.session.add(row)
    for key, value in clean.items():
        setattr(row, key, value)
    db.session.flush()
    return row
