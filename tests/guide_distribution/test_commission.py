"""Commission rules and the ledger: precedence, tier plan, promotions, rounding, self
purchase; the stages pending -> frozen -> settled; refunds at each stage; debt recovered."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.db import db, utcnow
from core.errors import NotFound, ValidationError
from guide_distribution import commission, ledger, payouts, settings, settlement
from guide_distribution.models.commission import CommissionStatement
from shop.models import Product
from tests import factories
from tests.guide_distribution.commission_helpers import (
    assert_consistent,
    bound_member,
    guide,
    lines,
    paid_order,
    receive_and_complete,
    refund,
)
from tests.shop.conftest import product

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
