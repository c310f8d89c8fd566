"""`flask demo` step: a live lucky wheel for the demo brand (coupon, points, a gift and
thanks; one free play a day, then 10 points a play) and a daily check-in."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.cli import demo_step
from core.db import db, utcnow
from core.tenancy import use_brand
from coupons.models import CouponTemplate
from games import services
from games.models import GameCampaign
from org.models import Brand

DEMO_SLUG = "demo"


@demo_step(70)
def demo_games() -> list[str]:
    """The demo brand's lucky wheel and check-in (idempotent)."""
    brand = Brand.by_slug(DEMO_SLUG)
    if brand is None:
        return []
    with use_brand(brand.id):
        if db.session.execute(select(GameCampaign.id).limit(1)).first() is not None:
            return ["games: already loaded"]
        now = utcnow()
        window = {"starts_at": now - dt.timedelta(hours=1), "ends_at": now + dt.timedelta(days=60)}
        coupon = db.session.scalars(
            select(CouponTemplate).where(CouponTemplate.kind == "cash").order_by(CouponTemplate.id)
        ).first()
        prizes = []
        if coupon is not None:
            prizes.append(
                {"name": coupon.name, "kind": "coupon", "coupon_template_id": coupon.id,
                 "value_fen": coupon.value_fen, "weight": 10, "stock": 200, "daily_cap": 20,
                 "fallback": 2}
            )  # fmt: skip
        prizes += [
            {"name": "50积分", "kind": "points", "points": 50, "value_fen": 50, "weight": 20,
             "stock": 1000},
            {"name": "品牌帆布袋", "kind": "gift", "value_fen": 3900, "weight": 2, "stock": 20,
             "fallback": 2},
            {"name": "5积分", "kind": "points", "points": 5, "value_fen": 5, "weight": 30},
            {"name": "谢谢参与", "kind": "none", "weight": 38},
        ]  # fmt: skip
        wheel = services.create_campaign(
            kind="wheel",
            values={
                "name": "周年庆幸运大转盘",
                "description": "每天免费转一次，之后每次10积分。",
                "contact": "客服电话 400-820-0000",
                "cost_points": 10,
                "free_per_day": 1,
                "extra_per_purchase": 1,
                "plays_per_day": 10,
                "wins_per_day": 3,
                **window,
            },
            prizes=prizes,
            created_by="demo",
        )
        services.start_campaign(campaign_id=wheel.id)
        checkin = services.create_campaign(
            kind="checkin",
            values={
                "name": "每日签到",
                "contact": "客服电话 400-820-0000",
                "checkin_cycle": 7,
                **window,
            },
            prizes=[
                {
                    "name": "签到2积分",
                    "kind": "points",
                    "points": 2,
                    "value_fen": 2,
                    "streak_day": 1,
                },
                {
                    "name": "连签3天10积分",
                    "kind": "points",
                    "points": 10,
                    "value_fen": 10,
                    "streak_day": 3,
                },
                {
                    "name": "连签7天30积分",
                    "kind": "points",
                    "points": 30,
                    "value_fen": 30,
                    "streak_day": 7,
                },
            ],  # fmt: skip
            created_by="demo",
        )
        services.start_campaign(campaign_id=checkin.id)
        db.session.commit()
        return [f"games: lucky wheel #{wheel.id} and check-in #{checkin.id}, live"]
