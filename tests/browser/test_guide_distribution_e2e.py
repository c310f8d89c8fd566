"""Guide distribution end to end in WeChat's browser (390x844): a stranger opens a guide's
share link, signs in through the sandbox's WeChat OAuth and activates a card (SMS code,
consent) when putting a product in the cart, buys it with the new member's welcome coupon and
pays in the sandbox's WeChat Pay sheet; the brand ships it from the console and the customer
confirms receipt; the guide sees the commission frozen in the workbench. The customer then
asks for half of it back, the brand approves the request in the console, the refund goes
through the sandbox's WeChat Pay, and the guide sees the frozen commission halve.
Screenshots go to WMB_WALKTHROUGH_SHOTS (see walk.py).
"""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect
from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from guide_distribution import ledger, shops
from guide_distribution.models import CustomerBinding, OrderAttribution
from guide_distribution.models.commission import CommissionLine
from guide_distribution.models.shops import GuideShopItem
from members.activation import sms
from members.models import Member
from org.cli import DEMO_ADMIN_PHONE, DEMO_PASSWORD
from org.models import Brand, Staff
from shop.models import RF_SUCCESS, Order, OrderLine, Refund, Sku
from tests.browser.walk import WECHAT_UA, Walker, console, console_login
from wechat.sandbox import paystore

BRAND = "demo"
PHONE = "13900008888"
WELCOME_COUPON = "新会员满100减20"  # the demo brand's gift to every new member


def _setup(live_server) -> dict:
    live_server.invoke("demo")
    with live_server.app.app_context():
        brand = Brand.by_slug(BRAND)
        with use_brand(brand.id):
            guide_id = db.session.scalar(
                select(GuideShopItem.guide_id).order_by(GuideShopItem.id).limit(1)
            )
            guide = db.session.get(Staff, guide_id)
            first = shops.shop_lines(guide.id)[0]
            cheapest = db.session.scalar(
                select(func.min(Sku.price_fen)).where(
                    Sku.product_id == first.item.product_id, Sku.active.is_(True), Sku.stock > 0
                )
            )
            # An even number of units worth at least ¥100: the demo's welcome coupon (¥20 off
            # from ¥100) applies, and half of them can come back.
            pairs = -(-10_000 // (2 * cheapest))
            data = {
                "brand_id": brand.id,
                "guide_id": guide.id,
                "guide_name": guide.name,
                "guide_phone": guide.phone,
                "token": shops.share_token(guide.id),
                "quantity": 2 * pairs,
            }
        paystore.hold_refunds(brand.mch_id, False)
        db.session.remove()
    return data


def _choose_sku(page) -> None:
    for choice in page.locator("label.s-sku:not(.s-sku--out)").all():
        choice.click()
        if page.locator("[data-add-cart]").is_visible():
            return


def _phone(browser, live_server):
    return browser.new_context(
        base_url=live_server.url, locale="zh-CN", viewport={"width": 390, "height": 844},
        user_agent=WECHAT_UA, is_mobile=True, has_touch=True, device_scale_factor=2,
    )  # fmt: skip


def _frozen(live_server, data) -> int:
    with live_server.app.app_context(), use_brand(data["brand_id"]):
        value = ledger.balances(data["guide_id"]).frozen
        db.session.remove()
    return value


def _yuan(fen: int) -> str:
    return f"¥{fen / 100:.2f}"


def _console(browser, live_server, name: str, login: str, *, phone: bool) -> Walker:
    """A signed-in console: the guide's workbench in WeChat, or the brand admin's desk."""
    if phone:
        w = Walker(_phone(browser, live_server), name)
    else:
        w = console(browser, live_server.url, name)
    console_login(w, BRAND, login, DEMO_PASSWORD)
    return w


def _settled_refund(live_server, data, order_id: int) -> int:
    """The commission the order keeps once its refund succeeded (polled: the refund is sent
    to the sandbox's WeChat Pay by a job, and its notify comes back to the app)."""
    for _ in range(60):
        with live_server.app.app_context(), use_brand(data["brand_id"]):
            refunded = db.session.scalar(
                select(func.count()).where(Refund.order_id == order_id, Refund.status == RF_SUCCESS)
            )
            left = db.session.scalar(
                select(func.sum(CommissionLine.amount_fen - CommissionLine.reversed_fen)).where(
                    CommissionLine.order_id == order_id
                )
            )
            db.session.remove()
        if refunded:
            return int(left)
        time.sleep(0.25)
    raise AssertionError("the refund did not go through")


def test_a_new_customer_buys_through_a_share_link_and_the_guide_earns(browser, live_server):
    data = _setup(live_server)
    frozen_before = _frozen(live_server, data)
    admin = guide = None
    phone = _phone(browser, live_server)
    m = Walker(phone, "guide-e2e-customer")
    page = m.page
    try:
        # A stranger opens the guide's shop from the link the guide shared in a chat.
        m.open(f"/m/{BRAND}/guide/{data['token']}", form=False)
        expect(page.get_by_test_id("guide-name")).to_have_text(data["guide_name"])
        m.follow(page.locator("[data-testid=products] .s-card a").first, form=False)
        product_url = page.url
        assert "/shop/products/" in product_url
        _choose_sku(page)
        page.locator("input[name='quantity']").fill(str(data["quantity"]))
        # Putting it in the cart needs a member: WeChat's sign-in, then the card.
        with page.expect_navigation(url=re.compile(r"/sandbox/wechat/connect/oauth2/authorize")):
            page.locator("[data-add-cart]").click()
        page.get_by_placeholder("新用户昵称").fill("王芳")
        m.submit(page.get_by_role("button", name="创建并继续"))
        expect(page.locator("h1")).to_have_text("激活会员卡")
        page.locator("#phone").fill(PHONE)
        # The code is sent without leaving the page: the code step appears in place.
        page.locator("#send-code").click()
        expect(page.locator("#code")).to_be_visible()
        expect(page.locator("#resend")).to_be_disabled()
        m.shot("activate-code-sent")
        with live_server.app.app_context():
            code = sms.sandbox_last(PHONE)["code"]
        page.locator("#code").fill(code)
        page.locator("#consent").check()
        m.submit(page.locator("#activate"))
        assert page.url == product_url  # back where the sign-in started

        with live_server.app.app_context(), use_brand(data["brand_id"]):
            member = db.session.scalars(select(Member).where(Member.phone == PHONE)).one()
            # The link opened before the card existed bound the new member to the guide.
            binding = db.session.scalars(
                select(CustomerBinding).where(CustomerBinding.member_id == member.id)
            ).one()
            assert (binding.guide_id, binding.source) == (data["guide_id"], "share_link")
            member_id = member.id
            db.session.remove()

        _choose_sku(page)
        page.locator("input[name='quantity']").fill(str(data["quantity"]))
        m.submit(page.locator("[data-add-cart]"))
        expect(page).to_have_url(re.compile(r"/shop/cart$"))

        # The checkout with the new member's welcome coupon, then WeChat Pay's sheet.
        m.follow(page.locator(f"a[href$='/m/{BRAND}/shop/checkout']").last)
        form = page.locator("#checkout")
        for name, value in (("name", "王芳"), ("phone", PHONE), ("province", "上海"),
                            ("city", "上海"), ("district", "黄浦区"),
                            ("detail", "淮海中路 99 号")):  # fmt: skip
            form.locator(f"[name='address_{name}']").fill(value)
        coupon = form.locator("select[name='coupon'] option", has_text=WELCOME_COUPON)
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
            assert (order.member_id, order.status, order.discount_fen) == (member_id, "paid", 2000)
            att = db.session.scalars(
                select(OrderAttribution).where(OrderAttribution.order_id == order.id)
            ).one()
            assert (att.guide_id, att.source) == (data["guide_id"], "binding")
            clines = db.session.scalars(
                select(CommissionLine).where(CommissionLine.order_id == order.id)
            ).all()
            line = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).one()
            # the commission's base is what was paid for the line, after the coupon
            assert [cl.base_fen for cl in clines] == [line.pay_fen]
            assert line.pay_fen == line.unit_price_fen * line.quantity - 2000
            commission = sum(cl.amount_fen for cl in clines)
            assert commission > 0
            order_id = order.id
            db.session.remove()

        # The brand ships it from the console.
        admin = _console(browser, live_server, "guide-e2e-admin", DEMO_ADMIN_PHONE, phone=False)
        apage = admin.page
        admin.open("/console/shop/orders")
        admin.follow(apage.get_by_role("link", name=order_no))
        apage.get_by_label("物流公司").fill("顺丰速运")
        apage.get_by_label("物流单号").fill("SF1400000777")
        admin.submit(apage.get_by_role("button", name="发货", exact=True))
        admin.saved("SF1400000777")

        # The parcel arrives; the customer confirms it, and the commission freezes.
        m.open(f"/m/{BRAND}/shop/orders/{order_no}", form=False)
        m.submit(page.locator("form[action$='/receive'] button"))
        m.saved()
        assert _frozen(live_server, data) == frozen_before + commission

        guide = _console(browser, live_server, "guide-e2e-guide", data["guide_phone"], phone=True)
        gpage = guide.page
        guide.open("/console/workbench/home")
        guide.follow(gpage.locator("a[href$='/console/workbench/commission']").first, form=False)
        frozen = gpage.get_by_test_id("frozen")
        expect(frozen).to_contain_text(_yuan(frozen_before + commission))
        expect(gpage.get_by_test_id("lines")).to_contain_text(order_no)

        # Half the order goes back: the customer asks, the brand approves and refunds.
        m.open(f"/m/{BRAND}/shop/orders/{order_no}", form=False)
        page.get_by_text("申请售后").click()
        page.get_by_label("数量").fill(str(data["quantity"] // 2))
        page.get_by_label("原因").fill("买多了一件")
        m.submit(page.get_by_role("button", name="提交申请"))
        m.saved("待审核", "买多了一件")
        admin.open("/console/shop/after-sales")
        row = apage.locator("tr[data-request]").filter(has_text=order_no)
        expect(row).to_contain_text("买多了一件")
        admin.submit(row.get_by_role("button", name="同意并退款"))
        admin.saved()
        left = _settled_refund(live_server, data, order_id)
        # the line's commission less its share of the refund, rounded down
        assert left == commission - commission // 2 or left == commission // 2, (left, commission)
        m.open(f"/m/{BRAND}/shop/orders/{order_no}", form=False)
        expect(page.locator("[data-refunded]")).to_be_visible()

        guide.open("/console/workbench/commission")
        expect(frozen).to_contain_text(_yuan(frozen_before + left))
        expect(gpage.get_by_test_id("lines")).to_contain_text("退款扣回")
        assert gpage.evaluate("document.documentElement.scrollWidth") <= 390
        for w in (m, admin, guide):
            w.check()
    finally:
        for w in (m, admin, guide):
            if w is not None:
                w.context.close()
