"""A member merge: the merged member's orders, after-sales, reservations, cart and purchase
facts become the kept member's; per-member purchase limits then count both."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.db import db
from core.errors import AppError
from members import merge
from shop import cart, checkout
from shop.models import CartItem, MemberPurchaseFacts, Order
from shop.pricing import Item
from tests.shop import factories as shop_factories
from tests.shop.conftest import ADDRESS, member, product


def _buy(m, items, key):
    placed = checkout.checkout(
        member_id=m.id, items=items, channel="mini_program", idempotency_key=key, address=ADDRESS
    )
    db.session.commit()
    return placed.order


def _paid(m, sku, qty):
    order = shop_factories.paid_order(member_id=m.id, lines=[(sku, qty)])
    db.session.commit()
    return order


def test_orders_limits_cart_and_facts_follow_the_merge(shop):
    limited = product(name="限购", limit_per_member=2)
    kept, other = member(), member()
    _buy(kept, [Item(limited.id, 1)], "k1")
    _buy(other, [Item(limited.id, 1)], "o1")
    paid_kept = _paid(kept, shop.sku, 1)
    paid_other = _paid(other, shop.sku, 2)
    cart.add(member_id=kept.id, sku_id=shop.sku.id, quantity=1)
    cart.add(member_id=other.id, sku_id=shop.sku.id, quantity=3)
    cart.add(member_id=other.id, sku_id=shop.other_sku.id, quantity=1)
    db.session.commit()

    record = merge.merge_members(kept_id=kept.id, merged_id=other.id, reason="同一手机号")
    db.session.commit()
    assert record.counts["shop_orders"] == 2 and record.counts["shop_purchase_facts"] == 1

    owners = db.session.execute(select(Order.member_id).distinct()).scalars().all()
    assert owners == [kept.id]
    # one unit of the limited product each: the person has bought their two
    with pytest.raises(AppError) as err:
        _buy(kept, [Item(limited.id, 1)], "k2")
    assert err.value.code == "limit_reached"
    db.session.rollback()
    items = dict(
        db.session.execute(
            select(CartItem.sku_id, CartItem.quantity).where(CartItem.member_id == kept.id)
        ).all()
    )
    assert items == {shop.sku.id: 3, shop.other_sku.id: 1}
    assert db.session.scalar(select(func.count()).select_from(CartItem)) == 2
    f = db.session.get(MemberPurchaseFacts, kept.id)
    db.session.refresh(f)
    assert (f.order_count, f.online_count) == (2, 2)
    assert f.spend_fen == paid_kept.paid_fen + paid_other.paid_fen
    assert db.session.get(MemberPurchaseFacts, other.id) is None
