"""The members' rollup (see core.rollups): new members and card activations per brand-local
day, channel (source), store and guide. Members change after they are counted (a first
touch gives a store and guide, a merge takes the duplicate out, an import fills a store), so
the days of members changed since the last run (by ``updated_at``) are recounted whole, and
readers count the days changed since the watermark live."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, ForeignKey, String

from core import rollups
from core.db import BigId, db

NONE = 0  # the store or guide of members without one (key columns are never NULL)

member_day_rollup = db.Table(
    "member_day_rollup",
    db.metadata,
    Column("brand_id", BigId, ForeignKey("brand.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("source", String(20), primary_key=True),
    Column("store_id", BigId, primary_key=True),
    Column("guide_id", BigId, primary_key=True),
    Column("new_members", BigInteger, nullable=False),
    Column("activations", BigInteger, nullable=False),
)

# The same per day only: the brand-wide trend (the grain above holds about a row per store,
# guide and channel for every day).
member_day_total_rollup = db.Table(
    "member_day_total_rollup",
    db.metadata,
    Column("brand_id", BigId, ForeignKey("brand.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("new_members", BigInteger, nullable=False),
    Column("activations", BigInteger, nullable=False),
)

# The members who joined (or activated) on the days listed: one index range per day.
_DAY_OF = """FROM unnest({days}) d(day) JOIN member m ON m.brand_id = :b
      AND m.status <> 'merged'
      AND m.{col} >= (d.day::timestamp AT TIME ZONE :tz)
      AND m.{col} < ((d.day + 1)::timestamp AT TIME ZONE :tz)"""

_SOURCE = """SELECT day, source, store_id, guide_id, sum(new_n) AS new_members,
      sum(act_n) AS activations
    FROM (SELECT d.day, m.source, coalesce(m.store_id, 0) AS store_id,
            coalesce(m.guide_id, 0) AS guide_id, 1 AS new_n, 0 AS act_n
          {created}
          UNION ALL
          SELECT d.day, m.source, coalesce(m.store_id, 0), coalesce(m.guide_id, 0), 0, 1
          {activated}) x
    GROUP BY day, source, store_id, guide_id"""

MEMBERS_DAY = rollups.register(
    rollups.Rollup(
        name="member_day",
        table="member_day_rollup",
        keys=("day", "source", "store_id", "guide_id"),
        values=("new_members", "activations"),
        source=_SOURCE.replace("{created}", _DAY_OF.replace("{col}", "created_at")).replace(
            "{activated}", _DAY_OF.replace("{col}", "activated_at")
        ),
        changed="""SELECT v.d FROM member m
            CROSS JOIN LATERAL (VALUES ((m.created_at AT TIME ZONE :tz)::date),
                                       ((m.activated_at AT TIME ZONE :tz)::date)) v(d)
            WHERE m.brand_id = :b AND m.updated_at >= :lo AND m.updated_at < :hi""",
    )
)

_TOTAL = """SELECT day, sum(new_n) AS new_members, sum(act_n) AS activations
    FROM (SELECT d.day, 1 AS new_n, 0 AS act_n
          {created}
          UNION ALL
          SELECT d.day, 0, 1
          {activated}) x
    GROUP BY day"""

MEMBERS_DAY_TOTAL = rollups.register(
    rollups.Rollup(
        name="member_day_total",
        table="member_day_total_rollup",
        keys=("day",),
        values=("new_members", "activations"),
        source=_TOTAL.replace("{created}", _DAY_OF.replace("{col}", "created_at")).replace(
            "{activated}", _DAY_OF.replace("{col}", "activated_at")
        ),
        changed=MEMBERS_DAY.changed,
    )
)
