"""The points ledger's rollups (see core.rollups): points per brand-local day and kind, and
accounts opened per day. The liability (outstanding points) at the end of a day is the sum
of the days' net changes up to it, since the entries' deltas add up to the accounts."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, ForeignKey, String

from core import rollups
from core.db import BigId, db

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
