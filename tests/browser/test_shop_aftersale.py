"""Orders and after-sale in the browser: the console's order detail and after-sale queue at
1366x900 (ship an order, approve and refuse requests), and the member's order pages in
WeChat's browser at 390x844 (the pick-up code, an after-sale request and its status)."""

from __future__ import annotations

import os

from playwright.sync_api import expect
from sqlalchemy import select

from core.db import db
from core.tenancy import use_brand
from shop import aftersale, fulfilment, refunds
from shop.models import AfterSale, Order, OrderLine
from tests import factories as f
from tests.browser.walk import WECHAT_UA, Walker, console, console_login
from tests.shop import factories as sf
from tests.shop.aftersale_fixtures import FakePay


def _setup(live_server) -> dict:
    with live_server.app.app_context():
        brand = f.brand()
        store = f.store(brand, code="SH001", name="南京西路店")
        admin = f.staff(brand, "brand_admin")
        with use_brand(brand.id):
            member = f.member(phone="13900001111", name="李雷")
            sf.give_points(member.id, 2000)
            skus = sf.catalog(prices=(12900, 5900))
            coupon = sf.coupon_for(member.id, value_fen=1000)
            delivery = sf.paid_order(
                member_id=member.id, lines=[(skus[0], 2), (skus[1], 1)], store_id=store.id,
                coupon=coupon, points_used=800, shipping_fen=1000,
            )  # fmt: skip
            pickup = sf.paid_order(member_id=member.id, lines=[(skus[1], 1)], store_id=store.id,
                                   fulfilment="pickup")  # fmt: skip
            fulfilment.mark_ready(order_id=pickup.id)
            lines = list(
                db.session.scalars(
                    select(OrderLine)
                    .where(OrderLine.order_id == delivery.id)
                    .order_by(OrderLine.id)
                )
            )
            a = aftersale.request(
                order_id=delivery.id, member_id=member.id, kind="refund_only",
                items=[refunds.Item(lines[0].id, 1)], reason="买多了一件",
            )  # fmt: skip
            b = aftersale.request(
                order_id=delivery.id, member_id=member.id, kind="return_refund",
                items=[refunds.Item(lines[1].id, 1)], reason="颜色不喜欢",
            )  # fmt: skip
            db.session.commit()
            return {
                "brand": brand.slug, "brand_id": brand.id, "admin": admin.phone,
                "member_id": member.id, "delivery": delivery.id, "delivery_no": delivery.order_no,
                "pickup_no": pickup.order_no, "requests": (a.id, b.id),
                "request_nos": (a.request_no, b.request_no),
            }  # fmt: skip


def _shots(tmp_path) -> str:
    return os.environ.get("WMB_WALKTHROUGH_SHOTS") or str(tmp_path)


def test_console_order_detail_and_after_sale_queue(browser, live_server, monkeypatch, tmp_path):
    from wechat import gateway

    pay = FakePay()
    monkeypatch.setattr(gateway, "pay_refund", pay.pay_refund, raising=False)
    data = _setup(live_server)
    w = console(browser, live_server.url, "shop-orders")
    page = w.page
    try:
        console_login(w, data["brand"], data["admin"], f.PASSWORD)
        w.open("/console/shop/orders")
        expect(page.get_by_test_id("orders")).to_contain_text(data["delivery_no"])
        w.follow(page.get_by_role("link", name=data["delivery_no"]))
        expect(page.get_by_test_id("order-status")).to_have_text("待发货")
        expect(page.get_by_test_id("order-lines")).to_contain_text("−¥")
        page.screenshot(path=os.path.join(_shots(tmp_path), "console-order.png"), full_page=True)
        page.get_by_label("物流公司").fill("顺丰速运")
        page.get_by_label("物流单号").fill("SF1234567890")
        w.submit(page.get_by_role("button", name="发货", exact=True))
        w.saved("SF1234567890")
        expect(page.get_by_test_id("order-status")).to_have_text("已发货")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366

        w.follow(page.get_by_role("link", name="售后", exact=True))
        queue = page.get_by_test_id("after-sales")
        expect(queue).to_contain_text(data["request_nos"][0])
        page.screenshot(path=os.path.join(_shots(tmp_path), "console-after-sales.png"),
                        full_page=True)  # fmt: skip
        row_a = page.locator(f"tr[data-request='{data['request_nos'][0]}']")
        w.submit(row_a.get_by_role("button", name="同意并退款"))
        w.saved()
        row_b = page.locator(f"tr[data-request='{data['request_nos'][1]}']")
        row_b.get_by_label("原因（会员可见）").fill("商品已超过退货期限")
        w.submit(row_b.get_by_role("button", name="拒绝"))
        w.saved()
        w.open("/console/shop/after-sales?tab=closed")
        expect(page.get_by_test_id("after-sales")).to_contain_text("商品已超过退货期限")
        expect(page.get_by_test_id("after-sales")).to_contain_text("已退款")
        w.check()
    finally:
        w.context.close()
    with live_server.app.app_context(), use_brand(data["brand_id"]):
        a, b = (db.session.get(AfterSale, i) for i in data["requests"])
        assert (a.status, b.status) == ("refunded", "refused")
        o = db.session.get(Order, data["delivery"])
        assert o.status == "shipped" and o.refund_state == "partial"
        assert [c["out_refund_no"] for c in pay.calls] == [f"{data['delivery_no']}R1"]


def _member_cookie(live_server, brand_id: int, member_id: int) -> dict:
    app = live_server.app
    value = app.session_interface.get_signing_serializer(app).dumps(
        {f"member:{brand_id}": {"b": brand_id, "o": "o-browser", "u": None, "m": member_id}}
    )
    return {"name": app.config.get("SESSION_COOKIE_NAME", "session"), "value": value,
            "url": live_server.url}  # fmt: skip


def test_member_order_pages_in_wechat(browser, live_server, tmp_path):
    data = _setup(live_server)
    context = browser.new_context(
        base_url=live_server.url, locale="zh-CN", viewport={"width": 390, "height": 844},
        user_agent=WECHAT_UA, is_mobile=True, has_touch=True,
    )  # fmt: skip
    context.add_cookies([_member_cookie(live_server, data["brand_id"], data["member_id"])])
    w = Walker(context, "shop-member")
    page = w.page
    try:
        w.open(f"/m/{data['brand']}/shop/orders")
        expect(page.locator(f"[data-order='{data['pickup_no']}']")).to_contain_text("待自提")
        w.follow(page.locator(f"[data-order='{data['pickup_no']}']"))
        code = page.get_by_test_id("pickup-code")
        expect(code.locator("svg")).to_be_visible()
        expect(code).to_contain_text("提货码")
        page.screenshot(path=os.path.join(_shots(tmp_path), "member-pickup.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        w.open(f"/m/{data['brand']}/shop/orders/{data['pickup_no']}")
        page.get_by_text("申请售后").click()
        page.get_by_label("原因").fill("不想要了")
        w.submit(page.get_by_role("button", name="提交申请"))
        w.saved("待审核", "不想要了")
        page.screenshot(path=os.path.join(_shots(tmp_path), "member-after-sale.png"),
                        full_page=True)  # fmt: skip
        w.open(f"/m/{data['brand']}/shop/orders/{data['delivery_no']}")
        expect(page.locator(f"[data-request='{data['request_nos'][0]}']")).to_contain_text(
            "买多了一件"
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        w.check()
    finally:
        context.close()
