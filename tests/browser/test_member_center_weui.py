"""The member center as a consumer sees it in WeChat's browser (390x844, WeChat's user agent):
the activation keeps its code step on reload and counts down the resend; the card shows the
points balance, the usable coupons and the tier progress; the till code's barcode reads back
to the till code; every page has a way back to the card."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.test_walkthrough import BRAND, MEMBER_PHONE, _phone
from tests.browser.walk import Walker

# Code 128 bar/space widths of symbol values 0..106 (ISO/IEC 15417), written out here apart
# from the app's encoder so that a wrong table in the app cannot agree with itself.
_WIDTHS = """
212222 222122 222221 121223 121322 131222 122213 122312 132212 221213 221312 231212 112232
122132 122231 113222 123122 123221 223211 221132 221231 213212 223112 312131 311222 321122
321221 312212 322112 322211 212123 212321 232121 111323 131123 131321 112313 132113 132311
211313 231113 231311 112133 112331 132131 113123 113321 133121 313121 211331 231131 213113
213311 213131 311123 311321 331121 312113 312311 332111 314111 221411 431111 111224 111422
121124 121421 141122 141221 112214 112412 122114 122411 142112 142211 241211 221114 413111
241112 134111 111242 121142 121241 114212 124112 124211 411212 421112 421211 212141 214121
412121 111143 111341 131141 114113 114311 411113 411311 113141 114131 311141 411131 211412
211214 211232 2331112""".split()


def decode_code128(rects: list[tuple[float, float]]) -> str:
    """Read a Code 128 (set C) barcode from its black bars' (x, width): the widths of bars
    and of the spaces between them, six per symbol, checked against the checksum."""
    rects = sorted(rects)
    widths: list[int] = []
    for i, (x, w) in enumerate(rects):
        widths.append(round(w))
        if i + 1 < len(rects):
            widths.append(round(rects[i + 1][0] - x - w))
    table = {w: v for v, w in enumerate(_WIDTHS)}
    stop = "".join(map(str, widths[-7:]))
    assert table.get(stop) == 106, f"no stop pattern: {stop}"
    body = widths[:-7]
    assert len(body) % 6 == 0, widths
    values = [table["".join(map(str, body[i : i + 6]))] for i in range(0, len(body), 6)]
    start, *data, check = values
    assert start == 105, "not a set C barcode"
    assert (start + sum(i * v for i, v in enumerate(data, 1))) % 103 == check, "bad checksum"
    return "".join(f"{v:02d}" for v in data)


def _bars(page) -> list[tuple[float, float]]:
    return page.eval_on_selector_all(
        "#till-barcode svg g rect",
        "rs => rs.map(r => [parseFloat(r.getAttribute('x')), parseFloat(r.getAttribute('width'))])",
    )


def _activate_with_a_reload(m: Walker) -> None:
    page = m.page
    m.open("/sandbox/phone?brand=demo", form=False)
    page.fill("#nickname", "界面会员")
    with page.expect_navigation():  # the new consumer's page, not the old one
        page.click("#create-consumer")
    expect(page.locator("#follow-state")).to_have_attribute("data-following", "no")
    page.locator(".targets li", has_text="SH001").locator(".scan-button").first.click()
    expect(page.locator(".msg.out", has_text="激活会员卡")).to_have_count(1)

    m.open(f"/m/{BRAND}/activate")
    expect(page.locator("[data-back]")).to_have_count(0)  # the first step is where it starts
    page.get_by_label("手机号").fill(MEMBER_PHONE)
    page.get_by_role("button", name="发送验证码").click()  # the code step appears in place
    expect(page.get_by_label("短信验证码")).to_be_visible()
    m.check()
    # Reopened (reload, or the link again from the chat): still the code step, counting down.
    for again in (page.reload, lambda: m.open(f"/m/{BRAND}/activate")):
        again()
        expect(page.get_by_label("短信验证码")).to_be_visible()
        expect(page.locator("main")).to_contain_text(MEMBER_PHONE)
        expect(page.locator("#resend")).to_be_disabled()
        expect(page.locator("#resend")).to_have_text(re.compile(r"^\d+ 秒后重新发送$"))
    first = int(page.locator("#resend").inner_text().split()[0])
    assert 0 < first <= 60
    page.wait_for_timeout(1500)
    assert int(page.locator("#resend").inner_text().split()[0]) < first
    expect(page.locator("[data-back]")).to_have_count(1)  # back to the phone number

    sms = m.context.request.get(f"/sandbox/sms?phone={MEMBER_PHONE}")
    page.get_by_label("短信验证码").fill(sms.json()["code"])
    page.get_by_label("我已阅读并同意").check()
    m.submit(page.get_by_role("button", name="激活会员卡"))
    expect(page).to_have_url(re.compile(rf"/m/{BRAND}/(\?.*)?$"))


def test_member_center_in_weui(browser, live_server):
    live_server.invoke("demo")
    m = _phone(browser, live_server)
    page = m.page
    try:
        _activate_with_a_reload(m)
        card = f"/m/{BRAND}/"

        # The card: balance, coupons and tier progress, read from points and coupons.
        points = page.locator("[data-figure=points] .m-figure__value").inner_text()
        coupons = page.locator("[data-figure=coupons] .m-figure__value").inner_text()
        expect(page.locator("#figures")).to_contain_text("积分")
        expect(page.locator("#figures")).to_contain_text("优惠券")
        expect(page.locator("#tier-progress")).to_contain_text(re.compile("还差|最高"))
        expect(page.locator("#tier")).not_to_have_text("")

        # The till code: a barcode that reads back to the digits, and a QR beside it.
        code = page.locator("#till-code").inner_text()
        assert re.fullmatch(r"9\d{17}", code)
        assert decode_code128(_bars(page)) == code
        expect(page.locator("#till-qr svg")).to_be_visible()
        box = page.locator("#till-barcode svg").bounding_box()
        assert box and box["width"] >= 300 and box["height"] >= 60  # wide enough to scan

        # The figures agree with the pages they link to; every page leads back to the card.
        m.follow(page.locator("[data-figure=points]"))
        expect(page.get_by_test_id("balance")).to_have_text(points)
        expect(page.locator("main")).not_to_contain_text(re.compile(r"· [a-z_]+\b"))
        m.follow(page.locator("[data-back]"))
        m.follow(page.locator("[data-figure=coupons]"))
        expect(page.locator(".m-coupon")).to_have_count(int(coupons))
        m.follow(page.locator("[data-back]"))
        for link in ("我的积分", "我的优惠券", "积分商城", "个人资料", "隐私"):
            m.open(card)
            m.follow(page.locator("nav.links").get_by_role("link", name=link))
            back = page.locator("[data-back]")
            expect(back).to_have_text("返回")
            m.follow(back)
            expect(page).to_have_url(re.compile(rf"/m/{BRAND}/$"))
        m.open(f"/m/{BRAND}/activate/terms", form=False)
        expect(page.locator("[data-back]")).to_have_count(1)
        m.open(card)
        expect(page.locator("[data-back]")).to_have_count(0)  # the card is the home

        # A new code comes with a new barcode (WeChat's dynamic card code).
        fresh = m.context.request.get(f"/m/{BRAND}/till-code").json()
        assert "<svg" in fresh["barcode"] and "<svg" in fresh["qrcode"]
        m.check()
    finally:
        m.context.close()
