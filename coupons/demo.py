"""`flask demo` step: the demo brand's coupons, welcome coupon and points mall."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.cli import demo_step
from core.db import db
from core.tenancy import use_brand
from coupons import services
from coupons.models import CouponSettings, CouponTemplate
from org.models import Brand

DEMO_SLUG = "demo"


@demo_step(50)
def demo_coupons() -> list[str]:
    """A 5-yuan coupon for 100 points in the mall, and a welcome coupon (idempotent)."""
    brand = Brand.by_slug(DEMO_SLUG)
    if brand is None:
        return []
    with use_brand(brand.id):
        if db.session.execute(select(CouponTemplate.id).limit(1)).first() is not None:
            return ["coupons: already loaded"]
        cash = services.create_template(name="5元现金券", kind="cash", value_fen=500, valid_days=30)
        welcome = services.create_template(
            name="新会员满100减20",
            kind="cash",
            value_fen=2000,
            threshold_fen=10000,
            valid_days=14,
            per_member_limit=1,
        )
        services.create_template(
            name="全场8折券",
            kind="percent",
            percent_off=20,
            cap_fen=5000,
            valid_until=dt.datetime.now(dt.UTC) + dt.timedelta(days=90),
            stock=1000,
        )
        services.create_mall_item(template_id=cash.id, title="100积分兑5元现金券", price_points=100)
        db.session.add(
            CouponSettings(
                brand_id=brand.id,
                welcome_template_id=welcome.id,
                remind_days=3,
                remind_template_id="demo-coupons-expiring",
            )
        )
        db.session.commit()
    return ["coupons: 3 templates, a welcome coupon and a points-mall item"]
