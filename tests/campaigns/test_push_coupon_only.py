"""A coupon-only push puts a coupon in each member's account and sends no message: its funnel
claims no delivery (the console shows "—" with a note in Chinese), the dashboard's reach and
click rates leave it out, and a push that sends a message keeps its delivered figure."""

from __future__ import annotations

import json

from sqlalchemy import text

from campaigns import analytics, dashboard, push
from campaigns.models import Campaign
from core.db import db
from core.tenancy import use_brand
from tests import factories
from tests.campaigns import push_support as ps

NOTE = "仅发券的推送只把优惠券放入会员账户，不发送消息，因此没有送达数据。"
NOT_APPLICABLE = "不适用：仅发券的推送不发送消息。"


def _count(sql: str, **params) -> int:
    value = db.session.execute(text(sql), params).scalar_one()
    db.session.commit()
    return value


def test_a_coupon_only_push_claims_no_delivery(wx_app, wx_brand, wx_client, sms_daytime):
    with use_brand(wx_brand.id):
        ps.rules(per_day=2, per_week=4)
        ps.followers(wx_brand, 30)
        seg = ps.segment()
        tpl = factories.coupon_template(name="会员日礼券")
        coupon_only = push.create_campaign(
            name="只发券", segment_id=seg.id, coupon_template_id=tpl.id, channel="none",
            holdout_pct=0,
        )  # fmt: skip
        by_sms = push.create_campaign(
            name="短信通知", segment_id=seg.id, channel="sms", body="会员日全场8折", holdout_pct=0
        )
        db.session.commit()
        ids = coupon_only.id, by_sms.id
        admin = factories.staff(wx_brand, "brand_admin")
    ps.drain(wx_app)
    with use_brand(wx_brand.id):
        c1, c2 = (db.session.get(Campaign, i) for i in ids)
        assert c1.status == c2.status == "completed"
        rep = analytics.report(c1)
        assert rep.funnel["sent"] > 0
        assert rep.funnel["claimed"] == rep.funnel["sent"]
        assert rep.funnel["delivered"] is None
        assert _count(
            "SELECT count(*) FROM campaign_counter WHERE campaign_id = :c AND metric = 'delivered'",
            c=c1.id,
        ) == 0  # fmt: skip
        assert _count(
            "SELECT count(*) FROM campaign_recipient WHERE campaign_id = :c"
            " AND delivered_at IS NOT NULL",
            c=c1.id,
        ) == 0  # fmt: skip
        chart = json.dumps(analytics.funnel_chart(rep), ensure_ascii=False)
        labels = {m: str(label) for m, label in analytics.FUNNEL_LABELS.items()}
        assert labels["delivered"] not in chart and labels["opened"] in chart
        # a push that sends a message keeps its delivery figure (an SMS is delivered when sent)
        rep_sms = analytics.report(c2)
        assert rep_sms.funnel["delivered"] == rep_sms.funnel["sent"] > 0
        # the dashboard's reach: delivered of the SMS only, over the SMS's targets
        reach = dashboard.reach(dashboard.window(7, now=sms_daytime))
        assert reach["delivered"] == rep_sms.funnel["delivered"]
        assert reach["targeted"] == rep.funnel["targeted"] + rep_sms.funnel["targeted"]
        assert reach["reach_permille"] == (
            rep_sms.funnel["delivered"] * 1000 // rep_sms.funnel["targeted"]
        )
    factories.login(wx_client, wx_brand, admin)
    page = wx_client.get(f"/console/campaigns/push/{ids[0]}").get_data(as_text=True)
    assert f'<td data-metric="delivered" title="{NOT_APPLICABLE}">—</td>' in page
    assert NOTE in page
    assert f'<td data-metric="sent">{rep.funnel["sent"]:,}</td>' in page
    page = wx_client.get(f"/console/campaigns/push/{ids[1]}").get_data(as_text=True)
    assert f'<td data-metric="delivered">{rep_sms.funnel["delivered"]:,}</td>' in page
    assert NOTE not in page
