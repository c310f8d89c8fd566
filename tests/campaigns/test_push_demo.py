"""The demo brand has one completed push whose funnel matches its records."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, text

from campaigns import analytics, dashboard
from campaigns.demo_push import NAME
from campaigns.models import Campaign
from core.db import db
from core.tenancy import use_brand
from org.models import Brand


def test_the_demo_brand_has_a_completed_push_with_its_funnel(app, runner, ctx):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "campaigns: completed push" in result.output
    brand = Brand.by_slug("demo")
    with use_brand(brand.id):
        c = db.session.execute(select(Campaign).where(Campaign.name == NAME)).scalar_one()
        assert c.status == "completed" and c.targeted > 0
        rep = analytics.report(c)
        counts = db.session.execute(
            text(
                "SELECT count(*) FILTER (WHERE state = 'sent'),"
                " count(*) FILTER (WHERE opened_at IS NOT NULL),"
                " count(*) FILTER (WHERE redeemed_at IS NOT NULL)"
                " FROM campaign_recipient WHERE campaign_id = :c AND holdout = 0"
            ),
            {"c": c.id},
        ).one()
        assert (rep.funnel["sent"], rep.funnel["opened"], rep.funnel["redeemed"]) == tuple(counts)
        assert rep.funnel["opened"] > 0 and rep.funnel["redeemed"] > 0
        # the brand dashboard's reach reads the same rollups, on the day the push started
        day = c.started_at.astimezone(brand.tz).date()
        reach = dashboard.reach_series(d0=day, d1=day + dt.timedelta(days=1))
        assert [(r["day"], r["targeted"], r["sent"], r["opened"]) for r in reach] == [
            (day, rep.funnel["targeted"], rep.funnel["sent"], rep.funnel["opened"])
        ]
    again = runner.invoke(args=["demo"])
    assert "already loaded" in again.output
