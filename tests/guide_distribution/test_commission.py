"""Commission rules and the ledger: precedence, tier plan, promotions, rounding, self
purchase; the stages pending -> frozen -> settled; refunds at each stage; debt recovered."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.db import db, utcnow
from core.errors import NotFound, ValidationError
from guide_distribution import commission, handover, ledger, payouts, settings, settlement
from guide_distribution.models.commission import CommissionStatement, Payout
from org import services as org_services
from shop import aftersale, checkout, fulfilment, refunds
from shop.models import PICKUP, AfterSale, Order, OrderLine, Product, Refund
from shop.pricing import Item
from tests import factories
from tests.guide_distribution.commission_helpers import (
    assert_consistent,
    bound_member,
    guide,
    lines,
    paid_order,
    pay_in_full,
    receive_and_complete,
    refund,
)
from tests.shop.conftest import ADDRESS, coupon, flash_sale, member, product

LATER = dt.timedelta(days=16)


def test_the_first_rule_that_applies_wins_and_is_stored_on_the_line(shop, fake_pay):
    g = guide(shop)
    m = bound_member(g)
    settings.update_settings(default_rate_bp=500)
    db.session.commit()
    # sku (category tea, ¥20) and other_sku (no category, ¥30)
    o1 = paid_order(m, [(shop.sku, 2), (shop.other_sku, 1)])
    assert [(cl.rule, cl.rate_bp, cl.amount_fen) for cl in lines(o1)] == [
        ("default", 500, 200),
        ("default", 500, 150),
    ]
    commission.save_rule(kind="category_rate", target="tea", rate_bp=1000)
    db.session.commit()
    assert [(cl.rule, cl.amount_fen) for cl in lines(paid_order(m, [(shop.sku, 2)]))] == [
        ("category_rate", 400)
    ]
    commission.save_rule(kind="sku_rate", target=shop.sku.code, rate_bp=2000)
    db.session.commit()
    assert [(cl.rule, cl.amount_fen) for cl in lines(paid_order(m, [(shop.sku, 2)]))] == [
        ("sku_rate", 800)
    ]
    fixed = commission.save_rule(kind="sku_fixed", target=shop.sku.code, amount_fen=300)
    db.session.commit()
    cl = lines(paid_order(m, [(shop.sku, 3)]))[0]
    assert (cl.rule, cl.rule_id, cl.unit_fen, cl.amount_fen) == ("sku_fixed", fixed.id, 300, 900)
    assert assert_consistent(g.id).pending == 200 + 150 + 400 + 800 + 900


def test_amounts_are_rounded_down_to_the_fen(shop, fake_pay):
    g = guide(shop)
    m = bound_member(g)
    commission.save_rule(
        kind="sku_rate", target=shop.sku.code, rate_bp=commission.rate_bp_from_percent("3.33")
    )
    db.session.commit()
    cl = lines(paid_order(m, [(shop.sku, 1)]))[0]
    assert (cl.base_fen, cl.rate_bp, cl.amount_fen) == (2000, 333, 66)  # 66.6 -> 66


def test_a_tier_plan_raises_the_rate_past_the_monthly_target(shop, fake_pay):
    g = guide(shop)
    m = bound_member(g)
    settings.update_settings(default_rate_bp=500)
    commission.save_tier(name="金牌", target_fen=3000, rate_bp=1000)
    db.session.commit()
    first = lines(paid_order(m, [(shop.sku, 2)]))[0]  # nothing before it this month
    second = lines(paid_order(m, [(shop.sku, 2)]))[0]  # ¥40 done before it
    assert (first.rule, first.amount_fen) == ("default", 200)
    assert (second.rule, second.rate_bp, second.amount_fen) == ("tier", 1000, 400)


def test_promotion_items_earn_nothing_when_the_brand_says_so(shop, fake_pay):
    g = guide(shop)
    m = bound_member(g)
    promo = product(name="特价茶", price_fen=1000)
    db.session.get(Product, promo.product_id).promotion = True
    settings.update_settings(default_rate_bp=1000, commission_on_promotions=False)
    db.session.commit()
    got = [(cl.rule, cl.amount_fen) for cl in lines(paid_order(m, [(promo, 1), (shop.sku, 1)]))]
    assert got == [("promotion", 0), ("default", 200)]


def test_a_guide_buying_for_themselves_earns_nothing(shop, fake_pay):
    from members.models import Member

    g = guide(shop, phone="13900001111")
    m = bound_member(g)
    db.session.execute(
        Member.__table__.update().where(Member.id == m.id).values(phone="13900001111")
    )
    settings.update_settings(default_rate_bp=1000)
    db.session.commit()
    order = paid_order(m, [(shop.sku, 1)])
    assert lines(order) == []
    assert ledger.balances(g.id) == ledger.Balances()


def test_stages_and_a_refund_taking_back_its_share(shop, fake_pay):
    g = guide(shop)
    m = bound_member(g)
    settings.update_settings(default_rate_bp=1000)
    db.session.commit()
    order = paid_order(m, [(shop.sku, 3)])  # ¥60 -> ¥6
    assert assert_consistent(g.id).pending == 600
    refund(order, amount_fen=2000)  # a third back while pending
    assert lines(order)[0].reversed_fen == 200
    assert assert_consistent(g.id).pending == 400
    now = utcnow()
    receive_and_complete(order, m, now=now)
    bal = assert_consistent(g.id)
    assert (bal.pending, bal.frozen) == (0, 400)
    assert lines(order)[0].settle_due_at == now + dt.timedelta(days=15)
    assert settlement.settle_due(now=now + dt.timedelta(days=14)).lines == 0
    run = settlement.settle_due(now=now + LATER)
    db.session.commit()
    assert (run.lines, run.amount_fen) == (1, 400)
    assert assert_consistent(g.id).settled == 400
    assert settlement.settle_due(now=now + LATER).lines == 0  # once


def test_a_refund_of_paid_out_commission_becomes_debt_recovered_from_the_next(shop, fake_pay):
    g = guide(shop)
    m = bound_member(g)
    settings.update_settings(default_rate_bp=1000, payout_min_fen=100)
    db.session.commit()
    now = utcnow()
    first = paid_order(m, [(shop.sku, 5)])  # ¥100 -> ¥10
    receive_and_complete(first, m, now=now)
    settlement.settle_due(now=now + LATER)
    payout = payouts.request(guide_id=g.id, amount_fen=1000)
    assert payout.method == "payroll"  # no WeChat identity for this guide
    db.session.commit()
    body, n = payouts.export_payroll()
    db.session.commit()
    assert n == 1 and "10.00" in body
    assert assert_consistent(g.id).paid == 1000
    refund(first, amount_fen=5000)  # half of a settled, paid-out line
    bal = assert_consistent(g.id)
    assert (bal.settled, bal.owed, bal.paid) == (0, 500, 1000)
    second = paid_order(m, [(shop.sku, 4)])  # ¥80 -> ¥8
    receive_and_complete(second, m, now=now)
    settlement.settle_due(now=now + LATER)
    db.session.commit()
    bal = assert_consistent(g.id)
    assert (bal.settled, bal.owed) == (300, 0)
    written = payouts.close_month(utcnow().date(), pay_out=False)
    db.session.commit()
    assert written == 1
    st = db.session.execute(select(CommissionStatement)).scalar_one()
    assert (st.earned_fen, st.reversed_fen, st.owed_added_fen, st.recovered_fen) == (
        1800,
        500,
        500,
        500,
    )
    assert (st.paid_fen, st.closing_settled_fen, st.closing_owed_fen) == (1000, 300, 0)


def test_bad_input_is_refused(shop, fake_pay):
    g = guide(shop)
    with pytest.raises(ValidationError):
        commission.rate_bp_from_percent("100.01")
    with pytest.raises(ValidationError):
        commission.save_rule(kind="sku_rate", target=shop.sku.code, rate_bp=10_001)
    with pytest.raises(ValidationError):
        commission.save_tier(name="x", target_fen=100, rate_bp=20_000)
    with pytest.raises(ledger.InsufficientBalance):
        payouts.request(guide_id=g.id, amount_fen=5000)
    with pytest.raises(ValidationError):
        payouts.request(guide_id=g.id, amount_fen=10)  # under the ¥10 minimum
    db.session.rollback()
    other_brand = factories.brand()
    stranger = factories.staff(other_brand, role="guide", store=factories.store(other_brand))
    with pytest.raises(NotFound):
        payouts.request(guide_id=stranger.id, amount_fen=5000)


def _checkout_and_pay(m, items, **kw):
    """Check out ``items`` with ``kw`` (coupons, points, pick-up) and pay it in full."""
    placed = checkout.checkout(
        member_id=m.id,
        items=items,
        channel="mini_program",
        idempotency_key=f"co-{m.id}-{len(items)}-{sorted(kw)}",
        **({"address": ADDRESS} | kw),
    )
    db.session.commit()
    order = placed.order
    pay_in_full(order, m)
    return order


def test_the_base_is_the_lines_share_of_what_was_paid_without_coupon_points_or_shipping(
    shop, fake_pay
):
    g = guide(shop)
    m = bound_member(g, points_balance=5000)
    settings.update_settings(default_rate_bp=1000)
    db.session.commit()
    c = coupon(m.id, value_fen=700)
    # ¥20 + 2 × ¥30 = ¥80 of goods; the ¥7 coupon splits 175 / 525 by value, the 999 points
    # (¥9.99 at 100 a yuan) 250 / 749 over what is left; ¥8 shipping (under ¥100)
    order = _checkout_and_pay(
        m, [Item(shop.sku.id, 1), Item(shop.other_sku.id, 2)], coupons=[c.code], points=999
    )
    assert (order.pay_fen, order.shipping_fen) == (1575 + 4726 + 800, 800)
    got = [(cl.base_fen, cl.rate_bp, cl.amount_fen) for cl in lines(order)]
    # 157.5 -> 157 and 472.6 -> 472: not 10% of the ¥71.01 paid, nor of the ¥80 list price
    assert got == [(1575, 1000, 157), (4726, 1000, 472)]
    assert assert_consistent(g.id).pending == 629


def test_flash_sale_items_earn_nothing_when_the_brand_says_so(shop, fake_pay):
    g = guide(shop)
    m = bound_member(g)
    flash_sku = product(name="秒杀茶", price_fen=5000)
    sale = flash_sale(flash_sku, quantity=10, price_fen=990, per_member_limit=5)
    settings.update_settings(default_rate_bp=1000)
    db.session.commit()
    on = _checkout_and_pay(m, [Item(flash_sku.id, 1, flash_sale_id=sale.id)])
    assert [(cl.rule, cl.base_fen, cl.amount_fen) for cl in lines(on)] == [("default", 990, 99)]
    settings.update_settings(commission_on_promotions=False)
    db.session.commit()
    off = _checkout_and_pay(m, [Item(flash_sku.id, 1, flash_sale_id=sale.id), Item(shop.sku.id, 1)])
    got = [(cl.rule, cl.amount_fen) for cl in lines(off)]
    assert got == [("promotion", 0), ("default", 200)]
    assert assert_consistent(g.id).pending == 99 + 200


def test_commission_freezes_when_the_pick_up_code_is_verified(shop, fake_pay):
    g = guide(shop)
    m = bound_member(g)
    settings.update_settings(default_rate_bp=1000)
    db.session.commit()
    order = _checkout_and_pay(
        m, [Item(shop.sku.id, 2)], fulfilment=PICKUP, pickup_store_id=shop.store.id
    )
    fulfilment.mark_ready(order_id=order.id)
    db.session.commit()
    # waiting in the store is not yet a sale that stands
    assert [cl.state for cl in lines(order)] == ["pending"]
    assert assert_consistent(g.id).pending == 400
    code = db.session.get(Order, order.id).pickup_code
    fulfilment.verify_pickup(code=code, store_id=shop.store.id, guess_ident="staff:1")
    db.session.commit()
    (cl,) = lines(order)
    assert (cl.state, cl.frozen_at is not None, cl.settle_due_at) == ("frozen", True, None)
    bal = assert_consistent(g.id)
    assert (bal.pending, bal.frozen) == (0, 400)
    now = utcnow()
    fulfilment.complete(order_id=order.id, now=now)
    db.session.commit()
    assert lines(order)[0].settle_due_at == now + dt.timedelta(days=15)
    assert settlement.settle_due(now=now + LATER).amount_fen == 400


def _ask_refund(order, m, amount_fen: int, reason: str, at):
    """The member asks for ``amount_fen`` back on the order's one line (refund only)."""
    line = db.session.execute(select(OrderLine).where(OrderLine.order_id == order.id)).scalar_one()
    return aftersale.request(
        order_id=order.id,
        member_id=m.id,
        kind="refund_only",
        items=[refunds.Item(line.id, 0, amount_fen)],
        reason=reason,
        now=at,
    )


def test_an_open_after_sale_request_holds_settlement_until_it_is_decided(shop, fake_pay):
    g = guide(shop)
    m = bound_member(g)
    settings.update_settings(default_rate_bp=1000)
    db.session.commit()
    now = utcnow()
    held, plain = paid_order(m, [(shop.sku, 3)]), paid_order(m, [(shop.other_sku, 1)])
    receive_and_complete(held, m, now=now)
    receive_and_complete(plain, m, now=now)
    req = _ask_refund(held, m, 1000, "茶叶受潮", now + dt.timedelta(days=3))
    db.session.commit()
    # due by the date, but the customer is still asking for money back: only the other
    # order settles
    run = settlement.settle_due(now=now + LATER)
    db.session.commit()
    assert (run.lines, run.amount_fen) == (1, 300)
    assert [cl.state for cl in lines(held)] == ["frozen"]
    bal = assert_consistent(g.id)
    assert (bal.frozen, bal.settled) == (600, 300)
    aftersale.refuse(after_sale_id=req.id, reason="影响二次销售")
    db.session.commit()
    run = settlement.settle_due(now=now + LATER)
    db.session.commit()
    assert (run.lines, run.amount_fen) == (1, 600)
    bal = assert_consistent(g.id)
    assert (bal.frozen, bal.settled) == (0, 900)


def test_an_approved_after_sale_settles_net_of_its_refund_once_refunded(shop, fake_pay):
    g = guide(shop)
    m = bound_member(g)
    settings.update_settings(default_rate_bp=1000)
    db.session.commit()
    now = utcnow()
    order = paid_order(m, [(shop.sku, 3)])  # ¥60 -> ¥6
    receive_and_complete(order, m, now=now)
    req = _ask_refund(order, m, 2000, "少了一包", now + dt.timedelta(days=1))
    db.session.commit()
    aftersale.approve(after_sale_id=req.id, operator="ops")
    db.session.commit()
    # approved, its refund on its way to WeChat Pay: still open
    assert settlement.settle_due(now=now + LATER).lines == 0
    db.session.commit()
    (rf,) = db.session.execute(select(Refund).where(Refund.order_id == order.id)).scalars()
    refunds.succeed(refund_id=rf.id, refund_no="R-as", via="notify")
    db.session.commit()
    assert db.session.get(AfterSale, req.id).status == "refunded"
    run = settlement.settle_due(now=now + LATER)
    db.session.commit()
    assert (run.lines, run.amount_fen) == (1, 400)  # ¥6 less the third refunded
    bal = assert_consistent(g.id)
    assert (bal.frozen, bal.settled) == (0, 400)


def test_a_departed_guides_earned_commission_is_settled_and_paid_through_payroll(shop, fake_pay):
    from members.models import Member

    leaving = guide(shop, phone="13900002222")
    leaving.name = "小王"
    staying = guide(shop)
    # the guide has a WeChat identity under the brand: while working, a payout is a transfer
    own = member()
    db.session.execute(
        Member.__table__.update().where(Member.id == own.id).values(phone="13900002222")
    )
    customer = bound_member(leaving)
    settings.update_settings(default_rate_bp=1000, payout_min_fen=100)
    db.session.commit()
    assert payouts.guide_openid(leaving.id) == f"mp-{own.id}"
    now = utcnow()
    order = paid_order(customer, [(shop.sku, 5)])  # ¥100 -> ¥10
    receive_and_complete(order, customer, now=now)

    assert handover.hand_over(guide_id=leaving.id) == {staying.id: 1}
    org_services.update_staff(
        staff=leaving,
        name=leaving.name,
        phone=leaving.phone,
        role="guide",
        store_id=leaving.store_id,
        active=False,
    )
    db.session.commit()

    run = settlement.settle_due(now=now + LATER)
    db.session.commit()
    assert (run.lines, run.amount_fen) == (1, 1000)
    assert [cl.guide_id for cl in lines(order)] == [leaving.id]
    assert assert_consistent(leaving.id).settled == 1000
    assert payouts.close_month(utcnow().date()) == 1
    db.session.commit()
    st = db.session.execute(
        select(CommissionStatement).where(CommissionStatement.guide_id == leaving.id)
    ).scalar_one()
    payout = db.session.get(Payout, st.payout_id)
    # no WeChat transfer to someone who left: the brand's payroll pays it
    assert (payout.amount_fen, payout.method, payout.openid) == (1000, "payroll", None)
    body, n = payouts.export_payroll()
    db.session.commit()
    assert n == 1 and "小王" in body and "10.00" in body
    bal = assert_consistent(leaving.id)
    assert (bal.settled, bal.paying, bal.paid) == (0, 0, 1000)
    assert ledger.balances(staying.id) == ledger.Balances()
