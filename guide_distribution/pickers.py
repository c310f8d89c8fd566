"""Guides in the console's pickers (core.pickers): "张丽 · SH001 上海南京西路店"; active
guides of the brand only (a store manager sees their store's)."""

from __future__ import annotations

from collections.abc import Iterable

from flask_login import current_user
from sqlalchemy import or_, select

from core.db import db
from core.pickers import register_picker
from core.validators import mask_phone
from org.models import Staff, Store


def _label(staff: Staff, store: Store | None) -> str:
    parts = [staff.name, mask_phone(staff.phone) if staff.phone else ""]
    if store is not None:
        parts.append(f"{store.code} {store.name}")
    return " · ".join(p for p in parts if p)


def _guides():
    stmt = (
        select(Staff, Store)
        .outerjoin(Store, Store.id == Staff.store_id)
        .where(Staff.role == "guide", Staff.active.is_(True))
    )
    if getattr(current_user, "role", None) == "store_manager":
        stmt = stmt.where(Staff.store_id == current_user.store_id)
    return stmt


def search_guides(q: str, limit: int) -> list[tuple[int, str]]:
    """Active guides whose name, phone or store holds ``q``."""
    stmt = _guides().order_by(Staff.name, Staff.id).limit(limit)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(
            or_(Staff.name.ilike(like), Staff.phone == q, Store.name.ilike(like), Store.code == q)
        )
    return [(s.id, _label(s, st)) for s, st in db.session.execute(stmt).all()]


def guide_labels(ids: Iterable[int]) -> list[tuple[int, str]]:
    ids = list(ids)
    if not ids:
        return []
    rows = db.session.execute(_guides().where(Staff.id.in_(ids))).all()
    return [(s.id, _label(s, st)) for s, st in rows]


register_picker(
    "guides", search=search_guides, labels=guide_labels, roles=("brand_admin", "store_manager")
)
