"""`flask demo` step: two saved segments of the demo brand, and its dashboard's customer
rollup built from the demo's orders."""

from __future__ import annotations

from sqlalchemy import select

from campaigns import dashboard, segment_services
from campaigns.models import Segment
from core.cli import demo_step
from core.db import db
from core.tenancy import use_brand
from members.models import TierLevel
from members.models.tags import TagDefinition
from org.models import Brand

DEMO_SLUG = "demo"


@demo_step(80)
def demo_segments() -> list[str]:
    """High-value members of the silver and gold tiers, and lapsed buyers (idempotent)."""
    brand = Brand.by_slug(DEMO_SLUG)
    if brand is None:
        return []
    with use_brand(brand.id):
        if db.session.execute(select(Segment.id).limit(1)).first() is not None:
            return ["segments: already loaded"]
        tiers = list(
            db.session.execute(
                select(TierLevel.id).where(TierLevel.code.in_(("silver", "gold")))
            ).scalars()
        )
        fan = db.session.execute(
            select(TagDefinition.id).where(TagDefinition.code == "brand-fan")
        ).scalar()
        if not tiers or fan is None:
            return ["segments: the demo members' tiers and tags are missing; skipped"]
        segment_services.create_segment(
            name="银卡金卡高积分会员",
            definition={
                "op": "and",
                "items": [
                    {"field": "tier", "op": "in", "value": tiers},
                    {"field": "points_balance", "op": "gte", "value": 200},
                ],
            },
            scope=None,
            created_by=None,
        )
        segment_services.create_segment(
            name="90天未消费的品牌粉丝",
            definition={
                "op": "and",
                "items": [
                    {"field": "tag", "op": "any", "value": [fan]},
                    {
                        "op": "not",
                        "items": [{"field": "last_purchase", "op": "within_days", "value": 90}],
                    },
                ],
            },
            scope=None,
            created_by=None,
        )
        dashboard.rebuild()
        db.session.commit()
    return ["segments: 2 saved segments; the dashboard's customer rollup rebuilt"]
