"""What the workbench tests share: guides with bound customers and real paid orders."""

from __future__ import annotations

import datetime as dt
import itertools

from core.db import db, utcnow
from guide_distribution.models import CustomerBinding
from shop import checkout
from shop.pricing import Item
from tests.guide_distribution.commission_helpers import pay_in_full
from tests.shop.conftest import ADDRESS, member

_keys = itertools.count(1)


def bind(m, guide, *, days_ago: int = 0):
    now = utcnow() - dt.timedelta(days=days_ago)
    db.session.add(
        CustomerBinding(
            member_id=m.id,
            store_id=guide.store_id,
            guide_id=guide.id,
            source="scan",
            bound_at=now,
            protected_until=now + dt.timedelta(days=15),
        )
    )
    db.session.commit()


def customer(guide, **kw):
    m = member(**kw)
    bind(m, guide)
    return m


def paid_order(shop, m, qty: int = 2):
    """An order through checkout and payment (the signals credit the bound guide)."""
    placed = checkout.checkout(
        member_id=m.id,
        items=[Item(shop.sku.id, qty)],
        channel="mini_program",
        idempotency_key=f"wb-{next(_keys)}",
        address=ADDRESS,
    )
    db.session.commit()
    order = placed.order
    pay_in_full(order, m)
    return order
