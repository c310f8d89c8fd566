"""Coupon templates in the console's pickers (core.pickers)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from core.db import db
from core.pickers import register_picker
from coupons.models import CouponTemplate


def search_templates(q: str, limit: int) -> list[tuple[int, str]]:
    """Offered coupon templates whose name holds ``q``, newest first."""
    stmt = select(CouponTemplate).where(CouponTemplate.active.is_(True))
    if q:
        stmt = stmt.where(CouponTemplate.name.ilike(f"%{q}%"))
    stmt = stmt.order_by(CouponTemplate.id.desc()).limit(limit)
    return [(t.id, t.name) for t in db.session.execute(stmt).scalars()]


def template_labels(ids: Iterable[int]) -> list[tuple[int, str]]:
    """Labels of those of ``ids`` that are this brand's coupon templates."""
    ids = list(ids)
    if not ids:
        return []
    stmt = select(CouponTemplate).where(CouponTemplate.id.in_(ids))
    return [(t.id, t.name) for t in db.session.execute(stmt).scalars()]


register_picker(
    "coupon_templates",
    search=search_templates,
    labels=template_labels,
    roles=("brand_admin",),
    small=True,
)
