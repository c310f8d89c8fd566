"""The coupons section of the console's data overview (registered into core.overview)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core import charts, overview
from coupons import queries


def _rate(redeemed: int, issued: int) -> int:
    return redeemed * 1000 // issued if issued else 0


def section(*, period: overview.Period, scope: overview.Scope) -> overview.Section:
    """Coupons issued and redeemed, the redemption rate, and their trend."""
    c = queries.overview_counts(period=period, store_id=scope.store_id)
    figures = [
        overview.Figure(_l("Coupons issued"), c["issued"], c["issued_prev"], key="coupons_issued"),
        overview.Figure(
            _l("Coupons redeemed"), c["redeemed"], c["redeemed_prev"], key="coupons_redeemed"
        ),
        overview.Figure(
            _l("Coupon redemption rate"),
            _rate(c["redeemed"], c["issued"]),
            _rate(c["redeemed_prev"], c["issued_prev"]),
            unit="%",
            key="redemption_rate",
        ),
    ]
    trend = overview.daily(
        queries.overview_daily(period=period, store_id=scope.store_id),
        period.trend_days(),
        "issued",
        "redeemed",
    )
    spec = charts.line(
        trend,
        x="day",
        series=[("issued", _("Coupons issued")), ("redeemed", _("Coupons redeemed"))],
        title=_("Coupons per day"),
    )
    return overview.Section(_l("Coupons"), figures, [spec], key="coupons")


overview.register(section, order=30)
