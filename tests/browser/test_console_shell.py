"""The console shell in the browser: the sidebar each role sees, and error pages in Chinese.

The demo brand's admin, a store manager and a guide log in; each sees the sidebar groups of
the pages their role may use, every link there opens (no 403), and the page they are on is
marked. Error pages of the console and of the member center speak Chinese, with none of
Werkzeug's English, and a member never sees the console's header.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser import walk_console as console
from tests.browser.walk import WECHAT_UA, Walker, console_login

ALL_GROUPS = [
    "概况",
    "会员",
    "积分",
    "优惠券",
    "商城",
    "导购分销",
    "互动游戏",
    "营销",
    "门店与导购",
    "公众号",
    "设置与日志",
]
MANAGER = "13800000101"
GUIDE = "13800000201"
ENGLISH_WORD = re.compile(r"[A-Za-z]{3,}")


def _log_in(w: Walker, phone: str) -> None:
    console_login(w, console.BRAND, phone, console.PASSWORD)
    expect(w.page).to_have_url(re.compile(r"/console/$"))


def _groups(w: Walker) -> list[str]:
    return w.page.locator("aside.sidebar .nav-group-title").all_inner_texts()


def _every_link_opens(w: Walker) -> list[str]:
    """Each sidebar link answers 2xx and is then the one marked as the current page."""
    links = w.page.locator("aside.sidebar nav.nav a")
    items = [
        (links.nth(i).get_attribute("href"), links.nth(i).inner_text())
        for i in range(links.count())
    ]
    for href, label in items:
        w.open(href)
        if href.startswith("/console/workbench"):
            # The guide workbench is a phone page (WeUI, opened in WeChat): its own top bar,
            # no sidebar, and a way back to the console from its home.
            expect(w.page.locator("aside.sidebar")).to_have_count(0)
            expect(w.page.locator(".m-bar__title")).to_contain_text(label)
            continue
        current = w.page.locator("aside.sidebar a[aria-current=page]")
        expect(current).to_have_count(1)
        expect(current).to_have_text(label)
    return [label for _href, label in items]


def test_sidebar_per_role(browser, live_server):
    live_server.invoke("demo")
    w = console.console(browser, live_server)
    try:
        console.log_in(w)
        assert _groups(w) == ALL_GROUPS
        admin_labels = _every_link_opens(w)
        assert {"门店", "积分规则", "自动回复", "操作日志"} <= set(admin_labels)

        # A page under a sidebar item marks that item, and the breadcrumb names the way there.
        w.open("/console/stores")
        w.follow(w.page.get_by_role("link", name="新建门店"))
        expect(w.page.locator("aside.sidebar a[aria-current=page]")).to_have_text("门店")
        crumb = w.page.locator("nav.breadcrumb")
        expect(crumb).to_contain_text("门店与导购")
        expect(crumb.get_by_role("link", name="门店")).to_have_count(1)
        w.check()
    finally:
        w.context.close()

    for phone, groups, absent in [
        (
            MANAGER,
            ["概况", "会员", "优惠券", "商城", "营销", "门店与导购", "设置与日志"],
            "积分规则",
        ),
        (GUIDE, ["概况", "会员", "优惠券", "商城", "门店与导购", "设置与日志"], "门店"),
    ]:
        w = console.console(browser, live_server)
        try:
            _log_in(w, phone)
            assert _groups(w) == groups
            labels = _every_link_opens(w)
            assert absent not in labels and "操作日志" not in labels
            assert set(labels) < set(admin_labels) | {"个人资料", "导购工作台", "我的二维码"}
            w.check()
        finally:
            w.context.close()


def _only_4xx(w: Walker) -> None:
    """The browser reports each 4xx answer; anything else (a 5xx, a script error) fails."""
    assert all("status of 40" in p for p in w.problems), w.problems
    w.problems.clear()


def _assert_chinese(text: str) -> None:
    english = ENGLISH_WORD.findall(text)
    assert not english, f"English on an error page: {english}\n{text}"


def test_error_pages_speak_chinese(browser, live_server):
    live_server.invoke("demo")
    w = console.console(browser, live_server)
    page = w.page
    try:
        response = page.goto("/console/no-such-page")
        assert response.status == 404
        _assert_chinese(page.locator("main").inner_text())
        expect(page.locator("main h1")).to_have_text("页面不存在")
        _only_4xx(w)

        _log_in(w, GUIDE)
        response = page.goto("/console/audit")
        assert response.status == 403
        _assert_chinese(page.locator("main").inner_text())
        expect(page.locator("main h1")).to_have_text("无权访问")
        expect(page.locator("aside.sidebar")).to_be_visible()
        w.shot("error-403")

        response = page.goto("/console/logout")
        assert response.status == 405
        _assert_chinese(page.locator("main").inner_text())

        response = page.goto("/console/members/999999")
        assert response.status == 404
        _assert_chinese(page.locator("main").inner_text())
        _only_4xx(w)
    finally:
        w.context.close()

    context = browser.new_context(
        base_url=live_server.url,
        locale="zh-CN",
        viewport={"width": 390, "height": 844},
        user_agent=WECHAT_UA,
    )
    try:
        phone = context.new_page()
        for path in [f"/m/{console.BRAND}/no-such-page", "/m/no-such-brand/"]:
            response = phone.goto(path)
            assert response.status == 404, path
            _assert_chinese(phone.locator("main").inner_text())
            expect(phone.locator("main h1")).to_have_text("页面不存在")
            expect(phone.locator(".topbar, .sidebar")).to_have_count(0)
            expect(phone.locator("text=后台")).to_have_count(0)
    finally:
        context.close()


def _sidebar(w: Walker) -> dict:
    return w.page.evaluate(
        """() => {
          const side = document.querySelector('aside.sidebar');
          const groups = [...side.querySelectorAll('.nav-group')].map(g => [
            g.querySelector('.nav-group-title').innerText,
            g.querySelector('.nav-group-title').getAttribute('aria-expanded'),
            g.querySelector('.nav-group-items').getClientRects().length > 0,
          ]);
          return {fits: side.scrollHeight <= side.clientHeight, groups: groups};
        }"""
    )


def test_sidebar_groups_collapse_and_the_sidebar_fits_a_laptop_screen(browser, live_server):
    live_server.invoke("demo")
    w = console.console(browser, live_server)  # 1366 x 900
    page = w.page
    try:
        console.log_in(w)
        side = _sidebar(w)
        # On the home page only 概况 is open: every group heading fits on the screen.
        assert side["fits"], side
        assert [(t, e) for t, e, _shown in side["groups"]] == [
            (g, "true" if g == "概况" else "false") for g in ALL_GROUPS
        ]
        assert [shown for _t, e, shown in side["groups"]] == [
            e == "true" for _t, e, _ in side["groups"]
        ]
        w.shot("sidebar-home")

        # A click opens a group; the choice is remembered on the next page.
        members = page.get_by_role("button", name="会员", exact=True)
        members.click()
        expect(members).to_have_attribute("aria-expanded", "true")
        expect(
            page.locator("aside.sidebar").get_by_role("link", name="标签", exact=True)
        ).to_be_visible()
        # The keyboard works the same: Tab to a heading, Enter opens it, Enter closes it.
        points = page.get_by_role("button", name="积分", exact=True)
        points.focus()
        page.keyboard.press("Enter")
        expect(points).to_have_attribute("aria-expanded", "true")
        page.keyboard.press("Enter")
        expect(points).to_have_attribute("aria-expanded", "false")
        w.open("/console/coupons/templates")
        expect(page.get_by_role("button", name="会员", exact=True)).to_have_attribute(
            "aria-expanded", "true"
        )
        # The page's own group is open, and the sidebar still fits.
        expect(page.get_by_role("button", name="优惠券", exact=True)).to_have_attribute(
            "aria-expanded", "true"
        )
        expect(page.get_by_role("button", name="积分", exact=True)).to_have_attribute(
            "aria-expanded", "false"
        )
        assert _sidebar(w)["fits"]
        w.shot("sidebar-coupons")
        page.get_by_role("button", name="会员", exact=True).click()
        w.open("/console/")
        expect(page.get_by_role("button", name="会员", exact=True)).to_have_attribute(
            "aria-expanded", "false"
        )
        w.check()
    finally:
        w.context.close()

    w = console.console(browser, live_server)
    try:
        _log_in(w, MANAGER)
        w.open("/console/stores")
        side = _sidebar(w)
        assert side["fits"], side
        expect(w.page.get_by_role("button", name="门店与导购", exact=True)).to_have_attribute(
            "aria-expanded", "true"
        )
        # The top bar names the manager, with the role.
        expect(w.page.locator("[data-testid=topbar-user]")).to_have_text(
            re.compile(r"^\s*王店长\s+店长\s*$")
        )
        w.shot("sidebar-manager")
        # Their store's page shows where it is, read-only, and no other store.
        w.follow(w.page.get_by_role("link", name="SH001"), form=False)  # read-only for them
        location = w.page.locator("#location")
        expect(location).to_contain_text("已在地图上标出：经度 121.455600，纬度 31.229500。")
        expect(location.locator(".storemap")).to_have_attribute("data-storemap-ready", "1")
        expect(location.get_by_role("button", name="确定位置")).to_have_count(0)
        location.scroll_into_view_if_needed()
        w.shot("store-manager-location")
        w.check()
    finally:
        w.context.close()
