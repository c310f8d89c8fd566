"""The phone simulator shows what a WeChat user sees: service notices as cards (title and
keywords, never first/remark, field keys or the template id), a browser title bar that
follows the page, and the demo menu's links opening real pages."""

from __future__ import annotations

from playwright.sync_api import expect

from core.tenancy import use_brand
from org.models import Brand
from wechat import gateway
from wechat.sandbox import store


def _consumer(page) -> str:
    page.goto("/sandbox/phone?brand=demo")
    page.fill("#nickname", "小通知")
    with page.expect_navigation():  # the new consumer's page, not the old one
        page.click("#create-consumer")
    page.click("#follow-button")
    expect(page.locator("#follow-state")).to_have_attribute("data-following", "yes")
    return page.locator("#consumer-select").input_value()


def test_a_template_message_is_a_service_notice_card(page, live_server):
    live_server.invoke("demo")
    uid = _consumer(page)
    scene = page.locator("#scene-input")
    expect(scene).to_have_attribute("placeholder", "任意场景值，例如 s:SH001")
    with live_server.app.app_context():
        brand = Brand.by_slug("demo")
        with use_brand(brand.id):
            gateway.send_template(
                brand.id,
                store.openid_for(brand.appid, uid),
                "demo-points-changed",
                {
                    "first": {"value": "藏在首行的话"},
                    "keyword1": {"value": "+300"},
                    "keyword2": {"value": "1200"},
                    "keyword3": {"value": "获得积分"},
                    "keyword4": {"value": "0"},
                    "remark": {"value": "藏在备注的话"},
                },
                url=f"{live_server.url}/m/demo/",
            )
    notice = page.locator(".card.notice")
    expect(notice).to_have_count(1)
    expect(notice.locator(".card-title")).to_have_text("积分变动提醒")
    expect(notice.locator(".notice-field").first).to_have_text("变动积分+300")
    expect(notice).to_contain_text("当前积分1200")
    expect(notice).to_contain_text("详情")
    for hidden in ("藏在首行的话", "藏在备注的话", "keyword", "first", "remark", "demo-points"):
        expect(notice).not_to_contain_text(hidden)


def test_the_title_bar_follows_the_page_and_the_demo_menu_opens_real_pages(page, live_server):
    live_server.invoke("demo")
    _consumer(page)
    if page.locator("#bottom").get_attribute("data-mode") != "menu":
        page.click("#mode-toggle")
    menubar = page.locator("#menubar")
    for item in ("我的会员卡", "立即入会"):
        menubar.get_by_role("button", name="会员中心").click()
        menubar.get_by_role("button", name=item, exact=True).click()
        expect(page.locator("#browser")).to_be_visible()
        frame = page.frame_locator("#browser-frame")
        # a guest is sent to the activation page: a real page of the demo brand
        expect(frame.get_by_label("手机号")).to_be_visible()
        title = page.locator("#browser-frame").element_handle().content_frame().title()
        assert title and "http" not in title
        expect(page.locator("#browser-title")).to_have_text(title)
        page.click("#browser-close")
        expect(page.locator("#browser")).to_be_hidden()

    # navigation inside the frame retitles the bar
    menubar.get_by_role("button", name="会员中心").click()
    menubar.get_by_role("button", name="立即入会", exact=True).click()
    frame = page.frame_locator("#browser-frame")
    expect(frame.get_by_label("手机号")).to_be_visible()
    inner = page.locator("#browser-frame").element_handle().content_frame()
    first_title = inner.title()
    expect(page.locator("#browser-title")).to_have_text(first_title)
    inner.evaluate("location.assign('/m/demo/activate/terms')")  # a link followed in the page
    inner.wait_for_url("**/activate/terms")
    inner.wait_for_load_state()
    assert inner.title() and inner.title() != first_title
    expect(page.locator("#browser-title")).to_have_text(inner.title())
