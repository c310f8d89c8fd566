"""A push as an operator schedules it, in chromium: build a segment and see its count, then
schedule a coupon push to it, and watch the campaign page follow it to completion."""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import expect
from sqlalchemy import select, text

from campaigns import fanout, push
from campaigns.models import Campaign
from core import jobs
from core.db import db, utcnow
from core.tenancy import use_brand
from tests import factories as f
from tests.browser.walk import console, console_login
from tests.support import bulk


def _brand(app):
    """40 members, every second with 300 points; a coupon; push rules without quiet hours."""
    with app.app_context():
        b = f.brand(slug="pushes", name="推送品牌")
        admin = f.staff(b, "brand_admin", phone="13800008888")
        with use_brand(b.id):
            bulk.members(b.id, 40)
            db.session.execute(
                text(
                    "INSERT INTO points_account (brand_id, member_id, balance, pending, debt,"
                    " lifetime_earned, lifetime_spent, lifetime_expired, last_entry_id,"
                    " synced_entry_id, updated_at, created_at)"
                    " SELECT :b, id, 300, 0, 0, 300, 0, 0, 0, 0, now(), now() FROM member"
                    " WHERE brand_id = :b AND id % 2 = 0"
                ),
                {"b": b.id},
            )
            f.coupon_template(name="积分会员专享券")
            push.save_settings(
                per_day=1, per_week=3, quiet_start=0, quiet_end=0, rate_per_second=500
            )
            db.session.commit()
            n = db.session.execute(
                text("SELECT count(*) FROM member WHERE brand_id = :b AND id % 2 = 0"),
                {"b": b.id},
            ).scalar_one()
        return b.slug, b.id, admin.phone, n


def test_build_a_segment_schedule_a_push_and_see_it_complete(browser, live_server):
    slug, brand_id, phone, n = _brand(live_server.app)
    w = console(browser, live_server.url, "push")
    page = w.page
    try:
        console_login(w, slug, phone, f.PASSWORD)

        # the segment: at least 200 points, its count following the edit
        w.open("/console/campaigns/segments/")
        w.follow(page.get_by_role("link", name="新建人群").first)
        page.get_by_label("人群名称").fill("高积分会员")
        page.get_by_test_id("add-condition").first.click()
        page.get_by_label("选择条件").first.select_option(label="积分余额")
        page.locator(".seg-cond").last.locator("input[type=number]").fill("200")
        expect(page.get_by_test_id("live-count")).to_have_text(f"{n:,} 人")
        w.submit(page.get_by_test_id("save-segment"))
        w.saved("人群已保存")

        # the push: a coupon to that segment, at a time ten minutes from now
        w.open("/console/campaigns/push/")
        w.follow(page.get_by_test_id("new-campaign"))
        page.get_by_label("名称", exact=True).fill("积分会员回馈")
        page.get_by_label("目标人群").select_option(label="高积分会员")
        page.get_by_label("优惠券", exact=True).select_option(label="积分会员专享券")
        page.get_by_label("渠道", exact=True).select_option(label="不发消息（仅发券）")
        page.get_by_label("时间", exact=True).select_option(label="定时")
        at = (utcnow() + dt.timedelta(minutes=10)).astimezone(dt.timezone(dt.timedelta(hours=8)))
        page.get_by_label("发送时间", exact=True).fill(at.strftime("%Y-%m-%dT%H:%M"))
        page.get_by_label("对照组比例（百分比）").fill("10")
        w.shot("push-form-filled")
        w.submit(page.get_by_test_id("save-campaign"))
        w.saved("营销活动已保存", "积分会员回馈")
        expect(page.get_by_test_id("campaign-status")).to_have_text("待发送")

        # the scheduler's tick when the time has come; the page follows on its own
        with live_server.app.app_context(), use_brand(brand_id):
            campaign = db.session.execute(select(Campaign)).scalar_one()
            fanout.tick(now=campaign.next_run_at + dt.timedelta(seconds=1))
            db.session.commit()
            jobs.relay_committed()
        expect(page.get_by_test_id("campaign-status")).to_have_text("已完成", timeout=15_000)
        expect(page.get_by_test_id("progress-percent")).to_have_text("100%")
        w.shot("push-completed")
        expect(page.get_by_test_id("funnel")).to_be_visible()
        w.open("/console/campaigns/push/")
        expect(page.get_by_test_id("campaign-status").first).to_have_text("已完成")
        w.check()
    finally:
        w.context.close()

    with live_server.app.app_context(), use_brand(brand_id):
        campaign = db.session.execute(select(Campaign)).scalar_one()
        got = db.session.execute(
            text(
                "SELECT holdout = 0 AS target, count(*), count(coupon_id) FROM campaign_recipient"
                " WHERE campaign_id = :c GROUP BY 1"
            ),
            {"c": campaign.id},
        ).all()
        by = {t: (total, coupons) for t, total, coupons in got}
        assert sum(total for total, _ in by.values()) == campaign.targeted == n
        assert by[True][0] == by[True][1] > 0  # every target got the coupon
        assert by.get(False, (0, 0))[1] == 0  # the holdouts none
