"""An order the member paid twice (the official account's pay sheet and the mini-program's),
as the member (WeChat's browser, 390x844) and the operator (the console, 1366x900) read it
once WeChat Pay returned the second payment.

Screenshots of every page go to WMB_WALKTHROUGH_SHOTS (see walk.py)."""

from __future__ import annotations

import secrets
import time

from playwright.sync_api import expect
from sqlalchemy import select

from core.db import db
from core.tenancy import use_brand
from members.identities import attach_identity
from org.models import Brand
from shop import checkout, payments
from shop.models import H5, Order, Refund
from shop.pricing import Item
from tests import factories as f
from tests.browser.test_shop_purchase import _member_cookie
from tests.browser.walk import WECHAT_UA, Walker, console, console_login
from tests.shop import factories as sf
from tests.shop.conftest import ADDRESS
from wechat.sandbox import paynotify, paystore

BRAND = "demo"


def _paid_twice(live_server, *, hold_refunds: bool = False) -> dict:
    """The demo brand's member with an order paid in both places; answers what the pages
    need once the second payment is back."""
    live_server.invoke("demo")
    app = live_server.app
    with app.app_context():
        brand = Brand.by_slug(BRAND)
        admin = f.staff(brand, "brand_admin")
        paystore.hold_refunds(brand.mch_id, hold_refunds)
        with use_brand(brand.id):
            member = f.member(phone="13900008888", name="李雷", activated=True,
                              openid="o-e2e-purchase")  # fmt: skip
            attach_identity(member_id=member.id, kind="mp_openid", value="o-e2e-mp-twice")
            sku = sf.catalog(prices=(6800,))[0]
            order = checkout.checkout(
                member_id=member.id,
                items=[Item(sku.id, 1)],
                channel=H5,
                idempotency_key=secrets.token_hex(6),
                address=ADDRESS,
                from_cart=False,
            ).order
            db.session.commit()
            notify_url = f"{app.config['PUBLIC_URL']}/pay/notify/{BRAND}"
            attempts = []
            for mini_program in (False, True):
                payment, _ = payments.start_payment(
                    order_no=order.order_no,
                    member_id=member.id,
                    mini_program=mini_program,
                    notify_url=notify_url,
                )
                db.session.commit()
                attempts.append(payment.out_trade_no)
            data = {"brand_id": brand.id, "member_id": member.id, "admin": admin.phone,
                    "order_id": order.id, "order_no": order.order_no, "pay_fen": order.pay_fen,
                    "mch_id": brand.mch_id}  # fmt: skip
        db.session.remove()
        # Both pay sheets confirmed at the same moment; then their notifies arrive.
        paystore.set_delivery(data["mch_id"], "never", delay=0)
        for out_trade_no in attempts:
            paynotify.pay_order(data["mch_id"], out_trade_no)
        paystore.clear_controls(data["mch_id"])
        for out_trade_no in attempts:
            answers = paynotify.redeliver(data["mch_id"], out_trade_no)
            assert [a["status"] for a in answers] == [204]
    return data


def _operator(browser, live_server, data: dict, name: str) -> Walker:
    """The brand admin signed in to the console (1366x900)."""
    w = console(browser, live_server.url, name)
    console_login(w, BRAND, data["admin"], f.PASSWORD)
    return w


def _returned(live_server, data: dict, page) -> Refund:
    """The return of the second payment, once WeChat Pay (the sandbox, a moment after the
    refund job sent it) says it is done."""
    with live_server.app.app_context(), use_brand(data["brand_id"]):
        for _ in range(60):
            back = db.session.scalars(
                select(Refund).where(Refund.order_id == data["order_id"])
            ).one_or_none()
            if back is not None and back.status == "success":
                break
            db.session.remove()
            page.wait_for_timeout(250)
        order = db.session.get(Order, data["order_id"])
        assert back is not None and back.status == "success" and back.payment_id is not None
        assert (order.status, order.refunded_fen, order.paid_fen) == ("paid", 0, data["pay_fen"])
        db.session.remove()
    return back


def test_an_order_paid_twice_reads_plainly_to_the_member_and_the_operator(browser, live_server):
    data = _paid_twice(live_server)
    yuan = f"¥{data['pay_fen'] / 100:.2f}"
    phone = browser.new_context(
        base_url=live_server.url, locale="zh-CN", viewport={"width": 390, "height": 844},
        user_agent=WECHAT_UA, is_mobile=True, has_touch=True, device_scale_factor=2,
    )  # fmt: skip
    phone.add_cookies([_member_cookie(live_server, data["brand_id"], data["member_id"])])
    m = Walker(phone, "shop-paid-twice")
    page = m.page
    try:
        back = _returned(live_server, data, page)
        m.open(f"/m/{BRAND}/shop/orders/{data['order_no']}", form=False)
        state = page.locator("[data-testid='order-state']")
        expect(state).to_contain_text("待发货")
        expect(page.locator("[data-paid-twice]")).to_have_text(
            f"此订单支付了两次，多付的 {yuan} 已原路退回"
        )
        expect(state).not_to_contain_text("已退款")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        m.check()

    w = _operator(browser, live_server, data, "shop-paid-twice-console")
    cpage = w.page
    try:
        w.open(f"/console/shop/orders/{data['order_id']}")
        expect(cpage.locator("[data-testid='order-status']")).to_have_text("待发货")
        pays = cpage.locator("[data-testid='payments'] tbody tr")
        expect(pays).to_have_count(2)
        expect(pays.nth(0)).to_contain_text("已付款")
        expect(pays.nth(1)).to_contain_text("重复支付，已退回")
        refunds = cpage.locator("[data-testid='refunds'] tbody tr")
        expect(refunds).to_have_count(1)
        expect(refunds.first).to_contain_text(back.out_refund_no)
        expect(refunds.first).to_contain_text(yuan)
        expect(refunds.first).to_contain_text("重复支付：多付的一笔全额原路退回")
        # The second payment was learned by its notify or by the close job's query first.
        notes = cpage.locator("[data-testid='notifies'] tbody tr")
        expect(notes.first).to_contain_text("已处理")
        expect(cpage.locator("main")).not_to_contain_text("surplus")
        cpage.locator("[data-testid='refunds']").scroll_into_view_if_needed()
        w.shot("order-payments")
        w.check()
    finally:
        w.context.close()


def test_a_second_payment_wechat_pay_would_not_return_is_listed_for_the_operator(
    browser, live_server
):
    data = _paid_twice(live_server, hold_refunds=True)
    with live_server.app.app_context(), use_brand(data["brand_id"]):
        for _ in range(60):  # the refund job sends the return; WeChat Pay holds it
            back = db.session.scalars(
                select(Refund).where(Refund.order_id == data["order_id"])
            ).one_or_none()
            there = back and paystore.get_refund(data["mch_id"], back.out_refund_no)
            if there:
                break
            db.session.remove()
            time.sleep(0.25)
        assert there, "the return never reached WeChat Pay"
        out_refund_no, out_trade_no = back.out_refund_no, there["out_trade_no"]
        db.session.remove()
        # The payer's bank card was closed: WeChat Pay cannot return it.
        answer = paynotify.complete_refund(data["mch_id"], out_refund_no, status="ABNORMAL")
        assert answer["status"] == "ABNORMAL"
    yuan = f"¥{data['pay_fen'] / 100:.2f}"
    w = _operator(browser, live_server, data, "shop-paid-twice-not-returned")
    cpage = w.page
    try:
        w.open("/console/shop/reconciliation")
        row = cpage.locator("[data-testid='issues'] tbody tr", has_text=out_trade_no)
        expect(row).to_have_count(1)
        expect(row).to_contain_text("重复支付，未能退回（请在微信支付商户平台处理）")
        expect(row).to_contain_text(f"退款失败 {yuan} {out_refund_no}")
        expect(row).to_contain_text(f"已付款 {yuan}")
        w.shot("reconciliation")
        w.submit(row.get_by_role("button", name="标记为已处理"))
        expect(
            cpage.locator("[data-testid='issues'] tbody tr", has_text=out_trade_no)
        ).to_contain_text("已处理")
        w.open(f"/console/shop/orders/{data['order_id']}")
        refunds = cpage.locator("[data-testid='refunds'] tbody tr")
        expect(refunds.first).to_contain_text("退款失败")
        expect(refunds.first).to_contain_text(
            "重复支付：多付的一笔全额原路退回；退款异常，请在微信支付商户平台处理"
        )
        expect(refunds.first).not_to_contain_text("abnormal")
        expect(cpage.locator("[data-testid='order-status']")).to_have_text("待发货")
        w.check()
    finally:
        w.context.close()
