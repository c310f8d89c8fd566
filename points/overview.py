"""The points section of the console's data overview (registered into core.overview)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core import charts, overview
from points import queries


def section(*, period: overview.Period, scope: overview.Scope) -> overview.Section:
    """Active members, points issued and spent, the outstanding liability, and their trend."""
    f = queries.overview_flows(period=period, store_id=scope.store_id)
    outstanding = queries.overview_outstanding(store_id=scope.store_id)
    figures = [
        overview.Figure(
            _l("Active members"),
            f["active"],
            f["active_prev"],
            hint=_l("earned or spent points"),
            key="active_members",
        ),
        overview.Figure(_l("Points issued"), f["issued"], f["issued_prev"], key="points_issued"),
        overview.Figure(_l("Points spent"), f["spent"], f["spent_prev"], key="points_spent"),
        overview.Figure(
            _l("Outstanding points"),
            outstanding,
            outstanding - f["net"],
            key="points_outstanding",
        ),
    ]
    trend = overview.daily(
        queries.overview_daily(period=period, store_id=scope.store_id),
        period.trend_days(),
        "issued",
        "spent",
    )
    spec = charts.bars(
        trend,
        x="day",
        series=[("issued", _("Points issued")), ("spent", _("Points spent"))],
        title=_("Points per day"),
    )
    return overview.Section(_l("Points"), figures, [spec], key="points")


overview.register(section, order=20)
