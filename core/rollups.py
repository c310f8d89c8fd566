"""Rollups: per-day aggregates of the ledgers that reports and the overview read instead of
grouping a brand's ledger rows on every page view.

Core knows no ledger; each package registers a ``Rollup`` (``register(...)``): a table keyed
by brand and a few columns (one of them a brand-local day), and the SQL that aggregates its
source rows *recorded* in a time range ``[:lo, :hi)`` (the time a row was written or changed
state: ``created_at``, ``issued_at``, ``reversed_at``...), grouped by the same keys.

How it stays exact without a hot row: writers never touch a rollup. A job (``advance``)
adds the rows recorded between the brand's watermark and a new one to the rollup (an upsert
of sums) and moves the watermark, in one transaction, so a rerun adds nothing twice. The new
watermark is a moment before which every transaction has ended: ``now - margin`` and before
the start of the oldest transaction still open in the database, so a row recorded before it
but committed late cannot be missed. Readers take the rollup rows plus the source rows
recorded since the watermark (a few minutes of rows, through an index on the recording
time), which is the same total as the ledger at any instant. A backdated event (a purchase
of yesterday posted today) is recorded now and lands in the right day's figures.

``rebuild`` recomputes a brand's rows from the ledger (replace; the same rows as the
increments), ``check`` compares every rollup row with the ledger in one snapshot.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, Column, ForeignKey, String, text

from core.db import BigId, UTCDateTime, db
from core.jobs import enqueue, job
from core.labels import register_labels
from core.tenancy import require_brand_id

log = logging.getLogger(__name__)

DEFAULT_MARGIN_SECONDS = 120
NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # the watermark of a brand never rolled up
FOREVER = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)

rollup_state = db.Table(
    "rollup_state",
    db.metadata,
    Column("brand_id", BigId, ForeignKey("brand.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(40), primary_key=True),
    Column("watermark", UTCDateTime, nullable=False),
    Column("rows_added", BigInteger, nullable=False, default=0),
    Column("updated_at", UTCDateTime, nullable=False),
)


@dataclasses.dataclass(frozen=True)
class Rollup:
    """A rollup table and the SQL aggregating its source rows.

    ``source`` selects exactly ``keys + values`` (by those names) for brand ``:b`` whose
    calendar is the time zone ``:tz``, grouped by the keys; key columns are never NULL.

    An append-only source (``changed`` empty) aggregates the rows recorded in ``[:lo, :hi)``
    and the rollup grows by sums. A source whose rows change state (members: merged, given a
    store) names ``changed``: the SQL listing, as ``d``, the days of the rows changed in
    ``[:lo, :hi)`` (by an ``updated_at``); its ``source`` then aggregates the current rows
    of the days in ``{days}`` (a ``date[]``), and those days' rollup rows are replaced.
    """

    name: str
    table: str
    keys: tuple[str, ...]
    values: tuple[str, ...]
    source: str
    day: str = "day"
    changed: str = ""


_ROLLUPS: dict[str, Rollup] = {}


def register(rollup: Rollup) -> Rollup:
    """Add a rollup (registering the same name again replaces it)."""
    _ROLLUPS[rollup.name] = rollup
    return rollup


def registered() -> list[Rollup]:
    return [_ROLLUPS[k] for k in sorted(_ROLLUPS)]


def get(name: str) -> Rollup:
    return _ROLLUPS[name]


# --- reading -----------------------------------------------------------------------------


_WATERMARK = (
    "(SELECT coalesce((SELECT watermark FROM rollup_state"
    " WHERE brand_id = :b AND name = :rollup), :never))"
)


def watermark(name: str, brand_id: int | None = None) -> dt.datetime:
    """The instant up to which the brand's rows are in the rollup (NEVER: nothing yet)."""
    bid = brand_id if brand_id is not None else require_brand_id()
    w = db.session.execute(
        text("SELECT watermark FROM rollup_state WHERE brand_id = :b AND name = :n"),
        {"b": bid, "n": name},
    ).scalar()
    return w or NEVER


def relation(
    name: str,
    *,
    tz: str,
    brand_id: int | None = None,
    d0: dt.date | None = None,
    d1: dt.date | None = None,
) -> tuple[str, dict]:
    """SQL of a relation with the rollup's keys and values holding, for the current brand,
    the rollup rows plus the live ones recorded since the watermark (unaggregated between the
    two: sum over it), and its parameters. Filters on key columns reach both parts; a
    rollup of changing rows needs the days read as ``[d0, d1)`` (None: all)."""
    r = _ROLLUPS[name]
    bid = brand_id if brand_id is not None else require_brand_id()
    cols = ", ".join(r.keys + r.values)
    # The watermark is read in the same statement as the rollup rows (one snapshot): a run
    # committing in between must not make rows count twice or not at all.
    params = {"b": bid, "tz": tz, "rollup": name, "never": NEVER, "hi": FOREVER}
    source = r.source.replace(":lo", _WATERMARK)
    if not r.changed:
        sql = (
            f"(SELECT {cols} FROM {r.table} WHERE brand_id = :b"  # noqa: S608 - registered
            f" UNION ALL SELECT {cols} FROM ({source}) live)"
        )
        return sql, params
    # Days with rows changed since the watermark are read live, whole; the others from the
    # rollup (it holds every change before the watermark).
    params.update(d0=d0 or dt.date(1970, 1, 1), d1=d1 or dt.date(9999, 1, 1))
    changed = r.changed.replace(":lo", _WATERMARK)
    dirty = (
        f"ARRAY(SELECT DISTINCT d FROM ({changed}) c"  # noqa: S608 - registered SQL
        " WHERE d >= :d0 AND d < :d1)"
    )
    sql = (
        f"(SELECT {cols} FROM {r.table} WHERE brand_id = :b"  # noqa: S608 - registered
        f" AND {r.day} >= :d0 AND {r.day} < :d1 AND NOT ({r.day} = ANY({dirty}))"
        f" UNION ALL SELECT {cols} FROM ({source.replace('{days}', dirty)}) live)"
    )
    return sql, params


def query(
    name: str,
    sql: str,
    *,
    tz: str,
    d0: dt.date | None = None,
    d1: dt.date | None = None,
    **params,
) -> list[tuple]:
    """Rows of ``sql`` in which ``{rel}`` stands for the rollup's relation (see ``relation``),
    with the relation's parameters and ``params``."""
    rel, base = relation(name, tz=tz, d0=d0, d1=d1)
    if d0 is not None:
        params["d0"] = d0
    if d1 is not None:
        params["d1"] = d1
    rows = db.session.execute(text(sql.replace("{rel}", rel)), {**base, **params}).all()
    return [tuple(r) for r in rows]


# --- maintaining -------------------------------------------------------------------------


def _margin() -> dt.timedelta:
    seconds = current_app.config.get("ROLLUP_MARGIN_SECONDS", DEFAULT_MARGIN_SECONDS)
    return dt.timedelta(seconds=int(seconds))


def safe_watermark() -> dt.datetime:
    """A moment before which every transaction has ended: ``margin`` before now and before
    the oldest transaction still open in this database (its rows may carry earlier times)."""
    m = _margin()
    # The activity view is cached for the transaction, and now() is when it began: read both
    # afresh (the caller may have been in its transaction for a while).
    db.session.execute(text("SELECT pg_stat_clear_snapshot()"))
    now, oldest = db.session.execute(
        text(
            "SELECT clock_timestamp(), (SELECT min(xact_start) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend' AND xact_start IS NOT NULL)"
        )
    ).one()
    hi = now - m
    if oldest is not None:
        hi = min(hi, oldest - m)
    return hi


def _lock_state(name: str, brand_id: int) -> dt.datetime:
    """Lock the brand's state row of the rollup (one maintainer at a time); its watermark."""
    db.session.execute(
        text(
            "INSERT INTO rollup_state (brand_id, name, watermark, rows_added, updated_at)"
            " VALUES (:b, :n, :w, 0, now()) ON CONFLICT DO NOTHING"
        ),
        {"b": brand_id, "n": name, "w": NEVER},
    )
    return db.session.execute(
        text("SELECT watermark FROM rollup_state WHERE brand_id = :b AND name = :n FOR UPDATE"),
        {"b": brand_id, "n": name},
    ).scalar_one()


def _set_state(name: str, brand_id: int, w: dt.datetime, added: int) -> None:
    db.session.execute(
        text(
            "UPDATE rollup_state SET watermark = :w, rows_added = rows_added + :a,"
            " updated_at = now() WHERE brand_id = :b AND name = :n"
        ),
        {"b": brand_id, "n": name, "w": w, "a": added},
    )


def _insert_sql(r: Rollup, *, upsert: bool, where: str = "", days: str = "") -> str:
    cols = ", ".join(r.keys + r.values)
    source = r.source.replace("{days}", days)
    sql = (
        f"INSERT INTO {r.table} (brand_id, {cols})"  # noqa: S608 - registered names
        f" SELECT :b, {cols} FROM ({source}) s {where}"
    )
    if upsert:
        sets = ", ".join(f"{v} = {r.table}.{v} + EXCLUDED.{v}" for v in r.values)
        sql += f" ON CONFLICT (brand_id, {', '.join(r.keys)}) DO UPDATE SET {sets}"
    return sql


def _replace_days(r: Rollup, p: dict, days: list[dt.date]) -> int:
    """Replace the rollup rows of these days by the source's current rows for them."""
    if not days:
        return 0
    p = {**p, "days": days}
    db.session.execute(
        text(f"DELETE FROM {r.table} WHERE brand_id = :b AND {r.day} = ANY(:days)"),  # noqa: S608
        p,
    )
    return db.session.execute(
        text(_insert_sql(r, upsert=False, days="CAST(:days AS date[])")), p
    ).rowcount


def _changed_days(r: Rollup, p: dict) -> list[dt.date]:
    sql = f"SELECT DISTINCT d FROM ({r.changed}) c WHERE d IS NOT NULL"  # noqa: S608
    return [row[0] for row in db.session.execute(text(sql), p).all()]


def advance(name: str, *, brand_id: int, tz: str, hi: dt.datetime | None = None) -> int:
    """Add the brand's rows recorded since the watermark (up to a safe one) to the rollup and
    move the watermark, in the caller's transaction. Returns the rollup rows written."""
    r = _ROLLUPS[name]
    lo = _lock_state(name, brand_id)
    hi = hi or safe_watermark()
    if hi <= lo:
        return 0
    p = {"b": brand_id, "tz": tz, "lo": lo, "hi": hi}
    if r.changed:
        n = _replace_days(r, p, _changed_days(r, p))
    else:
        n = db.session.execute(text(_insert_sql(r, upsert=True)), p).rowcount
    _set_state(name, brand_id, hi, n)
    return n


def rebuild(
    name: str, *, brand_id: int, tz: str, since: dt.date | None = None
) -> tuple[dt.datetime, int]:
    """Recompute the brand's rollup rows from the ledger (those of days from ``since`` on, or
    all), replacing them, in the caller's transaction. Returns the watermark and rows."""
    r = _ROLLUPS[name]
    lo = _lock_state(name, brand_id)
    if since is None or lo == NEVER:
        w = safe_watermark()
        p = {"b": brand_id, "tz": tz, "lo": NEVER, "hi": w}
        db.session.execute(text(f"DELETE FROM {r.table} WHERE brand_id = :b"), p)  # noqa: S608
        if r.changed:
            n = _replace_days(r, p, _changed_days(r, p))
        else:
            n = db.session.execute(text(_insert_sql(r, upsert=False)), p).rowcount
        _set_state(name, brand_id, w, 0)
        return w, n
    p = {"b": brand_id, "tz": tz, "lo": NEVER, "hi": lo, "since": since}
    if r.changed:
        days = [d for d in _changed_days(r, p) if d >= since]
        db.session.execute(
            text(f"DELETE FROM {r.table} WHERE brand_id = :b AND {r.day} >= :since"),  # noqa: S608
            p,
        )
        return lo, _replace_days(r, p, days)
    db.session.execute(
        text(f"DELETE FROM {r.table} WHERE brand_id = :b AND {r.day} >= :since"),  # noqa: S608
        p,
    )
    n = db.session.execute(
        text(_insert_sql(r, upsert=False, where=f"WHERE {r.day} >= :since")), p
    ).rowcount
    return lo, n


def check(name: str, *, brand_id: int, tz: str) -> list[str]:
    """Rollup rows that differ from the ledger's rows recorded before the watermark (one
    statement, so one snapshot), described for a person; empty when all agree."""
    r = _ROLLUPS[name]
    keys = ", ".join(r.keys)
    vals_r = ", ".join(f"coalesce(r.{v}, 0) AS r_{v}" for v in r.values)
    vals_l = ", ".join(f"coalesce(l.{v}, 0) AS l_{v}" for v in r.values)
    differs = " OR ".join(f"coalesce(r.{v}, 0) <> coalesce(l.{v}, 0)" for v in r.values)
    cols = ", ".join(r.keys + r.values)
    w = "(SELECT w FROM st)"
    if r.changed:
        # The days changed before the watermark and not since: the rollup holds them.
        before = r.changed.replace(":lo", ":never").replace(":hi", w)
        since = r.changed.replace(":lo", w).replace(":hi", ":forever")
        held = "(SELECT coalesce(array_agg(d), '{}') FROM days)"
        ctes = (
            f" days AS (SELECT d FROM ({before}) a WHERE d IS NOT NULL"  # noqa: S608
            f" EXCEPT SELECT d FROM ({since}) s),"
            f" r AS (SELECT {cols} FROM {r.table} WHERE brand_id = :b"
            f" AND NOT EXISTS (SELECT 1 FROM ({since}) s WHERE s.d = {r.table}.{r.day})),"
            f" l AS ({r.source.replace('{days}', held)})"
        )
    else:
        ctes = (
            f" r AS (SELECT {cols} FROM {r.table} WHERE brand_id = :b),"  # noqa: S608
            f" l AS ({r.source.replace(':lo', ':never').replace(':hi', w)})"
        )
    head = (
        "WITH st AS (SELECT coalesce((SELECT watermark FROM rollup_state"
        " WHERE brand_id = :b AND name = :n), :never) AS w),"
    )
    tail = f" SELECT {keys}, {vals_r}, {vals_l} FROM r FULL JOIN l USING ({keys})"  # noqa: S608
    sql = head + ctes + tail + f" WHERE {differs} ORDER BY {keys} LIMIT 100"
    params = {"b": brand_id, "n": name, "tz": tz, "never": NEVER, "forever": FOREVER}
    rows = db.session.execute(text(sql), params).all()
    out = []
    k = len(r.keys)
    for row in rows:
        key = ", ".join(f"{c}={v}" for c, v in zip(r.keys, row[:k], strict=True))
        got = dict(zip(r.values, row[k : k + len(r.values)], strict=True))
        want = dict(zip(r.values, row[k + len(r.values) :], strict=True))
        out.append(f"{name} [{key}]: rollup {got} != ledger {want}")
    return out


# --- every brand: the job, the command line ------------------------------------------------


def brands(slug: str | None = None, *, brand_id: int | None = None) -> list[tuple[int, str, str]]:
    """(id, slug, time zone) of every brand, or of the one named (by slug or id)."""
    sql = "SELECT id, slug, coalesce(nullif(timezone, ''), 'Asia/Shanghai') FROM brand"
    params = {}
    if slug is not None:
        sql += " WHERE slug = :s"
        params["s"] = slug
    elif brand_id is not None:
        sql += " WHERE id = :id"
        params["id"] = brand_id
    return [tuple(r) for r in db.session.execute(text(sql + " ORDER BY id"), params).all()]


@dataclasses.dataclass(frozen=True)
class Task:
    """Upkeep of a rollup that is not a sum of days (the active members of whole periods):
    ``advance(brand_id, tz, hi)`` and ``rebuild(brand_id, tz, hi)`` return rows written,
    ``check(brand_id, tz)`` the mismatches with the ledger."""

    name: str
    advance: Callable[[int, str, dt.datetime], int]
    rebuild: Callable[[int, str, dt.datetime], int]
    check: Callable[[int, str], list[str]]


_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    _TASKS[task.name] = task
    return task


def advance_brand(brand_id: int, tz: str) -> int:
    """Advance every registered rollup of one brand (caller commits)."""
    hi = safe_watermark()
    n = sum(advance(r.name, brand_id=brand_id, tz=tz, hi=hi) for r in registered())
    return n + sum(t.advance(brand_id, tz, hi) for t in _TASKS.values())


def rebuild_brand(brand_id: int, tz: str, *, since: dt.date | None = None) -> dict[str, int]:
    """Recompute every registered rollup of one brand from its ledgers (caller commits)."""
    out = {r.name: rebuild(r.name, brand_id=brand_id, tz=tz, since=since)[1] for r in registered()}
    hi = safe_watermark()
    out.update({t.name: t.rebuild(brand_id, tz, hi) for t in _TASKS.values()})
    return out


def check_brand(brand_id: int, tz: str) -> list[str]:
    """Every mismatch between one brand's rollups and its ledgers."""
    out = [m for r in registered() for m in check(r.name, brand_id=brand_id, tz=tz)]
    return out + [m for t in _TASKS.values() for m in t.check(brand_id, tz)]


@job("low", timeout=300, retries=2)
def advance_all() -> int:
    """Enqueue, for every brand, the run that adds its recent ledger rows to its rollups."""
    listed = brands()
    slot = int(dt.datetime.now(dt.UTC).timestamp() // 300)
    for bid, _slug, _tz in listed:
        enqueue(advance_one, bid, brand_id=bid, dedupe_key=f"rollups:advance:{bid}:{slot}")
    return len(listed)


@job("low", timeout=1800, retries=3)
def advance_one(brand_id: int) -> int:
    """Add one brand's ledger rows recorded since its watermark to every rollup."""
    for bid, _slug, tz in brands(brand_id=brand_id):
        return advance_brand(bid, tz)
    return 0


@job("low", timeout=300, retries=2)
def check_all() -> int:
    """Enqueue, for every brand, the comparison of its rollups with its ledgers."""
    listed = brands()
    day = dt.datetime.now(dt.UTC).date().isoformat()
    for bid, _slug, _tz in listed:
        enqueue(check_one, bid, brand_id=bid, dedupe_key=f"rollups:check:{bid}:{day}")
    return len(listed)


@job("low", timeout=3600, retries=1)
def check_one(brand_id: int) -> int:
    """Advance one brand's rollups, then compare each with the ledger; log every mismatch."""
    for bid, slug, tz in brands(brand_id=brand_id):
        advance_brand(bid, tz)
        mismatches = check_brand(bid, tz)
        for m in mismatches:
            log.error("rollup mismatch in brand %s: %s", slug, m)
        return len(mismatches)
    return 0


register_labels(
    "job",
    {
        "core.rollups.advance_all": _l("Update the report rollups of every brand"),
        "core.rollups.advance_one": _l("Update a brand's report rollups"),
        "core.rollups.check_all": _l("Check the report rollups of every brand"),
        "core.rollups.check_one": _l("Check a brand's report rollups against the ledgers"),
    },
)
