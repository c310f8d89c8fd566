"""Tiers: upgrade at once, downgrade only at the review date (brand time zone), progress."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.db import db
from core.errors import Conflict, ValidationError
from members import activation
from members.models import Member
from members.tiers_tags import tiers

UTC = dt.UTC


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.fixture
def levels(world):
    return [
        tiers.create_level(code="normal", name="普通会员", rank=0, threshold=0),
        tiers.create_level(
            code="silver", name="银卡", rank=1, threshold=100_000, points_multiplier_permille=1200
        ),
        tiers.create_level(
            code="gold", name="金卡", rank=2, threshold=500_000, points_multiplier_permille=1500,
            birthday_gift="生日礼盒", birthday_gift_config={"coupon": "BDAY"},
        ),
    ]  # fmt: skip


def new_member(phone="13800001111", now=None):
    m, _ = activation.activate_member(phone=phone, source="oa", consent_version="v1", now=now)
    return m


def buy(m, fen, when, key):
    return tiers.record_purchase(
        member_id=m.id, amount_fen=fen, store_id=None, occurred_at=when, idempotency_key=key
    )


def level_code(m) -> str | None:
    db.session.expire(m)
    lv = next((lv for lv in tiers.list_levels() if lv.id == m.tier_id), None)
    return lv.code if lv else None


def test_upgrade_at_once_and_progress(world, levels):
    m = new_member()
    assert level_code(m) == "normal"
    now = db.func.now  # noqa: F841 - readability
    t0 = at(2026, 3, 1, 4)
    buy(m, 60_000, t0, "o1")
    p = tiers.tier_progress(member_id=m.id, now=t0)
    assert (p.current.code, p.next.code, p.value, p.needed) == ("normal", "silver", 60_000, 40_000)
    buy(m, 40_000, t0 + dt.timedelta(hours=1), "o2")
    assert level_code(m) == "silver"  # at once, not at the review
    p = tiers.tier_progress(member_id=m.id, now=t0 + dt.timedelta(hours=2))
    assert (p.current.code, p.next.code, p.needed) == ("silver", "gold", 400_000)
    buy(m, 1_000_000, t0 + dt.timedelta(hours=3), "o3")
    p = tiers.tier_progress(member_id=m.id, now=t0 + dt.timedelta(hours=4))
    assert (p.current.code, p.next, p.needed) == ("gold", None, 0)


def test_purchase_is_idempotent_by_key(world, levels):
    m = new_member()
    a1, created1 = buy(m, 5000, at(2026, 3, 1), "order-1")
    a2, created2 = buy(m, 5000, at(2026, 3, 1), "order-1")
    assert created1 and not created2 and a1.id == a2.id
    assert tiers.member_value(member_id=m.id, now=at(2026, 3, 2)) == 5000
    with pytest.raises(Conflict):
        buy(m, 9999, at(2026, 3, 1), "order-1")
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValidationError):
            buy(m, bad, at(2026, 3, 1), f"bad-{bad}")


def test_refund_does_not_downgrade_before_review(world, levels):
    m = new_member()
    buy(m, 150_000, at(2026, 5, 1), "o1")
    assert level_code(m) == "silver"
    tiers.record_refund(
        member_id=m.id, amount_fen=100_000, store_id=None, occurred_at=at(2026, 5, 2),
        idempotency_key="r1",
    )  # fmt: skip
    assert tiers.member_value(member_id=m.id, now=at(2026, 5, 3)) == 50_000
    assert level_code(m) == "silver"


def test_downgrade_only_at_review_date_in_brand_time_zone(world, levels):
    # Shanghai is UTC+8: the 1 January review starts at 2026-12-31 16:00 UTC.
    created = at(2026, 2, 1)
    tiers.get_settings(now=created)  # last review: 2026-01-01
    m = new_member(now=created)
    buy(m, 120_000, at(2026, 2, 1, 2), "o1")
    assert level_code(m) == "silver"
    tiers.record_refund(
        member_id=m.id, amount_fen=120_000, store_id=None, occurred_at=at(2026, 2, 3),
        idempotency_key="r1",
    )  # fmt: skip
    assert tiers.review_tiers(now=at(2026, 6, 1)) == 0  # not a review date
    assert tiers.review_tiers(now=at(2026, 12, 31, 15, 59)) == 0  # 23:59 in Shanghai
    assert level_code(m) == "silver"
    assert tiers.review_tiers(now=at(2026, 12, 31, 16, 1)) == 1  # 00:01 on 1 Jan in Shanghai
    assert level_code(m) == "normal"
    assert tiers.get_settings().last_review_on == dt.date(2027, 1, 1)
    # Once per review date.
    buy(m, 1, at(2027, 1, 2), "o2")
    assert tiers.review_tiers(now=at(2027, 1, 5)) == 0


def test_review_keeps_members_who_still_qualify(world, levels):
    tiers.get_settings(now=at(2026, 1, 10))
    keep = new_member("13800002222", now=at(2026, 1, 10))
    drop = new_member("13800003333", now=at(2026, 1, 10))
    buy(keep, 120_000, at(2026, 7, 1), "k1")
    buy(drop, 120_000, at(2025, 12, 30), "d1")  # spend out of the window at the review
    db.session.get(Member, drop.id).tier_id = levels[1].id
    db.session.flush()
    tiers.review_tiers(now=at(2027, 1, 1))
    assert (level_code(keep), level_code(drop)) == ("silver", "normal")


def test_growth_basis(world, levels):
    tiers.update_settings(basis="growth", review_month=7, review_day=1, growth_per_yuan=2)
    tiers.update_level(level_id=levels[1].id, threshold=500)
    m = new_member()
    buy(m, 10_050, at(2026, 3, 1), "o1")  # 100 yuan -> 200 growth
    assert tiers.member_value(member_id=m.id, now=at(2026, 3, 2)) == 200
    tiers.add_growth(member_id=m.id, growth=300, occurred_at=at(2026, 3, 2), idempotency_key="g1")
    assert level_code(m) == "silver"
    p = tiers.tier_progress(member_id=m.id, now=at(2026, 3, 3))
    assert p.basis == "growth" and p.next_review_on == dt.date(2026, 7, 1)
    with pytest.raises(ValidationError):
        tiers.update_settings(basis="growth", review_month=2, review_day=30)


def test_level_validation(world, levels):
    with pytest.raises(Conflict):
        tiers.create_level(code="silver", name="x", rank=9, threshold=1)
    with pytest.raises(ValidationError):
        tiers.create_level(code="x", name="x", rank=5, threshold=-1)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.integers(0, 2_000_000))
def test_level_for_is_the_highest_reached(world, levels, value):
    lv = tiers.level_for(value, levels)
    reached = [x for x in levels if x.threshold <= value]
    assert lv.rank == max(x.rank for x in reached)
