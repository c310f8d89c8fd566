"""Tenancy: every brand-owned row carries brand_id and every ORM query is scoped to one brand.

The current brand lives in a context variable. While it is set, every ORM SELECT, UPDATE and
DELETE touching a ``BrandScoped`` model is filtered to it automatically. Querying a
``BrandScoped`` model with no brand set raises, unless the statement opts out with
``.execution_options(all_brands=True)`` (see ``all_brands()``): the scoped query is the easy
one to write, the unscoped one the visibly deliberate one.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from flask import abort
from sqlalchemy import ForeignKey, Index, UniqueConstraint, event
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    with_loader_criteria,
)

from core.db import BigId, db

_brand: contextvars.ContextVar[int | None] = contextvars.ContextVar("brand_id", default=None)


class NoBrandContext(RuntimeError):
    """A brand-scoped query or insert ran with no current brand."""


def current_brand_id() -> int | None:
    return _brand.get()


def require_brand_id() -> int:
    bid = _brand.get()
    if bid is None:
        raise NoBrandContext("no current brand: wrap the code in use_brand(brand_id)")
    return bid


def set_brand(brand_id: int | None) -> contextvars.Token:
    return _brand.set(brand_id)


def reset_brand(token: contextvars.Token) -> None:
    _brand.reset(token)


@contextlib.contextmanager
def use_brand(brand_id: int | None) -> Iterator[None]:
    """Run the block with ``brand_id`` as the current brand."""
    token = _brand.set(brand_id)
    try:
        yield
    finally:
        _brand.reset(token)


ALL_BRANDS = {"all_brands": True}


def all_brands(stmt):
    """Mark a statement as deliberately crossing brands (platform admin, relays, reports)."""
    return stmt.execution_options(all_brands=True)


def _led_by_brand(table_args) -> bool:
    """Whether the table declares a whole (not partial) index or unique constraint of several
    columns that begins with ``brand_id``: it serves every lookup by brand (and the brand's
    cascading delete), so an index on ``brand_id`` alone would only cost every write."""
    if not isinstance(table_args, tuple):
        return False
    for arg in table_args:
        if isinstance(arg, Index):
            columns = list(arg.expressions)
            if arg.dialect_kwargs.get("postgresql_where") is not None:
                continue
        elif isinstance(arg, UniqueConstraint):
            columns = list(getattr(arg, "_pending_colargs", ()))
        else:
            continue
        if len(columns) > 1 and columns[0] == "brand_id":
            return True
    return False


class BrandScoped:
    """Mixin for brand-owned tables: a non-null ``brand_id`` defaulting to the current brand,
    indexed unless another index of the table leads with it (``_led_by_brand``)."""

    @declared_attr
    def brand_id(cls) -> Mapped[int]:  # noqa: N805
        return mapped_column(
            BigId,
            ForeignKey("brand.id", ondelete="CASCADE"),
            nullable=False,
            index=not _led_by_brand(cls.__dict__.get("__table_args__")),
            default=require_brand_id,
        )


def _touches_scoped(state: ORMExecuteState) -> bool:
    return any(issubclass(m.class_, BrandScoped) for m in state.all_mappers)


@event.listens_for(Session, "do_orm_execute")
def _scope_to_brand(state: ORMExecuteState) -> None:
    if state.execution_options.get("all_brands"):
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    bid = _brand.get()
    if bid is None:
        if state.is_relationship_load or state.is_column_load:
            return
        if _touches_scoped(state):
            raise NoBrandContext(
                "brand-scoped query with no current brand; use use_brand() or all_brands()"
            )
        return
    state.statement = state.statement.options(
        with_loader_criteria(BrandScoped, lambda cls: cls.brand_id == bid, include_aliases=True)
    )


def get_or_404(model, ident):
    """Load a row of the current brand by primary key, or answer 404."""
    obj = db.session.get(model, ident)
    if obj is None:
        abort(404)
    if isinstance(obj, BrandScoped) and obj.brand_id != _brand.get():
        abort(404)
    return obj
