"""Fixtures of the campaign tests: a brand whose members vary on every segment condition.

``world`` builds, for the current brand, four stores in three cities and two regions, two
tiers, two guides, three tags, two coupon templates and 400 members whose store, tier,
guide, activation, tags, identities, points, purchase facts, orders and coupons follow the
member's number ``g`` in simple patterns, plus deleted and merged members (never selected)
and a second brand with members of its own (never selected).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from core.db import db, utcnow
from core.tenancy import use_brand
from coupons.models import Coupon
from members.models import MemberIdentity, MemberTag
from members.tiers_tags import tags as tag_services
from members.tiers_tags import tiers as tier_services
from points.models import PointsAccount
from shop.models import MemberPurchaseFacts, Order
from tests import factories
from tests.support import bulk

N = 400


@dataclass
class World:
    brand: object
    now: dt.datetime
    stores: list
    tiers: list
    guides: list
    tags: list
    templates: list
    manager: object
    admin: object


def _fill(brand_id: int, now: dt.datetime, stores, tiers, guides, tags, templates, n=N) -> None:
    bulk.members(brand_id, n, offset=brand_id * 10_000)
    rows = db.session.execute(
        text("SELECT id FROM member WHERE brand_id = :b ORDER BY id"), {"b": brand_id}
    ).scalars()
    members = list(rows)
    s, t, gd = stores, tiers, guides
    for g, mid in enumerate(members, start=1):
        store = None if g % 7 == 0 else s[g % len(s)].id
        tier = {0: None, 1: t[0].id, 2: t[1].id}[g % 3]
        guide = gd[g % 2].id if g % 5 in (1, 2) else None
        activated = None if g % 4 == 0 else now - dt.timedelta(days=g % 400, hours=1)
        status, deleted = "active", None
        if g % 50 == 0:
            status, deleted = "deleted", now
        elif g % 61 == 0:
            status = "merged"
        db.session.execute(
            text(
                "UPDATE member SET store_id = :s, tier_id = :t, guide_id = :gd,"
                " activated_at = :a, status = :st, deleted_at = :d WHERE id = :id"
            ),
            {"s": store, "t": tier, "gd": guide, "a": activated, "st": status, "d": deleted,
             "id": mid},
        )  # fmt: skip
        for i, tag in enumerate(tags):
            if g % (i + 2) == 0:
                db.session.add(MemberTag(brand_id=brand_id, member_id=mid, tag_id=tag.id))
        for kind, every in (("oa_openid", 2), ("mp_openid", 3), ("pos", 10)):
            if g % every == 1:
                db.session.add(
                    MemberIdentity(
                        brand_id=brand_id, member_id=mid, kind=kind, value=f"{kind}{mid}"
                    )
                )
        if g % 2 == 0:
            db.session.add(PointsAccount(brand_id=brand_id, member_id=mid, balance=(g * 37) % 1000))
        if g % 3 != 0:
            db.session.add(
                MemberPurchaseFacts(
                    brand_id=brand_id,
                    member_id=mid,
                    first_purchase_at=now - dt.timedelta(days=300),
                    last_purchase_at=now - dt.timedelta(days=g % 200, hours=2),
                    order_count=g % 6,
                    spend_fen=(g * 113) % 50_000,
                )
            )
            for k in range(g % 4):
                paid = (g * (k + 1) * 7) % 10_000 + 100
                db.session.add(
                    Order(
                        brand_id=brand_id,
                        order_no=f"O{mid}-{k}",
                        channel="till" if (g + k) % 2 else "mini_program",
                        status="completed",
                        member_id=mid,
                        goods_fen=paid,
                        pay_fen=paid,
                        paid_fen=paid,
                        refunded_fen=paid // 2 if (g + k) % 5 == 0 else 0,
                        paid_at=now - dt.timedelta(days=(g + k * 17) % 120, hours=3),
                    )
                )
            if g % 11 == 0:  # an order never paid counts for nothing
                db.session.add(
                    Order(brand_id=brand_id, order_no=f"U{mid}", channel="h5", status="closed",
                          member_id=mid, goods_fen=500, pay_fen=500)
                )  # fmt: skip
        for tpl, every, rem in ((templates[0], 4, 1), (templates[1], 6, 0)):
            if g % every == rem:
                issued = now - dt.timedelta(days=g % 60, hours=1)
                redeemed = g % 8 == 1
                db.session.add(
                    Coupon(
                        brand_id=brand_id,
                        template_id=tpl.id,
                        member_id=mid,
                        code=f"C{mid}-{tpl.id}",
                        status="redeemed" if redeemed else "available",
                        issued_at=issued,
                        issued_day=issued.date(),
                        valid_from=issued,
                        valid_until=issued + dt.timedelta(days=90),
                        redeemed_at=now - dt.timedelta(days=g % 30, hours=1) if redeemed else None,
                    )
                )
    db.session.commit()


def _references(b, now):
    with use_brand(b.id):
        stores = [
            factories.store(b, city="上海", region="华东"),
            factories.store(b, city="上海", region="华东"),
            factories.store(b, city="杭州", region="华东"),
            factories.store(b, city="北京", region="华北"),
        ]
        tiers = [
            tier_services.create_level(code="silver", name="银卡", rank=1, threshold=0),
            tier_services.create_level(code="gold", name="金卡", rank=2, threshold=100_000),
        ]
        tags = [
            tag_services.create_tag(kind="brand", name=name, code=code)
            for name, code in (("咖啡控", "coffee"), ("宝妈", "mum"), ("运动", "sport"))
        ]
        db.session.commit()
        guides = [factories.staff(b, "guide", store=stores[0]) for _ in range(2)]
        templates = [
            factories.coupon_template(name="满100减20"),
            factories.coupon_template(name="新品体验券"),
        ]
    return stores, tiers, guides, tags, templates


@pytest.fixture
def world(brand) -> World:
    now = utcnow()
    refs = _references(brand, now)
    _fill(brand.id, now, *refs)
    other = factories.brand()
    with use_brand(other.id):
        _fill(other.id, now, *_references(other, now), n=120)
    stores = refs[0]
    return World(
        brand=brand,
        now=now,
        stores=stores,
        tiers=refs[1],
        guides=refs[2],
        tags=refs[3],
        templates=refs[4],
        manager=factories.staff(brand, "store_manager", store=stores[0]),
        admin=factories.staff(brand, "brand_admin"),
    )


@pytest.fixture
def sms_daytime(monkeypatch):
    """The fan-out's clock at the next noon, brand time (Asia/Shanghai): SMS may only go
    08:00-21:00 brand time, so a test that sends SMS must not depend on when it runs."""
    import zoneinfo

    from campaigns import fanout

    local = utcnow().astimezone(zoneinfo.ZoneInfo("Asia/Shanghai"))
    noon = local.replace(hour=12, minute=0, second=0, microsecond=0)
    if noon < local:
        noon += dt.timedelta(days=1)
    fixed = noon.astimezone(dt.UTC)
    monkeypatch.setattr(fanout, "utcnow", lambda: fixed)
    return fixed
