"""Stores in the console's pickers (core.pickers): "SH001 上海南京西路店"."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import or_, select

from core.db import db
from core.pickers import register_picker
from org.models import Store


def _label(store: Store) -> str:
    return f"{store.code} {store.name}"


def search_stores(q: str, limit: int) -> list[tuple[int, str]]:
    """The brand's stores whose code, name or city holds ``q``, by code."""
    stmt = select(Store).order_by(Store.code).limit(limit)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(
            or_(Store.code.ilike(like), Store.name.ilike(like), Store.city.ilike(like))
        )
    return [(s.id, _label(s)) for s in db.session.execute(stmt).scalars()]


def store_labels(ids: Iterable[int]) -> list[tuple[int, str]]:
    """Labels of those of ``ids`` that are this brand's stores."""
    ids = list(ids)
    if not ids:
        return []
    rows = db.session.execute(select(Store).where(Store.id.in_(ids)).order_by(Store.code))
    return [(s.id, _label(s)) for s in rows.scalars()]


register_picker(
    "stores",
    search=search_stores,
    labels=store_labels,
    roles=("brand_admin", "store_manager"),
    small=True,
)
