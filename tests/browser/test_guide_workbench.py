"""The guide's workbench as a demo guide sees it in WeChat's browser (390x844, WeChat's user
agent): the home with the month's sales, target and rank and a tile for each section;
materials with a copy button; a task from HQ whose customer is marked sent; my customers
(all, and bound to me); my orders; the leaderboard of my store and region."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.walk import WECHAT_UA, Walker

GUIDE_PHONE, PASSWORD = "13800000201", "demo-pass-2026"  # 张小美, the demo's first guide


def test_a_guide_walks_the_workbench_on_the_phone(browser, live_server):
    live_server.invoke("demo")
    context = browser.new_context(
        base_url=live_server.url,
        locale="zh-CN",
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        user_agent=WECHAT_UA,
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    w = Walker(context, "guide")
    page = w.page
    try:
        w.open("/console/login")
        page.get_by_label("品牌代码").fill("demo")
        page.get_by_label("手机号或用户名").fill(GUIDE_PHONE)
        page.get_by_label("密码").fill(PASSWORD)
        w.submit(page.get_by_role("button", name="登录"))

        w.open("/console/workbench/home")
        expect(page.get_by_test_id("wb-name")).to_have_text("张小美")
        expect(page.get_by_test_id("wb-month-net")).to_have_text(re.compile(r"^¥\d+\.\d\d$"))
        expect(page.get_by_test_id("wb-month-rank")).to_contain_text("第")
        expect(page.get_by_test_id("wb-month-target")).to_contain_text("已完成")
        for label in ("我的顾客", "总部任务", "素材库", "我的订单", "业绩", "排行榜"):
            expect(page.locator(".wb-tile", has_text=label).first).to_be_visible()
        # The tiles fit the phone's width: four in a row, nothing wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

        w.follow(page.locator(".wb-tile", has_text="素材库"))
        expect(page.locator(".wb-item").first).to_contain_text("周末会员日")  # newest first
        page.get_by_role("button", name="复制文案").first.click()
        expect(page.locator("#wb-toast")).to_be_visible()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.startswith("本周六会员日：积分翻倍")
        expect(page.locator(".wb-pics img").first).to_be_visible()
        w.shot("materials-copied")

        w.open("/console/workbench/home")
        w.follow(page.locator(".wb-tile", has_text="总部任务"))
        expect(page.locator(".wb-item").first).to_contain_text("双十二新品推荐")
        w.follow(page.locator(".wb-item a").first)
        progress = page.get_by_test_id("task-progress")
        before = int(re.search(r"已发送 (\d+)", progress.inner_text()).group(1))
        w.submit(page.get_by_role("button", name="标记已发送").first)
        expect(page.locator(".flash")).to_contain_text("已标记为已发送")
        expect(progress).to_contain_text(f"已发送 {before + 1} /")

        w.open("/console/workbench/home")
        w.follow(page.locator(".wb-tile", has_text="我的顾客"))
        expect(page.locator(".wb-item").first).to_contain_text("****")
        w.follow(page.locator(".wb-tabs a", has_text="我的专属顾客"))
        expect(page.locator(".wb-item .meta").first).to_contain_text("绑定")

        w.open("/console/workbench/home")
        w.follow(page.locator(".wb-tile", has_text="我的订单"))
        expect(page.locator(".wb-item").first).to_contain_text("门店收银")
        expect(page.locator(".wb-item .amount").first).to_have_text(re.compile(r"^¥\d+\.\d\d$"))

        w.open("/console/workbench/home")
        w.follow(page.locator(".wb-tile", has_text="排行榜"))
        expect(page.get_by_test_id("my-rank")).to_contain_text("你排第")
        expect(page.locator(".wb-rank.wb-me")).to_contain_text("张小美")
        w.follow(page.locator(".wb-tabs a", has_text="我的大区"))
        expect(page.locator(".wb-rank").first).to_be_visible()
        w.follow(page.locator(".m-bar__back"))
        w.check()
    finally:
        context.close()
