"""`flask demo` gives the demo brand tiers, a tag library and members, idempotently."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from members.models import Member, MemberActivity
from members.tiers_tags import tags, tiers
from org.models import Brand


def test_demo_members_idempotent(app, ctx):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "20 demo members" in first.output
    brand = Brand.by_slug("demo")

    def figures():
        with use_brand(brand.id):
            return (
                db.session.execute(select(func.count()).select_from(Member)).scalar_one(),
                db.session.execute(select(func.count()).select_from(MemberActivity)).scalar_one(),
                len(tags.list_tags()),
                [lv.name for lv in tiers.list_levels()],
            )

    before = figures()
    assert before[0] == 20 and before[3] == ["普通会员", "银卡会员", "金卡会员"]
    assert runner.invoke(args=["demo"]).exit_code == 0
    db.session.expire_all()
    assert figures() == before
    with use_brand(brand.id):
        kinds = {t.kind for t in tags.list_tags()}
        assert kinds == {"behaviour", "brand", "product", "platform"}
        assert len(tags.list_tags(quick_only=True)) >= 3
        with_level = db.session.execute(
            select(func.count()).select_from(Member).where(Member.tier_id.is_not(None))
        ).scalar_one()
        assert with_level == 20
        ranks = {
            lv.code
            for lv in tiers.list_levels()
            for m in db.session.execute(select(Member)).scalars()
            if m.tier_id == lv.id
        }
        assert ranks == {"normal", "silver", "gold"}
