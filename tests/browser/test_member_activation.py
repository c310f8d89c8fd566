"""In headless chromium, through the phone simulator: scan a guide's code, follow, open the
activation link, confirm the phone with the SMS code, consent, see the member center."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from core.db import db
from core.tenancy import use_brand
from members.activation import sms
from members.models import Member, MemberQrCode
from org.models import Brand, Staff, Store

PHONE = "13812345678"


def _demo_guide(live_server) -> dict:
    with live_server.app.app_context():
        brand = Brand.by_slug("demo")
        with use_brand(brand.id):
            qr = (
                db.session.execute(
                    select(MemberQrCode)
                    .where(MemberQrCode.kind == "guide")
                    .order_by(MemberQrCode.id)
                )
                .scalars()
                .first()
            )
            guide = db.session.get(Staff, qr.staff_id)
            store = db.session.get(Store, guide.store_id)
            return {
                "brand_id": brand.id,
                "scene": qr.scene,
                "guide": guide.name,
                "guide_id": guide.id,
                "store": store.name,
                "store_id": store.id,
            }


def test_scan_a_guides_code_follow_activate_and_see_the_card(page, live_server):
    live_server.invoke("demo")
    target = _demo_guide(live_server)

    page.goto("/sandbox/phone?brand=demo")
    page.fill("#nickname", "小美")
    with page.expect_navigation():  # the new consumer's page, not the old one
        page.click("#create-consumer")
    expect(page.locator("#follow-state")).to_have_attribute("data-following", "no")
    row = page.locator("ul.targets li").filter(
        has=page.locator("code", has_text=re.compile(f"^{re.escape(target['scene'])}$"))
    )
    row.locator("button.scan-button").click()

    card = page.locator(".msg.out .card").last
    expect(card).to_contain_text("激活会员卡")
    expect(page.locator("#follow-state")).to_have_attribute("data-following", "yes")
    card.click()

    expect(page.locator("#browser")).to_be_visible()
    frame = page.frame_locator("#browser-frame")
    expect(frame.locator("h1")).to_have_text("激活会员卡")
    # The OAuth return answered with this page; the address bar shows the page's own address
    # (not the spent code), so reloading it shows the same page rather than an error.
    inner = page.locator("#browser-frame").element_handle().content_frame()
    assert inner.evaluate("location.pathname + location.search") == "/m/demo/activate"
    with inner.expect_navigation():
        inner.evaluate("setTimeout(() => location.reload(), 0)")
    expect(frame.locator("h1")).to_have_text("激活会员卡")
    expect(frame.locator("#send-code")).to_be_visible()
    # The code is sent without leaving the page: a mistyped number is refused in place,
    # then the code step replaces the phone form in the same page.
    frame.locator("body").evaluate("() => { window.stayed = true; }")
    frame.locator("#phone").fill("12345")
    frame.locator("#send-code").click()
    expect(frame.locator("#phone-error")).to_be_visible()
    expect(frame.locator("#phone-error")).to_contain_text("手机")
    frame.locator("#phone").fill(PHONE)
    frame.locator("#send-code").click()
    expect(frame.locator("#code")).to_be_visible()
    expect(frame.locator("[data-sent]")).to_contain_text(PHONE)
    expect(frame.locator("#resend")).to_be_disabled()
    assert frame.locator("body").evaluate("() => window.stayed === true")
    with live_server.app.app_context():
        code = sms.sandbox_last(PHONE)["code"]
    frame.locator("#code").fill(code)
    frame.locator("#consent").check()
    frame.locator("#activate").click()

    expect(frame.locator(".flash.success")).to_contain_text("会员卡已激活")
    expect(frame.locator("#my-store")).to_have_text(target["store"])
    expect(frame.locator("#my-guide")).to_have_text(target["guide"])
    expect(frame.locator("#till-code")).to_have_text(re.compile(r"\S{6,}"))
    with live_server.app.app_context(), use_brand(target["brand_id"]):
        member = db.session.execute(select(Member).where(Member.phone == PHONE)).scalar_one()
        assert (member.store_id, member.guide_id) == (target["store_id"], target["guide_id"])
        card_no = member.card_no
    expect(frame.locator("#card-no")).to_have_text(card_no)
    page.screenshot(path="/tmp/member_activation.png")
