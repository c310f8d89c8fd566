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
    c = queries.overview_counts(period=period, store_id=scope.store_id)
    figures = [
        overview.Figure(_l("New members"), c["new"], c["new_prev"], key="new_members"),
        overview.Figure(
            _l("Card activations"), c["activated"], c["activated_prev"], key="activations"
        ),
    ]
    trend = overview.daily(
        queries.overview_daily(period=period, store_id=scope.store_id),
        period.trend_days(),
        "new",
        "activated",
    )
    specs = [
        charts.line(
            trend,
            x="day",
            series=[("new", _("New members")), ("activated", _("Card activations"))],
            title=_("New members per day"),
        )
    ]
    by_source = queries.overview_new_by(period=period, store_id=scope.store_id, by="source")
    if by_source:
        rows = [(str(SOURCE_LABELS.get(k, _("Other"))), n) for k, n in by_source]
        specs.append(charts.pie(rows, name=0, value=1, title=_("New members by channel")))
    if scope.store_id is None:
        by_store = queries.overview_new_by(period=period, store_id=None, by="store")
        if by_store:
            names = queries.names_of(store_ids=[k for k, _n in by_store], guide_ids=[])
            rows = [(names["stores"].get(k, _("No store")), n) for k, n in by_store]
            specs.append(
                charts.bars(rows, x=0, series=[(1, _("New members"))], title=_("By store"))
            )
    by_guide = queries.overview_new_by(period=period, store_id=scope.store_id, by="guide")
    if by_guide:
        names = queries.names_of(store_ids=[], guide_ids=[k for k, _n in by_guide])
        rows = [(names["guides"].get(k, ""), n) for k, n in by_guide]
        specs.append(charts.bars(rows, x=0, series=[(1, _("New members"))], title=_("By guide")))
    return overview.Section(_l("Members"), figures, specs, key="members")


overview.register(section, order=10)
