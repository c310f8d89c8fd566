"""The segment builder as an operator uses it: two conditions typed and picked, the count
following each edit, the segment saved and listed with the same count."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select, text

from campaigns.models import Segment
from core.db import db
from core.tenancy import use_brand
from members.tiers_tags import tiers
from tests import factories as f
from tests.browser.walk import console, console_login
from tests.support import bulk


def _brand(app):
    """60 members: every third gold, every second with 300 points; the brand and admin."""
    with app.app_context():
        b = f.brand(slug="segs", name="人群品牌")
        admin = f.staff(b, "brand_admin", phone="13800007777")
        with use_brand(b.id):
            gold = tiers.create_level(code="gold", name="金卡会员", rank=2, threshold=1000)
            db.session.commit()
            bulk.members(b.id, 60)
            params = {"t": gold.id, "b": b.id}
            db.session.execute(
                text("UPDATE member SET tier_id = :t WHERE brand_id = :b AND id % 3 = 0"), params
            )
            db.session.execute(
                text(
                    "INSERT INTO points_account (brand_id, member_id, balance, pending, debt,"
                    " lifetime_earned, lifetime_spent, lifetime_expired, last_entry_id,"
                    " synced_entry_id, updated_at, created_at)"
                    " SELECT :b, id, 300, 0, 0, 300, 0, 0, 0, 0, now(), now() FROM member"
                    " WHERE brand_id = :b AND id % 2 = 0"
                ),
                params,
            )
            db.session.commit()
            counts = db.session.execute(
                text(
                    "SELECT count(*) FILTER (WHERE id % 3 = 0),"
                    " count(*) FILTER (WHERE id % 6 = 0) FROM member WHERE brand_id = :b"
                ),
                {"b": b.id},
            ).one()
        return b.slug, b.id, admin.phone, counts


def test_build_count_and_save_a_segment(browser, live_server):
    slug, brand_id, phone, (gold_n, both_n) = _brand(live_server.app)
    w = console(browser, live_server.url, "segments")
    page = w.page
    try:
        console_login(w, slug, phone, f.PASSWORD)

        w.open("/console/campaigns/segments/")
        w.follow(page.get_by_role("link", name="新建人群").first)
        page.get_by_label("人群名称").fill("高积分金卡")
        count = page.get_by_test_id("live-count")

        # first condition: tier is gold, picked by name
        page.get_by_test_id("add-condition").first.click()
        page.get_by_label("选择条件").first.select_option(label="等级")
        page.get_by_label("等级", exact=True).last.fill("金")
        page.get_by_role("option", name="金卡会员").click()
        expect(count).to_have_text(f"{gold_n:,} 人")
        w.shot("segment-one-condition")

        # second condition: at least 200 points, typed
        page.get_by_test_id("add-condition").first.click()
        page.get_by_label("选择条件").last.select_option(label="积分余额")
        points = page.locator(".seg-cond").last.locator("input[type=number]")
        points.fill("200")
        expect(count).to_have_text(f"{both_n:,} 人")
        w.shot("segment-two-conditions")

        w.submit(page.get_by_test_id("save-segment"))
        w.saved("人群已保存")
        w.shot("segment-saved")
        w.open("/console/campaigns/segments/")
        expect(page.get_by_test_id("segments")).to_contain_text("高积分金卡")
        expect(page.get_by_test_id("segments")).to_contain_text(f"{both_n:,}")
        w.shot("segment-list")

        # the brand dashboard draws its charts (no script error), the 60 members recruited
        w.open("/console/campaigns/dashboard/", form=False)
        expect(page.locator("[data-figure=recruited] .ov-value")).to_have_text("60")
        expect(page.locator(".echart canvas").first).to_be_visible()
        expect(page.get_by_test_id("reach-pending")).to_be_visible()
        w.shot("brand-dashboard")
        w.check()
    finally:
        w.context.close()

    with live_server.app.app_context(), use_brand(brand_id):
        seg = db.session.execute(select(Segment)).scalar_one()
        assert seg.last_count == both_n > 0
        fields = [item["field"] for item in seg.definition["items"]]
        assert fields == ["tier", "points_balance"]
