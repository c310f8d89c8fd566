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
    days = queries.overview_daily(period=period, store_id=scope.store_id)
    issued, issued_prev = overview.totals(days, period, 1)
    redeemed, redeemed_prev = overview.totals(days, period, 2)
    figures = [
        overview.Figure(_l("Coupons issued"), issued, issued_prev, key="coupons_issued"),
        overview.Figure(_l("Coupons redeemed"), redeemed, redeemed_prev, key="coupons_redeemed"),
        overview.Figure(
            _l("Coupon redemption rate"),
            _rate(redeemed, issued),
            _rate(redeemed_prev, issued_prev),
            unit="%",
            key="redemption_rate",
        ),
    ]
    trend = overview.daily(
        days,
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
