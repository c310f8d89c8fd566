"""Export of segments (a job writing the CSV), store scoping, phone privacy and PIPL rights."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from core.audit import AuditLog
from core.db import db
from core.errors import Forbidden, NotFound
from members import activation, identities
from members.models import Member, MemberActivity, MemberIdentity, card_no_for, card_no_sql
from members.privacy import access, data_rights
from members.privacy.export import (
    EXPORT_COLUMNS,
    EXPORT_HEADERS,
    Segment,
    count_segment,
    request_member_export,
    segment_query,
)
from members.tiers_tags import tags, tiers
from tests.support.exports import export_row, export_text, run_export_jobs

UTC = dt.UTC


@pytest.fixture
def people(world):
    a, _ = activation.activate_member(
        phone="13800000101", guide_id=world.guide.id, source="oa", consent_version="v1",
        now=dt.datetime(2026, 3, 1, 2, tzinfo=UTC),
    )  # fmt: skip
    b, _ = activation.activate_member(
        phone="13800000102", guide_id=world.guide2.id, source="oa", consent_version="v1",
        now=dt.datetime(2026, 3, 31, 17, tzinfo=UTC),  # 1 April in Shanghai
    )  # fmt: skip
    c, _ = activation.activate_member(
        phone="13800000103", guide_id=world.other_store_guide.id, source="oa",
        consent_version="v1", now=dt.datetime(2026, 4, 5, tzinfo=UTC),
    )  # fmt: skip
    a.name = "甲"
    vip = tags.create_tag(kind="brand", name="VIP", code="vip")
    tags.add_tag(member_id=a.id, tag_id=vip.id)
    tags.add_tag(member_id=c.id, tag_id=vip.id)
    db.session.commit()
    return a, b, c, vip


def export_members(*, segment: Segment, staff, full_phones: bool = False) -> str:
    """Queue the export as ``staff``, run its job as a worker would; the file's text."""
    row = request_member_export(segment=segment, staff=staff, full_phones=full_phones)
    db.session.commit()
    assert run_export_jobs() == ["done"]
    return export_text(row.id)


def parse(data: str) -> list[dict]:
    """The rows keyed by column code (the file's header is in Chinese)."""
    assert data.startswith("\ufeff")
    reader = csv.reader(io.StringIO(data[1:]))
    header = next(reader)
    assert header == [str(EXPORT_HEADERS[c]) for c in EXPORT_COLUMNS]
    return [dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in reader]


def audits(action: str) -> list[AuditLog]:
    return list(db.session.execute(select(AuditLog).where(AuditLog.action == action)).scalars())


def test_export_masks_phones_and_is_audited(world, people):
    a, b, c, vip = people
    rows = parse(export_members(segment=Segment(tag_ids=(vip.id,)), staff=world.admin))
    assert [r["phone"] for r in rows] == ["138****0101", "138****0103"]
    assert (
        rows[0]["name"] == "甲"
        and rows[0]["tags"] == "VIP|已激活"
        and rows[0]["store_code"] == "SH001"
    )
    assert rows[0]["card_no"] == a.card_no
    entry = audits("export")[0]
    assert entry.actor_id == world.admin.id and entry.object_type == "export_file"
    assert entry.after["segment"]["tag_ids"] == [vip.id]
    assert entry.after["full_phones"] is False
    done = export_row(int(entry.object_id))
    assert (done.rows_done, done.rows_expected, done.percent) == (2, 2, 100)


def test_full_phones_for_admins_only(world, people):
    rows = parse(export_members(segment=Segment(), staff=world.admin, full_phones=True))
    assert {r["phone"] for r in rows} == {"13800000101", "13800000102", "13800000103"}
    with pytest.raises(Forbidden):
        request_member_export(segment=Segment(), staff=world.guide, full_phones=True)


def test_a_manager_who_lost_the_right_gets_masked_phones_and_a_removed_one_nothing(world, people):
    """The job applies the requester's rights as they are when it runs."""
    row = request_member_export(segment=Segment(), staff=world.manager, full_phones=True)
    db.session.commit()
    world.manager.role = "guide"
    db.session.commit()
    run_export_jobs()
    assert {r["phone"] for r in parse(export_text(row.id))} == set()  # a guide of no one
    row = request_member_export(segment=Segment(), staff=world.admin, full_phones=True)
    db.session.commit()
    world.admin.active = False
    db.session.commit()
    assert run_export_jobs() == ["error"]
    assert export_row(row.id).status == "failed"


def test_segment_filters(world, people):
    a, b, c, vip = people
    by_store = Segment(store_ids=(world.store.id,))
    assert count_segment(segment=by_store) == 2
    assert count_segment(segment=Segment(city="杭州")) == 1
    april = Segment(activated_from=dt.date(2026, 4, 1), activated_to=dt.date(2026, 4, 1))
    got = db.session.execute(segment_query(segment=april)).scalars().all()
    assert [m.id for m in got] == [b.id]  # local dates, Shanghai
    tiers.create_level(code="base", name="普通", rank=0, threshold=0)
    assert count_segment(segment=Segment(tier_ids=(999,))) == 0


def test_store_scoping(world, people):
    a, b, c, _ = people
    ids = lambda staff: {  # noqa: E731
        m.id for m in db.session.execute(access.visible_members(staff=staff)).scalars()
    }
    assert ids(world.admin) == {a.id, b.id, c.id}
    assert ids(world.manager) == {a.id, b.id}
    assert ids(world.guide) == {a.id}
    assert count_segment(segment=Segment(), staff=world.guide) == 1
    with pytest.raises(NotFound):
        access.get_member_for(staff=world.guide, member_id=b.id)
    with pytest.raises(NotFound):
        access.get_member_for(staff=world.manager, member_id=c.id)
    rows = parse(export_members(segment=Segment(), staff=world.guide))
    assert [r["phone"] for r in rows] == ["138****0101"]


def test_viewing_a_full_phone_is_audited(world, people):
    a = people[0]
    assert access.display_phone(staff=world.manager, member=a) == "138****0101"
    assert access.reveal_phone(staff=world.manager, member_id=a.id) == "13800000101"
    db.session.commit()
    entry = audits("view_phone")[0]
    assert (entry.actor_id, entry.object_id) == (world.manager.id, str(a.id))
    with pytest.raises(Forbidden):
        access.reveal_phone(staff=world.guide, member_id=a.id)


def test_pipl_download_and_delete(world, people):
    a = people[0]
    identities.attach_identity(member_id=a.id, kind="oa_openid", value="oPIPL")
    tiers.record_purchase(
        member_id=a.id, amount_fen=1234, store_id=world.store.id,
        occurred_at=dt.datetime.now(UTC), idempotency_key="pipl-1",
    )  # fmt: skip
    data = data_rights.export_member_data(member_id=a.id)
    assert data["member"]["phone"] == "13800000101"
    assert data["identities"][0]["value"] == "oPIPL"
    assert [x["amount_fen"] for x in data["activity"]] == [1234]
    assert {t["code"] for t in data["tags"]} >= {"vip", "activated", "purchased"}
    import json

    json.dumps(data)  # JSON-ready

    data_rights.delete_member(member_id=a.id)
    db.session.commit()
    db.session.expire_all()
    gone = db.session.get(Member, a.id)
    assert (gone.status, gone.phone, gone.name, gone.birthday) == ("deleted", None, "", None)
    assert (
        db.session.execute(
            select(func.count()).select_from(MemberIdentity).where(MemberIdentity.member_id == a.id)
        ).scalar_one()
        == 0
    )
    assert tags.member_tags(member_id=a.id) == []
    # The ledger stays, pointing at the anonymous row.
    assert db.session.execute(
        select(MemberActivity.amount_fen).where(MemberActivity.member_id == a.id)
    ).scalars().all() == [1234]
    entry = audits("delete_member")[0]
    assert (entry.object_id, entry.actor_kind) == (str(a.id), "member")
    assert entry.after["removed"]["identities"] == 1
    # The phone is free: activating again makes a new member.
    again, created = activation.activate_member(
        phone="13800000101", source="oa", consent_version="v1"
    )
    assert created and again.id != a.id


@settings(max_examples=60, deadline=None)
@given(member_id=st.integers(1, 10**12))
def test_card_number_same_in_python_and_sql(app, member_id):
    with app.app_context():
        sql = db.session.execute(
            text(f"SELECT {card_no_sql(':id')}".replace(":id", "CAST(:id AS bigint)")),
            {"id": member_id},
        ).scalar_one()
        db.session.remove()
    assert sql == card_no_for(member_id)


@pytest.mark.parametrize(
    "name", ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"]
)
def test_a_name_that_is_a_formula_is_exported_as_text(world, people, name):
    a, _b, _c, _vip = people
    a.name = name
    db.session.commit()
    rows = parse(export_members(segment=Segment(), staff=world.admin))
    exported = next(r["name"] for r in rows if r["card_no"] == a.card_no)
    assert exported == "'" + name


def test_export_speaks_chinese(world, people):
    a, _b, _c, _vip = people
    a.gender = "f"
    db.session.commit()
    data = export_members(segment=Segment(), staff=world.admin)
    header = data[1:].splitlines()[0]
    assert header.startswith("卡号,手机号,姓名,性别") and "card_no" not in header
    rows = parse(data)
    mine = next(r for r in rows if r["card_no"] == a.card_no)
    assert mine["gender"] == "女" and mine["source"] == "公众号"


def test_tags_looked_up_per_member_or_aggregated_for_the_brand_give_the_same_file(
    world, people, monkeypatch
):
    """Small segments look tags up member by member, large ones aggregate the brand's tags
    in one pass: the files are the same."""
    from members.privacy import export

    a, b, c, vip = people
    odd = tags.create_tag(kind="brand", name="=会员日", code="odd")
    tags.add_tag(member_id=b.id, tag_id=odd.id)
    tags.add_tag(member_id=b.id, tag_id=vip.id)
    db.session.commit()
    per_member = export_members(segment=Segment(), staff=world.admin)
    monkeypatch.setattr(export, "PER_MEMBER_TAGS_UP_TO", 0)
    aggregated = export_members(segment=Segment(), staff=world.admin)
    assert aggregated == per_member
    mine = next(r for r in parse(aggregated) if r["card_no"] == b.card_no)
    assert mine["tags"] == "'=会员日|VIP|已激活"
    guide_only = parse(export_members(segment=Segment(), staff=world.guide))
    assert [r["card_no"] for r in guide_only] == [a.card_no]


def test_store_guide_and_tier_names_that_are_formulas_are_exported_as_text(world, people):
    a, _b, _c, _vip = people
    world.store.name = "=SUM(1+1)"
    world.guide.name = "+导购"
    level = tiers.create_level(code="odd", name="@金卡", rank=5, threshold=0)
    a.tier_id = level.id
    db.session.commit()
    mine = next(
        r
        for r in parse(export_members(segment=Segment(), staff=world.admin))
        if r["card_no"] == a.card_no
    )
    assert (mine["store_name"], mine["guide"], mine["tier"]) == ("'=SUM(1+1)", "'+导购", "'@金卡")
    assert mine["store_code"] == "SH001" and mine["city"] == "上海"
