"""Tags: the library, automatic behaviour tags, history, guides' quick tags."""

from __future__ import annotations

import datetime as dt

import pytest

from core.db import db
from core.errors import Forbidden, NotFound, ValidationError
from members.models import TagHistory
from members.tiers_tags import tags, tiers
from tests import factories as f

UTC = dt.UTC


def codes(member_id) -> set[str]:
    return {t.code for t in tags.member_tags(member_id=member_id)}


def test_library_crud(world):
    t = tags.create_tag(kind="product", name="护肤偏好", code="skincare")
    q = tags.create_tag(kind="brand", name="高意向", is_quick=True)
    assert q.code.startswith("t-")
    with pytest.raises(ValidationError):
        tags.create_tag(kind="weather", name="x")
    with pytest.raises(ValidationError):
        tags.create_tag(kind="brand", name="dup", code="skincare")
    tags.update_tag(tag_id=t.id, name="护肤", is_quick=True)
    assert [x.code for x in tags.list_tags(quick_only=True)] == [q.code, "skincare"]
    tags.update_tag(tag_id=t.id, active=False)
    assert [x.code for x in tags.list_tags(kind="product")] == []
    assert [x.code for x in tags.list_tags(kind="product", include_inactive=True)] == ["skincare"]
    sys_tag = tags.system_tag(code="purchased")
    with pytest.raises(ValidationError):
        tags.update_tag(tag_id=sys_tag.id, kind="brand")


def test_automatic_behaviour_tags_and_history(world):
    m = f.member(activated=True, guide=world.guide)
    assert codes(m.id) == {"activated"}
    tiers.record_purchase(
        member_id=m.id,
        amount_fen=1000,
        store_id=world.store.id,
        occurred_at=dt.datetime.now(UTC),
        idempotency_key="o1",
    )
    assert codes(m.id) == {"activated", "purchased", "visited_store"}
    hist = tags.tag_history(member_id=m.id)
    assert {(h.action, h.source, h.staff_id) for h in hist} == {("added", "system", None)}
    assert len(hist) == 3


def test_lapsed_90_days_in_brand_time_zone(world):
    # Bought at 2026-01-01 01:00 Shanghai (2025-12-31 17:00 UTC).
    m = f.member(activated=True, guide=world.guide, now=dt.datetime(2025, 12, 1, tzinfo=UTC))
    tiers.record_purchase(
        member_id=m.id,
        amount_fen=1000,
        store_id=None,
        occurred_at=dt.datetime(2025, 12, 31, 17, tzinfo=UTC),
        idempotency_key="o1",
    )
    # 90 whole local days without a purchase are 2 January to 1 April: lapsed from
    # 2 April 00:00 in Shanghai (1 April 16:00 UTC). Counted in UTC days, the purchase
    # (31 December UTC) would already be lapsed at 1 April 15:30 UTC.
    assert tags.tag_lapsed(now=dt.datetime(2026, 4, 1, 15, 30, tzinfo=UTC)) == 0
    assert tags.tag_lapsed(now=dt.datetime(2026, 4, 1, 16, 30, tzinfo=UTC)) == 1
    assert "lapsed_90d" in codes(m.id)
    assert tags.tag_lapsed(now=dt.datetime(2026, 4, 2, tzinfo=UTC)) == 0  # idempotent
    tiers.record_purchase(
        member_id=m.id,
        amount_fen=500,
        store_id=None,
        occurred_at=dt.datetime.now(UTC),  # a purchase now clears the tag
        idempotency_key="o2",
    )
    assert "lapsed_90d" not in codes(m.id)
    reasons = [h.reason for h in tags.tag_history(member_id=m.id) if h.action == "removed"]
    assert reasons == ["purchased again"]


def test_guide_quick_tags_only_own_customers(world):
    quick = tags.create_tag(kind="brand", name="高意向", code="hi", is_quick=True)
    plain = tags.create_tag(kind="brand", name="粉丝", code="fan")
    mine = f.member(phone="13800006666", activated=True, guide=world.guide)
    theirs = f.member(phone="13800007777", activated=True, guide=world.guide2)
    other_store = f.member(phone="13800008888", activated=True, guide=world.other_store_guide)

    assert tags.quick_tag(member_id=mine.id, tag_id=quick.id, staff_id=world.guide.id)
    assert not tags.quick_tag(member_id=mine.id, tag_id=quick.id, staff_id=world.guide.id)
    with pytest.raises(Forbidden):
        tags.quick_tag(member_id=theirs.id, tag_id=quick.id, staff_id=world.guide.id)
    with pytest.raises(ValidationError):
        tags.quick_tag(member_id=mine.id, tag_id=plain.id, staff_id=world.guide.id)
    # The store manager tags the store's customers, not another store's.
    assert tags.quick_tag(member_id=theirs.id, tag_id=quick.id, staff_id=world.manager.id)
    with pytest.raises(Forbidden):
        tags.quick_tag(member_id=other_store.id, tag_id=quick.id, staff_id=world.manager.id)
    assert tags.quick_tag(member_id=mine.id, tag_id=quick.id, staff_id=world.guide.id, remove=True)
    hist = db.session.query(TagHistory).filter_by(member_id=mine.id, tag_id=quick.id).all()
    assert [(h.action, h.staff_id, h.source) for h in sorted(hist, key=lambda h: h.id)] == [
        ("added", world.guide.id, "staff"),
        ("removed", world.guide.id, "staff"),
    ]
    with pytest.raises(NotFound):
        tags.add_tag(member_id=999999, tag_id=quick.id)
