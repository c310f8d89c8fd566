"""The member's whole purchase in WeChat's browser (390x844): the product list, a product and
its SKU, the cart, the checkout with a coupon and points, WeChat Pay through the sandbox's
pay sheet, the paid order and the points in the member center; then a refund of one line
asked for by the member, approved by the operator in the console (1366x900) and refunded
through the sandbox, and what the member sees afterwards.

Screenshots of every page go to WMB_WALKTHROUGH_SHOTS (see walk.py)."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from core.db import db
from core.tenancy import use_brand
from org.models import Brand
from points import services as points
from shop.models import Order, OrderLine, Refund
from tests import factories as f
from tests.browser.walk import WECHAT_UA, Walker, console, console_login
from tests.shop import factories as sf
from wechat.sandbox import paystore

BRAND = "demo"


def _setup(live_server) -> dict:
    live_server.invoke("demo")
    with live_server.app.app_context():
        brand = Brand.by_slug(BRAND)
        admin = f.staff(brand, "brand_admin")
        with use_brand(brand.id):
            member = f.member(phone="13900007777", name="韩梅梅", activated=True,
                              openid="o-e2e-purchase")  # fmt: skip
            sf.give_points(member.id, 2000)
            sf.coupon_for(member.id, name="全场立减10元", value_fen=1000)
            db.session.commit()
            data = {"brand_id": brand.id, "admin": admin.phone, "member_id": member.id,
                    "mch_id": brand.mch_id}  # fmt: skip
        paystore.hold_refunds(brand.mch_id, False)
        db.session.remove()
    return data


def _member_cookie(live_server, brand_id: int, member_id: int) -> dict:
    app = live_server.app
    value = app.session_interface.get_signing_serializer(app).dumps(
        {f"member:{brand_id}": {"b": brand_id, "o": "o-e2e-purchase", "u": None, "m": member_id}}
    )
    return {"name": app.config.get("SESSION_COOKIE_NAME", "session"), "value": value,
            "url": live_server.url}  # fmt: skip


def _balance(live_server, brand_id: int, member_id: int) -> tuple[int, int]:
    with live_server.app.app_context(), use_brand(brand_id):
        b = points.balance(member_id)
        db.session.remove()
    return b.balance, b.pending


def test_a_member_buys_pays_and_gets_a_line_refunded(browser, live_server):
    data = _setup(live_server)
    phone = browser.new_context(
        base_url=live_server.url, locale="zh-CN", viewport={"width": 390, "height": 844},
        user_agent=WECHAT_UA, is_mobile=True, has_touch=True, device_scale_factor=2,
    )  # fmt: skip
    phone.add_cookies([_member_cookie(live_server, data["brand_id"], data["member_id"])])
    m = Walker(phone, "shop-purchase")
    page = m.page
    start = _balance(live_server, data["brand_id"], data["member_id"])[0]  # with any welcome gift
    try:
        # The member center leads to the shop; two products go into the cart.
        m.open(f"/m/{BRAND}/", form=False)
        m.follow(page.locator(f"a[href$='/m/{BRAND}/shop']").first, form=False)
        for n in (0, 1):
            if n:
                m.open(f"/m/{BRAND}/shop", form=False)
            m.follow(page.locator(f"a[href*='/m/{BRAND}/shop/products/']").nth(n))
            expect(page.locator("[data-cart-link]")).to_have_text("购物车")
            # A SKU at its normal price: one in a running flash sale is bought at once only.
            for choice in page.locator("label.s-sku:not(.s-sku--out)").all():
                choice.click()
                if page.locator("[data-add-cart]").is_visible():
                    break
            m.submit(page.locator("[data-add-cart]"))
            expect(page).to_have_url(re.compile(r"/shop/cart$"))
        expect(page.locator(".s-line")).to_have_count(2)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

        # The checkout: the address, the coupon and 500 points.
        m.follow(page.locator(f"a[href$='/m/{BRAND}/shop/checkout']").last)
        form = page.locator("#checkout")
        for name, value in (("name", "韩梅梅"), ("phone", "13900007777"), ("province", "上海"),
                            ("city", "上海"), ("district", "静安区"),
                            ("detail", "南京西路 1 号")):  # fmt: skip
            form.locator(f"[name='address_{name}']").fill(value)
        coupon = form.locator("select[name='coupon']")
        coupon.select_option(index=1)
        form.locator("[name='points']").fill("500")
        m.submit(form.locator("button.weui-btn_primary"))
        expect(page).to_have_url(re.compile(r"/shop/orders/\d+/pay$"))
        order_no = re.search(r"/orders/(\d+)/pay", page.url).group(1)
        before = _balance(live_server, data["brand_id"], data["member_id"])
        assert before[0] == start - 500  # spent at the checkout

        # WeChat Pay: outside WeChat the sandbox's pay sheet stands in for it.
        page.locator("#pay").click()
        sheet = page.locator(".wxpay-sandbox")
        expect(sheet).to_be_visible()
        m.shot("pay-sheet")
        # Closing the sheet leaves the member on the pay page, free to pay again.
        sheet.get_by_role("button", name="取消支付").click()
        expect(sheet).to_have_count(0)
        page.wait_for_load_state("networkidle")  # no check of the order, no navigation
        expect(page.locator("#pay")).to_be_enabled()
        assert page.url.endswith(f"/orders/{order_no}/pay")
        page.locator("#pay").click()
        expect(sheet).to_be_visible()
        with page.expect_navigation(url=re.compile(rf"/shop/orders/{order_no}$")):
            sheet.get_by_role("button", name="确认支付").click()
        m.landed(page.url, form=False)
        expect(page.locator("main")).to_contain_text("待发货")
        expect(page.locator("main")).not_to_contain_text("None")

        with live_server.app.app_context(), use_brand(data["brand_id"]):
            order = db.session.scalars(select(Order).where(Order.order_no == order_no)).one()
            assert order.status == "paid" and order.points_earned > 0
            earned = order.points_earned
            lines = db.session.scalars(
                select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
            ).all()
            first_line = lines[0]
            db.session.remove()
        assert _balance(live_server, data["brand_id"], data["member_id"]) == (
            start - 500,
            before[1] + earned,
        )

        # The member center and the points page show what was spent and earned.
        m.open(f"/m/{BRAND}/points", form=False)
        expect(page.locator("main")).to_contain_text(str(start - 500))
        m.open(f"/m/{BRAND}/", form=False)
        m.follow(page.locator("[data-slot='shop_orders']"), form=False)
        expect(page).to_have_url(re.compile(rf"/m/{BRAND}/shop/orders$"))
        expect(page.locator(f"[data-order='{order_no}']")).to_be_visible()

        # A refund of the first line.
        m.open(f"/m/{BRAND}/shop/orders/{order_no}", form=False)
        box = page.locator("details.m-aftersale").first
        box.locator("summary").click()
        box.locator("[name='reason']").fill("尺码不合适")
        m.submit(box.locator("button[type='submit']"))
        m.saved("尺码不合适")
    finally:
        m.check()

    # The operator approves it in the console.
    w = console(browser, live_server.url, "shop-purchase-console")
    cpage = w.page
    try:
        console_login(w, BRAND, data["admin"], f.PASSWORD)
        w.open("/console/shop/after-sales")
        row = cpage.locator("tr", has_text="尺码不合适")
        expect(row).to_have_count(1)
        w.submit(row.get_by_role("button", name="同意并退款"))
        w.saved()
        w.check()
    finally:
        w.context.close()

    # The sandbox completes the refund a moment later and posts its notify.
    with live_server.app.app_context(), use_brand(data["brand_id"]):
        refund = db.session.scalars(select(Refund).where(Refund.order_id == order.id)).one()
        out_refund_no = refund.out_refund_no
        db.session.remove()
    deadline_page = f"/m/{BRAND}/shop/orders/{order_no}"
    try:
        for _ in range(40):
            with live_server.app.app_context(), use_brand(data["brand_id"]):
                status = db.session.get(Refund, refund.id).status
                db.session.remove()
            if status == "success":
                break
            page.wait_for_timeout(250)
        assert status == "success", status
        m.open(deadline_page, form=False)
        expect(page.locator("main")).to_contain_text("已退款")
        after = _balance(live_server, data["brand_id"], data["member_id"])
        with live_server.app.app_context(), use_brand(data["brand_id"]):
            r = db.session.get(Refund, refund.id)
            assert r.amount_fen == first_line.pay_fen and r.out_refund_no == out_refund_no
            assert after[0] == start - 500 + r.points_returned
            assert after[1] == before[1] + earned - r.points_reversed
            db.session.remove()
        m.open(f"/m/{BRAND}/points", form=False)
        m.open(f"/m/{BRAND}/coupons", form=False)
        m.check()
    finally:
        phone.close()
