"""The data overview (数据概览): its figures against counts worked out by hand.

Two brands, two stores: members created and activated on chosen days, points entries and
coupons issued and redeemed around the period boundaries. The brand admin sees the brand's
figures, a store manager only the store's; the other brand's rows never count.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import pytest
from sqlalchemy import update

from core.db import db, utcnow
from core.tenancy import use_brand
from coupons.models import Coupon, CouponTemplate, Redemption
from members.identities import create_member_row
from members.models import Member
from points.models import PointsAccount, PointsEntry
from tests import factories

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")


def _today() -> dt.date:
    return utcnow().astimezone(TZ).date()


def _at(days_ago: int, hour: int = 12) -> dt.datetime:
    day = _today() - dt.timedelta(days=days_ago)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=TZ).astimezone(dt.UTC)


def _member(phone, *, store, created, activated=None, source="oa", guide=None, merged=False):
    mid, _ = create_member_row(
        phone=phone, source=source, store_id=store.id, guide_id=guide.id if guide else None
    )
    values = {"created_at": _at(created)}
    if activated is not None:
        values["activated_at"] = _at(activated)
    if merged:
        values["status"] = "merged"
    db.session.execute(update(Member).where(Member.id == mid).values(**values))
    return mid


def _entries(member_id, *rows, balance=0, pending=0):
    acc = PointsAccount(member_id=member_id, balance=balance, pending=pending)
    db.session.add(acc)
    db.session.flush()
    for n, (kind, points, days_ago, field) in enumerate(rows):
        db.session.add(
            PointsEntry(
                account_id=acc.id,
                member_id=member_id,
                kind=kind,
                idempotency_key=f"t:{member_id}:{n}",
                points=points,
                **{f"delta_{field}": points},
                occurred_at=_at(days_ago),
                local_day=_today() - dt.timedelta(days=days_ago),
            )
        )


def _coupon(template, member_id, *, issued, redeemed_at=None, store=None, status="done"):
    c = Coupon(
        template_id=template.id,
        member_id=member_id,
        code=f"C{member_id}{issued}{status}",
        status="redeemed" if redeemed_at is not None and status == "done" else "available",
        issued_at=_at(issued),
        issued_day=_today() - dt.timedelta(days=issued),
        valid_from=_at(issued),
        valid_until=_at(-30),
    )
    db.session.add(c)
    db.session.flush()
    if redeemed_at is not None:
        db.session.add(
            Redemption(
                coupon_id=c.id,
                template_id=template.id,
                member_id=member_id,
                store_id=store.id,
                channel="staff",
                order_id=f"O{c.id}",
                order_amount_fen=10000,
                discount_fen=500,
                idempotency_key=f"r:{c.id}",
                status=status,
                created_at=_at(redeemed_at),
                # a reversal is recorded with its time (rollups count it by that time)
                reversed_at=_at(redeemed_at) if status == "reversed" else None,
            )
        )


def build_world() -> dict:
    """Two brands: the first with two stores, a manager and a guide of the first store."""
    a, b = factories.brand(), factories.brand()
    s1, s2, t1 = factories.store(a), factories.store(a), factories.store(b)
    admin = factories.staff(a)
    manager = factories.staff(a, role="store_manager", store=s1)
    guide = factories.staff(a, role="guide", store=s1)
    with use_brand(a.id):
        m1 = _member("13700000001", store=s1, created=0, activated=0, guide=guide)
        _member("13700000002", store=s1, created=3)
        m3 = _member("13700000003", store=s2, created=6, activated=6, source="mp")
        _member("13700000004", store=s1, created=8, activated=8)
        _member("13700000005", store=s2, created=20, activated=20)
        _member("13700000006", store=s1, created=40, activated=1)
        _member("13700000007", store=s1, created=0, activated=0, merged=True)
        _entries(
            m1,
            ("earn", 100, 0, "balance"),
            ("spend", -30, 2, "balance"),
            ("welcome", 50, 8, "balance"),
            balance=120,
        )
        _entries(m3, ("earn", 200, 5, "pending"), ("adjust", 10, 5, "balance"), balance=10,
                 pending=200)  # fmt: skip
        tpl = CouponTemplate(name="满100减5", kind="cash", value_fen=500)
        db.session.add(tpl)
        db.session.flush()
        _coupon(tpl, m1, issued=0)
        _coupon(tpl, m1, issued=3, redeemed_at=1, store=s1)
        _coupon(tpl, m3, issued=4, redeemed_at=1, store=s2, status="reversed")
        _coupon(tpl, m3, issued=9, redeemed_at=2, store=s2)
        db.session.commit()
    with use_brand(b.id):
        other = _member("13700000001", store=t1, created=0, activated=0)
        _entries(other, ("earn", 999, 0, "balance"), balance=999)
        tpl_b = CouponTemplate(name="其他品牌券", kind="cash", value_fen=500)
        db.session.add(tpl_b)
        db.session.flush()
        _coupon(tpl_b, other, issued=0, redeemed_at=0, store=t1)
        db.session.commit()
    return {"brand": a, "admin": admin, "manager": manager, "guide": guide}


@pytest.fixture
def world(ctx):
    return build_world()


def figures(client, period: str) -> dict[str, int]:
    r = client.get(f"/console/?period={period}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    return {
        k: int(v) for k, v in re.findall(r'data-figure="(\w+)".*?data-value="(-?\d+)"', html, re.S)
    }


def previous(client, period: str) -> str:
    return client.get(f"/console/?period={period}").get_data(as_text=True)


def test_brand_admin_sees_the_brands_figures(client, world):
    factories.login(client, world["brand"], world["admin"])
    week = figures(client, "7d")
    assert week == {
        "new_members": 3,  # today, 3 and 6 days ago; not the merged duplicate
        "activations": 3,  # today, yesterday (an older member), 6 days ago
        "active_members": 2,  # earned or spent points
        "points_issued": 310,  # 100 + 200 (pending) + 10 (adjustment)
        "points_spent": 30,
        "points_outstanding": 330,  # 120 + 10 available, 200 pending
        "coupons_issued": 3,
        "coupons_redeemed": 2,  # a reversed redemption does not count
        "redemption_rate": 666,  # per mille: 2 of 3
    }
    today = figures(client, "today")
    assert today["new_members"] == 1 and today["activations"] == 1
    assert today["points_issued"] == 100 and today["coupons_issued"] == 1
    month = figures(client, "30d")
    assert month["new_members"] == 5 and month["activations"] == 5
    assert month["points_issued"] == 360 and month["coupons_issued"] == 4


def test_change_against_the_previous_period(client, world):
    factories.login(client, world["brand"], world["admin"])
    html = previous(client, "7d")
    # New members 3 against 1 the week before: +200%; points spent 30 against none.
    assert re.search(r'data-figure="new_members".*?▲ 200\.0%', html, re.S)
    assert re.search(r'data-figure="points_spent".*?上期为零', html, re.S)
    # The outstanding points were 50 (the welcome gift) a week ago: 330 is +560%.
    assert re.search(r'data-figure="points_outstanding".*?▲ 560\.0%', html, re.S)
    # Today's activation against yesterday's: unchanged.
    assert re.search(r'data-figure="activations".*?持平', previous(client, "today"), re.S)


def test_store_manager_sees_only_the_store(client, world):
    factories.login(client, world["brand"], world["manager"])
    week = figures(client, "7d")
    assert week == {
        "new_members": 2,
        "activations": 2,
        "active_members": 1,
        "points_issued": 100,
        "points_spent": 30,
        "points_outstanding": 120,
        "coupons_issued": 2,
        "coupons_redeemed": 1,
        "redemption_rate": 500,
    }
    html = previous(client, "7d")
    assert "按门店" not in html  # no league table of the other stores


def test_the_page_draws_charts_with_data(client, world):
    factories.login(client, world["brand"], world["admin"])
    html = previous(client, "30d")
    assert html.count("data-echart=") >= 5
    assert "echarts-5.6.0.min.js" in html and "console/charts.js" in html
    assert "新会员趋势" in html or "每日新会员" in html
    assert "公众号" in html and "小程序" in html  # channels by their Chinese names


def test_unknown_period_falls_back_to_the_week(client, world):
    factories.login(client, world["brand"], world["admin"])
    assert figures(client, "x' or 1=1")["new_members"] == 3
