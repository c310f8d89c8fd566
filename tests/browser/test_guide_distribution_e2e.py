"""Guide distribution end to end in WeChat's browser (390x844): a consumer new to the guide
opens the guide's share link, buys from the guide's shop with a coupon and pays through the
sandbox's WeChat Pay sheet, confirms receipt; the guide sees the commission frozen in the
workbench; half of the order is refunded and the guide sees the frozen commission halve.
Screenshots go to WMB_WALKTHROUGH_SHOTS (see walk.py)."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from guide_distribution import ledger, shops
from guide_distribution.models import CustomerBinding, OrderAttribution
from guide_distribution.models.commission import CommissionLine
from guide_distribution.models.shops import GuideShopItem
from org.cli import DEMO_PASSWORD
from org.models import Brand, Staff
from shop import fulfilment, refunds
from shop.models import Order, OrderLine
from tests import factories as f
from tests.browser.walk import WECHAT_UA, Walker
from tests.shop import factories as sf
from wechat.sandbox import paystore

BRAND = "demo"


def _setup(live_server) -> dict:
    live_server.invoke("demo")
    with live_server.app.app_context():
        brand = Brand.by_slug(BRAND)
        with use_brand(brand.id):
            guide_id = db.session.scalar(
                select(GuideShopItem.guide_id).order_by(GuideShopItem.id).limit(1)
            )
            guide = db.session.get(Staff, guide_id)
            member = f.member(phone="13900008888", name="王芳", activated=True,
                              openid="o-e2e-guide-shop")  # fmt: skip
            sf.coupon_for(member.id, name="新客立减10元", value_fen=1000)
            db.session.commit()
            data = {
                "brand_id": brand.id,
                "member_id": member.id,
                "guide_id": guide.id,
                "guide_name": guide.name,
                "guide_phone": guide.phone,
                "token": shops.share_token(guide.id),
                "mch_id": brand.mch_id,
            }
        paystore.hold_refunds(brand.mch_id, False)
        db.session.remove()
    return data


def _phone(browser, live_server):
    return browser.new_context(
        base_url=live_server.url, locale="zh-CN", viewport={"width": 390, "height": 844},
        user_agent=WECHAT_UA, is_mobile=True, has_touch=True, device_scale_factor=2,
    )  # fmt: skip


def _member_cookie(live_server, brand_id: int, member_id: int) -> dict:
    app = live_server.app
    value = app.session_interface.get_signing_serializer(app).dumps(
        {f"member:{brand_id}": {"b": brand_id, "o": "o-e2e-guide-shop", "u": None, "m": member_id}}
    )
    return {"name": app.config.get("SESSION_COOKIE_NAME", "session"), "value": value,
            "url": live_server.url}  # fmt: skip


def _frozen(live_server, data) -> int:
    with live_server.app.app_context(), use_brand(data["brand_id"]):
        value = ledger.balances(data["guide_id"]).frozen
        db.session.remove()
    return value


def _yuan(fen: int) -> str:
    return f"¥{fen / 100:.2f}"


def test_a_new_customer_buys_through_a_share_link_and_the_guide_earns(browser, live_server):
    data = _setup(live_server)
    frozen_before = _frozen(live_server, data)
    phone = _phone(browser, live_server)
    phone.add_cookies([_member_cookie(live_server, data["brand_id"], data["member_id"])])
    m = Walker(phone, "guide-e2e-customer")
    page = m.page
    try:
        # The guide's shop, from the link a guide shared in a chat.
        m.open(f"/m/{BRAND}/guide/{data['token']}", form=False)
        expect(page.get_by_test_id("guide-name")).to_have_text(data["guide_name"])
        m.follow(page.locator("[data-testid=products] .s-card a").first, form=False)
        assert "/shop/products/" in page.url
        for choice in page.locator("label.s-sku:not(.s-sku--out)").all():
            choice.click()
            if page.locator("[data-add-cart]").is_visible():
                break
        page.locator("input[name='quantity']").fill("2")
        m.submit(page.locator("[data-add-cart]"))
        expect(page).to_have_url(re.compile(r"/shop/cart$"))

        # The checkout with the new customer's coupon, then WeChat Pay's sheet.
        m.follow(page.locator(f"a[href$='/m/{BRAND}/shop/checkout']").last)
        form = page.locator("#checkout")
        for name, value in (("name", "王芳"), ("phone", "13900008888"), ("province", "上海"),
                            ("city", "上海"), ("district", "黄浦区"),
                            ("detail", "淮海中路 99 号")):  # fmt: skip
            form.locator(f"[name='address_{name}']").fill(value)
        coupon = form.locator("select[name='coupon'] option", has_text="新客立减10元")
        form.locator("select[name='coupon']").select_option(coupon.get_attribute("value"))
        m.submit(form.locator("button.weui-btn_primary"))
        expect(page).to_have_url(re.compile(r"/shop/orders/\d+/pay$"))
        order_no = re.search(r"/orders/(\d+)/pay", page.url).group(1)
        page.locator("#pay").click()
        sheet = page.locator(".wxpay-sandbox")
        expect(sheet).to_be_visible()
        with page.expect_navigation(url=re.compile(rf"/shop/orders/{order_no}$")):
            sheet.get_by_role("button", name="确认支付").click()
        m.landed(page.url, form=False)
        expect(page.locator("main")).to_contain_text("待发货")

        with live_server.app.app_context(), use_brand(data["brand_id"]):
            order = db.session.scalars(select(Order).where(Order.order_no == order_no)).one()
            assert order.status == "paid" and order.discount_fen == 1000
            att = db.session.scalars(
                select(OrderAttribution).where(OrderAttribution.order_id == order.id)
            ).one()
            # The link bound the new customer (protected): the order is the guide's by binding.
            assert (att.guide_id, att.source) == (data["guide_id"], "binding")
            binding = db.session.scalars(
                select(CustomerBinding).where(CustomerBinding.member_id == data["member_id"])
            ).one()
            assert (binding.guide_id, binding.source) == (data["guide_id"], "share_link")
            commission = db.session.scalar(
                select(func.sum(CommissionLine.amount_fen)).where(
                    CommissionLine.order_id == order.id
                )
            )
            assert commission and commission > 0
            fulfilment.ship(order_id=order.id, carrier="顺丰速运", tracking_no="SF1400000777")
            db.session.commit()
            order_id = order.id
            db.session.remove()

        # The parcel arrives; the customer confirms it, and the commission freezes.
        m.open(f"/m/{BRAND}/shop/orders/{order_no}", form=False)
        m.submit(page.locator("form[action$='/receive'] button"))
        m.saved()
        assert _frozen(live_server, data) == frozen_before + commission
    finally:
        m.check()
        phone.close()

    guide = _phone(browser, live_server)
    w = Walker(guide, "guide-e2e-guide")
    gpage = w.page
    try:
        w.open("/console/login")
        gpage.get_by_label("品牌代码").fill(BRAND)
        gpage.get_by_label("手机号或用户名").fill(data["guide_phone"])
        gpage.get_by_label("密码").fill(DEMO_PASSWORD)
        w.submit(gpage.get_by_role("button", name="登录"))
        w.open("/console/workbench/home")
        w.follow(gpage.locator("a[href$='/console/workbench/commission']").first, form=False)
        frozen = gpage.get_by_test_id("frozen")
        expect(frozen).to_contain_text(_yuan(frozen_before + commission))
        expect(gpage.get_by_test_id("lines")).to_contain_text(order_no)

        # Half the order comes back (one of the two units): the frozen commission halves.
        with live_server.app.app_context(), use_brand(data["brand_id"]):
            line = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order_id)).one()
            r = refunds.start(
                order_id=order_id, items=[refunds.Item(line.id, 1)], idempotency_key="e2e-gd-r"
            )
            db.session.commit()
            refunds.succeed(refund_id=r.id, refund_no="R-e2e-gd", via="notify")
            db.session.commit()
            left = db.session.scalar(
                select(func.sum(CommissionLine.amount_fen - CommissionLine.reversed_fen)).where(
                    CommissionLine.order_id == order_id
                )
            )
            db.session.remove()
        assert commission // 2 <= left <= commission - commission // 2
        w.open("/console/workbench/commission")
        expect(frozen).to_contain_text(_yuan(frozen_before + left))
        expect(gpage.get_by_test_id("lines")).to_contain_text("退款扣回")
        assert gpage.evaluate("document.documentElement.scrollWidth") <= 390
        w.check()
    finally:
        guide.close()
