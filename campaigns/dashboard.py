"""The brand dashboard (品牌看板): the figures a brand lives by, over time.

Everything is read from daily rollups, never by grouping a brand's members or orders on a
page view:

* members recruited per day by channel, store and guide: the members' rollup
  (``member_day`` / ``member_day_total``, core.rollups);
* coupons issued and redeemed (net of reversals): the coupons' rollups;
* points issued and spent: the points' rollup (``points_day``);
* new and returning customers, members' spend and ARPU: this package's
  ``campaign_customer_day``, kept in the paying / refunding transaction by the receivers
  below (``rebuild`` recomputes it from the orders);
* campaign reach and click rates: ``reach_series`` — the hook push campaigns fill from their
  send and tracking tables.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from core import rollups
from core.db import db, savepoint_event, utcnow
from core.tenancy import require_brand_id
from shop import signals
from shop.models import Order
from wechat import brand_cache

PERIODS = (30, 90, 180)
TOP = 10
ARPU_MONTHS = 6

# --- keeping the customers' rollup ------------------------------------------------------

_PAID = text(
    """
    INSERT INTO campaign_customer_day AS r (brand_id, day, store_key, orders, paid_fen,
        refunded_fen, new_customers, returning_customers)
    SELECT :b, :day, :store_key, 1, :fen, 0,
        CASE WHEN x.first THEN 1 ELSE 0 END,
        CASE WHEN NOT x.first AND x.first_today THEN 1 ELSE 0 END
    FROM (SELECT
        NOT EXISTS (SELECT 1 FROM shop_order o WHERE o.brand_id = :b AND o.member_id = :m
            AND o.paid_at IS NOT NULL AND o.id <> :o) AS first,
        NOT EXISTS (SELECT 1 FROM shop_order o WHERE o.brand_id = :b AND o.member_id = :m
            AND o.paid_at >= :day_start AND o.paid_at < :day_end AND o.id <> :o) AS first_today
    ) x
    ON CONFLICT (brand_id, day, store_key) DO UPDATE SET
        orders = r.orders + 1,
        paid_fen = r.paid_fen + EXCLUDED.paid_fen,
        new_customers = r.new_customers + EXCLUDED.new_customers,
        returning_customers = r.returning_customers + EXCLUDED.returning_customers
    """
)
_REFUNDED = text(
    """
    INSERT INTO campaign_customer_day AS r (brand_id, day, store_key, orders, paid_fen,
        refunded_fen, new_customers, returning_customers)
    VALUES (:b, :day, :store_key, 0, 0, :fen, 0, 0)
    ON CONFLICT (brand_id, day, store_key) DO UPDATE SET
        refunded_fen = r.refunded_fen + EXCLUDED.refunded_fen
    """
)
# The same rows from the orders and refunds themselves: the first paid order of a member
# makes a new customer, the first of a day of a member who bought before a returning one.
_REBUILD = text(
    """
    INSERT INTO campaign_customer_day (brand_id, day, store_key, orders, paid_fen,
        refunded_fen, new_customers, returning_customers)
    SELECT :b, day, store_key, sum(orders), sum(paid), sum(refunded), sum(new), sum(ret)
    FROM (
        SELECT (paid_at AT TIME ZONE :tz)::date AS day, coalesce(store_id, 0) AS store_key,
            1 AS orders, paid_fen AS paid, 0 AS refunded,
            CASE WHEN nth = 1 THEN 1 ELSE 0 END AS new,
            CASE WHEN nth > 1 AND nth_day = 1 THEN 1 ELSE 0 END AS ret
        FROM (SELECT o.paid_at, o.store_id, o.paid_fen,
                row_number() OVER (PARTITION BY o.member_id ORDER BY o.paid_at, o.id) AS nth,
                row_number() OVER (PARTITION BY o.member_id, (o.paid_at AT TIME ZONE :tz)::date
                                   ORDER BY o.paid_at, o.id) AS nth_day
              FROM shop_order o
              WHERE o.brand_id = :b AND o.member_id IS NOT NULL AND o.paid_at IS NOT NULL) p
        UNION ALL
        SELECT (f.succeeded_at AT TIME ZONE :tz)::date, coalesce(o.store_id, 0), 0, 0,
            f.amount_fen, 0, 0
        FROM shop_refund f JOIN shop_order o ON o.id = f.order_id
        WHERE f.brand_id = :b AND f.status = 'success' AND o.member_id IS NOT NULL
    ) x
    GROUP BY day, store_key
    """
)


def _tz() -> zoneinfo.ZoneInfo:
    return brand_cache.tz_of(require_brand_id())


# The receivers only note what happened; the rows are written just before the commit (one
# more lock at the very end, as the shop does with its own sales rollup): a row of the day
# taken mid-transaction would be held while the payment goes on to lock the member's points
# account, and two payments of one member would then deadlock.
_QUEUE = "campaigns_customer_day"


def record_paid(_brand_id, *, order_id: int, member_id: int | None, **_kw) -> None:
    """A member's order was just paid (receiver of ``shop.signals.order_paid``): counted at
    commit — the order, the money, and whether the member is a new or returning customer."""
    if member_id is None:
        return
    db.session.info.setdefault(_QUEUE, []).append(
        ("paid", require_brand_id(), member_id, order_id, 0, None)
    )


def record_refunded(
    _brand_id, *, order_id: int, member_id: int | None, amount_fen: int, **_kw
) -> None:
    """Money went back to a member today (receiver of ``shop.signals.order_refunded``)."""
    if member_id is None:
        return
    today = utcnow().astimezone(_tz()).date()
    db.session.info.setdefault(_QUEUE, []).append(
        ("refunded", require_brand_id(), member_id, order_id, amount_fen, today)
    )


@event.listens_for(Session, "before_commit")
def _write_rows(session: Session) -> None:
    if savepoint_event(session):
        return
    items = session.info.pop(_QUEUE, None)
    if not items:
        return
    # Payments of one member are counted one after the other: the second waits here for the
    # first to commit, then sees its order, so only one of them makes a new customer (the
    # first paid order to commit; a backdated till order of a member who bought since is
    # not a first purchase) and one a returning customer of the day.
    keys = sorted({f"campaigns:customer:{b}:{m}" for _k, b, m, *_ in items})
    session.execute(
        text(
            "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h"
            " FROM unnest(CAST(:ks AS text[])) AS t(k)) x ORDER BY h"
        ),
        {"ks": keys},
    )
    rows = []
    for kind, brand_id, member_id, order_id, amount, day in items:
        order = session.get(Order, order_id)
        store_key = order.store_id or 0
        if kind == "refunded":
            rows.append((day, store_key, _REFUNDED, {"fen": amount}, brand_id))
            continue
        tz = brand_cache.tz_of(brand_id)
        local = order.paid_at.astimezone(tz)
        start = dt.datetime.combine(local.date(), dt.time(), tz).astimezone(dt.UTC)
        end = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tz)
        params = {
            "day_start": start,
            "day_end": end.astimezone(dt.UTC),
            "fen": order.paid_fen,
            "m": member_id,
            "o": order.id,
        }
        rows.append((local.date(), store_key, _PAID, params, brand_id))
    # The shared rows in one order: no lock-order deadlock between two commits.
    for day, store_key, sql, params, brand_id in sorted(rows, key=lambda r: (r[4], r[0], r[1])):
        session.execute(sql, {**params, "b": brand_id, "day": day, "store_key": store_key})


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction) -> None:
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_QUEUE, None)


def connect() -> None:
    signals.order_paid.connect(record_paid)
    signals.order_refunded.connect(record_refunded)


def rebuild() -> int:
    """Recompute the current brand's customer rollup from its orders and refunds (replace);
    the caller commits. Returns the rows written."""
    brand_id = require_brand_id()
    db.session.execute(
        text("DELETE FROM campaign_customer_day WHERE brand_id = :b"), {"b": brand_id}
    )
    result = db.session.execute(_REBUILD, {"b": brand_id, "tz": str(_tz())})
    return result.rowcount


# --- the hook push campaigns fill ------------------------------------------------------


def reach_series(*, d0: dt.date, d1: dt.date) -> list[dict] | None:
    """Campaign sends per brand-local day in ``[d0, d1)``: dicts of ``day``, ``targeted``
    (members a campaign meant to reach), ``sent``, ``delivered`` and ``opened`` (tracked
    link opens, the coupon "clicks"), and ``reach_targeted`` / ``reach_opened``: the same
    for pushes that send a message only (a coupon-only push delivers nothing). ``None``
    until push campaigns provide it; the dashboard then says so instead of showing a rate."""
    from campaigns import analytics

    return analytics.reach_by_day(d0=d0, d1=d1)


# --- reading ----------------------------------------------------------------------------


@dataclasses.dataclass
class Window:
    days: int
    today: dt.date
    tz: zoneinfo.ZoneInfo

    @property
    def d0(self) -> dt.date:
        return self.today - dt.timedelta(days=self.days - 1)

    @property
    def d1(self) -> dt.date:
        return self.today + dt.timedelta(days=1)

    def day_list(self) -> list[dt.date]:
        return [self.d0 + dt.timedelta(days=i) for i in range(self.days)]


def window(days: int, *, now: dt.datetime | None = None) -> Window:
    tz = _tz()
    return Window(days, (now or utcnow()).astimezone(tz).date(), tz)


def _q(name: str, sql: str, w: Window, **params) -> list[tuple]:
    return rollups.query(name, sql, tz=str(w.tz), d0=w.d0, d1=w.d1, **params)


def recruits(w: Window) -> dict:
    """New members of the window: per day and channel, and the stores and guides that
    recruited most (ids with counts; 0 = none)."""
    by_day = _q(
        "member_day",
        "SELECT day, source, sum(new_members) FROM {rel} r"
        " WHERE day >= :d0 AND day < :d1 GROUP BY 1, 2",
        w,
    )
    by_store = _q(
        "member_day",
        "SELECT store_id, sum(new_members) AS n FROM {rel} r"
        " WHERE day >= :d0 AND day < :d1 GROUP BY 1 HAVING sum(new_members) > 0"
        " ORDER BY n DESC, store_id LIMIT :top",
        w,
        top=TOP,
    )
    by_guide = _q(
        "member_day",
        "SELECT guide_id, sum(new_members) AS n FROM {rel} r"
        " WHERE day >= :d0 AND day < :d1 AND guide_id <> 0 GROUP BY 1"
        " HAVING sum(new_members) > 0 ORDER BY n DESC, guide_id LIMIT :top",
        w,
        top=TOP,
    )
    per_day: dict[dt.date, dict[str, int]] = {d: {} for d in w.day_list()}
    channels: dict[str, int] = {}
    for day, source, n in by_day:
        if day in per_day:
            per_day[day][source] = per_day[day].get(source, 0) + int(n)
        channels[source] = channels.get(source, 0) + int(n)
    return {
        "total": sum(channels.values()),
        "by_day": per_day,
        "by_channel": dict(sorted(channels.items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_store": [(int(s), int(n)) for s, n in by_store],
        "by_guide": [(int(g), int(n)) for g, n in by_guide],
    }


def coupons(w: Window) -> dict:
    """Coupons issued and redeemed (reversed redemptions taken off) per day of the window."""
    sql = "SELECT day, sum(n) FROM {rel} r WHERE day >= :d0 AND day < :d1 GROUP BY 1"
    issued = dict(_q("coupon_issued", sql, w))
    redeemed = dict(_q("coupon_redemptions_day", sql, w))
    reversed_ = dict(_q("coupon_reversals", sql, w))
    rows = [
        {
            "day": d,
            "issued": int(issued.get(d, 0)),
            "redeemed": int(redeemed.get(d, 0)) - int(reversed_.get(d, 0)),
        }
        for d in w.day_list()
    ]
    total_issued = sum(r["issued"] for r in rows)
    total_redeemed = sum(r["redeemed"] for r in rows)
    return {
        "rows": rows,
        "issued": total_issued,
        "redeemed": total_redeemed,
        "rate_permille": _permille(total_redeemed, total_issued),
    }


# Points given (purchases, the welcome gift, operators' additions) and points spent
# (exchanges, less spent points given back by refunds).
_POINTS = """SELECT day,
      coalesce(sum(points_in) FILTER (WHERE kind IN ('earn', 'welcome', 'adjust')), 0),
      coalesce(-sum(points_out) FILTER (WHERE kind = 'spend'), 0)
        - coalesce(sum(points_in) FILTER (WHERE kind = 'return'), 0)
    FROM {rel} r WHERE day >= :d0 AND day < :d1 GROUP BY 1"""


def points(w: Window) -> dict:
    got = {d: (int(i), int(s)) for d, i, s in _q("points_day", _POINTS, w)}
    rows = [
        {"day": d, "issued": got.get(d, (0, 0))[0], "spent": got.get(d, (0, 0))[1]}
        for d in w.day_list()
    ]
    issued = sum(r["issued"] for r in rows)
    spent = sum(r["spent"] for r in rows)
    return {
        "rows": rows,
        "issued": issued,
        "spent": spent,
        "rate_permille": _permille(spent, issued),
    }


def customers(w: Window) -> dict:
    """New and returning customers, members' orders and net spend per day of the window."""
    got = {
        r[0]: r[1:]
        for r in db.session.execute(
            text(
                "SELECT day, sum(new_customers), sum(returning_customers), sum(orders),"
                " sum(paid_fen - refunded_fen) FROM campaign_customer_day"
                " WHERE brand_id = :b AND day >= :d0 AND day < :d1 GROUP BY day"
            ),
            {"b": require_brand_id(), "d0": w.d0, "d1": w.d1},
        )
    }
    rows = []
    for d in w.day_list():
        new, ret, orders, net = (int(x) for x in got.get(d, (0, 0, 0, 0)))
        rows.append({"day": d, "new": new, "returning": ret, "orders": orders, "net_fen": net})
    return {
        "rows": rows,
        "new": sum(r["new"] for r in rows),
        "returning": sum(r["returning"] for r in rows),
        "net_fen": sum(r["net_fen"] for r in rows),
    }


def _members_before(days: list[dt.date], tz: zoneinfo.ZoneInfo) -> dict[dt.date, int]:
    """Members who joined before each of ``days`` (the running sum of the daily rollup)."""
    rows = rollups.query(
        "member_day_total",
        "SELECT day, sum(new_members) FROM {rel} r WHERE day < :d1 GROUP BY 1 ORDER BY 1",
        tz=str(tz),
        d1=max(days),
    )
    out, running, i = {}, 0, 0
    for day in sorted(days):
        while i < len(rows) and rows[i][0] < day:
            running += int(rows[i][1])
            i += 1
        out[day] = running
    return out


def _month_start(day: dt.date, back: int = 0) -> dt.date:
    y, m = divmod(day.year * 12 + day.month - 1 - back, 12)
    return dt.date(y, m + 1, 1)


def arpu(w: Window) -> dict:
    """Average revenue per member: members' net spend over the members who had joined by
    the end; for the window and for each of the last months (the current one so far)."""
    months = [_month_start(w.today, back) for back in range(ARPU_MONTHS - 1, -1, -1)]
    ends = [_month_start(m, -1) for m in months]
    ends[-1] = w.d1
    members = _members_before([*ends, w.d1], w.tz)
    net = dict(
        db.session.execute(
            text(
                "SELECT date_trunc('month', day)::date, sum(paid_fen - refunded_fen)"
                " FROM campaign_customer_day WHERE brand_id = :b AND day >= :m0 AND day < :d1"
                " GROUP BY 1"
            ),
            {"b": require_brand_id(), "m0": months[0], "d1": w.d1},
        ).all()
    )
    rows = []
    for month, end in zip(months, ends, strict=True):
        fen = int(net.get(month, 0))
        rows.append(
            {
                "month": month.strftime("%Y-%m"),
                "net_fen": fen,
                "members": members[end],
                "arpu_fen": fen // members[end] if members[end] else 0,
            }
        )
    return {"rows": rows, "members": members[w.d1]}


def reach(w: Window) -> dict | None:
    rows = reach_series(d0=w.d0, d1=w.d1)
    if rows is None:
        return None
    targeted = sum(r["targeted"] for r in rows)
    sent = sum(r["sent"] for r in rows)
    delivered = sum(r["delivered"] for r in rows)
    opened = sum(r["opened"] for r in rows)
    # the rates count only pushes that send a message: a coupon-only push delivers nothing
    return {
        "rows": rows,
        "targeted": targeted,
        "sent": sent,
        "delivered": delivered,
        "opened": opened,
        "reach_permille": _permille(delivered, sum(r["reach_targeted"] for r in rows)),
        "click_permille": _permille(sum(r["reach_opened"] for r in rows), delivered),
    }


def _permille(part: int, whole: int) -> int | None:
    return None if not whole else part * 1000 // whole


def build(*, days: int, now: dt.datetime | None = None) -> dict:
    """Every figure of the dashboard for the last ``days`` brand-local days."""
    w = window(days, now=now)
    cust = customers(w)
    members = arpu(w)
    return {
        "window": w,
        "recruits": recruits(w),
        "coupons": coupons(w),
        "points": points(w),
        "customers": cust,
        "arpu": members,
        "arpu_fen": cust["net_fen"] // members["members"] if members["members"] else 0,
        "reach": reach(w),
    }
