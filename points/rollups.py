"""The points ledger's rollups (see core.rollups): points per brand-local day and kind, and
accounts opened per day. The liability (outstanding points) at the end of a day is the sum
of the days' net changes up to it, since the entries' deltas add up to the accounts."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from sqlalchemy import BigInteger, Column, Date, ForeignKey, Integer, String, text

from core import rollups
from core.db import BigId, UTCDateTime, db

points_day_rollup = db.Table(
    "points_day_rollup",
    db.metadata,
    Column("brand_id", BigId, ForeignKey("brand.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("entries", BigInteger, nullable=False),
    Column("points_in", BigInteger, nullable=False),  # the sum of positive changes
    Column("points_out", BigInteger, nullable=False),  # the sum of negative changes
    Column("d_balance", BigInteger, nullable=False),
    Column("d_pending", BigInteger, nullable=False),
    Column("d_debt", BigInteger, nullable=False),
)

points_account_rollup = db.Table(
    "points_account_rollup",
    db.metadata,
    Column("brand_id", BigId, ForeignKey("brand.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("accounts", BigInteger, nullable=False),
)

POINTS_DAY = rollups.register(
    rollups.Rollup(
        name="points_day",
        table="points_day_rollup",
        keys=("day", "kind"),
        values=("entries", "points_in", "points_out", "d_balance", "d_pending", "d_debt"),
        source="""SELECT local_day AS day, kind, count(*) AS entries,
              coalesce(sum(points) FILTER (WHERE points > 0), 0) AS points_in,
              coalesce(sum(points) FILTER (WHERE points < 0), 0) AS points_out,
              sum(delta_balance) AS d_balance, sum(delta_pending) AS d_pending,
              sum(delta_debt) AS d_debt
            FROM points_entry
            WHERE brand_id = :b AND created_at >= :lo AND created_at < :hi
            GROUP BY local_day, kind""",
    )
)

POINTS_ACCOUNTS = rollups.register(
    rollups.Rollup(
        name="points_accounts",
        table="points_account_rollup",
        keys=("day",),
        values=("accounts",),
        source="""SELECT (created_at AT TIME ZONE :tz)::date AS day, count(*) AS accounts
            FROM points_account
            WHERE brand_id = :b AND created_at >= :lo AND created_at < :hi
            GROUP BY 1""",
    )
)


# --- active members: distinct members over whole periods ------------------------------------
# Distinct counts do not add up over days, so the members who earned or spent points are
# counted once per window of days ending on a past day (the lengths a 1, 7 or 30-day
# period needs: its past part, and the whole previous period), from the entries recorded
# before the window's watermark. A reader adds the members of today's entries and of entries
# recorded since the watermark (a backdated one) who are not among them (core.rollups).

ACTIVE_KINDS = ("earn", "spend")
WINDOW_DAYS = (1, 6, 7, 29, 30)
WINDOW_ENDS = 31  # windows ending on each of the last 31 days (a 30-day period's previous one)

points_active_rollup = db.Table(
    "points_active_rollup",
    db.metadata,
    Column("brand_id", BigId, ForeignKey("brand.id", ondelete="CASCADE"), primary_key=True),
    Column("end_day", Date, primary_key=True),
    Column("days", Integer, primary_key=True),
    Column("members", BigInteger, nullable=False),
    Column("watermark", UTCDateTime, nullable=False),
)

_COUNT = """SELECT {counts} FROM points_entry
    WHERE brand_id = :b AND kind = ANY(:kinds) AND local_day > :end - {longest}
      AND local_day <= :end AND created_at < :w"""


def _count_windows(brand_id: int, end: dt.date, w: dt.datetime) -> dict[int, int]:
    counts = ", ".join(
        f"count(DISTINCT member_id) FILTER (WHERE local_day > :end - {d})" for d in WINDOW_DAYS
    )
    sql = _COUNT.replace("{counts}", counts).replace("{longest}", str(max(WINDOW_DAYS)))
    row = db.session.execute(
        text(sql), {"b": brand_id, "kinds": list(ACTIVE_KINDS), "end": end, "w": w}
    ).one()
    return dict(zip(WINDOW_DAYS, (int(n) for n in row), strict=True))


# All windows ending on a range of days in one pass: a member's latest active day up to an
# end day is d for the ends from d to the day before its next active day, so each active
# (member, day) counts in the windows of length L ending in [d, min(next, d + L)) - a range
# added with +1 at its start and -1 at its end, summed in order of the days.
_COUNT_ALL = """WITH p AS (
    SELECT DISTINCT member_id, local_day AS d FROM points_entry
    WHERE brand_id = :b AND kind = ANY(:kinds) AND local_day > CAST(:first AS date) - :longest
      AND local_day <= :last AND created_at < :w
), q AS (
    SELECT d, lead(d) OVER (PARTITION BY member_id ORDER BY d) AS nxt FROM p
), ev AS (
    SELECT l.days, q.d AS at, 1 AS delta FROM q CROSS JOIN unnest(CAST(:lens AS int[])) l(days)
    UNION ALL
    SELECT l.days, LEAST(coalesce(q.nxt, 'infinity'::date), q.d + l.days), -1
    FROM q CROSS JOIN unnest(CAST(:lens AS int[])) l(days)
), steps AS MATERIALIZED (
    SELECT days, at, sum(sum(delta)) OVER (PARTITION BY days ORDER BY at) AS members
    FROM ev GROUP BY days, at
)
SELECT e.end_day::date, l.days, coalesce((
    SELECT s.members FROM steps s WHERE s.days = l.days AND s.at <= e.end_day::date
    ORDER BY s.at DESC LIMIT 1), 0)
FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') e(end_day)
CROSS JOIN unnest(CAST(:lens AS int[])) l(days)"""


def _count_all(
    brand_id: int, first: dt.date, last: dt.date, w: dt.datetime
) -> dict[tuple[dt.date, int], int]:
    rows = db.session.execute(
        text(_COUNT_ALL),
        {
            "b": brand_id,
            "kinds": list(ACTIVE_KINDS),
            "first": first,
            "last": last,
            "longest": max(WINDOW_DAYS),
            "lens": list(WINDOW_DAYS),
            "w": w,
        },
    ).all()
    return {(end, days): int(n) for end, days, n in rows}


def _fill(brand_id: int, tz: str, hi: dt.datetime) -> int:
    """Count the windows ending on each of the last days that has none yet."""
    today = hi.astimezone(zoneinfo.ZoneInfo(tz)).date()
    have = set(
        db.session.execute(
            text(
                "SELECT DISTINCT end_day FROM points_active_rollup"
                " WHERE brand_id = :b AND end_day >= :first"
            ),
            {"b": brand_id, "first": today - dt.timedelta(days=WINDOW_ENDS)},
        ).scalars()
    )
    missing = [
        today - dt.timedelta(days=back)
        for back in range(1, WINDOW_ENDS + 1)
        if today - dt.timedelta(days=back) not in have
    ]
    counts: dict[tuple[dt.date, int], int] = {}
    if len(missing) > 2:  # a rebuild, a new brand: every window in one pass
        counts = _count_all(brand_id, min(missing), max(missing), hi)
    else:  # the day that just ended
        for end in missing:
            counts.update({(end, d): n for d, n in _count_windows(brand_id, end, hi).items()})
    written = 0
    for end in missing:
        for days in WINDOW_DAYS:
            members = counts[(end, days)]
            written += db.session.execute(
                text(
                    "INSERT INTO points_active_rollup (brand_id, end_day, days, members,"
                    " watermark) VALUES (:b, :end, :days, :n, :w) ON CONFLICT DO NOTHING"
                ),
                {"b": brand_id, "end": end, "days": days, "n": members, "w": hi},
            ).rowcount
    db.session.execute(
        text("DELETE FROM points_active_rollup WHERE brand_id = :b AND end_day < :old"),
        {"b": brand_id, "old": today - dt.timedelta(days=WINDOW_ENDS + 7)},
    )
    return written


def _rebuild_active(brand_id: int, tz: str, hi: dt.datetime) -> int:
    db.session.execute(
        text("DELETE FROM points_active_rollup WHERE brand_id = :b"), {"b": brand_id}
    )
    return _fill(brand_id, tz, hi)


def _check_active(brand_id: int, tz: str) -> list[str]:
    rows = db.session.execute(
        text(
            "SELECT end_day, watermark, array_agg(days ORDER BY days),"
            " array_agg(members ORDER BY days) FROM points_active_rollup"
            " WHERE brand_id = :b GROUP BY end_day, watermark ORDER BY end_day"
        ),
        {"b": brand_id},
    ).all()
    out = []
    for end, w, days, members in rows:
        want = _count_windows(brand_id, end, w)
        for d, n in zip(days, members, strict=True):
            if want.get(d) != n:
                out.append(
                    f"points_active [end_day={end}, days={d}]: rollup {n} != ledger {want.get(d)}"
                )
    return out


ACTIVE = rollups.register_task(
    rollups.Task(name="points_active", advance=_fill, rebuild=_rebuild_active, check=_check_active)
)


def window(brand_id: int, end: dt.date, days: int) -> tuple[int, dt.datetime] | None:
    """(members, watermark) of the stored window of ``days`` days ending on ``end``."""
    row = db.session.execute(
        text(
            "SELECT members, watermark FROM points_active_rollup"
            " WHERE brand_id = :b AND end_day = :end AND days = :days"
        ),
        {"b": brand_id, "end": end, "days": days},
    ).one_or_none()
    return (int(row[0]), row[1]) if row else None


def active_members(
    brand_id: int, *, first: dt.date, last: dt.date, today: dt.date | None = None
) -> int | None:
    """Members who earned or spent points on the days ``first``..``last`` (and ``today``,
    when given: a day after ``last``), from the stored window of those days plus the members
    of the entries it does not hold; None when no window is stored."""
    days = (last - first).days + 1
    if days <= 0:
        pre, w = 0, rollups.NEVER
    else:
        got = window(brand_id, last, days)
        if got is None:
            return None
        pre, w = got
    late = db.session.execute(
        text(
            "SELECT count(DISTINCT e.member_id) FROM points_entry e"
            " WHERE e.brand_id = :b AND e.kind = ANY(:kinds)"
            " AND (e.local_day = CAST(:today AS date)"
            "      OR (e.local_day BETWEEN :first AND :last AND e.created_at >= :w))"
            " AND NOT EXISTS (SELECT 1 FROM points_entry p WHERE p.member_id = e.member_id"
            "   AND p.brand_id = :b AND p.kind = ANY(:kinds)"
            "   AND p.local_day BETWEEN :first AND :last AND p.created_at < :w)"
        ),
        {
            "b": brand_id,
            "kinds": list(ACTIVE_KINDS),
            "today": today,
            "first": first,
            "last": last,
            "w": w,
        },
    ).scalar_one()
    return pre + int(late)
