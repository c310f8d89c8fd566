"""Outside WeChat, with the sandbox on, a member page pays through the sandbox's stand-in for
WeixinJSBridge: the pay sheet shows the order, confirming pays it and the app's notify
endpoint receives the signed notify; a tampered paySign is refused on the sheet."""

from __future__ import annotations

import datetime as dt
import os
import re

from playwright.sync_api import expect

from core.db import db
from org.models import Brand
from tests.browser.test_walkthrough import _phone
from wechat import gateway
from wechat.sandbox import paynotify, paystore

SHOTS = os.environ.get("WMB_PAY_SHOTS")


def _prepay(live_server, out_trade_no: str) -> dict:
    with live_server.app.app_context():
        brand = Brand.by_slug("demo")
        params = gateway.pay_jsapi_prepay(
            brand.id,
            mini_program=False,
            openid="odemo-browser",
            out_trade_no=out_trade_no,
            description="会员专享 T恤",
            amount_fen=12900,
            notify_url=live_server.url + "/sandbox/wechat/_sandbox/calls",
            time_expire=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15),
        )
        db.session.remove()
    return params


# Start the payment as a page does; its callback's err_msg lands in window.payResult.
INVOKE = """params => { window.payResult = null;
  WeixinJSBridge.invoke('getBrandWCPayRequest', params, res => { window.payResult = res.err_msg; });
}"""


def _result(page) -> str:
    return page.wait_for_function("() => window.payResult").json_value()


def test_a_member_page_pays_through_the_sandbox_pay_sheet(browser, live_server):
    live_server.invoke("demo")
    m = _phone(browser, live_server)
    page = m.page
    try:
        # A new consumer of the phone simulator opens the member center: WeChat's sign-in
        # leads to the activation page, a member page like any other.
        m.open("/sandbox/phone?brand=demo", form=False)
        page.fill("#nickname", "付款会员")
        with page.expect_navigation():
            page.click("#create-consumer")
        m.open("/m/demo/")
        expect(page).to_have_url(re.compile(r"/m/demo/activate(#.*)?$"))
        assert page.evaluate("window.WeixinJSBridge && window.WeixinJSBridge.sandbox") is True

        params = _prepay(live_server, "BROWSER0001")
        page.evaluate(INVOKE, params)
        sheet = page.locator(".wxpay-sandbox")
        expect(sheet).to_be_visible()
        expect(sheet).to_contain_text("微信支付（沙箱）")
        expect(sheet).to_contain_text("会员专享 T恤")
        expect(sheet.locator(".wxpay-sandbox__amount")).to_have_text("¥129.00")
        if SHOTS:
            page.screenshot(path=os.path.join(SHOTS, "pay-sheet.png"))
        with page.expect_response(lambda r: r.url.endswith("/_sandbox/pay/v3/jsapi")) as paid:
            sheet.get_by_role("button", name="确认支付").click()
        assert paid.value.ok, paid.value.text()
        assert _result(page) == "get_brand_wcpay_request:ok"
        expect(sheet).to_have_count(0)
        with live_server.app.app_context():
            order = paystore.get_order(Brand.by_slug("demo").mch_id, "BROWSER0001")
            assert order["trade_state"] == "SUCCESS"
            [delivery] = paynotify.deliveries(order["mchid"], "BROWSER0001")
            assert delivery["kind"] == "transaction" and delivery["status"] is not None
            db.session.remove()

        # A paySign changed on the page is refused on the sheet; cancelling tells the page.
        forged = {**_prepay(live_server, "BROWSER0002"), "paySign": "AAAA"}
        page.evaluate(INVOKE, forged)
        sheet.get_by_role("button", name="确认支付").click()
        expect(sheet.locator(".wxpay-sandbox__error")).to_have_text("支付未成功")
        if SHOTS:
            page.screenshot(path=os.path.join(SHOTS, "pay-sheet-refused.png"))
        sheet.get_by_role("button", name="取消支付").click()
        assert _result(page) == "get_brand_wcpay_request:cancel"
        with live_server.app.app_context():
            order = paystore.get_order(Brand.by_slug("demo").mch_id, "BROWSER0002")
            assert order["trade_state"] == "NOTPAY"
            db.session.remove()
    finally:
        m.context.close()
