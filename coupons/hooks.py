"""Coupons' answers to members' hooks: merging two members."""

from __future__ import annotations

from sqlalchemy import delete, update

from core.db import db
from coupons.models import Coupon, CouponCounter, CouponShare, MallOrder


def merge_coupons(kept_id: int, merged_id: int) -> dict:
    """Move the merged member's coupons, shares and mall orders to the kept member."""
    counts = {}
    for name, model, col in (
        ("coupons", Coupon, Coupon.member_id),
        ("coupon_shares", CouponShare, CouponShare.sharer_id),
        ("mall_orders", MallOrder, MallOrder.member_id),
    ):
        n = db.session.execute(
            update(model)
            .where(col == merged_id)
            .values({col.key: kept_id})
            .execution_options(synchronize_session=False)
        ).rowcount
        if n:
            counts[name] = n
    # Limit counters are keyed by member: the kept member's own counts stay authoritative.
    db.session.execute(
        delete(CouponCounter)
        .where(CouponCounter.member_id == merged_id)
        .execution_options(synchronize_session=False)
    )
    return counts
