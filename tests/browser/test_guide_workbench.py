"""The guide's workbench as a demo guide sees it in WeChat's browser (390x844, WeChat's user
agent): the home with the month's sales, target and rank and a tile for each section;
materials with a copy button; a task from HQ whose customer is marked sent; my customers
(all, and bound to me); my orders; the leaderboard of my store and region; my shop (a product's
line, the intro), adding products and my commission, each the phone shell too."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.walk import WECHAT_UA, Walker, console, console_login

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
        console_login(w, "demo", GUIDE_PHONE, PASSWORD)

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

        # My shop, adding products and my commission are phone pages like the others.
        w.open("/console/workbench/home")
        w.follow(page.locator(".wb-tile", has_text="我的小店"))
        _phone_page(page, "我的小店")
        line = page.locator("[data-testid=my-products] input[name=line]").first
        line.fill("今天到店可以试喝")
        w.submit(
            page.locator("[data-testid=my-products] li").first.get_by_role("button", name="保存")
        )
        expect(line).to_have_value("今天到店可以试喝")
        page.get_by_label("自我介绍").fill("在店里五年，懂茶也懂你。")
        w.submit(
            page.locator("form", has=page.get_by_label("自我介绍")).get_by_role(
                "button", name="保存"
            )
        )
        w.saved("在店里五年，懂茶也懂你。")
        w.follow(page.get_by_test_id("pick"))
        _phone_page(page, "添加商品")
        w.follow(page.locator(".m-bar__back"))
        expect(page.locator(".m-bar__title")).to_have_text("我的小店")

        w.open("/console/workbench/home")
        w.follow(page.locator(".wb-tile", has_text="我的提成"))
        _phone_page(page, "我的提成")
        expect(page.get_by_label("提现金额（元）")).to_be_visible()
        w.follow(page.locator(".m-bar__back"))
        expect(page.get_by_test_id("wb-name")).to_have_text("张小美")
        w.check()
    finally:
        context.close()


def _phone_page(page, title: str) -> None:
    """The workbench's phone shell: its top bar, no console sidebar, nothing wider than the
    screen, and every button and text box at least 40px tall."""
    expect(page.locator(".m-bar__title")).to_have_text(title)
    expect(page.locator("aside.sidebar")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    small = page.evaluate(
        """() => [...document.querySelectorAll(
              'main button, main .weui-btn, main input[type=text], main input[type=search]')]
          .filter(e => e.getClientRects().length > 0)
          .filter(e => e.getBoundingClientRect().height < 40)
          .map(e => e.outerHTML.slice(0, 80))"""
    )
    assert not small, small


def test_hq_sets_materials_tasks_and_targets_in_the_console(browser, live_server, tmp_path):
    """The demo's brand admin: the overview's guide sales, a material with a picture, a task
    for a store's guides with its completion, and a store target split over its guides."""
    from PIL import Image

    live_server.invoke("demo")
    picture = tmp_path / "new.png"
    Image.new("RGB", (200, 200), (7, 193, 96)).save(picture)
    w = console(browser, live_server.url, "hq")
    page = w.page
    try:
        console_login(w, "demo", "13800000000", PASSWORD)
        expect(page.locator("main")).to_contain_text("导购业绩")
        guided = page.locator("#ov-guide_sales")
        expect(guided).to_contain_text("导购销售占比")
        expect(guided.locator("canvas, svg").first).to_be_visible()
        guided.scroll_into_view_if_needed()
        w.shot("overview-guide-sales")

        w.open(page.locator("nav.nav a", has_text="素材库").get_attribute("href"))
        w.follow(page.get_by_role("link", name="新建素材"))
        page.get_by_label("标题").fill("店庆活动")
        page.get_by_label("朋友圈文案").fill("店庆三天，全场 8 折！")
        page.get_by_label("添加图片（JPEG、PNG、WebP，最多 9 张）").set_input_files(str(picture))
        w.submit(page.get_by_role("button", name="保存"))
        w.saved()
        expect(page.locator("main img")).to_have_count(1)

        w.open(page.locator("nav.nav a", has_text="总部任务").get_attribute("href"))
        expect(page.locator("tbody")).to_contain_text("双十二新品推荐")
        w.follow(page.get_by_role("link", name="新建任务"))
        page.get_by_label("标题", exact=True).fill("店庆邀约")
        page.get_by_label("要发送的文案").fill("店庆三天，全场 8 折，欢迎来店！")
        page.get_by_label("这些门店的全部导购").select_option(label="上海南京西路店")
        w.submit(page.get_by_role("button", name="下发任务"))
        expect(page.get_by_test_id("task-guides-done")).to_contain_text("/ 2 位导购已完成")
        expect(page.locator("tbody")).to_contain_text("张小美")

        w.open(page.locator("nav.nav a", has_text="业绩目标").get_attribute("href"))
        page.locator("form", has_text="门店目标").get_by_label("门店", exact=True).select_option(
            label="上海南京西路店"
        )
        page.locator("form", has_text="门店目标").get_by_label(
            "门店目标（元），平分给门店导购"
        ).fill("5000")
        w.submit(page.get_by_role("button", name="平分给门店导购"))
        w.saved()
        expect(page.locator("tbody")).to_contain_text("¥2500.00")
        w.check()
    finally:
        w.context.close()
