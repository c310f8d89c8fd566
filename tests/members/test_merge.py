"""A merge keeps every count exactly: nothing lost, nothing duplicated."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.audit import Actor, acting_as
from core.db import db, utcnow
from core.errors import Conflict, ValidationError
from core.tenancy import use_brand
from members import activation, identities, merge, queries
from members.models import (
    Member,
    MemberActivity,
    MemberAttribution,
    MemberIdentity,
    MemberMerge,
    MemberTag,
    TagHistory,
)
from members.tiers_tags import tags, tiers
from tests import factories as f

# Rows a later package (points, say) owns per member, moved by its merge handler.
FAKE_POINTS: dict[int, int] = {}


def move_points(kept_id: int, merged_id: int) -> dict:
    moved = FAKE_POINTS.pop(merged_id, 0)
    FAKE_POINTS[kept_id] = FAKE_POINTS.get(kept_id, 0) + moved
    return {"points_lots": moved}


@pytest.fixture
def points_handler():
    merge.register_merge_handler(move_points)
    FAKE_POINTS.clear()
    yield
    merge.MERGE_HANDLERS.remove(move_points)


def n(model, member_id) -> int:
    return db.session.execute(
        select(func.count()).select_from(model).where(model.member_id == member_id)
    ).scalar_one()


def build(member_id: int, *, n_ident: int, tag_ids: list[int], n_activity: int, n_att: int, p: str):
    for i in range(n_ident):
        identities.attach_identity(member_id=member_id, kind="pos", value=f"{p}-pos-{i}")
    for tid in tag_ids:
        tags.add_tag(member_id=member_id, tag_id=tid, reason="test")
    for i in range(n_activity):
        tiers.record_purchase(
            member_id=member_id,
            amount_fen=100 * (i + 1),
            store_id=None,
            occurred_at=utcnow() - dt.timedelta(days=i),
            idempotency_key=f"{p}-order-{i}",
        )
    for _ in range(n_att):
        db.session.add(MemberAttribution(member_id=member_id, kind="scan", source="oa"))
    db.session.flush()


def snapshot(member_id: int) -> dict:
    return {
        "identities": n(MemberIdentity, member_id),
        "tags": {t.id for t in tags.member_tags(member_id=member_id)},
        "tag_history": n(TagHistory, member_id),
        "activity": n(MemberActivity, member_id),
        "attributions": n(MemberAttribution, member_id),
        "spend": db.session.execute(
            select(func.coalesce(func.sum(MemberActivity.amount_fen), 0)).where(
                MemberActivity.member_id == member_id
            )
        ).scalar_one(),
    }


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    a=st.tuples(
        st.integers(0, 3), st.sets(st.integers(0, 4)), st.integers(0, 3), st.integers(0, 2)
    ),
    b=st.tuples(
        st.integers(0, 3), st.sets(st.integers(0, 4)), st.integers(0, 3), st.integers(0, 2)
    ),
    points=st.tuples(st.integers(0, 5), st.integers(0, 5)),
)
def test_merge_keeps_every_count(ctx, points_handler, a, b, points):
    FAKE_POINTS.clear()
    brand = f.brand()
    with use_brand(brand.id):
        library = [tags.create_tag(kind="brand", name=f"T{i}", code=f"t{i}") for i in range(5)]
        kept, _ = activation.activate_member(phone="13800000001", source="oa", consent_version="v1")
        merged, _ = identities.ensure_identity_member(kind="mp_openid", value="mp-b", source="mp")
        build(kept.id, n_ident=a[0], tag_ids=[library[i].id for i in a[1]], n_activity=a[2],
              n_att=a[3], p="a")  # fmt: skip
        build(merged.id, n_ident=b[0], tag_ids=[library[i].id for i in b[1]], n_activity=b[2],
              n_att=b[3], p="b")  # fmt: skip
        FAKE_POINTS.update({kept.id: points[0], merged.id: points[1]})
        before_k, before_m = snapshot(kept.id), snapshot(merged.id)

        with acting_as(Actor("staff", 7, "operator")):
            record = merge.merge_members(kept_id=kept.id, merged_id=merged.id, reason="same phone")
        db.session.commit()

        after = snapshot(kept.id)
        shared = before_k["tags"] & before_m["tags"]
        for key in ("identities", "tag_history", "activity", "attributions", "spend"):
            assert after[key] == before_k[key] + before_m[key], key
        assert after["tags"] == before_k["tags"] | before_m["tags"]
        assert snapshot(merged.id) == {
            "identities": 0, "tags": set(), "tag_history": 0, "activity": 0,
            "attributions": 0, "spend": 0,
        }  # fmt: skip
        assert record.counts == {
            "identities": before_m["identities"],
            "tags_already_on_kept": len(shared),
            "tags": len(before_m["tags"]) - len(shared),
            "tag_history": before_m["tag_history"],
            "activity": before_m["activity"],
            "attributions": before_m["attributions"],
            "points_lots": points[1],
        }
        assert FAKE_POINTS == {kept.id: points[0] + points[1]}
        assert record.actor_label == "operator"
        gone = db.session.get(Member, merged.id)
        assert (gone.status, gone.merged_into_id) == ("merged", kept.id)
        assert queries.merges_of(member_id=kept.id)[0].id == record.id


def test_merge_moves_phone_and_fills_blanks(world):
    kept, _ = identities.ensure_identity_member(kind="pos", value="P9", source="pos")
    other, _ = activation.activate_member(
        phone="13800000002", guide_id=world.guide.id, source="oa", consent_version="v1"
    )
    other.name = "王芳"
    db.session.flush()
    merge.merge_members(kept_id=kept.id, merged_id=other.id, reason="console")
    db.session.commit()
    kept = db.session.get(Member, kept.id)
    assert (kept.phone, kept.name, kept.guide_id) == ("13800000002", "王芳", world.guide.id)
    assert kept.activated_at is not None
    assert Member.by_phone("13800000002").id == kept.id


def test_merge_refusals(world):
    a, _ = activation.activate_member(phone="13800000003", source="oa", consent_version="v1")
    b, _ = activation.activate_member(phone="13800000004", source="oa", consent_version="v1")
    with pytest.raises(ValidationError):
        merge.merge_members(kept_id=a.id, merged_id=a.id, reason="x")
    merge.merge_members(kept_id=a.id, merged_id=b.id, reason="x")
    with pytest.raises(Conflict):
        merge.merge_members(kept_id=a.id, merged_id=b.id, reason="again")
    assert db.session.execute(select(func.count()).select_from(MemberMerge)).scalar_one() == 1
    assert db.session.execute(select(func.count()).select_from(MemberTag)).scalar_one() == 1
