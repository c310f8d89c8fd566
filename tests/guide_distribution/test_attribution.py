"""Attribution frozen when an order is created: the till's guide, a protected binding, a
share link opened lately, the binding; a guide buying for themselves; the performance
ledger on payment and refund, once each."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select

from core.db import db, utcnow
from core.tenancy import require_brand_id
from guide_distribution import attribution, ledger, settings
from guide_distribution.models import (
    CustomerBinding,
    GuideSalesDay,
    GuideVisit,
    OrderAttribution,
    PerformanceLine,
)
from guide_distribution.models.commission import CommissionLine
from shop import checkout
from shop import signals as shop_signals
from shop.pricing import Item
from tests import factories
from tests.guide_distribution.commission_helpers import (
    pay_in_full,
    receive_and_complete,
    refund,
)
from tests.shop.conftest import ADDRESS, member

NOW = utcnow()


def _bind(m, guide, *, protected_days: int | None = 15, expires_days: int | None = None):
    db.session.add(
        CustomerBinding(
            member_id=m.id,
            store_id=guide.store_id,
            guide_id=guide.id,
            source="scan",
            bound_at=NOW,
            protected_until=None if protected_days is None else NOW + dt.timedelta(protected_days),
            expires_at=None if expires_days is None else NOW + dt.timedelta(expires_days),
        )
    )
    db.session.commit()


def _visit(m, guide, *, days_ago: float = 1):
    at = NOW - dt.timedelta(days=days_ago)
    db.session.add(GuideVisit(member_id=m.id, guide_id=guide.id, first_at=at, last_at=at))
    db.session.commit()


def _order(shop, m, key="k1"):
    placed = checkout.checkout(
        member_id=m.id,
        items=[Item(shop.sku.id, 2)],
        channel="mini_program",
        idempotency_key=key,
        address=ADDRESS,
    )
    db.session.commit()
    return placed.order


def _att(order):
    return db.session.execute(
        select(OrderAttribution).where(OrderAttribution.order_id == order.id)
    ).scalar_one()


def _guides(shop):
    other_store = factories.store(shop.brand)
    a = factories.staff(shop.brand, role="guide", store=shop.store)
    b = factories.staff(shop.brand, role="guide", store=other_store)
    return a, b


def test_a_share_link_opened_lately_credits_its_guide_and_the_guides_store(shop, fake_pay):
    a, b = _guides(shop)
    m = member(store=shop.store)
    _visit(m, b, days_ago=2)
    order = _order(shop, m)
    att = _att(order)
    assert (att.guide_id, att.guide_store_id, att.source) == (b.id, b.store_id, "share_link")
    assert att.fulfil_store_id == order.store_id == shop.store.id
    assert att.earns and not att.self_purchase


def test_a_link_older_than_the_window_does_not_count(shop, fake_pay):
    _a, b = _guides(shop)
    m = member()
    _visit(m, b, days_ago=8)  # the default window is 7 days
    assert _att(_order(shop, m)).source == "none"
    settings.update_settings(link_days=10)
    db.session.commit()
    assert _att(_order(shop, m, key="k2")).guide_id == b.id


def test_a_protected_binding_beats_a_link_and_an_unprotected_one_does_not(shop, fake_pay):
    a, b = _guides(shop)
    m1, m2, m3 = member(), member(), member()
    _bind(m1, a, protected_days=15)
    _visit(m1, b)
    _bind(m2, a, protected_days=None)
    _visit(m2, b)
    _bind(m3, a, protected_days=None)
    assert (_att(_order(shop, m1)).guide_id, _att(_order(shop, m1)).source) == (a.id, "binding")
    assert (_att(_order(shop, m2)).guide_id, _att(_order(shop, m2)).source) == (b.id, "share_link")
    assert (_att(_order(shop, m3)).guide_id, _att(_order(shop, m3)).source) == (a.id, "binding")


def test_an_expired_binding_or_an_inactive_guide_credits_nobody(shop, fake_pay):
    a, b = _guides(shop)
    m1, m2 = member(), member()
    _bind(m1, a, protected_days=None, expires_days=-1)
    _bind(m2, b)
    b.active = False
    db.session.commit()
    assert _att(_order(shop, m1)).source == "none"
    assert _att(_order(shop, m2)).guide_id is None


def test_attribution_stays_as_frozen_when_the_binding_changes_later(shop, fake_pay):
    a, b = _guides(shop)
    settings.update_settings(default_rate_bp=1000)
    m = member()
    _bind(m, a)
    order = _order(shop, m)
    binding = db.session.execute(select(CustomerBinding)).scalar_one()
    binding.guide_id = b.id
    db.session.commit()
    pay_in_full(order, m)
    assert _att(order).guide_id == a.id
    (line,) = db.session.execute(select(PerformanceLine)).scalars().all()
    assert (line.guide_id, line.store_id) == (a.id, a.store_id)
    # the commission too: the guide on the order earns it, not the one bound now
    (cl,) = db.session.execute(select(CommissionLine)).scalars().all()
    assert (cl.guide_id, cl.store_id, cl.amount_fen) == (a.id, a.store_id, 400)
    assert ledger.balances(a.id).pending == 400
    assert ledger.balances(b.id) == ledger.Balances()
    # and it stays there through receipt and a refund, with the customer bound to b
    receive_and_complete(order, m)
    refund(order, amount_fen=1000)
    assert (ledger.balances(a.id).frozen, ledger.balances(b.id)) == (300, ledger.Balances())


def test_performance_on_payment_and_refund_once_each_and_never_past_the_sale(shop, fake_pay):
    a, _b = _guides(shop)
    m = member()
    _bind(m, a)
    order = _order(shop, m)  # 2 x 20.00 + 8.00 shipping
    pay_in_full(order, m)
    _pay_again = attribution.on_paid(db.session.get(type(order), order.id))
    assert _pay_again is False  # a repeated notify adds nothing
    for refund_id, amount in ((1, 1500), (1, 1500), (2, 3000)):
        shop_signals.order_refunded.send(
            require_brand_id(),
            order_id=order.id,
            refund_id=refund_id,
            member_id=m.id,
            amount_fen=amount,
        )
        db.session.commit()
    lines = db.session.execute(select(PerformanceLine.amount_fen).order_by(PerformanceLine.id))
    assert [x for (x,) in lines] == [4000, -1500, -2500]
    days = db.session.execute(select(GuideSalesDay)).scalars().all()
    assert sum(d.orders for d in days) == 1
    assert (sum(d.sales_fen for d in days), sum(d.refunded_fen for d in days)) == (4000, 4000)
    assert {d.guide_id for d in days} == {a.id} and {d.store_key for d in days} == {a.store_id}


def test_a_guide_buying_for_themselves_earns_nothing_unless_the_brand_allows(shop, fake_pay):
    a, _b = _guides(shop)
    me = member()
    me.phone = a.phone
    db.session.commit()
    _bind(me, a)
    order = _order(shop, me)
    att = _att(order)
    assert att.self_purchase and not att.earns and att.guide_id == a.id
    pay_in_full(order, me)
    assert db.session.scalar(select(func.count()).select_from(PerformanceLine)) == 0
    settings.update_settings(self_purchase_earns=True)
    db.session.commit()
    again = _order(shop, me, key="k2")
    assert _att(again).earns
    pay_in_full(again, me)
    assert db.session.scalar(select(func.count()).select_from(PerformanceLine)) == 1


def test_a_guide_chosen_at_the_till_is_credited_for_that_till_order(client, shop):
    from coupons import services as coupon_services

    a, b = _guides(shop)
    m = member()
    _bind(m, b)  # the binding is the other guide's, protected
    _row, key = coupon_services.create_key(store_id=shop.store.id, label="till 1")
    db.session.commit()
    resp = client.post(
        f"/api/pos/{shop.brand.slug}/orders",
        json={
            "idempotency_key": "sale-1",
            "pos_order_no": "POS0001",
            "member": {"phone": m.phone},
            "guide_phone": a.phone,
            "lines": [{"sku_code": shop.sku.code, "unit_price_fen": 2000, "quantity": 1}],
            "pay_fen": 2000,
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 201, resp.get_json()
    att = db.session.execute(select(OrderAttribution)).scalar_one()
    assert (att.guide_id, att.source, att.fulfil_store_id) == (a.id, "till", shop.store.id)
    (line,) = db.session.execute(select(PerformanceLine)).scalars().all()
    assert (line.guide_id, line.amount_fen, line.orders) == (a.id, 2000, 1)


def test_a_snapshot_of_a_rolled_back_savepoint_is_not_found_afterwards(shop, fake_pay):
    """The snapshots a transaction reads or writes are kept for its later steps; one written
    in a savepoint that rolls back is gone with it, and the next record writes it again."""
    a, _b = _guides(shop)
    m = member()
    _bind(m, a)
    order = _order(shop, m)
    order_id = order.id
    db.session.execute(delete(OrderAttribution).where(OrderAttribution.order_id == order_id))
    db.session.commit()
    with db.session.begin_nested() as nested:
        made = attribution.record(
            order_id=order_id, member_id=m.id, fulfil_store_id=None, channel="mini_program"
        )
        assert made.guide_id == a.id and attribution.for_order(order_id) is made
        nested.rollback()
    assert attribution.for_order(order_id) is None
    again = attribution.record(
        order_id=order_id, member_id=m.id, fulfil_store_id=None, channel="mini_program"
    )
    db.session.commit()
    assert again.guide_id == a.id
    assert _att(order).id == again.id
