"""`flask demo` leaves two saved segments whose counts are today's, once however often run."""

from __future__ import annotations

from sqlalchemy import select

from campaigns import segments
from campaigns.models import Segment
from core.db import db
from core.tenancy import use_brand
from org.models import Brand


def test_demo_segments(runner, ctx):
    for _ in range(2):
        done = runner.invoke(args=["demo"])
        assert done.exit_code == 0, done.output
    brand = Brand.by_slug("demo")
    with use_brand(brand.id):
        saved = db.session.execute(select(Segment).order_by(Segment.id)).scalars().all()
        assert [s.name for s in saved] == ["银卡金卡高积分会员", "90天未消费的品牌粉丝"]
        for s in saved:
            assert s.store_id is None
            assert s.last_count == segments.count(s.definition)
        assert any(s.last_count for s in saved)
