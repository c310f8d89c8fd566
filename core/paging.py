"""Lists and counts that stay cheap on a brand with millions of rows.

A page view never counts a brand's rows in full: ``capped_count`` stops at ``cap`` and says
"1,000+" beyond it, so a list, an export form or a reach preview costs at most ``cap`` index
entries however big the brand is.

Lists page by keyset, never by OFFSET: ``keyset_page`` reads the ``per_page`` rows that
follow (``?after=<id>``) or precede (``?before=<id>``) one row in the list's order, through
the index of that order, so page 5,000 costs what page 1 costs, and a row inserted between
two page loads neither repeats a row nor hides one. The cursor in the URL is always the
row's id; a list ordered by other columns too (a store code, a staff role and name) looks
the cursor's values up by that id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, tuple_

from core.db import db

CAP = 1000
# Ids are bigints: longer strings are not ids of any row (and would overflow the cast).
_MAX_CURSOR_DIGITS = 18


@dataclass(frozen=True)
class CappedCount:
    """How many rows matched, up to ``cap``; ``more`` when there are more than ``cap``."""

    n: int
    more: bool
    cap: int = CAP

    def __str__(self) -> str:
        return f"{self.cap:,}+" if self.more else f"{self.n:,}"

    def __int__(self) -> int:
        return self.n

    def __bool__(self) -> bool:
        return self.n > 0


def capped_count(stmt: Select, *, cap: int = CAP) -> CappedCount:
    """Count the rows of ``stmt`` up to ``cap`` (one query reading at most ``cap + 1`` rows)."""
    limited = stmt.order_by(None).limit(cap + 1).subquery()
    n = db.session.execute(select(func.count()).select_from(limited)).scalar_one()
    return CappedCount(n=min(n, cap), more=n > cap, cap=cap)


@dataclass(frozen=True)
class Key:
    """One column of a list's order; the last key of an order is the unique id."""

    column: Any
    descending: bool = False


def newest_first(id_column) -> tuple[Key, ...]:
    """The usual order of a list: newest first by id."""
    return (Key(id_column, descending=True),)


@dataclass(frozen=True)
class KeysetPage:
    """One page of a list: its rows, the cursors of the pages around it, and the total.

    ``older`` / ``newer`` are the ids to put in ``?after=`` / ``?before=`` for the next and the
    previous page in the list's order (None when there is no such page).
    """

    items: list
    older: int | None
    newer: int | None
    total: CappedCount | None
    per_page: int
    # No cursor was used: this is the top of the list.
    first: bool = True

    @property
    def has_older(self) -> bool:
        return self.older is not None

    @property
    def has_newer(self) -> bool:
        return self.newer is not None


def parse_cursor(value: str | None) -> int | None:
    """A cursor from the query string: an id, or None for anything else (the first page)."""
    value = (value or "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > _MAX_CURSOR_DIGITS:
        return None
    return int(value)


def _beyond(order: Sequence[Key], values: Sequence, *, forward: bool) -> ColumnElement:
    """Rows strictly past ``values`` in the order (``forward``) or strictly before it."""
    if len(order) == 1:
        key = order[0]
        return key.column < values[0] if key.descending == forward else key.column > values[0]
    directions = {k.descending for k in order}
    if len(directions) == 1:
        # One direction for every key: a row comparison, which one index range serves.
        cols = tuple_(*(k.column for k in order))
        vals = tuple_(*values)
        return (cols < vals) if (order[0].descending == forward) else (cols > vals)
    alternatives = []
    for i, key in enumerate(order):
        same = [order[j].column == values[j] for j in range(i)]
        past = key.column < values[i] if key.descending == forward else key.column > values[i]
        alternatives.append(and_(*same, past))
    return or_(*alternatives)


def _ordered(stmt: Select, order: Sequence[Key], *, forward: bool) -> Select:
    cols = []
    for key in order:
        desc = key.descending == forward
        cols.append(key.column.desc() if desc else key.column.asc())
    return stmt.order_by(None).order_by(*cols)


def _cursor_values(order: Sequence[Key], cursor: int) -> tuple | None:
    """The order's values of the row with id ``cursor`` (None if there is no such row)."""
    if len(order) == 1:
        return (cursor,)
    id_col = order[-1].column
    row = db.session.execute(
        select(*(k.column for k in order[:-1])).where(id_col == cursor).limit(1)
    ).first()
    return None if row is None else (*row, cursor)


def keyset_page(
    stmt: Select,
    *,
    order: Sequence[Key],
    per_page: int,
    after: str | int | None = None,
    before: str | int | None = None,
    count: bool = True,
) -> KeysetPage:
    """A page of ``stmt`` in ``order``: the first page, the one after row ``after`` or the one
    before row ``before`` (an ``after`` wins when both are given; a cursor that is not an id
    gives the first page). ``total`` is a capped count of the whole list when ``count``."""
    after_id = parse_cursor(str(after)) if after is not None else None
    before_id = parse_cursor(str(before)) if before is not None and after_id is None else None
    id_col = order[-1].column
    single = len(stmt.column_descriptions) == 1
    width = len(order)
    # Each row carries its order's values: the cursors around the page need no lookup.
    keyed = stmt.add_columns(*(k.column.label(f"keyset_{i}") for i, k in enumerate(order)))

    cursor, forward = None, True
    if after_id is not None or before_id is not None:
        forward = after_id is not None
        values = _cursor_values(order, after_id if forward else before_id)
        if values is not None:
            cursor = values
        else:
            forward = True  # the cursor row is gone (or not the brand's): the top of the list

    query = _ordered(keyed, order, forward=forward)
    if cursor is not None:
        query = query.where(_beyond(order, cursor, forward=forward))
    rows = list(db.session.execute(query.limit(per_page + 1)).all())
    more = len(rows) > per_page
    rows = rows[:per_page]
    if not forward:
        rows.reverse()
    keys = [tuple(r[-width:]) for r in rows]
    items = [r[0] if single else tuple(r[:-width]) for r in rows]

    def exists_past(values: tuple, *, ahead: bool) -> bool:
        probe = stmt.with_only_columns(id_col).order_by(None)
        probe = probe.where(_beyond(order, values, forward=ahead)).limit(1)
        return db.session.execute(probe).first() is not None

    # Past either end there are no rows to point from: the pager offers the first page.
    older = newer = None
    if keys and forward:
        older = keys[-1][-1] if more else None
        newer = keys[0][-1] if cursor is not None and exists_past(keys[0], ahead=False) else None
    elif keys:
        newer = keys[0][-1] if more else None
        older = keys[-1][-1] if exists_past(keys[-1], ahead=True) else None
    total = capped_count(stmt) if count else None
    return KeysetPage(
        items=items,
        older=older,
        newer=newer,
        total=total,
        per_page=per_page,
        first=cursor is None,
    )


def page_from_request(
    stmt: Select, *, order: Sequence[Key], per_page: int, count: bool = True
) -> KeysetPage:
    """``keyset_page`` with the cursor of the current request (``?after=`` / ``?before=``)."""
    from flask import request

    return keyset_page(
        stmt,
        order=order,
        per_page=per_page,
        after=request.args.get("after"),
        before=request.args.get("before"),
        count=count,
    )
