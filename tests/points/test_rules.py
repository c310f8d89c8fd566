"""Earning rules: rate, tier multiplier, bonus campaigns, daily cap in the brand's zone."""

from __future__ import annotations

import datetime as dt

import pytest

from core.db import db
from core.errors import ValidationError
from members.models import Member, TierLevel
from points import rules, services
from tests import factories
from tests.support.points import T0, check_invariants


@pytest.fixture
def no_pending(brand):
    rules.update_settings(pending_days=0)
    db.session.commit()


def earn(member, fen, key, when=T0, **kw):
    e = services.earn_for_purchase(
        member_id=member, amount_fen=fen, occurred_at=when, idempotency_key=key, now=when, **kw
    )
    db.session.commit()
    return e.points


def test_rate_and_tier_multiplier(member, no_pending):
    rules.update_settings(earn_permille=1500)  # 1.5 points per yuan
    assert earn(member, 10_050, "a") == 150  # 100.5 yuan -> 150.75 -> 150
    gold = TierLevel(code="gold", name="金卡", rank=2, points_multiplier_permille=2000)
    db.session.add(gold)
    db.session.flush()
    db.session.get(Member, member).tier_id = gold.id
    db.session.commit()
    assert earn(member, 10_000, "b") == 300


def test_bonus_day_store_and_category(brand, member, no_pending):
    s1, s2 = factories.store(brand), factories.store(brand)
    day = T0.astimezone(brand.tz).date()
    rules.save_campaign(name="双倍日", multiplier_permille=2000, start_date=day, end_date=day)
    rules.save_campaign(
        name="S2 三倍", multiplier_permille=3000, start_date=day, end_date=day, store_id=s2.id
    )
    rules.save_campaign(
        name="美妆 五倍",
        multiplier_permille=5000,
        start_date=day,
        end_date=day,
        category="beauty",
        store_id=s1.id,
    )
    db.session.commit()
    assert earn(member, 10_000, "a", store_id=s1.id) == 200
    assert earn(member, 10_000, "b", store_id=s2.id) == 300  # highest wins, no stacking
    assert earn(member, 10_000, "c", store_id=s1.id, category="beauty") == 500
    assert earn(member, 10_000, "d", when=T0 + dt.timedelta(days=1), store_id=s1.id) == 100


def test_campaign_weekdays(brand, member, no_pending):
    # 2026-03-14 is a Saturday.
    rules.save_campaign(
        name="周末",
        multiplier_permille=2000,
        start_date=dt.date(2026, 3, 1),
        end_date=dt.date(2026, 3, 31),
        weekdays=(1 << 5) | (1 << 6),
    )
    sat = dt.datetime(2026, 3, 14, 2, 0, tzinfo=dt.UTC)
    assert earn(member, 10_000, "sat", when=sat) == 200
    assert earn(member, 10_000, "mon", when=sat + dt.timedelta(days=2)) == 100


def test_daily_cap_uses_the_brands_time_zone(member, no_pending):
    rules.update_settings(daily_cap=150)
    # 23:30 and 23:50 on March 10 in Shanghai are the same day; 00:10 is the next one.
    late = dt.datetime(2026, 3, 10, 15, 30, tzinfo=dt.UTC)
    assert earn(member, 10_000, "a", when=late) == 100
    assert earn(member, 10_000, "b", when=late + dt.timedelta(minutes=20)) == 50
    assert earn(member, 10_000, "c", when=late + dt.timedelta(minutes=25)) == 0
    assert earn(member, 10_000, "d", when=late + dt.timedelta(minutes=40)) == 100
    assert services.balance(member).balance == 250
    check_invariants(member)


def test_bad_rules_are_refused(brand):
    before = rules.get_settings().earn_permille
    with pytest.raises(ValidationError) as exc:
        rules.update_settings(earn_permille=-1)
    assert exc.value.field == "earn_permille"
    with pytest.raises(ValidationError):
        rules.update_settings(expiry_policy="sometimes")
    with pytest.raises(ValidationError):
        rules.save_campaign(
            name="x",
            multiplier_permille=1000,
            start_date=dt.date(2026, 1, 1),
            end_date=dt.date(2026, 1, 2),
        )
    with pytest.raises(ValidationError):
        rules.save_campaign(
            name="x",
            multiplier_permille=2000,
            start_date=dt.date(2026, 1, 2),
            end_date=dt.date(2026, 1, 1),
        )
    db.session.rollback()
    assert rules.get_settings().earn_permille == before


def test_expiry_dates_per_policy(brand):
    s = rules.get_settings()
    tz = brand.tz
    earned = dt.datetime(2026, 1, 31, 2, 0, tzinfo=dt.UTC)  # 10:00 Jan 31 in Shanghai
    s.expiry_policy, s.expiry_months = "months", 1
    assert rules.expiry_for(earned_at=earned, settings=s, tz=tz) == dt.datetime(
        2026, 2, 28, 2, 0, tzinfo=dt.UTC
    )
    s.expiry_policy, s.expiry_months = "year_end", 12
    # Earned in 2026, expiring when 2027 ends (midnight Shanghai = 16:00 UTC the day before).
    assert rules.expiry_for(earned_at=earned, settings=s, tz=tz) == dt.datetime(
        2027, 12, 31, 16, 0, tzinfo=dt.UTC
    )
    s.expiry_policy, s.expiry_months, s.points_day = "points_day", 1, 15
    # Feb 28 + first points day on or after it = March 15, expiring at the end of that day.
    assert rules.expiry_for(earned_at=earned, settings=s, tz=tz) == dt.datetime(
        2026, 3, 15, 16, 0, tzinfo=dt.UTC
    )
    s.expiry_policy = "never"
    assert rules.expiry_for(earned_at=earned, settings=s, tz=tz) is None
    db.session.rollback()
