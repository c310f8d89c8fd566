"""The guide's commission in WeChat's browser (390x844): a bound customer's order is paid
and received (frozen), half of it refunded (the frozen commission halves); the guide
withdraws, the transfer waits in WeChat Pay's sandbox, the guide confirms it in the
sandbox's WeChat sheet and sees it paid. Screenshots go to WMB_WALKTHROUGH_SHOTS."""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import expect
from sqlalchemy import select

from core.db import db, utcnow
from core.tenancy import use_brand
from guide_distribution import jobs_commission as jobs
from guide_distribution import ledger
from guide_distribution.models import CustomerBinding
from guide_distribution.models.commission import Payout
from members.identities import attach_identity
from org.cli import DEMO_PASSWORD
from org.models import Brand, Staff
from shop import checkout, fulfilment, payments, refunds
from shop.models import OrderLine, Sku
from shop.pricing import Item
from tests import factories as f
from tests.browser.walk import WECHAT_UA, Walker, console, console_login
from tests.shop.conftest import ADDRESS

BRAND = "demo"


def _setup(live_server) -> dict:
    live_server.invoke("demo")
    with live_server.app.app_context():
        brand = Brand.by_slug(BRAND)
        with use_brand(brand.id):
            g = db.session.execute(
                select(Staff).where(Staff.role == "guide").order_by(Staff.phone).limit(1)
            ).scalar_one()
            # the guide's own WeChat identity under the brand (a member with their phone)
            me = f.member(phone=g.phone, name=g.name, activated=True, openid="o-e2e-guide")
            attach_identity(member_id=me.id, kind="mp_openid", value="mp-e2e-guide")
            customer = f.member(phone="13900006666", name="李雷", activated=True,
                                openid="o-e2e-customer")  # fmt: skip
            now = utcnow()
            db.session.add(
                CustomerBinding(member_id=customer.id, store_id=g.store_id, guide_id=g.id,
                                source="scan", bound_at=now,
                                protected_until=now + dt.timedelta(days=15))
            )  # fmt: skip
            db.session.commit()
            data = {"brand_id": brand.id, "guide": g.phone, "guide_id": g.id,
                    "customer": customer.id}  # fmt: skip
        db.session.remove()
    return data


def _buy_and_receive(live_server, data) -> int:
    """The bound customer's order, paid and received; the commission it earns."""
    with live_server.app.app_context(), use_brand(data["brand_id"]):
        sku = db.session.execute(
            select(Sku).where(Sku.active.is_(True), Sku.stock > 5).order_by(Sku.id).limit(1)
        ).scalar_one()
        before = ledger.balances(data["guide_id"]).frozen
        placed = checkout.checkout(
            member_id=data["customer"],
            items=[Item(sku.id, 2)],
            channel="h5",
            idempotency_key="e2e-gc",
            address=ADDRESS,
        )
        db.session.commit()
        order = placed.order
        payment, _ = payments.start_payment(
            order_no=order.order_no,
            member_id=data["customer"],
            mini_program=False,
            notify_url="https://x/n",
        )
        db.session.commit()
        payments.mark_paid(
            out_trade_no=payment.out_trade_no,
            transaction_id="T-e2e-gc",
            amount_fen=order.pay_fen,
            via="notify",
        )
        db.session.commit()
        fulfilment.ship(order_id=order.id, carrier="顺丰速运", tracking_no="SF1400000999")
        db.session.commit()
        fulfilment.confirm_receipt(order_id=order.id, member_id=data["customer"])
        db.session.commit()
        earned = ledger.balances(data["guide_id"]).frozen - before
        data["order_id"] = order.id
        db.session.remove()
    return earned


def _refund_half(live_server, data) -> None:
    with live_server.app.app_context(), use_brand(data["brand_id"]):
        line = db.session.execute(
            select(OrderLine).where(OrderLine.order_id == data["order_id"])
        ).scalar_one()
        r = refunds.start(order_id=data["order_id"],
                          items=[refunds.Item(line.id, 1)], idempotency_key="e2e-gc-r")  # fmt: skip
        db.session.commit()
        refunds.succeed(refund_id=r.id, refund_no="R-e2e-gc", via="notify")
        db.session.commit()
        db.session.remove()


def _yuan(fen: int) -> str:
    return f"¥{fen / 100:.2f}"


def test_a_guide_sees_commission_frozen_halved_by_a_refund_and_withdraws(browser, live_server):
    data = _setup(live_server)
    phone = browser.new_context(
        base_url=live_server.url, locale="zh-CN", viewport={"width": 390, "height": 844},
        user_agent=WECHAT_UA, is_mobile=True, has_touch=True, device_scale_factor=2,
    )  # fmt: skip
    w = Walker(phone, "guide-commission")
    page = w.page
    try:
        console_login(w, BRAND, data["guide"], DEMO_PASSWORD)

        with live_server.app.app_context(), use_brand(data["brand_id"]):
            start = ledger.balances(data["guide_id"])
            db.session.remove()
        earned = _buy_and_receive(live_server, data)
        assert earned > 0
        w.open("/console/workbench/commission")
        frozen = page.get_by_test_id("frozen")
        expect(frozen).to_contain_text(_yuan(start.frozen + earned))
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

        _refund_half(live_server, data)  # one of the two units
        w.open("/console/workbench/commission")
        expect(frozen).to_contain_text(_yuan(start.frozen + earned // 2))
        expect(page.get_by_test_id("lines")).to_contain_text("退款扣回")

        # Withdraw everything withdrawable; the transfer waits for the guide in WeChat.
        assert start.settled >= 100, start
        page.get_by_label("提现金额（元）").fill(f"{start.settled / 100:.2f}")
        w.submit(page.get_by_test_id("withdraw"))
        w.saved()
        with live_server.app.app_context(), use_brand(data["brand_id"]):
            payout = db.session.execute(
                select(Payout)
                .where(Payout.guide_id == data["guide_id"], Payout.amount_fen == start.settled)
                .order_by(Payout.id.desc())
                .limit(1)
            ).scalar_one()
            assert payout.method == "transfer"
            # the job sends it to WeChat Pay (the outbox runs it, or this call does it)
            jobs.transfer_payout(data["brand_id"], payout.id)
            db.session.remove()
        with live_server.app.app_context(), use_brand(data["brand_id"]):
            assert db.session.get(Payout, payout.id).state == "wait_confirm"
            db.session.remove()
        w.open("/console/workbench/commission")
        expect(page.locator(f"[data-payout='{payout.id}']")).to_contain_text("待导购确认收款")
        page.get_by_test_id("confirm-transfer").click()
        sheet = page.locator(".wxpay-sandbox")
        expect(sheet).to_be_visible()
        expect(sheet).to_contain_text(_yuan(start.settled))
        w.shot("transfer-sheet")
        with page.expect_navigation():
            sheet.get_by_role("button", name="确认收款").click()
        w.landed(page.url, form=False)
        expect(page.locator(f"[data-payout='{payout.id}']")).to_contain_text("已发放")
        expect(page.get_by_test_id("paid")).to_contain_text(_yuan(start.paid + start.settled))
        expect(page.get_by_test_id("settled")).to_contain_text("¥0.00")
        w.check()
    finally:
        phone.close()


def test_an_admin_types_rules_a_tier_step_and_settings(browser, live_server):
    live_server.invoke("demo")
    w = console(browser, live_server.url, "guide-commission-console")
    page = w.page
    try:
        console_login(w, BRAND, "13800000000", DEMO_PASSWORD)
        page.get_by_role("button", name="导购分销").click()
        w.follow(page.get_by_role("link", name="提成规则").first)
        expect(page.get_by_test_id("rules")).to_contain_text("品类提成比例")
        page.get_by_label("规则类型").select_option("sku_rate")
        with live_server.app.app_context():
            brand = Brand.by_slug(BRAND)
            with use_brand(brand.id):
                code = db.session.execute(
                    select(Sku.code).order_by(Sku.id.desc()).limit(1)
                ).scalar()
            db.session.remove()
        page.get_by_label("SKU 编码或品类编码").fill(code)
        page.get_by_label("比例（百分比，按比例时填写）").fill("12.5")
        w.submit(page.locator("form", has=page.get_by_label("规则类型")).get_by_role("button"))
        w.saved(code, "12.5%")
        page.get_by_label("阶梯名称").fill("钻石导购")
        page.get_by_label("月度业绩目标（元）").fill("50000")
        page.get_by_label("达标后比例（百分比）").fill("12")
        w.submit(page.locator("form", has=page.get_by_label("阶梯名称")).get_by_role("button"))
        w.saved("钻石导购", "¥50000.00")
        w.follow(page.get_by_role("link", name="提成设置").first)
        page.get_by_label("默认提成比例（百分比）").fill("6")
        page.get_by_label("订单完成后多少天结算提成").fill("7")
        w.submit(page.get_by_role("button", name="保存"))
        w.saved()
        expect(page.get_by_label("默认提成比例（百分比）")).to_have_value("6")
        w.follow(page.get_by_role("link", name="提成发放").first, form=False)
        w.follow(page.get_by_role("link", name="提成月结单").first, form=False)
        w.check()
    finally:
        w.context.close()
