"""Dialect helpers (PostgreSQL in production and tests, SQLite for `make run`) and the
schema helpers the member models share."""

from __future__ import annotations

import hashlib

from sqlalchemy import ForeignKey, ForeignKeyConstraint, func, select, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import BigId, db
from core.tenancy import require_brand_id


def dialect() -> str:
    return db.session.get_bind().dialect.name


def insert(model):
    """An INSERT supporting ON CONFLICT on both dialects."""
    if dialect() == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(model)


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def advisory_lock(*keys: str) -> None:
    """Serialise transactions on these keys until commit (sorted: no lock-order deadlock).

    On SQLite the database lock already serialises writers.
    """
    if dialect() != "postgresql":
        return
    for k in sorted(set(keys)):
        db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_id(k)})


def next_id(model) -> int:
    """Reserve the next primary key of ``model`` (to derive a card number before insert)."""
    table = model.__tablename__
    if dialect() == "postgresql":
        return db.session.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id'))"), {"t": table}
        ).scalar_one()
    current = db.session.execute(
        select(func.coalesce(func.max(model.id), 0)).execution_options(all_brands=True)
    ).scalar_one()
    return int(current) + 1


def brand_column(*, references_brand: bool) -> Mapped[int]:
    """``brand_id`` without the mixin's own index (and, for member rows, its own key).

    ``references_brand=False`` is for tables whose composite key to ``member(brand_id, id)``
    already guarantees the brand.
    """
    fk = (ForeignKey("brand.id", ondelete="CASCADE"),) if references_brand else ()
    return mapped_column(BigId, *fk, nullable=False, default=require_brand_id)


def member_key(table: str) -> ForeignKeyConstraint:
    """The composite key of a member's row to ``member(brand_id, id)``."""
    return ForeignKeyConstraint(
        ["brand_id", "member_id"],
        ["member.brand_id", "member.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_member",
    )
