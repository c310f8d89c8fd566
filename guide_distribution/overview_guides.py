"""Guide distribution's section of the console overview: sales credited to guides for the
period, their share of the shop's net sales, the top guides and the top stores, read from
the daily rollup ``guide_sales_day`` (kept in the transactions that pay and refund)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core import charts, overview
from core.db import db
from guide_distribution.models import GuideSalesDay
from org.models import Staff
from shop import queries as shop_queries

TOP = 10


def daily(*, start, end, store_id: int | None = None) -> list[tuple]:
    """(day, orders, sales_fen, refunded_fen) credited to guides per day in [start, end)."""
    stmt = (
        select(
            GuideSalesDay.day,
            func.sum(GuideSalesDay.orders),
            func.sum(GuideSalesDay.sales_fen),
            func.sum(GuideSalesDay.refunded_fen),
        )
        .where(GuideSalesDay.day >= start, GuideSalesDay.day < end)
        .group_by(GuideSalesDay.day)
        .order_by(GuideSalesDay.day)
    )
    if store_id:
        stmt = stmt.where(GuideSalesDay.store_key == store_id)
    return [tuple(r) for r in db.session.execute(stmt).all()]


def top(*, by: str, start, end, store_id: int | None = None, limit: int = TOP) -> list[tuple]:
    """(guide_id or store_key, net_fen) over [start, end), biggest first."""
    key = GuideSalesDay.guide_id if by == "guide" else GuideSalesDay.store_key
    net = func.sum(GuideSalesDay.sales_fen - GuideSalesDay.refunded_fen)
    stmt = (
        select(key, net)
        .where(GuideSalesDay.day >= start, GuideSalesDay.day < end)
        .group_by(key)
        .order_by(net.desc(), key)
        .limit(limit)
    )
    if store_id:
        stmt = stmt.where(GuideSalesDay.store_key == store_id)
    return [(k, int(v)) for k, v in db.session.execute(stmt).all()]


def _guide_names(ids) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(ids))).all())


def section(*, period: overview.Period, scope: overview.Scope) -> overview.Section | None:
    """Guided net sales and orders with their trend, their share of the shop's net sales, top
    guides and (for the brand) top stores; nothing when no guide sold in the window."""
    days = daily(start=period.window_start, end=period.end, store_id=scope.store_id)
    if not days:
        return None
    orders, orders_prev = overview.totals(days, period, 1)
    sales, sales_prev = overview.totals(days, period, 2)
    refunded, refunded_prev = overview.totals(days, period, 3)
    shop_days = shop_queries.sales_daily(
        start=period.prev_start, end=period.end, store_id=scope.store_id
    )
    shop_paid, shop_paid_prev = overview.totals(shop_days, period, 2)
    shop_ref, shop_ref_prev = overview.totals(shop_days, period, 3)

    def share(net: int, total: int) -> int:
        return max(net, 0) * 1000 // total if total > 0 else 0

    net, net_prev = sales - refunded, sales_prev - refunded_prev
    figures = [
        overview.Figure(_l("Guided orders"), orders, orders_prev, key="guide_orders"),
        overview.Figure(
            _l("Guided net sales (yuan)"), net // 100, net_prev // 100, key="guide_net_sales"
        ),
        overview.Figure(
            _l("Guided share of net sales"),
            share(net, shop_paid - shop_ref),
            share(net_prev, shop_paid_prev - shop_ref_prev),
            unit="%",
            key="guide_share",
        ),
    ]
    specs = []
    by_guide = top(by="guide", start=period.start, end=period.end, store_id=scope.store_id)
    if by_guide:
        names = _guide_names(k for k, _v in by_guide)
        specs.append(
            charts.bars(
                [{"guide": names.get(k, _("Former guide")), "net": v // 100} for k, v in by_guide],
                x="guide",
                series=[("net", _("Net sales (yuan)"))],
                title=_("Top guides (yuan)"),
                horizontal=True,
            )
        )
    if scope.store_id is None:
        by_store = top(by="store", start=period.start, end=period.end)
        if by_store:
            names = shop_queries.store_names(k for k, _v in by_store)
            specs.append(
                charts.bars(
                    [{"store": names.get(k, _("No store")), "net": v // 100} for k, v in by_store],
                    x="store",
                    series=[("net", _("Net sales (yuan)"))],
                    title=_("Guided sales by store (yuan)"),
                    horizontal=True,
                )
            )
    return overview.Section(_l("Sales by guides"), figures, specs, key="guide_sales")


overview.register(section, order=45)
