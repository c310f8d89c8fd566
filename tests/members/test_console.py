"""Console pages of members: who sees which members, the audited full phone, merges,
the till-code lookup and another brand's members."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from core.audit import AuditLog
from core.db import db
from core.tenancy import use_brand
from members import activation, merge, tillcode
from members.identities import ensure_identity_member
from members.tiers_tags import tags
from tests import factories as f


@pytest.fixture
def people(world):
    """Members of store 1 (guide's and guide2's customers) and of store 2."""
    w = world
    return {
        "own": f.member(phone="13900000001", activated=True, guide=w.guide, name="林晓"),
        "colleague": f.member(phone="13900000002", activated=True, guide=w.guide2, name="王芳"),
        "other_store": f.member(
            phone="13900000003", activated=True, guide=w.other_store_guide, name="李娜"
        ),
    }


def audit_rows(action: str) -> list[AuditLog]:
    db.session.expire_all()
    return list(db.session.execute(select(AuditLog).where(AuditLog.action == action)).scalars())


def test_admin_sees_all_members_searches_and_filters(client, world, people):
    w = world
    f.login(client, w.brand, w.admin)
    r = client.get("/console/members")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "会员" in html  # the console speaks Chinese by default
    for m in people.values():
        assert m.card_no in html
    # Phones are masked in lists, even for the brand admin.
    assert "139****0001" in html and "13900000001" not in html
    html = client.get("/console/members?q=13900000002").get_data(as_text=True)
    assert people["colleague"].card_no in html and people["own"].card_no not in html
    html = client.get(f"/console/members?q={people['own'].card_no}").get_data(as_text=True)
    assert people["own"].card_no in html and people["colleague"].card_no not in html
    html = client.get("/console/members?q=李娜").get_data(as_text=True)
    assert people["other_store"].card_no in html and people["own"].card_no not in html
    html = client.get(f"/console/members?store_id={w.store2.id}").get_data(as_text=True)
    assert people["other_store"].card_no in html and people["own"].card_no not in html
    tag = tags.create_tag(kind="brand", name="高意向", is_quick=True)
    tags.add_tag(member_id=people["colleague"].id, tag_id=tag.id, staff_id=w.admin.id)
    db.session.commit()
    html = client.get(f"/console/members?tag_id={tag.id}").get_data(as_text=True)
    assert people["colleague"].card_no in html and people["own"].card_no not in html
    # Nonsense filters are ignored, never a 500.
    assert client.get("/console/members?store_id=abc&tier_id=-1&page=x").status_code == 200


def test_store_manager_sees_only_own_store(client, world, people):
    w = world
    f.login(client, w.brand, w.manager)
    html = client.get("/console/members").get_data(as_text=True)
    assert people["own"].card_no in html and people["colleague"].card_no in html
    assert people["other_store"].card_no not in html
    assert client.get(f"/console/members/{people['own'].id}").status_code == 200
    assert client.get(f"/console/members/{people['other_store'].id}").status_code == 404
    r = client.post(
        f"/console/members/{people['other_store'].id}/phone",
        data={"csrf_token": f.csrf_token(client, "/console/members/till-code")},
    )
    assert r.status_code == 404
    assert audit_rows("view_phone") == []


def test_guide_sees_own_customers_masked(client, world, people):
    w = world
    f.login(client, w.brand, w.guide)
    html = client.get("/console/members").get_data(as_text=True)
    assert people["own"].card_no in html
    assert people["colleague"].card_no not in html and people["other_store"].card_no not in html
    html = client.get(f"/console/members/{people['own'].id}").get_data(as_text=True)
    assert "139****0001" in html and "13900000001" not in html
    assert "/phone" not in html  # no "show full phone" button for guides
    assert client.get(f"/console/members/{people['colleague'].id}").status_code == 404
    token = f.csrf_token(client, f"/console/members/{people['own'].id}")
    r = client.post(f"/console/members/{people['own'].id}/phone", data={"csrf_token": token})
    assert r.status_code == 403 and "13900000001" not in r.get_data(as_text=True)
    assert audit_rows("view_phone") == []


def test_full_phone_view_is_audited(client, world, people):
    w = world
    f.login(client, w.brand, w.manager)
    url = f"/console/members/{people['own'].id}"
    page = client.get(url).get_data(as_text=True)
    assert "13900000001" not in page
    r = client.post(url + "/phone", data={"csrf_token": f.csrf_token(client, url)})
    assert r.status_code == 200
    assert "13900000001" in r.get_data(as_text=True)
    rows = audit_rows("view_phone")
    assert len(rows) == 1
    assert rows[0].actor_id == w.manager.id and rows[0].object_id == str(people["own"].id)
    assert rows[0].brand_id == w.brand.id
    # Without the CSRF token: refused, not audited.
    assert client.post(url + "/phone").status_code == 400
    assert len(audit_rows("view_phone")) == 1


def test_member_detail_shows_identities_tags_history_attribution_and_merges(client, world, people):
    w = world
    own = people["own"]
    tag = tags.create_tag(kind="product", name="护肤偏好")
    tags.add_tag(member_id=own.id, tag_id=tag.id, staff_id=w.admin.id, reason="聊天得知")
    activation.record_scan(member_id=own.id, guide_id=w.other_store_guide.id)
    phoneless, _ = ensure_identity_member(kind="pos", value="POS-778", source="pos")
    merge.merge_members(kept_id=own.id, merged_id=phoneless.id, reason="same phone")
    db.session.commit()
    f.login(client, w.brand, w.admin)
    html = client.get(f"/console/members/{own.id}").get_data(as_text=True)
    assert "护肤偏好" in html and "聊天得知" in html
    assert "pos" in html and w.other_store_guide.name in html
    assert "same phone" in html and f"#{phoneless.id}" in html
    merges = client.get("/console/members/merges").get_data(as_text=True)
    assert own.card_no in merges and "same phone" in merges


def test_merges_page_is_for_admins(client, world):
    f.login(client, world.brand, world.guide)
    assert client.get("/console/members/merges").status_code == 403


def test_till_code_lookup(client, world, people):
    w = world
    code = tillcode.make_till_code(member_id=people["own"].id)
    f.login(client, w.brand, w.guide)
    token = f.csrf_token(client, "/console/members/till-code")
    r = client.post("/console/members/till-code", data={"csrf_token": token, "code": code})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/{people['own'].id}")
    tampered = code[:-1] + str((int(code[-1]) + 1) % 10)
    r = client.post("/console/members/till-code", data={"csrf_token": token, "code": tampered})
    assert r.status_code == 400
    # A real code of a member this guide may not see: no hint that it exists.
    code = tillcode.make_till_code(member_id=people["colleague"].id)
    r = client.post("/console/members/till-code", data={"csrf_token": token, "code": code})
    assert r.status_code == 404


def test_another_brands_member_answers_404(client, world, people):
    other = f.brand()
    admin_b = f.staff(other)
    f.login(client, other, admin_b)
    member = people["own"]
    assert client.get(f"/console/members/{member.id}").status_code == 404
    token = f.csrf_token(client, "/console/members/till-code")
    r = client.post(f"/console/members/{member.id}/phone", data={"csrf_token": token})
    assert r.status_code == 404
    html = client.get("/console/members?q=13900000001").get_data(as_text=True)
    assert member.card_no not in html
    # Brand A's till code means nothing in brand B.
    with use_brand(world.brand.id):
        code = tillcode.make_till_code(member_id=member.id)
    r = client.post("/console/members/till-code", data={"csrf_token": token, "code": code})
    assert r.status_code == 400
    assert not re.search(r"13900000001", r.get_data(as_text=True))
