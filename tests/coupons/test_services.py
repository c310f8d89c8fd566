"""Issuance rules, codes, fission, the welcome coupon, bulk issuance and the jobs."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from core.db import db
from core.errors import Conflict
from core.jobs import OutboxJob, run_outbox_job
from coupons import claims, codes, issuance, jobs
from coupons.errors import LimitReached, SoldOut
from coupons.models import (
    AVAILABLE,
    EXPIRED,
    TRANSFERRED,
    Coupon,
    CouponSettings,
    CouponShare,
    IssueBatch,
)
from members import activation
from tests import factories

SH = dt.timezone(dt.timedelta(hours=8))


def test_codes_are_well_formed_unique_and_checked():
    made = {codes.new_code() for _ in range(2000)}
    assert len(made) == 2000
    assert all(len(c) == codes.CODE_LEN and codes.well_formed(c) for c in made)
    code = next(iter(made))
    typo = code[:3] + ("A" if code[3] != "A" else "B") + code[4:]
    assert not codes.well_formed(typo)
    assert not set("01IO") & set("".join(made))


def test_bulk_codes_made_in_sql_pass_the_same_check(brand):
    members = [factories.member().id for _ in range(50)]
    tpl = factories.coupon_template(stock=100)
    batch = issuance.bulk_issue(
        template_id=tpl.id, target={"member_ids": members}, idempotency_key="push-1"
    )
    db.session.commit()
    assert batch.issued == 50
    got = db.session.scalars(select(Coupon.code)).all()
    assert len(set(got)) == 50 and all(codes.well_formed(c) for c in got)
    # Replaying the push changes nothing.
    again = issuance.bulk_issue(
        template_id=tpl.id, target={"member_ids": members}, idempotency_key="push-1"
    )
    db.session.commit()
    assert again.id == batch.id
    assert db.session.scalar(select(func.count()).select_from(Coupon)) == 50
    db.session.refresh(tpl)
    assert tpl.issued == 50


def test_bulk_issue_over_stock_issues_nothing(brand):
    members = [factories.member().id for _ in range(5)]
    tpl = factories.coupon_template(stock=4)
    with pytest.raises(SoldOut):
        issuance.bulk_issue(template_id=tpl.id, target={}, idempotency_key="too-many")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Coupon)) == 0
    assert int(issuance.count_target(target={"member_ids": members[:2]})) == 2


def test_per_day_limit_follows_the_brand_time_zone(brand):
    tpl = factories.coupon_template(
        per_day_limit=1, valid_until=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    )
    member = factories.member().id
    # 23:30 and 23:50 Shanghai time on March 10: the same local day.
    late = dt.datetime(2026, 3, 10, 23, 30, tzinfo=SH)
    claims.claim(template_id=tpl.id, member_id=member, idempotency_key="a", now=late)
    with pytest.raises(LimitReached):
        claims.claim(
            template_id=tpl.id,
            member_id=member,
            idempotency_key="b",
            now=late + dt.timedelta(minutes=20),
        )
    db.session.rollback()
    claims.claim(template_id=tpl.id, member_id=member, idempotency_key="a", now=late)
    # 00:10 Shanghai on March 11 is still March 10 in UTC, but a new day for the brand.
    claims.claim(
        template_id=tpl.id,
        member_id=member,
        idempotency_key="c",
        now=late + dt.timedelta(minutes=40),
    )
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Coupon)) == 2


def test_valid_n_days_after_issue_ends_at_local_midnight(brand):
    tpl = factories.coupon_template(valid_days=7, valid_from=None, valid_until=None)
    at = dt.datetime(2026, 3, 10, 23, 30, tzinfo=SH)
    c = issuance.issue(
        template_id=tpl.id,
        member_id=factories.member().id,
        source="claim",
        idempotency_key="v",
        now=at,
    )
    assert c.valid_until == dt.datetime(2026, 3, 17, 0, 0, tzinfo=SH)


def test_claim_replay_returns_the_same_coupon(brand):
    tpl = factories.coupon_template(stock=5)
    member = factories.member().id
    a = claims.claim(template_id=tpl.id, member_id=member, idempotency_key="tap")
    b = claims.claim(template_id=tpl.id, member_id=member, idempotency_key="tap")
    db.session.commit()
    assert a.id == b.id
    db.session.refresh(tpl)
    assert tpl.issued == 1


def test_share_is_claimed_once_and_the_friend_becomes_a_member(brand):
    tpl = factories.coupon_template()
    sharer = factories.member().id
    coupon = claims.claim(template_id=tpl.id, member_id=sharer, idempotency_key="s")
    share = claims.create_share(coupon_id=coupon.id, member_id=sharer)
    assert claims.create_share(coupon_id=coupon.id, member_id=sharer).id == share.id
    db.session.commit()
    got = claims.claim_share(token=share.token, openid="o_friend_000000000000001")
    db.session.commit()
    assert got.member_id != sharer and got.code != coupon.code and got.status == AVAILABLE
    db.session.refresh(share)
    assert share.status == "claimed" and share.friend_is_new and share.friend_id == got.member_id
    db.session.refresh(coupon)
    assert coupon.status == TRANSFERRED
    # Same friend again: the same coupon; someone else: refused; the friend cannot pass it on.
    assert claims.claim_share(token=share.token, openid="o_friend_000000000000001").id == got.id
    with pytest.raises(Conflict) as taken:
        claims.claim_share(token=share.token, openid="o_friend_000000000000002")
    assert taken.value.code == "share_taken"
    db.session.rollback()
    with pytest.raises(Conflict) as again:
        claims.create_share(coupon_id=got.id, member_id=got.member_id)
    assert again.value.code == "not_shareable"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(CouponShare)) == 1


def test_welcome_coupon_is_granted_once_on_activation(brand):
    tpl = factories.coupon_template(name="新人券")
    db.session.add(CouponSettings(brand_id=brand.id, welcome_template_id=tpl.id))
    db.session.commit()
    member, created = activation.activate_member(
        phone="13800000001", oa_openid="o_new_00000000000000001", source="oa", consent_version="v1"
    )
    db.session.commit()
    assert created
    jobs.welcome_coupon(member.id)  # a replayed hook
    db.session.commit()
    held = db.session.scalars(select(Coupon).where(Coupon.member_id == member.id)).all()
    assert [c.source for c in held] == ["welcome"]


def test_expiry_job_retried_has_one_effect(brand):
    tpl = factories.coupon_template()
    c = claims.claim(template_id=tpl.id, member_id=factories.member().id, idempotency_key="e")
    c.valid_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    db.session.commit()
    assert jobs.expire_due() == 1
    db.session.commit()
    assert jobs.expire_due() == 0
    db.session.commit()
    db.session.refresh(c)
    assert c.status == EXPIRED


def test_reminder_job_queues_one_message_per_member(app, brand):
    tpl = factories.coupon_template()
    db.session.add(CouponSettings(brand_id=brand.id, remind_days=3, remind_template_id="TPL1"))
    member = factories.member().id
    for i in range(2):
        c = claims.claim(template_id=tpl.id, member_id=member, idempotency_key=f"r{i}")
        c.valid_until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    db.session.commit()
    assert jobs.remind_expiring() == 1
    db.session.commit()
    assert jobs.remind_expiring() == 0  # a retried run picks nothing twice
    db.session.commit()
    rows = db.session.scalars(select(OutboxJob).where(OutboxJob.func.like("%send_reminder"))).all()
    assert len(rows) == 1 and sorted(rows[0].args["args"][1]) == sorted(
        db.session.scalars(select(Coupon.id)).all()
    )
    # No openid known: the job runs and finishes without sending.
    assert run_outbox_job(rows[0].id) == "done"


def test_batch_record_is_kept(brand):
    tpl = factories.coupon_template()
    factories.member()
    issuance.bulk_issue(template_id=tpl.id, target={}, idempotency_key="all")
    db.session.commit()
    assert db.session.scalar(select(IssueBatch.status)) == "done"


def test_mall_item_sold_out_or_limit_spends_no_points(brand):
    from coupons import mall, queries
    from coupons.errors import NotEligible
    from points import services as points

    tpl = factories.coupon_template()
    item = factories.mall_item(tpl, title="限量", stock=1, per_member_limit=1)
    vip = factories.mall_item(tpl, title="VIP", tier_ids=[999999])
    a, b = factories.member().id, factories.member().id
    for m in (a, b):
        points.adjust(member_id=m, points=500, reason="grant", idempotency_key=f"g{m}")
    db.session.commit()
    mall.exchange(item_id=item.id, member_id=a, idempotency_key="1")
    db.session.commit()
    with pytest.raises(LimitReached):
        mall.exchange(item_id=item.id, member_id=a, idempotency_key="2")
    db.session.rollback()
    with pytest.raises(SoldOut):
        mall.exchange(item_id=item.id, member_id=b, idempotency_key="3")
    db.session.rollback()
    with pytest.raises(NotEligible):
        mall.exchange(item_id=vip.id, member_id=b, idempotency_key="4")
    db.session.rollback()
    assert points.balance(a).balance == 400 and points.balance(b).balance == 500
    assert [i.id for i in queries.offered_mall_items(member_id=b)] == [item.id]
