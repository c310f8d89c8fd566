"""The binding console in headless Chromium at 1366x900: an admin saves the binding rules,
finds a customer with the member picker, changes the guide with the guide picker (a reason
given), and hands a leaving guide's customers over to a named guide."""

from __future__ import annotations

import os

from playwright.sync_api import expect
from sqlalchemy import select

from core.db import db
from core.tenancy import use_brand
from guide_distribution import settings
from guide_distribution.models import CustomerBinding
from members.activation import record_scan
from tests import factories as f
from tests.browser.walk import console, console_login
from tests.browser.walk_console import pick


def _seed(app):
    with app.app_context():
        b = f.brand(slug="bind", name="绑定品牌")
        admin = f.staff(b, "brand_admin", phone="13800007777")
        store = f.store(b, "SH201", name="上海徐汇店")
        with use_brand(b.id):
            a = f.staff(b, "guide", store=store, phone="13800007001")
            c = f.staff(b, "guide", store=store, phone="13800007002")
            a.name, c.name = "王芳", "赵敏"
            m = f.member(phone="13700007777", name="韩梅梅", activated=True, openid="o-bind-1")
            record_scan(member_id=m.id, guide_id=a.id, store_id=store.id)
            db.session.commit()
            data = {"slug": b.slug, "id": b.id, "admin": admin.phone, "member": m.id,
                    "a": a.id, "c": c.id}  # fmt: skip
        db.session.remove()
    return data


def test_rules_lookup_forced_change_and_hand_over(browser, live_server, tmp_path):
    data = _seed(live_server.app)
    shots = os.environ.get("WMB_WALKTHROUGH_SHOTS") or str(tmp_path)
    w = console(browser, live_server.url, "binding")
    page = w.page
    try:
        console_login(w, data["slug"], data["admin"], f.PASSWORD)

        w.open("/console/distribution/binding/rules")
        expect(page.locator("nav.nav [data-group=distribution]")).to_contain_text("绑定规则")
        page.get_by_label("每次扫码均可改绑").check()
        page.get_by_label("保护期（天，期间其他导购不能抢绑）").fill("20")
        w.submit(page.get_by_role("button", name="保存"))
        w.saved()
        page.screenshot(path=os.path.join(shots, "binding-rules.png"), full_page=True)

        w.open("/console/distribution/binding/customers")
        pick(page, "顾客", "韩梅梅")
        w.follow(page.get_by_role("button", name="查询"))
        expect(page.get_by_test_id("guide")).to_have_text("王芳")
        expect(page.get_by_test_id("history")).to_contain_text("扫码")
        pick(page, "新导购", "赵敏")
        page.get_by_label("原因").fill("顾客搬家，改由赵敏服务")
        w.submit(page.get_by_role("button", name="变更专属导购"))
        w.saved()
        expect(page.get_by_test_id("guide")).to_have_text("赵敏")
        expect(page.get_by_test_id("history")).to_contain_text("顾客搬家，改由赵敏服务")
        page.screenshot(path=os.path.join(shots, "binding-customer.png"), full_page=True)

        w.open("/console/distribution/binding/guides")
        w.follow(page.get_by_role("link", name="赵敏"))
        page.get_by_label("指定一位导购").check()
        pick(page, "接手的导购", "王芳")
        w.submit(page.get_by_role("button", name="交接", exact=True))
        expect(page.get_by_test_id("taken")).to_contain_text("王芳")
        page.screenshot(path=os.path.join(shots, "binding-hand-over.png"), full_page=True)
        w.check()
    finally:
        w.context.close()
    with live_server.app.app_context(), use_brand(data["id"]):
        row = db.session.execute(select(CustomerBinding)).scalar_one()
        assert row.guide_id == data["a"] and row.source == "guide_left"
        s = settings.get_settings()
        assert (s.bind_mode, s.protection_days) == ("every_scan", 20)
        db.session.remove()
