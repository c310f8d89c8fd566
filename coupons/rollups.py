"""The coupons' rollups (see core.rollups): coupons issued per template, day and source;
redemptions per template, store and day, their reversals (by the day of the redemption
reversed), and coupons expired per template and day. A coupon's status is derivable from
them: redeemed = redemptions - reversals; expired = expiries + reversals that found the
coupon past its validity (the reversal makes it expired, not available)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, ForeignKey, String

from core import rollups
from core.db import BigId, db


def _table(name: str, keys: list[Column], values: list[str]):
    return db.Table(
        name,
        db.metadata,
        Column("brand_id", BigId, ForeignKey("brand.id", ondelete="CASCADE"), primary_key=True),
        *keys,
        *[Column(v, BigInteger, nullable=False) for v in values],
    )


coupon_issued_rollup = _table(
    "coupon_issued_rollup",
    [
        Column("template_id", BigId, primary_key=True),
        Column("day", Date, primary_key=True),
        Column("source", String(12), primary_key=True),
    ],
    ["n"],
)
coupon_redemption_rollup = _table(
    "coupon_redemption_rollup",
    [
        Column("template_id", BigId, primary_key=True),
        Column("store_id", BigId, primary_key=True),
        Column("day", Date, primary_key=True),
    ],
    ["n", "discount_fen"],
)
# The same redemptions per template and day only: what the brand-wide report and overview
# read (the store grain above holds up to a row per store for every template and day).
coupon_redemption_day_rollup = _table(
    "coupon_redemption_day_rollup",
    [Column("template_id", BigId, primary_key=True), Column("day", Date, primary_key=True)],
    ["n", "discount_fen"],
)
coupon_reversal_rollup = _table(
    "coupon_reversal_rollup",
    [
        Column("template_id", BigId, primary_key=True),
        Column("store_id", BigId, primary_key=True),
        Column("day", Date, primary_key=True),  # the day of the redemption reversed
    ],
    ["n", "discount_fen", "to_expired"],
)
coupon_expired_rollup = _table(
    "coupon_expired_rollup",
    [Column("template_id", BigId, primary_key=True), Column("day", Date, primary_key=True)],
    ["n"],
)

ISSUED = rollups.register(
    rollups.Rollup(
        name="coupon_issued",
        table="coupon_issued_rollup",
        keys=("template_id", "day", "source"),
        values=("n",),
        source="""SELECT template_id, issued_day AS day, source, count(*) AS n
            FROM coupon WHERE brand_id = :b AND issued_at >= :lo AND issued_at < :hi
            GROUP BY 1, 2, 3""",
    )
)
REDEMPTIONS = rollups.register(
    rollups.Rollup(
        name="coupon_redemptions",
        table="coupon_redemption_rollup",
        keys=("template_id", "store_id", "day"),
        values=("n", "discount_fen"),
        source="""SELECT template_id, COALESCE(store_id, 0) AS store_id,
              (created_at AT TIME ZONE :tz)::date AS day,
              count(*) AS n, sum(discount_fen) AS discount_fen
            FROM coupon_redemption
            WHERE brand_id = :b AND created_at >= :lo AND created_at < :hi
            GROUP BY 1, 2, 3""",
    )
)
REDEMPTIONS_DAY = rollups.register(
    rollups.Rollup(
        name="coupon_redemptions_day",
        table="coupon_redemption_day_rollup",
        keys=("template_id", "day"),
        values=("n", "discount_fen"),
        source="""SELECT template_id, (created_at AT TIME ZONE :tz)::date AS day,
              count(*) AS n, sum(discount_fen) AS discount_fen
            FROM coupon_redemption
            WHERE brand_id = :b AND created_at >= :lo AND created_at < :hi
            GROUP BY 1, 2""",
    )
)
REVERSALS = rollups.register(
    rollups.Rollup(
        name="coupon_reversals",
        table="coupon_reversal_rollup",
        keys=("template_id", "store_id", "day"),
        values=("n", "discount_fen", "to_expired"),
        source="""SELECT r.template_id, COALESCE(r.store_id, 0) AS store_id,
              (r.created_at AT TIME ZONE :tz)::date AS day,
              count(*) AS n, sum(r.discount_fen) AS discount_fen,
              count(*) FILTER (WHERE c.valid_until <= r.reversed_at) AS to_expired
            FROM coupon_redemption r JOIN coupon c ON c.id = r.coupon_id
            WHERE r.brand_id = :b AND r.reversed_at >= :lo AND r.reversed_at < :hi
            GROUP BY 1, 2, 3""",
    )
)
EXPIRED = rollups.register(
    rollups.Rollup(
        name="coupon_expired",
        table="coupon_expired_rollup",
        keys=("template_id", "day"),
        values=("n",),
        source="""SELECT template_id, (expired_at AT TIME ZONE :tz)::date AS day, count(*) AS n
            FROM coupon WHERE brand_id = :b AND expired_at >= :lo AND expired_at < :hi
            GROUP BY 1, 2""",
    )
)
