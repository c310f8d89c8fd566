"""Stacking: a second coupon on one order only when every coupon on it combines."""

from __future__ import annotations

import pytest

from core.db import db
from coupons import issuance, redemption
from coupons.errors import NotStackable
from tests import factories


def _coupon(template, member_id, key):
    c = issuance.issue(
        template_id=template.id, member_id=member_id, source="claim", idempotency_key=key
    )
    db.session.commit()
    return c


def _redeem(coupon, store, order_id):
    r = redemption.redeem(
        code=coupon.code,
        store_id=store.id,
        order_id=order_id,
        order_amount_fen=10_000,
        idempotency_key=f"{order_id}:{coupon.id}",
        channel="pos",
    )
    db.session.commit()
    return r


def test_stackable_coupons_combine_and_others_do_not(brand, store):
    member = factories.member().id
    stackable = factories.coupon_template(name="可叠加券", stackable=True)
    single = factories.coupon_template(name="不可叠加券", stackable=False)
    a, b = _coupon(stackable, member, "a"), _coupon(stackable, member, "b")
    c, d = _coupon(single, member, "c"), _coupon(single, member, "d")

    _redeem(a, store, "order-1")
    _redeem(b, store, "order-1")  # both stackable: allowed
    with pytest.raises(NotStackable):
        _redeem(c, store, "order-1")  # a non-stackable coupon joins a used order
    db.session.rollback()

    _redeem(c, store, "order-2")
    with pytest.raises(NotStackable):
        _redeem(d, store, "order-2")  # nothing joins a non-stackable coupon
    db.session.rollback()
    db.session.refresh(d)
    assert d.status == "available"  # the refusal changed nothing

    redemption.reverse(store_id=store.id, order_id="order-2")
    db.session.commit()
    _redeem(d, store, "order-2")  # the order's coupon was reversed: the order is free again
