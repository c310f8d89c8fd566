"""The lapsed tag (90天未消费): the hourly run tags the members who crossed the cutoff since
its last run, a purchase clears the tag at once, a merge sets it by the joined history, and
two runs at once tag each member once."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import func, select

from core.db import db
from core.jobs import OutboxJob
from core.tenancy import use_brand
from members import merge
from members.jobs import tag_lapsed_members
from members.models import Member, MemberTag, TagHistory
from members.tiers_tags import tags, tiers
from tests import factories as f

UTC = dt.UTC
NOW = dt.datetime.now(UTC).replace(microsecond=0)


def codes(member_id) -> set[str]:
    return {t.code for t in tags.member_tags(member_id=member_id)}


def _buy(member_id: int, when: dt.datetime, key: str) -> None:
    tiers.record_purchase(
        member_id=member_id, amount_fen=1000, store_id=None, occurred_at=when, idempotency_key=key
    )


def _ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def test_each_run_tags_the_members_who_lapsed_since_the_last(world):
    never_old = f.member(activated=True, now=_ago(200)).id
    never_new = f.member(activated=True, now=_ago(30)).id
    bought_old = f.member(activated=True, now=_ago(300)).id
    _buy(bought_old, _ago(120), "b1")
    bought_new = f.member(activated=True, now=_ago(300)).id
    _buy(bought_new, _ago(95), "b2")
    _buy(bought_new, _ago(50), "b3")
    late = f.member(activated=True, now=_ago(300)).id
    _buy(late, _ago(60), "b4")
    _buy(late, _ago(100), "b5")  # recorded late: the latest purchase still counts
    db.session.commit()
    assert db.session.get(Member, late).last_purchase_at == _ago(60)

    assert tags.tag_lapsed(now=NOW) == 2
    lapsed = {never_old, bought_old}
    assert {m for m in (never_old, never_new, bought_old, bought_new, late)
            if "lapsed_90d" in codes(m)} == lapsed  # fmt: skip
    assert tags.tag_lapsed(now=NOW + dt.timedelta(minutes=30)) == 0

    # 41 days on, the members whose last purchases were 50 and 60 days ago have lapsed
    # too, the one who activated 30 days ago not yet; those tagged before are not read again.
    assert tags.tag_lapsed(now=NOW + dt.timedelta(days=41)) == 2
    assert "lapsed_90d" in codes(bought_new) and "lapsed_90d" in codes(late)
    assert "lapsed_90d" not in codes(never_new)
    added = db.session.scalar(
        select(func.count()).where(TagHistory.action == "added", TagHistory.reason.like("no %"))
    )
    assert added == 4


def test_a_purchase_recorded_long_after_it_happened_leaves_the_tag(world):
    m = f.member(activated=True, now=_ago(200)).id
    assert tags.tag_lapsed(now=NOW) == 1
    _buy(m, _ago(120), "late")  # bought 120 days ago, recorded now: still 90 days without
    db.session.commit()
    assert "lapsed_90d" in codes(m)
    assert db.session.get(Member, m).last_purchase_at == _ago(120)
    _buy(m, _ago(10), "recent")
    db.session.commit()
    assert "lapsed_90d" not in codes(m)
    _buy(m, _ago(100), "late again")  # an older purchase recorded later changes nothing
    db.session.commit()
    assert "lapsed_90d" not in codes(m)
    assert tags.tag_lapsed(now=NOW + dt.timedelta(hours=1)) == 0


def test_a_purchase_clears_the_tag_until_the_member_lapses_again(world):
    m = f.member(activated=True, now=_ago(200)).id
    assert tags.tag_lapsed(now=NOW) == 1
    _buy(m, NOW, "again")
    assert "lapsed_90d" not in codes(m)
    assert tags.tag_lapsed(now=NOW + dt.timedelta(days=60)) == 0
    assert tags.tag_lapsed(now=NOW + dt.timedelta(days=92)) == 1
    assert "lapsed_90d" in codes(m)
    history = [(h.action, h.reason) for h in reversed(tags.tag_history(member_id=m))
               if h.tag_id == tags.system_tag(code="lapsed_90d").id]  # fmt: skip
    assert history == [
        ("added", "no purchase for 90 days"),
        ("removed", "purchased again"),
        ("added", "no purchase for 90 days"),
    ]


def test_a_merge_sets_the_tag_by_both_members_history(world):
    # The kept member lapsed long ago; the merged one bought last week.
    kept = f.member(activated=True, now=_ago(400), phone="13800001001").id
    merged = f.member(activated=True, now=_ago(400), phone="13800001002").id
    _buy(merged, _ago(7), "m1")
    # A member who bought lately, and a lapsed one merged into it: the member card dates
    # from the older activation, the tag taken in does not fit the purchase.
    recent = f.member(activated=True, now=_ago(30), phone="13800001003").id
    _buy(recent, _ago(10), "r1")
    old = f.member(activated=True, now=_ago(400), phone="13800001004").id
    assert tags.tag_lapsed(now=NOW) == 2
    assert "lapsed_90d" in codes(kept) and "lapsed_90d" in codes(old)

    merge.merge_members(kept_id=kept, merged_id=merged, reason="same person")
    db.session.commit()
    assert db.session.get(Member, kept).last_purchase_at == _ago(7)
    assert "lapsed_90d" not in codes(kept)
    merge.merge_members(kept_id=recent, merged_id=old, reason="same person")
    db.session.commit()
    assert db.session.get(Member, recent).activated_at == _ago(400)
    assert "lapsed_90d" not in codes(recent)
    # and one who never bought, merged with a lapsed one, is lapsed by the older activation
    fresh = f.member(activated=True, now=_ago(5), phone="13800001005").id
    older = f.member(activated=True, now=_ago(300), phone="13800001006").id
    merge.merge_members(kept_id=fresh, merged_id=older, reason="same person")
    db.session.commit()
    assert "lapsed_90d" in codes(fresh)


def test_two_runs_at_once_tag_each_member_once(app, world):
    brand_id = world.brand.id
    members = [f.member(activated=True, now=_ago(100 + n % 50)).id for n in range(120)]
    db.session.commit()
    results, barrier = [], threading.Barrier(4)

    def run():
        with app.app_context(), use_brand(brand_id):
            barrier.wait()
            try:
                results.append(tags.tag_lapsed(now=NOW))
                db.session.commit()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [0, 0, 0, len(members)]
    db.session.expire_all()
    lapsed = tags.system_tag(code="lapsed_90d").id
    assert db.session.scalar(select(func.count()).where(MemberTag.tag_id == lapsed)) == 120
    assert (
        db.session.scalar(
            select(func.count()).where(TagHistory.tag_id == lapsed, TagHistory.action == "added")
        )
        == 120
    )


def test_the_hourly_job_enqueues_one_run_per_brand_and_hour(world):
    other = f.brand()
    db.session.commit()
    with use_brand(None):
        assert tag_lapsed_members() >= 2
        tag_lapsed_members()
        db.session.commit()
        rows = db.session.execute(
            select(OutboxJob.brand_id)
            .where(OutboxJob.func == "members.jobs.tag_lapsed_brand")
            .execution_options(all_brands=True)
        ).scalars()
        rows = list(rows)
    assert rows.count(world.brand.id) == 1 and rows.count(other.id) == 1
