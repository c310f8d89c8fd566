"""A picker as an operator uses it: search a tier and a store by name, pick them, issue a
coupon; the coupons go to the members of that tier in that store, and to no one else."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from core.db import db
from core.tenancy import use_brand
from coupons.models import Coupon
from members.identities import create_member_row
from members.models import Member
from members.tiers_tags import tiers
from org.models import Staff, Store
from tests import factories as f
from tests.browser.walk import console, console_login
from tests.browser.walk_console import pick


def _brand_with_members(app):
    """Two stores, two tiers, one member in each pairing; the brand, admin, members, coupon."""
    with app.app_context():
        b = f.brand(slug="picks", name="选择品牌")
        admin = f.staff(b, "brand_admin", phone="13800009999")
        sh, bj = f.store(b, "SH101", name="上海静安店"), f.store(b, "BJ101", name="北京朝阳店")
        with use_brand(b.id):
            silver = tiers.create_level(code="silver", name="银卡会员", rank=1, threshold=100)
            gold = tiers.create_level(code="gold", name="金卡会员", rank=2, threshold=1000)
            db.session.flush()
            ids = {}
            for n, (tier, store) in enumerate(
                [(silver, sh), (silver, bj), (gold, sh), (gold, bj)], start=1
            ):
                member_id, _ = create_member_row(phone=f"1370000{n:04d}", source="console")
                m = db.session.get(Member, member_id)
                m.tier_id, m.store_id = tier.id, store.id
                ids[(tier.code, store.code)] = member_id
            tpl = f.coupon_template(name="选择器测试券")
            db.session.commit()
            return {"slug": b.slug, "id": b.id, "admin": admin.phone}, admin.id, ids, tpl.id


def test_issue_to_a_picked_tier_and_store(browser, live_server):
    b, admin, ids, tpl_id = _brand_with_members(live_server.app)
    w = console(browser, live_server.url, "picker")
    page = w.page
    try:
        console_login(w, b["slug"], b["admin"], f.PASSWORD)

        w.open(f"/console/coupons/templates/{tpl_id}/issue")
        # the search answers as the operator types, by name and by store code
        page.get_by_label("会员等级").fill("金")
        expect(page.get_by_role("option")).to_have_count(1)
        expect(page.get_by_role("option")).to_have_text("金卡会员")
        page.get_by_role("option", name="金卡会员").click()
        pick(page, "所属门店", "SH101")
        page.get_by_label("标签").fill("")
        w.shot("issue-picking")
        expect(page.locator(".picker-chip", has_text="SH101 上海静安店")).to_be_visible()
        # a chip can be taken back, and picked again
        page.get_by_role("button", name=re.compile("移除 金卡会员")).click()
        expect(page.locator(".picker-chip", has_text="金卡会员")).to_have_count(0)
        pick(page, "会员等级", "金卡会员")

        w.submit(page.get_by_role("button", name="预览人数"))
        expect(page.locator("main p.card")).to_contain_text("1")
        # the picks survive the preview's round trip
        expect(page.locator(".picker-chip", has_text="金卡会员")).to_be_visible()
        w.submit(page.get_by_role("button", name="立即发放"))
        w.saved("选择器测试券")
        w.check()
    finally:
        w.context.close()

    with live_server.app.app_context(), use_brand(b["id"]):
        holders = db.session.execute(
            select(Coupon.member_id).where(Coupon.template_id == tpl_id)
        ).scalars()
        assert sorted(holders) == [ids[("gold", "SH101")]]


def test_picker_search_is_brand_scoped_and_role_checked(live_server):
    app = live_server.app
    b, admin, _ids, _tpl = _brand_with_members(app)
    with app.app_context():
        other = f.brand(slug="picks-other")
        f.store(other, "SH999", name="别家门店")
        brand = db.session.get(type(other), b["id"])
        with use_brand(brand.id):
            home = db.session.execute(select(Store).where(Store.code == "SH101")).scalar_one()
            boss = db.session.get(Staff, admin)
        guide = f.staff(brand, "guide", store=home)
        client, guide_client = app.test_client(), app.test_client()
        f.login(client, brand, boss)
        f.login(guide_client, brand, guide)
    got = client.get("/console/pick/stores?q=SH").get_json()["results"]
    assert [r["label"] for r in got] == ["SH101 上海静安店"]
    members = client.get("/console/pick/members?q=13700000003").get_json()["results"]
    assert len(members) == 1 and "137****0003" in members[0]["label"]
    assert "13700000003" not in members[0]["label"]
    # a phone fragment finds nobody: a picker is no way to guess numbers
    assert client.get("/console/pick/members?q=0003").get_json()["results"] == []
    assert client.get("/console/pick/nothing").status_code == 404
    assert guide_client.get("/console/pick/members?q=1").status_code == 403
