"""The shop's section of the console overview: sales by day, store and channel, read from
``shop_sales_day_rollup`` (kept in the transactions that pay and refund)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core import charts, overview
from core.labels import label
from shop import queries


def section(*, period: overview.Period, scope: overview.Scope) -> overview.Section | None:
    """Orders and net sales with their trend; net sales by store and by channel (nothing for
    a brand, or a store, that sold nothing in the window)."""
    days = queries.sales_daily(start=period.window_start, end=period.end, store_id=scope.store_id)
    if not days:
        return None
    orders, orders_prev = overview.totals(days, period, 1)
    paid, paid_prev = overview.totals(days, period, 2)
    refunded, refunded_prev = overview.totals(days, period, 3)
    figures = [
        overview.Figure(_l("Paid orders"), orders, orders_prev, key="shop_orders"),
        overview.Figure(
            _l("Net sales (yuan)"),
            (paid - refunded) // 100,
            (paid_prev - refunded_prev) // 100,
            key="shop_net_sales",
        ),
        overview.Figure(_l("Refunded (yuan)"), refunded // 100, refunded_prev // 100,
                        key="shop_refunded"),
    ]  # fmt: skip
    trend = [
        {"day": d["day"], "paid": d["paid"] // 100, "refunded": d["refunded"] // 100}
        for d in overview.daily(
            [(r[0], r[2], r[3]) for r in days], period.trend_days(), "paid", "refunded"
        )
    ]
    specs = [
        charts.line(
            trend,
            x="day",
            series=[("paid", _("Paid (yuan)")), ("refunded", _("Refunded (yuan)"))],
            title=_("Sales per day"),
        )
    ]
    by_channel = queries.sales_by(
        column="channel", start=period.start, end=period.end, store_id=scope.store_id
    )
    if by_channel:
        specs.append(
            charts.pie(
                [{"name": label(c, "shop_channel"), "value": int(v) // 100} for c, v in by_channel],
                name="name",
                value="value",
                title=_("Net sales by channel (yuan)"),
            )
        )
    if scope.store_id is None:
        by_store = queries.sales_by(column="store", start=period.start, end=period.end)
        names = queries.store_names(k for k, _v in by_store)
        if by_store:
            specs.append(
                charts.bars(
                    [
                        {"store": names.get(k, _("Online (no store)")), "net": int(v) // 100}
                        for k, v in by_store
                    ],
                    x="store",
                    series=[("net", _("Net sales (yuan)"))],
                    title=_("Net sales by store (yuan)"),
                )
            )
    return overview.Section(_l("Shop sales"), figures, specs, key="shop_sales")


overview.register(section, order=40)
