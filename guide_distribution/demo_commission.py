"""The demo brand's commission: a default rate, a category rate, a SKU's fixed amount and a
tier plan; the demo's paid orders credited to the first guide, through the ledger: pending,
received (frozen), and one completed long enough ago to be withdrawable."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from core.cli import demo_step
from core.db import db, utcnow
from core.tenancy import use_brand
from guide_distribution import commission, ledger, payouts, settlement
from guide_distribution.models import OrderAttribution
from guide_distribution.models.commission import CommissionRule
from guide_distribution.settings import update_settings
from org.models import Brand, Staff
from shop.models import PAID, SHIPPED, Category, Order, Sku

DEMO_SLUG = "demo"


@demo_step(75)
def demo_commission() -> list[str]:
    brand = Brand.by_slug(DEMO_SLUG)
    if brand is None:
        return []
    with use_brand(brand.id):
        if db.session.execute(select(CommissionRule.id).limit(1)).first():
            return ["Commission: already loaded"]
        guide = db.session.execute(
            select(Staff).where(Staff.role == "guide").order_by(Staff.phone).limit(1)
        ).scalar()
        if guide is None:
            return ["Commission: no demo guide, skipped"]
        update_settings(default_rate_bp=500, payout_min_fen=100)
        category = db.session.execute(select(Category).order_by(Category.id).limit(1)).scalar()
        if category is not None:
            commission.save_rule(kind="category_rate", target=category.code, rate_bp=800)
        sku = db.session.execute(select(Sku).order_by(Sku.id).limit(1)).scalar()
        if sku is not None:
            commission.save_rule(kind="sku_fixed", target=sku.code, amount_fen=500)
        commission.save_tier(name="银牌导购", target_fen=500_000, rate_bp=700)
        commission.save_tier(name="金牌导购", target_fen=2_000_000, rate_bp=1000)
        orders = list(
            db.session.execute(
                select(Order)
                .where(Order.status.in_((PAID, SHIPPED)), Order.member_id.is_not(None))
                .order_by(Order.id)
                .limit(4)
            ).scalars()
        )
        for order in orders:
            db.session.execute(
                insert(OrderAttribution)
                .values(
                    brand_id=brand.id,
                    order_id=order.id,
                    member_id=order.member_id,
                    channel=order.channel,
                    guide_id=guide.id,
                    guide_store_id=guide.store_id,
                    fulfil_store_id=order.store_id,
                    source="binding",
                    self_purchase=False,
                    earns=True,
                    created_at=order.created_at,
                )
                .on_conflict_do_nothing(index_elements=["brand_id", "order_id"])
            )
            ledger.on_paid(order)
        now = utcnow()
        for order in orders:
            if order.status == SHIPPED:  # received, completed 20 days ago: withdrawable
                ledger.on_received(order.id, now=now)
                ledger.on_completed(order.id, now=now - dt.timedelta(days=20))
        settlement.settle_due(now=now)
        db.session.flush()
        if ledger.balances(guide.id).settled >= 100:  # a first withdrawal of ¥1.00
            payouts.request(guide_id=guide.id, amount_fen=100, request_key="demo-first")
        bal = ledger.balances(guide.id)
    return [
        f"Commission: rules, a tier plan and {len(orders)} orders credited to {guide.name}"
        f" (pending ¥{bal.pending / 100:.2f}, frozen ¥{bal.frozen / 100:.2f},"
        f" withdrawable ¥{bal.settled / 100:.2f})"
    ]
