"""The members section of the console's data overview (registered into core.overview)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core import charts, overview
from members import queries

SOURCE_LABELS = {
    "oa": _l("Official account"),
    "mp": _l("Mini-program"),
    "card": _l("WeChat member card"),
    "pos": _l("Store till (POS)"),
    "import": _l("Imported"),
    "console": _l("Added in the console"),
    "jd": _l("JD.com"),
    "meituan": _l("Meituan"),
    "demo": _l("Demo"),
}


def section(*, period: overview.Period, scope: overview.Scope) -> overview.Section:
    """New members and card activations, their trend, and where new members came from."""
    days = queries.overview_daily(period=period, store_id=scope.store_id)
    new, new_prev = overview.totals(days, period, 1)
    activated, activated_prev = overview.totals(days, period, 2)
    figures = [
        overview.Figure(_l("New members"), new, new_prev, key="new_members"),
        overview.Figure(_l("Card activations"), activated, activated_prev, key="activations"),
    ]
    trend = overview.daily(days, period.trend_days(), "new", "activated")
    specs = [
        charts.line(
            trend,
            x="day",
            series=[("new", _("New members")), ("activated", _("Card activations"))],
            title=_("New members per day"),
        )
    ]
    by = queries.overview_new_by(period=period, store_id=scope.store_id)
    if by["source"]:
        rows = [(str(SOURCE_LABELS.get(k, _("Other"))), n) for k, n in by["source"]]
        specs.append(charts.pie(rows, name=0, value=1, title=_("New members by channel")))
    names = queries.names_of(
        store_ids=[k for k, _n in by["store"]], guide_ids=[k for k, _n in by["guide"]]
    )
    if by["store"] and scope.store_id is None:
        rows = [(names["stores"].get(k, _("No store")), n) for k, n in by["store"]]
        specs.append(charts.bars(rows, x=0, series=[(1, _("New members"))], title=_("By store")))
    if by["guide"]:
        rows = [(names["guides"].get(k, ""), n) for k, n in by["guide"]]
        specs.append(charts.bars(rows, x=0, series=[(1, _("New members"))], title=_("By guide")))
    return overview.Section(_l("Members"), figures, specs, key="members")


overview.register(section, order=10)
