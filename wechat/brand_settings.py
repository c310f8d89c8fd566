"""A brand's settings rows that member-facing requests read on every request, kept per
process under the brand's generation marker.

An activation alone read the tier settings, the tier levels, a system tag, the points rules,
the coupon settings and the distribution rules: six statements for rows that change a few
times a year. A request that found its brand through ``wechat.brand_cache.current()`` (member
pages, the mini-program API, the callback's handlers) reads them here instead:

- a value is cached per (brand, name) together with the brand's generation marker it was
  loaded under, for at most ``TTL`` seconds;
- every committed write of a watched table (ORM objects, and ``insert``/``update``/``delete``
  constructs of its model run through the session while a brand is current), by whichever
  process, clears the brand's marker in Redis (``brand_cache.forget``), so the next request of
  every process reloads the brand and with it these values; a change made otherwise (raw SQL
  text, no current brand) or whose Redis write fails is seen within ``TTL``;
- the console, jobs and commands (no cached brand) always read the database, as writers must;
- callers get a copy made for them (``copy``), never the cached object: a value is shared by
  the threads of a process.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, object_session

from core.tenancy import current_brand_id, require_brand_id
from wechat import brand_cache

T = TypeVar("T")
R = TypeVar("R")

TTL = 60.0

_CACHE: dict[tuple[int, str], tuple[str, float, object]] = {}
_LOCK = threading.Lock()
_WATCHED: set[str] = set()  # table names


def _same(value):
    return value


def get(name: str, load: Callable[[], T], copy: Callable[[T], R] = _same) -> R:
    """``copy(value)`` of the current brand's cached ``name``, loaded by ``load()`` (a plain,
    immutable value: a number, tuples, dicts of columns) when missing, stale or outside a
    request with a cached brand."""
    bid = require_brand_id()
    keys = brand_cache.cached(bid)
    now = time.monotonic()
    if keys is None or keys.expires <= now:
        return copy(load())
    entry = _CACHE.get((bid, name))
    if entry is not None and entry[0] == keys.gen and entry[1] > now:
        return copy(entry[2])  # type: ignore[arg-type]
    value = load()
    with _LOCK:
        _CACHE[(bid, name)] = (keys.gen, now + TTL, value)
    return copy(value)


def columns(row) -> dict:
    """A mapped row's column values (what ``get`` caches for a settings row)."""
    return {c.key: getattr(row, c.key) for c in row.__mapper__.column_attrs}


def instance(model: type[R], values: dict) -> R:
    """A new, unsaved ``model`` object of cached column values (JSON values copied)."""
    return model(
        **{k: copy.deepcopy(v) if isinstance(v, dict | list) else v for k, v in values.items()}
    )


def clear() -> None:
    """Empty this process's cache (with the brand cache's)."""
    with _LOCK:
        _CACHE.clear()


brand_cache.on_clear(clear)


def watch(*models) -> None:
    """Writes of these models' tables make every process reload the brand's cached values."""
    for model in models:
        table = model.__table__.name
        if table in _WATCHED:
            continue
        _WATCHED.add(table)
        for name in ("after_insert", "after_update", "after_delete"):
            event.listen(model, name, _row_changed)


def _mark(session: Session | None, brand_id: int | None) -> None:
    if session is not None and brand_id is not None:
        brand_cache.changed_in(session, brand_id)


def _row_changed(_mapper, _connection, target) -> None:
    _mark(object_session(target), getattr(target, "brand_id", None))


@event.listens_for(Session, "do_orm_execute")
def _statement_changes(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete) or not _WATCHED:
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in _WATCHED:
        _mark(state.session, current_brand_id())
