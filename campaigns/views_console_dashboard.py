"""The brand dashboard page (品牌看板): figures and charts of ``campaigns.dashboard``."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from campaigns import dashboard
from campaigns.segment_builder import guide_labels
from core import charts
from core.auth import roles_required
from core.console import nav_item
from core.labels import label
from org.services import list_stores

bp = Blueprint("campaigns_dashboard", __name__, url_prefix="/console/campaigns/dashboard")
ADMIN = ("brand_admin",)
nav_item(
    "campaigns_dashboard.index", _l("Brand dashboard"), group="overview", roles=ADMIN, order=20
)


def _rate(permille: int | None) -> str:
    return "—" if permille is None else f"{permille / 10:.1f}%"


def _yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def _charts(data: dict) -> dict:
    rec = data["recruits"]
    channels = list(rec["by_channel"])
    recruit_rows = [
        {"day": d.strftime("%m-%d"), **{c: counts.get(c, 0) for c in channels}}
        for d, counts in rec["by_day"].items()
    ]
    stores = {s.id: s.name for s in list_stores()}
    guides = dict(guide_labels([g for g, _n in rec["by_guide"]]))
    no_store = _("No store")
    out = {
        "recruits": charts.bars(
            recruit_rows,
            x="day",
            series=[(c, label(c, "member_source")) for c in channels],
            title=_("Members recruited by channel"),
            stack=True,
        ),
        "stores": charts.bars(
            [{"name": stores.get(s, no_store), "n": n} for s, n in rec["by_store"]],
            x="name",
            series=[("n", _("New members"))],
            title=_("Stores that recruited most"),
            horizontal=True,
        ),
        "guides": charts.bars(
            [{"name": guides.get(g, ""), "n": n} for g, n in rec["by_guide"]],
            x="name",
            series=[("n", _("New members"))],
            title=_("Guides who recruited most"),
            horizontal=True,
        ),
        "coupons": charts.line(
            [dict(r, day=r["day"].strftime("%m-%d")) for r in data["coupons"]["rows"]],
            x="day",
            series=[("issued", _("Coupons issued")), ("redeemed", _("Coupons redeemed"))],
            title=_("Coupons issued and redeemed"),
        ),
        "points": charts.line(
            [dict(r, day=r["day"].strftime("%m-%d")) for r in data["points"]["rows"]],
            x="day",
            series=[("issued", _("Points issued")), ("spent", _("Points redeemed"))],
            title=_("Points issued and redeemed"),
        ),
        "customers": charts.bars(
            [dict(r, day=r["day"].strftime("%m-%d")) for r in data["customers"]["rows"]],
            x="day",
            series=[("new", _("New customers")), ("returning", _("Returning customers"))],
            title=_("New and returning customers"),
            stack=True,
        ),
        "arpu": charts.bars(
            [dict(r, yuan=round(r["arpu_fen"] / 100, 2)) for r in data["arpu"]["rows"]],
            x="month",
            series=[("yuan", _("ARPU"))],
            title=_("ARPU by month (yuan)"),
        ),
    }
    if data["reach"] is not None:
        out["reach"] = charts.line(
            [dict(r, day=r["day"].strftime("%m-%d")) for r in data["reach"]["rows"]],
            x="day",
            series=[
                ("targeted", _("Members targeted")),
                ("delivered", _("Messages delivered")),
                ("opened", _("Links opened")),
            ],
            title=_("Campaign reach"),
        )
    return out


@bp.get("/")
@roles_required(*ADMIN)
def index():
    days = request.args.get("days", 30, type=int)
    if days not in dashboard.PERIODS:
        days = 30
    data = dashboard.build(days=days)
    return render_template(
        "campaigns/console/dashboard.html",
        data=data,
        days=days,
        periods=dashboard.PERIODS,
        charts_=_charts(data),
        rate=_rate,
        yuan=_yuan,
    )
