"""The console pages of push campaigns: create through the form, see progress and the funnel
in Chinese, pause / resume / cancel, export; a store manager sees only their own store's."""

from __future__ import annotations

import re

from sqlalchemy import text

from campaigns.models import Campaign
from core.db import db
from core.tenancy import use_brand
from tests import factories
from tests.campaigns import push_support as ps


def _html(res) -> str:
    return res.get_data(as_text=True)


def _post(client, url: str, data: dict, page: str):
    return client.post(url, data={**data, "csrf_token": factories.csrf(client, page)})


def test_create_follow_and_stop_a_campaign_in_the_console(wx_app, wx_brand, wx_client):
    with use_brand(wx_brand.id):
        ps.rules()
        ps.without_callback(wx_brand)
        ps.followers(wx_brand, 30)
        seg = ps.segment("老客唤醒")
        tpl = factories.coupon_template(name="回归礼券")
        admin = factories.staff(wx_brand, "brand_admin")
        seg_id, tpl_id = seg.id, tpl.id
    factories.login(wx_client, wx_brand, admin)
    page = _html(wx_client.get("/console/campaigns/push/new"))
    assert "新建" in page or "营销" in page
    assert "老客唤醒" in page and "回归礼券" in page
    assert "服务通知" in page and "短信" in page
    # a template message without a coupon is refused on its field, nothing saved
    bad = _post(
        wx_client,
        "/console/campaigns/push/new",
        {"name": "唤醒", "segment_id": seg_id, "coupon_template_id": 0, "channel": "template",
         "wx_template_id": "TPL", "schedule": "now", "holdout_pct": 5},
        "/console/campaigns/push/new",
    )  # fmt: skip
    assert bad.status_code == 400
    assert "模板消息只能用于通知到券" in _html(bad)
    with use_brand(wx_brand.id):
        assert db.session.execute(text("SELECT count(*) FROM campaign")).scalar_one() == 0
        db.session.commit()
    res = _post(
        wx_client,
        "/console/campaigns/push/new",
        {"name": "唤醒", "segment_id": seg_id, "coupon_template_id": tpl_id, "channel": "template",
         "wx_template_id": "TPL", "schedule": "now", "holdout_pct": 5},
        "/console/campaigns/push/new",
    )  # fmt: skip
    assert res.status_code == 302
    detail = res.headers["Location"]
    cid = int(re.search(r"/(\d+)$", detail).group(1))
    page = _html(wx_client.get(detail))
    assert "准备中" in page and "暂停" in page
    ps.drain(wx_app)
    page = _html(wx_client.get(detail))
    assert "已完成" in page
    assert "转化漏斗" in page and "与对照组比较" in page and "按门店" in page
    progress = wx_client.get(f"/console/campaigns/push/{cid}/progress").get_json()
    assert progress["status"] == "completed" and progress["percent"] == 100
    # the funnel on the page is the rollup's
    with use_brand(wx_brand.id):
        sent = db.session.execute(
            text(
                "SELECT count(*) FROM campaign_recipient WHERE campaign_id = :c AND state = 'sent'"
            ),
            {"c": cid},
        ).scalar_one()
        db.session.commit()
    assert re.search(rf'data-metric="sent">{sent:,}<', page)
    # the recipients' CSV is an export job
    res = _post(wx_client, f"/console/campaigns/push/{cid}/export", {}, detail)
    assert res.status_code == 302
    ps.drain(wx_app)
    page = _html(wx_client.get(detail))
    assert "下载" in page
    link = re.search(r'href="(/console/exports/\d+/download)"', page).group(1)
    csv = wx_client.get(link).get_data().decode("utf-8-sig")
    lines = csv.strip().splitlines()
    assert lines[0].startswith("会员卡号") or "分组" in lines[0]
    assert len(lines) == 31
    assert "对照" in csv or "目标组" in csv
    # an ended campaign cannot be cancelled: a message, not an error page
    res = _post(wx_client, f"/console/campaigns/push/{cid}/cancel", {}, detail)
    assert res.status_code == 302
    assert "已经结束" in _html(wx_client.get(detail))


def test_pause_resume_cancel_buttons(wx_app, wx_brand, wx_client):
    with use_brand(wx_brand.id):
        ps.rules()
        ps.followers(wx_brand, 10)
        from campaigns import push

        c = push.create_campaign(
            name="会员日", segment_id=ps.segment().id, channel="sms", body="会员日8折"
        )
        db.session.commit()
        cid = c.id
        admin = factories.staff(wx_brand, "brand_admin")
    factories.login(wx_client, wx_brand, admin)
    detail = f"/console/campaigns/push/{cid}"
    assert _post(wx_client, f"{detail}/pause", {}, detail).status_code == 302
    assert "已暂停" in _html(wx_client.get(detail))
    assert _post(wx_client, f"{detail}/resume", {}, detail).status_code == 302
    assert _post(wx_client, f"{detail}/cancel", {}, detail).status_code == 302
    page = _html(wx_client.get(detail))
    assert "已取消" in page
    # without the CSRF token: refused
    assert wx_client.post(f"{detail}/pause").status_code == 400


def test_a_store_manager_sees_only_their_stores_campaigns(wx_app, wx_brand, wx_client, sms_daytime):
    with use_brand(wx_brand.id):
        ps.rules()
        mine, other = factories.store(wx_brand), factories.store(wx_brand)
        ps.followers(wx_brand, 10, store_id=mine.id)
        ps.followers(wx_brand, 10, store_id=other.id)
        seg = ps.segment("全部会员")
        theirs = ps.segment("别店人群", store_id=other.id)
        manager = factories.staff(wx_brand, "store_manager", store=mine)
        from campaigns import push

        brand_wide = push.create_campaign(
            name="全品牌推送", segment_id=seg.id, channel="sms", body="全场8折"
        )
        db.session.commit()
        seg_id, their_seg, bw = seg.id, theirs.id, brand_wide.id
    factories.login(wx_client, wx_brand, manager)
    page = _html(wx_client.get("/console/campaigns/push/new"))
    assert "全部会员" in page and "别店人群" not in page
    assert wx_client.get(f"/console/campaigns/push/{bw}").status_code == 404
    assert "全品牌推送" not in _html(wx_client.get("/console/campaigns/push/"))
    res = _post(
        wx_client,
        "/console/campaigns/push/new",
        {"name": "本店推送", "segment_id": seg_id, "coupon_template_id": 0, "channel": "sms",
         "body": "本店会员日", "schedule": "now", "holdout_pct": 0},
        "/console/campaigns/push/new",
    )  # fmt: skip
    assert res.status_code == 302
    refused = _post(
        wx_client,
        "/console/campaigns/push/new",
        {"name": "越店", "segment_id": their_seg, "coupon_template_id": 0, "channel": "sms",
         "body": "x", "schedule": "now", "holdout_pct": 0},
        "/console/campaigns/push/new",
    )  # fmt: skip
    assert refused.status_code == 400
    ps.drain(wx_app)
    with use_brand(wx_brand.id):
        c = db.session.execute(
            text("SELECT id, store_id FROM campaign WHERE name = '本店推送'")
        ).one()
        assert c.store_id == mine.id
        stores = db.session.execute(
            text(
                "SELECT DISTINCT store_id FROM campaign_recipient WHERE campaign_id = :c"
            ),
            {"c": c.id},
        ).scalars().all()  # fmt: skip
        assert stores == [mine.id]
        assert db.session.get(Campaign, c.id).targeted == 10
    assert wx_client.get("/console/campaigns/push/settings").status_code in (302, 403)


def test_push_rules_form_refuses_a_weekly_cap_below_the_daily(wx_brand, wx_client):
    with use_brand(wx_brand.id):
        admin = factories.staff(wx_brand, "brand_admin")
    factories.login(wx_client, wx_brand, admin)
    url = "/console/campaigns/push/settings"
    page = _html(wx_client.get(url))
    assert "免打扰" in page and "频次上限" in page
    res = _post(
        wx_client,
        url,
        {"per_day": 3, "per_week": 2, "quiet_start": 21, "quiet_end": 8, "rate_per_second": 100},
        url,
    )
    assert res.status_code == 400
    assert "2" in _html(res)
    ok = _post(
        wx_client,
        url,
        {"per_day": 2, "per_week": 5, "quiet_start": 22, "quiet_end": 7, "rate_per_second": 100},
        url,
    )
    assert ok.status_code == 302
