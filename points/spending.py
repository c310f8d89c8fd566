"""The spend hot path: two statements, where the general ledger path takes about a dozen.

``spend_fast`` handles the common case (an active member whose account holds enough points,
no lot past its expiry, a key not used before) with:

1. ``lock``: ``SELECT ... FOR UPDATE`` of the member's account, the per-member lock every
   ledger operation takes first (so locks stay account-then-lots). The same statement reads
   the balance, whether the member is active, whether any lot is past its expiry, and
   whether this time slot's sync job is queued already (then no outbox insert is needed:
   a round trip less, and no wait behind another transaction's uncommitted outbox row);
2. one statement, whose snapshot is taken after that lock is held, so it sees every lot as
   it now is: it locks the member's open, released, unexpired lots earliest expiry first,
   works out what each gives, and only if they cover the amount inserts the entry; only if
   the entry was inserted does it take the points from those lots and from the account
   (whose CHECK constraint still refuses a negative balance).

One statement writes everything or nothing, so no savepoint is needed. Every other case (no
account, too few points, a lot past its expiry, a key used before, an inactive member)
writes nothing and answers None; the caller then takes the general path
(``points.services``), which expires what is due and answers each case as it always did.

Another package may make the spend one step of its own single statement (the points mall
does: spend, stock and coupon together): ``LOTS_CTES`` + its own steps + ``entry_ctes()``
guarded by them, with ``spend_params()``; see ``coupons.mall``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from psycopg.rows import namedtuple_row
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg

from core.db import db, utcnow
from core.tenancy import require_brand_id
from members.models import ACTIVE
from points import ledger, rules
from points.models import SPEND

_DIALECT = pg_psycopg.dialect()


def driver_sql(sql: str) -> str:
    """A statement with ``:name`` parameters as the driver takes it, compacted (psycopg
    caches its parsing of statements up to 4 kB only)."""
    return str(text(" ".join(sql.split())).compile(dialect=_DIALECT))


def fetch_one(conn, sql: str, params: dict):
    """Run ``driver_sql`` output on the session's connection, straight through the driver.

    The hot path's statements are fixed text: SQLAlchemy's per-statement work (compiled
    cache lookup, result metadata) cost more CPU than the driver's own, for no benefit.
    ``conn`` is ``db.session.connection()``, so the statement is part of its transaction.
    """
    with conn.connection.driver_connection.cursor(row_factory=namedtuple_row) as cur:
        cur.execute(sql, params)
        return cur.fetchone()


_LOCK = driver_sql(
    "SELECT a.id, a.balance, m.status = :active AS active,"
    " EXISTS (SELECT 1 FROM points_lot l WHERE l.account_id = a.id"
    " AND l.remaining > 0 AND l.expires_at <= :now) AS overdue,"
    " EXISTS (SELECT 1 FROM outbox_job j WHERE j.dedupe_key = :sync) AS queued"
    " FROM points_account a JOIN member m ON m.id = a.member_id AND m.brand_id = a.brand_id"
    " WHERE a.brand_id = :b AND a.member_id = :m FOR UPDATE OF a"
)

# The lots that pay, earliest expiry first, locked; ``covered.ok``: they cover :p.
LOTS_CTES = """
lots AS (
    SELECT id, remaining, expires_at FROM points_lot
    WHERE account_id = :a AND released AND remaining > 0
      AND (expires_at IS NULL OR expires_at > :now)
    ORDER BY expires_at NULLS LAST, id
    FOR UPDATE
), take AS (
    SELECT id, LEAST(remaining, CAST(:p AS bigint) - before) AS n
    FROM (
        SELECT id, remaining,
               CAST(sum(remaining) OVER (ORDER BY expires_at NULLS LAST, id) AS bigint)
                   - remaining AS before
        FROM lots
    ) r
    WHERE before < :p
), covered AS (
    SELECT COALESCE(sum(n), 0) = :p AS ok FROM take
)"""


_ENTRY_CTES = """
entry AS (
    INSERT INTO points_entry (brand_id, account_id, member_id, kind, idempotency_key, points,
        delta_balance, delta_pending, delta_debt, reason, occurred_at, local_day, created_at)
    SELECT :b, :a, :m, :kind, :key, -CAST(:p AS bigint), -CAST(:p AS bigint), 0, 0, :reason,
        :now, :day, :created
    FROM covered WHERE covered.ok AND {guard}
    {on_conflict}
    RETURNING id
), spent_lots AS (
    UPDATE points_lot SET remaining = points_lot.remaining - take.n
    FROM take, entry WHERE points_lot.id = take.id
    RETURNING points_lot.id
), account AS (
    UPDATE points_account SET balance = balance - CAST(:p AS bigint),
        lifetime_spent = lifetime_spent + CAST(:p AS bigint),
        last_entry_id = entry.id, updated_at = :created
    FROM entry WHERE points_account.id = :a
    RETURNING points_account.balance
)"""


def entry_ctes(*, guard: str = "TRUE", on_conflict: str = "") -> str:
    """The entry (if the lots cover the amount and ``guard`` holds), then the moves.

    ``guard`` and ``on_conflict`` are SQL written in the code, never data: values are bound.
    """
    return _ENTRY_CTES.replace("{guard}", guard).replace("{on_conflict}", on_conflict)


# Alone, a used key simply inserts nothing (and the caller replays).
_ALONE = entry_ctes(on_conflict="ON CONFLICT (brand_id, idempotency_key) DO NOTHING")
_SPEND = driver_sql(
    f"WITH {LOTS_CTES}, {_ALONE}"  # noqa: S608 - constants only
    " SELECT (SELECT id FROM entry) AS entry_id, (SELECT balance FROM account) AS balance,"
    " (SELECT count(*) FROM spent_lots) AS lots"
)


@dataclasses.dataclass(frozen=True)
class Locked:
    """The member's account, locked, and what the hot path needs to know of it."""

    account_id: int
    balance: int


def lock(*, member_id: int, points: int, now: dt.datetime, conn=None) -> Locked | None:
    """Lock the account; None when the hot path cannot pay ``points`` (nothing written)."""
    bid = require_brand_id()
    if conn is None:
        db.session.flush()  # these statements bypass the ORM: its pending rows go first
        conn = db.session.connection()
    sync = ledger.sync_key(bid)
    row = fetch_one(
        conn, _LOCK, {"b": bid, "m": member_id, "now": now, "sync": sync, "active": ACTIVE}
    )
    if row is None or not row.active or row.overdue or row.balance < points:
        return None
    # The card sync and notification are asked for now, before the spend: an insert into the
    # outbox can wait for another transaction's uncommitted row, which must not happen while
    # the caller's hot rows are locked. (Should the spend not happen, the job finds nothing.)
    ledger.mark_dirty(bid, key=sync, queued=row.queued)
    return Locked(account_id=row.id, balance=row.balance)


def spend_params(
    locked: Locked, *, member_id: int, points: int, reason: str, key: str, now: dt.datetime
) -> dict:
    """The parameters of ``LOTS_CTES`` and ``entry_ctes``."""
    return {
        "a": locked.account_id,
        "b": require_brand_id(),
        "m": member_id,
        "p": points,
        "kind": SPEND,
        "key": key,
        "reason": reason,
        "now": now,
        "day": rules.local_day(now, rules.brand_tz()),
        "created": utcnow(),
    }


def spend_fast(
    *, member_id: int, points: int, reason: str, key: str, now: dt.datetime
) -> int | None:
    """Spend in two statements and return the new entry's id, or None (nothing written)."""
    db.session.flush()  # these statements bypass the ORM: its pending rows go first
    conn = db.session.connection()
    locked = lock(member_id=member_id, points=points, now=now, conn=conn)
    if locked is None:
        return None
    params = spend_params(
        locked, member_id=member_id, points=points, reason=reason, key=key, now=now
    )
    row = fetch_one(conn, _SPEND, params)
    if row.entry_id is None:
        return None
    if row.balance is None or row.lots < 1:  # cannot happen: the entry implies both moves
        raise RuntimeError("points spend wrote an entry without moving points")
    return int(row.entry_id)
