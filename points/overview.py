"""The points section of the console's data overview (registered into core.overview)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core import charts, overview
from points import queries


def section(*, period: overview.Period, scope: overview.Scope) -> overview.Section:
    """Active members, points issued and spent, the outstanding liability, and their trend."""
    days = queries.overview_daily(period=period, store_id=scope.store_id)
    active, active_prev = queries.overview_active(period=period, store_id=scope.store_id)
    outstanding = queries.overview_outstanding(store_id=scope.store_id, tz=period.tz.key)
    net, _net_prev = overview.totals(days, period, 3)
    figures = [
        overview.Figure(
            _l("Active members"),
            active,
            active_prev,
            hint=_l("earned or spent points"),
            key="active_members",
        ),
        overview.Figure(
            _l("Points issued"), *overview.totals(days, period, 1), key="points_issued"
        ),
        overview.Figure(_l("Points spent"), *overview.totals(days, period, 2), key="points_spent"),
        overview.Figure(
            _l("Outstanding points"), outstanding, outstanding - net, key="points_outstanding"
        ),
    ]
    trend = overview.daily([r[:3] for r in days], period.trend_days(), "issued", "spent")
    spec = charts.bars(
        trend,
        x="day",
        series=[("issued", _("Points issued")), ("spent", _("Points spent"))],
        title=_("Points per day"),
    )
    return overview.Section(_l("Points"), figures, [spec], key="points")


overview.register(section, order=20)
