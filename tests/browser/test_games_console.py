"""The games console in headless chromium: the demo wheel's page with its figures and
chart, a preview as a test member, more stock on the live wheel, a new scratch card typed
into the prize table and started."""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import expect

from tests.browser import walk_console as console
from tests.browser.walk import form_with


def test_games_console(browser, live_server):
    live_server.invoke("demo")
    w = console.console(browser, live_server)
    page = w.page
    try:
        console.log_in(w)
        expect(page.locator('nav.nav a[href="/console/games"]')).to_have_text("游戏活动")
        w.open("/console/games")
        expect(page.locator("main")).to_contain_text("周年庆幸运大转盘")
        w.follow(page.get_by_role("link", name="周年庆幸运大转盘"))
        expect(page.locator("main")).to_contain_text("实时数据")
        expect(page.locator("main")).to_contain_text("种子哈希")
        # preview as a test member
        page.get_by_label("测试会员").fill("13900000005")
        page.get_by_role("option", name="0005").first.click()
        expect(page.locator(".picker-chip").first).to_be_visible()
        w.submit(page.get_by_role("button", name="试玩一次"))
        w.saved("预览结果")
        expect(page.locator("main")).to_contain_text("预览")
        # the live wheel: more stock is accepted
        w.follow(page.get_by_role("link", name="编辑"))
        expect(page.locator("main")).to_contain_text("对玩家有利")
        page.locator('input[name="prizes-1-stock"]').fill("1500")
        w.submit(page.get_by_role("button", name="保存"))
        w.saved("1500")
        # a new scratch card, typed in and started
        w.open("/console/games")
        w.follow(page.get_by_role("link", name="新增刮刮卡"))
        page.get_by_label("名称").fill("双十二刮刮乐")
        now = dt.datetime.now(dt.timezone(dt.timedelta(hours=8)))
        page.get_by_label("开始时间").fill((now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
        page.get_by_label("结束时间").fill((now + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"))
        page.get_by_label("主办方联系方式").fill("400-820-0000")
        page.locator('input[name="prizes-0-name"]').fill("100积分")
        page.locator('select[name="prizes-0-kind"]').select_option("points")
        page.locator('input[name="prizes-0-points"]').fill("100")
        page.locator('input[name="prizes-0-value"]').fill("1")
        page.locator('input[name="prizes-0-weight"]').fill("10")
        page.locator('input[name="prizes-0-stock"]').fill("50")
        page.locator('select[name="prizes-0-fallback"]').select_option("2")
        page.locator('input[name="prizes-1-name"]').fill("谢谢参与")
        page.locator('input[name="prizes-1-weight"]').fill("90")
        w.submit(page.get_by_role("button", name="保存"))
        w.saved("双十二刮刮乐", "10.00%", "90.00%")
        w.submit(form_with(page, "开始").get_by_role("button", name="开始"))
        w.saved("进行中")
        w.check()
    finally:
        w.context.close()
