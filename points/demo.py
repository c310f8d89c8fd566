"""`flask demo` step: points rules for the demo brand, and points for its demo members."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.cli import demo_step
from core.db import db, utcnow
from core.tenancy import use_brand
from members.models import ACTIVE, Member
from org.models import Brand
from org.services import list_stores
from points import rules, services
from points.models import PointsCampaign

DEMO_SLUG = "demo"
DEMO_PURCHASES = (12_800, 35_900, 8_800)  # fen


@demo_step(40)
def demo_points() -> list[str]:
    """Default rules, a double-points weekend campaign and some history for demo members."""
    brand = Brand.by_slug(DEMO_SLUG)
    if brand is None:
        return []
    with use_brand(brand.id):
        settings = services.get_settings()
        if not settings.change_template_id:
            services.update_settings(
                change_template_id="demo-points-changed",
                expiring_template_id="demo-points-expiring",
                welcome_points=100,
            )
        if db.session.execute(select(PointsCampaign.id).limit(1)).first() is None:
            today = rules.local_day(utcnow(), brand.tz)
            services.save_campaign(
                name="周末双倍积分",
                multiplier_permille=2000,
                start_date=today,
                end_date=today + dt.timedelta(days=365),
                weekdays=(1 << 5) | (1 << 6),
            )
        store = next(iter(list_stores()), None)
        members = (
            db.session.execute(
                select(Member).where(Member.status == ACTIVE).order_by(Member.id).limit(20)
            )
            .scalars()
            .all()
        )
        now = utcnow()
        for m in members:
            services.grant_welcome(member_id=m.id, now=now)
            for i, fen in enumerate(DEMO_PURCHASES):
                services.earn_for_purchase(
                    member_id=m.id,
                    amount_fen=fen,
                    store_id=store.id if store else None,
                    occurred_at=now - dt.timedelta(days=30 - 10 * i),
                    idempotency_key=f"demo:purchase:{m.id}:{i}",
                    now=now,
                )
        from points.expiry import release_due

        release_due(now=now)
    return [f"Points: rules and a double-points campaign; points for {len(members)} demo members"]
