"""Expiry by the periodic job under each policy, reminders and retried jobs."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from core import jobs
from core.db import db
from points import jobs as points_jobs
from points import rules, services
from points.expiry import expire_due
from points.models import PointsEntry
from tests.support.points import T0, check_invariants


def _setup(**settings):
    rules.update_settings(pending_days=0, **settings)
    db.session.commit()


def _earn(member, fen, key, when):
    services.earn_for_purchase(
        member_id=member, amount_fen=fen, occurred_at=when, idempotency_key=key, now=when
    )
    db.session.commit()


def test_n_months_expiry_is_idempotent(member):
    _setup(expiry_policy="months", expiry_months=6)
    _earn(member, 10_000, "a", T0)
    _earn(member, 5_000, "b", T0 + dt.timedelta(days=40))
    services.spend(member_id=member, points=30, reason="mall", idempotency_key="s", now=T0)
    db.session.commit()
    at = dt.datetime(2026, 9, 10, 4, 0, tzinfo=dt.UTC)
    assert expire_due(now=at - dt.timedelta(seconds=1)) == 0
    assert expire_due(now=at) == 70  # earliest lot, after the spend took 30 from it
    assert expire_due(now=at) == 0  # the job run again: no second effect
    db.session.commit()
    b = services.balance(member)
    assert (b.balance, b.lifetime_expired) == (50, 70)
    check_invariants(member)


def test_year_end_expiry(member):
    _setup(expiry_policy="year_end", expiry_months=12)
    _earn(member, 10_000, "a", T0)  # 2026 -> expires when 2027 ends
    end_2027 = dt.datetime(2027, 12, 31, 16, 0, tzinfo=dt.UTC)
    assert expire_due(now=end_2027 - dt.timedelta(minutes=1)) == 0
    assert expire_due(now=end_2027) == 100
    db.session.commit()
    assert services.balance(member).balance == 0


def test_points_day_expiry(member):
    _setup(expiry_policy="points_day", expiry_months=3, points_day=8)
    _earn(member, 10_000, "a", T0)  # March 10 + 3 months = June 10 -> points day July 8
    assert expire_due(now=dt.datetime(2026, 7, 8, 15, 59, tzinfo=dt.UTC)) == 0
    assert expire_due(now=dt.datetime(2026, 7, 8, 16, 0, tzinfo=dt.UTC)) == 100


def test_spend_never_uses_expired_points(member):
    _setup(expiry_policy="months", expiry_months=1)
    _earn(member, 10_000, "a", T0)
    later = T0 + dt.timedelta(days=60)
    _earn(member, 2_000, "b", later)
    # The expiry job has not run, yet the expired lot cannot pay.
    try:
        services.spend(member_id=member, points=50, reason="mall", idempotency_key="s", now=later)
        raise AssertionError("spent expired points")
    except services.InsufficientPoints:
        db.session.rollback()
    e = services.spend(member_id=member, points=20, reason="mall", idempotency_key="s2", now=later)
    db.session.commit()
    assert e.points == -20
    b = services.balance(member)
    assert (b.balance, b.lifetime_expired) == (0, 100)
    check_invariants(member)


def test_retried_expiry_job_has_one_effect(brand, member):
    _setup(expiry_policy="months", expiry_months=1)
    _earn(member, 10_000, "a", dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    row = jobs.enqueue(points_jobs.expire_brand, brand.id, brand_id=brand.id)
    again = jobs.enqueue(points_jobs.expire_brand, brand.id, brand_id=brand.id)
    db.session.commit()
    assert jobs.run_outbox_job(row) == "done"
    assert jobs.run_outbox_job(row) == "skipped"  # delivered twice
    assert jobs.run_outbox_job(again) == "done"  # a second run finds nothing due
    expires = db.session.execute(
        select(func.count()).select_from(PointsEntry).where(PointsEntry.kind == "expire")
    ).scalar_one()
    assert expires == 1
    assert services.balance(member).lifetime_expired == 100
