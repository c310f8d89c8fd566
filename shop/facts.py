"""What a paid or refunded order changes besides itself: the member's purchase facts (RFM,
for segments) and the brand's sales per local day, store and channel (the overview's
charts). Both are upserts of sums in the transaction that pays or refunds, which is made
once per order or refund by its own conditional state change.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from core.db import db
from core.tenancy import require_brand_id
from shop.models import TILL, Order

_FACTS_PAID = text(
    """
    INSERT INTO shop_member_facts AS f (brand_id, member_id, first_purchase_at,
        last_purchase_at, order_count, spend_fen, online_count, till_count, updated_at)
    VALUES (:brand_id, :member_id, :at, :at, 1, :fen, :online, :till, now())
    ON CONFLICT (member_id) DO UPDATE SET
        first_purchase_at = LEAST(f.first_purchase_at, EXCLUDED.first_purchase_at),
        last_purchase_at = GREATEST(f.last_purchase_at, EXCLUDED.last_purchase_at),
        order_count = f.order_count + 1,
        spend_fen = f.spend_fen + EXCLUDED.spend_fen,
        online_count = f.online_count + EXCLUDED.online_count,
        till_count = f.till_count + EXCLUDED.till_count,
        updated_at = now()
    """
)
_FACTS_REFUND = text(
    "UPDATE shop_member_facts SET spend_fen = spend_fen - :fen, updated_at = now()"
    " WHERE member_id = :member_id AND brand_id = :brand_id"
)
_SALES = text(
    """
    INSERT INTO shop_sales_day_rollup AS r (brand_id, day, store_key, channel, orders,
        paid_fen, refunded_fen)
    VALUES (:brand_id, :day, :store_key, :channel, :orders, :paid, :refunded)
    ON CONFLICT (brand_id, day, store_key, channel) DO UPDATE SET
        orders = r.orders + EXCLUDED.orders,
        paid_fen = r.paid_fen + EXCLUDED.paid_fen,
        refunded_fen = r.refunded_fen + EXCLUDED.refunded_fen
    """
)


def record_paid(order: Order, *, day: dt.date) -> None:
    """Count a newly paid order (call once, from the transition to paid)."""
    brand_id = require_brand_id()
    if order.member_id is not None:
        till = order.channel == TILL
        db.session.execute(
            _FACTS_PAID,
            {
                "brand_id": brand_id,
                "member_id": order.member_id,
                "at": order.paid_at,
                "fen": order.paid_fen,
                "online": 0 if till else 1,
                "till": 1 if till else 0,
            },
        )
    db.session.execute(
        _SALES,
        {
            "brand_id": brand_id,
            "day": day,
            "store_key": order.store_id or 0,
            "channel": order.channel,
            "orders": 1,
            "paid": order.paid_fen,
            "refunded": 0,
        },
    )


def record_refunded(order: Order, amount_fen: int, *, day: dt.date) -> None:
    """Count money returned for an order (call once per refund, when it succeeds)."""
    brand_id = require_brand_id()
    if order.member_id is not None:
        db.session.execute(
            _FACTS_REFUND, {"fen": amount_fen, "member_id": order.member_id, "brand_id": brand_id}
        )
    db.session.execute(
        _SALES,
        {
            "brand_id": brand_id,
            "day": day,
            "store_key": order.store_id or 0,
            "channel": order.channel,
            "orders": 0,
            "paid": 0,
            "refunded": amount_fen,
        },
    )
