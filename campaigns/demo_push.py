"""`flask demo` step: one completed push campaign of the demo brand, with its funnel (a
coupon to every member with an official-account openid, some opened and redeemed)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, text

from campaigns import fanout, push, tracking
from campaigns.models import Campaign, Segment
from core.cli import demo_step
from core.db import db, utcnow
from core.tenancy import use_brand
from coupons import services as coupon_services
from coupons.models import THIRD_PARTY, CouponTemplate
from org.models import Brand, Store

DEMO_SLUG = "demo"
NAME = "双十二会员回馈（演示）"


@demo_step(85)
def demo_push() -> list[str]:
    """A completed coupon push with opens and redemptions (idempotent)."""
    brand = Brand.by_slug(DEMO_SLUG)
    if brand is None:
        return []
    with use_brand(brand.id):
        if db.session.execute(select(Campaign.id).where(Campaign.name == NAME)).first():
            return ["campaigns: demo push already loaded"]
        tpl = db.session.execute(
            select(CouponTemplate)
            .where(CouponTemplate.active.is_(True), CouponTemplate.kind != THIRD_PARTY)
            .order_by(CouponTemplate.id)
        ).scalar()
        if tpl is None:
            return ["campaigns: no coupon to push"]
        # the demo's largest saved segment (the segments' demo step runs first), else one
        seg = db.session.execute(
            select(Segment).order_by(Segment.last_count.desc().nulls_last(), Segment.id)
        ).scalar()
        if seg is None:
            seg = Segment(
                name="全部会员（演示）",
                definition={
                    "op": "and",
                    "items": [{"field": "points_balance", "op": "gte", "value": 0}],
                },
            )
            db.session.add(seg)
            db.session.flush()
        # sent yesterday at 10:00 brand time, outside quiet hours
        local = utcnow().astimezone(brand.tz) - dt.timedelta(days=1)
        sent_at = local.replace(hour=10, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
        campaign = push.create_campaign(
            name=NAME, segment_id=seg.id, coupon_template_id=tpl.id, channel="none",
            holdout_pct=10, now=sent_at,
        )  # fmt: skip
        fanout.prepare_campaign(campaign.id)
        db.session.commit()
        chunks = db.session.execute(
            text("SELECT no FROM campaign_chunk WHERE campaign_id = :c ORDER BY no"),
            {"c": campaign.id},
        ).scalars()
        for no in list(chunks):
            fanout.process_chunk(campaign.id, no, now=sent_at)
        db.session.execute(
            text(
                "UPDATE outbox_job SET status = 'done' WHERE brand_id = :b"
                " AND func LIKE 'campaigns.fanout.%'"
            ),
            {"b": brand.id},
        )
        rows = db.session.execute(
            text(
                "SELECT r.member_id, c.code FROM campaign_recipient r JOIN coupon c"
                " ON c.id = r.coupon_id WHERE r.campaign_id = :c AND r.state = 'sent'"
                " ORDER BY r.member_id"
            ),
            {"c": campaign.id},
        ).all()
        store = db.session.execute(select(Store).order_by(Store.id)).scalar()
        for i, (member_id, code) in enumerate(rows):
            if i % 2 == 0:
                tracking.record_open(
                    campaign_id=campaign.id,
                    member_id=member_id,
                    now=sent_at + dt.timedelta(hours=1),
                )
            if i % 4 == 0 and store is not None:
                try:
                    coupon_services.redeem(
                        code=code,
                        store_id=store.id,
                        order_id=f"DEMO-PUSH-{i}",
                        order_amount_fen=12_800 + i * 100,
                        idempotency_key=f"demo-push-{campaign.id}-{i}",
                        channel="staff",
                    )
                except Exception:  # noqa: BLE001,S112 - a coupon the demo cannot use here
                    continue
        db.session.commit()
        n = db.session.get(Campaign, campaign.id).targeted
    return [f"campaigns: completed push to {n} members"]
