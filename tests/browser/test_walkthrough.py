"""A walk through the product in headless chromium, as people use it: the demo brand's admin
types into every console form and submits it; a demo member opens every page of the member
center in WeChat's browser, exchanges points for a coupon and edits the profile.

Every page must answer 2xx, with no 5xx anywhere and no browser console or script error, and
every field of a console form must be editable by the brand admin (a form once rendered all
its inputs ``readonly="None"`` and every test still passed).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import walk_console as console
from tests.browser.walk import WECHAT_UA, Walker, assert_editable

BRAND = console.BRAND
MEMBER_PHONE = "13900000005"  # a demo member of the gold tier, with points


def test_brand_admin_types_into_every_console_form(browser, live_server):
    live_server.invoke("demo")
    w = console.console(browser, live_server)
    try:
        console.log_in(w)
        console.every_page_in_the_menu(w)
        console.stores(w)
        console.store_location(w)
        console.staff(w)
        gold_tier_id = console.tiers(w)
        console.tags(w)
        console.points(w)
        console.coupons(w, gold_tier_id)
        console.shop_rules(w)
        console.partner_codes(w)
        console.wechat(w)
        console.members(w)
        console.everyday_tools(w)
        w.check()
    finally:
        w.context.close()


def _phone(browser, live_server) -> Walker:
    context = browser.new_context(
        base_url=live_server.url,
        locale="zh-CN",
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        user_agent=WECHAT_UA,
    )
    return Walker(context, "member")


def _sign_in_as_demo_member(m: Walker) -> None:
    """A consumer in the phone simulator scans a store's code and activates the card with the
    phone number of a demo member, confirmed by the sandbox's SMS code."""
    page = m.page
    m.open("/sandbox/phone?brand=demo", form=False)
    page.fill("#nickname", "走查会员")
    with page.expect_navigation():  # the new consumer's page, not the old one
        page.click("#create-consumer")
    expect(page.locator("#follow-state")).to_have_attribute("data-following", "no")
    page.locator(".targets li", has_text="SH001").locator(".scan-button").first.click()
    expect(page.locator(".msg.out", has_text="激活会员卡")).to_have_count(1)

    # A guest opening the mall is led through WeChat's sign-in to the activation, and lands on
    # the mall once the card is activated.
    m.open(f"/m/{BRAND}/mall")
    expect(page).to_have_url(re.compile(rf"/m/{BRAND}/activate(#.*)?$"))
    page.get_by_label("手机号").fill(MEMBER_PHONE)
    page.get_by_role("button", name="发送验证码").click()  # the code step appears in place
    expect(page.get_by_label("短信验证码")).to_be_visible()
    m.check()
    sms = m.context.request.get(f"/sandbox/sms?phone={MEMBER_PHONE}")
    assert sms.ok, sms.text()
    page.get_by_label("短信验证码").fill(sms.json()["code"])
    page.get_by_label("我已阅读并同意").check()
    m.submit(page.get_by_role("button", name="激活会员卡"))
    expect(page).to_have_url(re.compile(rf"/m/{BRAND}/mall(#.*)?$"))
    expect(page.locator("main")).to_contain_text("100积分兑5元现金券")
    m.open(f"/m/{BRAND}/")
    expect(page.locator("#till-code")).to_have_text(re.compile(r"\d{6,}"))


def _member_pages(m: Walker) -> str:
    """Every page of the member center, reached by its link; returns the new coupon's code."""
    page = m.page
    card = f"/m/{BRAND}/"
    for link in ("我的积分", "积分商城", "我的优惠券"):
        m.open(card)
        m.follow(page.locator("nav.links").get_by_role("link", name=link))
    for tab in ("已使用", "已过期", "可使用"):
        m.follow(page.locator("nav.tabs").get_by_role("link", name=tab))

    m.follow(page.get_by_role("link", name="积分商城"))
    item = page.locator(".card", has_text="100积分兑5元现金券")
    m.submit(item.get_by_role("button", name="兑换"))
    m.saved("5元现金券")
    expect(page.locator(".flash.success")).to_contain_text("兑换成功")
    code = page.locator(".card", has_text="5元现金券").locator(".code").first.inner_text()

    m.open(card)
    m.follow(page.locator("nav.links").get_by_role("link", name="个人资料"))
    page.get_by_label("姓名").fill("刘洋（走查）")
    page.get_by_label("生日").fill("1990-05-20")
    page.get_by_label("女").check()
    m.submit(page.get_by_role("button", name="保存"))
    m.saved()
    expect(page.get_by_label("姓名")).to_have_value("刘洋（走查）")
    expect(page.get_by_label("女")).to_be_checked()
    m.follow(page.get_by_role("link", name="返回会员卡"))

    m.follow(page.locator("nav.links").get_by_role("link", name="隐私"))
    with page.expect_download() as download:
        page.get_by_role("link", name="下载我的数据").click()
    with open(download.value.path(), encoding="utf-8") as fh:
        assert "刘洋（走查）" in fh.read()
    m.follow(page.get_by_role("link", name="查看条款"), form=False)
    m.check()
    return code


def _staff_redeems(w: Walker, coupon_code: str, till_code: str) -> None:
    """At the till: find the member by the code on their card, redeem their coupon."""
    page = w.page
    w.open("/console/members/till-code")
    page.get_by_label("会员码").fill(till_code)
    w.submit(page.get_by_role("button", name="查找会员"))
    expect(page.locator("h1")).to_contain_text("刘洋（走查）")

    w.open("/console/coupons/redeem")
    page.get_by_label("券码").fill(coupon_code)
    page.get_by_label("订单号").fill("WALK-0001")
    page.get_by_label("订单金额（元）").fill("88.00")
    page.get_by_label("门店").select_option(label="SH001 上海南京西路店")
    w.submit(page.get_by_role("button", name="核销", exact=True))
    w.saved("5.00")


def test_member_opens_every_page_of_the_member_center(browser, live_server):
    live_server.invoke("demo")
    m = _phone(browser, live_server)
    w = console.console(browser, live_server)
    try:
        _sign_in_as_demo_member(m)
        coupon_code = _member_pages(m)
        m.open(f"/m/{BRAND}/")
        till_code = m.page.locator("#till-code").inner_text()
        console.log_in(w)
        _staff_redeems(w, coupon_code, till_code)
        m.open(f"/m/{BRAND}/coupons?tab=used")
        expect(m.page.locator("main")).to_contain_text("5元现金券")

        m.open(f"/m/{BRAND}/privacy")
        m.page.get_by_label("请输入“注销”以确认").fill("注销")
        m.submit(m.page.get_by_role("button", name="注销我的账户"))
        m.open(f"/m/{BRAND}/activate")  # signed out: the activation page again
        expect(m.page.get_by_label("手机号")).to_be_editable()
        m.check()
        w.check()
    finally:
        m.context.close()
        w.context.close()


def test_the_walk_notices_a_locked_field_and_a_script_error(browser, live_server):
    """The checks themselves: a ``readonly="None"`` field and a console error are caught."""
    w = console.console(browser, live_server)
    try:
        w.page.set_content(
            '<main><form><input name="code" readonly="None"><select name="role" disabled>'
            "</select></form></main><script>console.error('boom'); undefined_fn();</script>"
        )
        with pytest.raises(AssertionError, match="code.*role"):
            assert_editable(w.page)
        with pytest.raises(AssertionError, match="boom(.|\\n)*undefined_fn"):
            w.check()
    finally:
        w.context.close()
