"""Fulfilment: the order's states after payment, by conditional updates; pick-up codes."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.db import db
from core.errors import ValidationError
from core.tenancy import use_brand
from shop import aftersale, fulfilment, refunds, signals
from shop.models import COMPLETED, PICKUP, READY, RECEIVED, SHIPPED, Order, OrderLine
from shop.settings import update_settings
from tests import factories
from tests.shop import factories as sf
from tests.shop.aftersale_fixtures import *  # noqa: F403 - the fixtures
from tests.support.concurrency import run_concurrently


def _reload(order_id: int) -> Order:
    return db.session.execute(
        select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    ).scalar_one()


def test_delivery_ship_receive_complete_sends_completed_once(brand, store, skus, member_id):
    order = sf.paid_order(member_id=member_id, lines=[(skus[0], 1)], store_id=store.id)
    sent, seen = [], []

    def on_completed(sender, **kw):
        sent.append(kw)
        # A receiver reads the order as it is now, even one loaded before in the session.
        got = db.session.get(Order, kw["order_id"])
        seen.append((got.status, got.completed_at is not None))

    with signals.order_completed.connected_to(on_completed):
        fulfilment.ship(order_id=order.id, carrier="顺丰", tracking_no="SF1234567890")
        db.session.commit()
        assert _reload(order.id).status == SHIPPED
        with pytest.raises(fulfilment.IllegalTransition):
            fulfilment.ship(order_id=order.id, carrier="顺丰", tracking_no="SF1")
        with pytest.raises(fulfilment.IllegalTransition):
            fulfilment.mark_ready(order_id=order.id)
        fulfilment.confirm_receipt(order_id=order.id, member_id=member_id)
        db.session.commit()
        with pytest.raises(fulfilment.IllegalTransition):
            fulfilment.confirm_receipt(order_id=order.id, member_id=member_id)
        assert fulfilment.complete(order_id=order.id) is True
        assert fulfilment.complete(order_id=order.id) is False
        db.session.commit()
    o = _reload(order.id)
    assert o.status == COMPLETED and o.carrier == "顺丰" and o.tracking_no == "SF1234567890"
    assert sent == [{"order_id": o.id, "member_id": member_id, "store_id": store.id}]
    assert seen == [(COMPLETED, True)]


def test_ship_needs_carrier_and_tracking_number(brand, store, skus, member_id):
    order = sf.paid_order(member_id=member_id, lines=[(skus[0], 1)], store_id=store.id)
    with pytest.raises(ValidationError) as err:
        fulfilment.ship(order_id=order.id, carrier="", tracking_no="X1")
    assert err.value.field == "carrier"
    with pytest.raises(ValidationError) as err:
        fulfilment.ship(order_id=order.id, carrier="顺丰", tracking_no="<script>")
    assert err.value.field == "tracking_no"
    assert _reload(order.id).status == "paid"


def test_auto_receive_and_auto_complete_wait_for_open_after_sales(brand, store, skus, member_id):
    t0 = dt.datetime(2026, 3, 1, 4, tzinfo=dt.UTC)
    a = sf.paid_order(member_id=member_id, lines=[(skus[0], 1)], store_id=store.id, paid_at=t0)
    b = sf.paid_order(member_id=member_id, lines=[(skus[1], 1)], store_id=store.id, paid_at=t0)
    for o in (a, b):
        fulfilment.ship(order_id=o.id, carrier="EMS", tracking_no="E1", now=t0)
    line_b = db.session.scalars(select(OrderLine).where(OrderLine.order_id == b.id)).one()
    req = aftersale.request(
        order_id=b.id, member_id=member_id, kind="refund_only",
        items=[refunds.Item(line_b.id, 1)], reason="破损", now=t0,
    )  # fmt: skip
    update_settings(auto_receive_days=5)  # the brand's rule (10 days by default)
    db.session.commit()
    early = t0 + dt.timedelta(days=4, hours=23)
    assert fulfilment.auto_receive_due(now=early) == 0
    late = t0 + dt.timedelta(days=5, hours=1)
    received = []
    with signals.order_received.connected_to(lambda s, **kw: received.append(kw["order_id"])):
        assert fulfilment.auto_receive_due(now=late) == 1
        assert fulfilment.auto_receive_due(now=late) == 0  # idempotent
    assert received == [a.id]
    db.session.commit()
    assert _reload(a.id).status == RECEIVED and _reload(b.id).status == SHIPPED
    days = fulfilment.get_settings().auto_complete_days
    assert fulfilment.auto_complete_due(now=late + dt.timedelta(days=days - 1)) == 0
    assert fulfilment.auto_complete_due(now=late + dt.timedelta(days=days)) == 1
    db.session.commit()
    assert _reload(a.id).status == COMPLETED
    # refused: b is no longer held back
    aftersale.refuse(after_sale_id=req.id, reason="no damage in the photos")
    assert fulfilment.auto_receive_due(now=late) == 1
    db.session.commit()


def test_pickup_code_verified_by_the_pickup_store_only(brand, store, skus, member_id):
    other = factories.store(brand)
    order = sf.paid_order(
        member_id=member_id, lines=[(skus[0], 1)], store_id=store.id, fulfilment=PICKUP
    )
    with pytest.raises(fulfilment.IllegalTransition):
        fulfilment.ship(order_id=order.id, carrier="EMS", tracking_no="E1")
    o = fulfilment.mark_ready(order_id=order.id)
    db.session.commit()
    assert o.status == READY and len(o.pickup_code) == 8 and o.pickup_code.isdigit()
    with pytest.raises(fulfilment.PickupCodeUnknown):
        fulfilment.verify_pickup(code=o.pickup_code, store_id=other.id, guess_ident="staff:9")
    with pytest.raises(fulfilment.PickupCodeUnknown):
        fulfilment.verify_pickup(code="00000000", store_id=store.id, guess_ident="staff:9")
    done = fulfilment.verify_pickup(code=o.pickup_code, store_id=store.id, guess_ident="staff:1")
    db.session.commit()
    assert done.id == order.id and done.status == RECEIVED
    with pytest.raises(fulfilment.PickupCodeUnknown):
        fulfilment.verify_pickup(code=o.pickup_code, store_id=store.id, guess_ident="staff:1")


def test_wrong_pickup_codes_are_limited_per_staff_member(brand, store, skus, member_id):
    from core.errors import RateLimited

    for i in range(fulfilment.GUESS_LIMIT):
        with pytest.raises(fulfilment.PickupCodeUnknown):
            fulfilment.verify_pickup(code=f"{i:08d}", store_id=store.id, guess_ident="staff:7")
    with pytest.raises(RateLimited):
        fulfilment.verify_pickup(code="12345678", store_id=store.id, guess_ident="staff:7")


def test_two_staff_verifying_one_code_at_once_one_wins(app, brand, store, skus, member_id):
    order = sf.paid_order(
        member_id=member_id, lines=[(skus[0], 1)], store_id=store.id, fulfilment=PICKUP
    )
    code = fulfilment.mark_ready(order_id=order.id).pickup_code
    db.session.commit()
    sent = []
    with signals.order_completed.connected_to(lambda sender, **kw: sent.append(kw)):
        results = run_concurrently(
            app,
            brand.id,
            8,
            lambda i: fulfilment.verify_pickup(
                code=code, store_id=store.id, guess_ident=f"staff:{i}"
            ).id,
        )
    assert sorted(r[0] for r in results) == ["error"] * 7 + ["ok"]
    assert {r[1] for r in results if r[0] == "error"} == {"PickupCodeUnknown"}
    with use_brand(brand.id):
        assert _reload(order.id).status == RECEIVED


def test_a_fully_refunded_order_is_not_shipped(brand, store, skus, member_id, monkeypatch):
    from tests.shop.aftersale_fixtures import FakePay
    from wechat import gateway

    pay = FakePay()
    monkeypatch.setattr(gateway, "pay_refund", pay.pay_refund, raising=False)
    order = sf.paid_order(member_id=member_id, lines=[(skus[0], 1)], store_id=store.id)
    line = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).one()
    r = refunds.start(order_id=order.id, items=[refunds.Item(line.id, 1)])
    refunds.submit(refund_id=r.id)
    db.session.commit()
    with pytest.raises(fulfilment.IllegalTransition):
        fulfilment.ship(order_id=order.id, carrier="EMS", tracking_no="E1")
