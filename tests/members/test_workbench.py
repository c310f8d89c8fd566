"""The guide workbench: own customers only, masked phones, one-tap quick tags with history."""

from __future__ import annotations

from sqlalchemy import select

from core.db import db
from members.models import MemberTag, TagHistory
from members.tiers_tags import tags
from tests import factories as f


def test_guide_sees_own_customers_masked_and_quick_tags(client, world):
    w = world
    own = f.member(phone="13900000001", activated=True, guide=w.guide, name="林晓")
    other = f.member(phone="13900000002", activated=True, guide=w.guide2, name="王芳")
    quick = tags.create_tag(kind="brand", name="高意向", is_quick=True)
    tags.create_tag(kind="product", name="护肤偏好")  # not a quick tag
    db.session.commit()
    f.login(client, w.brand, w.guide)
    r = client.get("/console/workbench")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "林晓" in html and "139****0001" in html and "13900000001" not in html
    assert "王芳" not in html
    assert "高意向" in html and "护肤偏好" not in html
    assert 'name="viewport"' in html  # phone-first
    assert "林晓" in client.get("/console/workbench?q=0001").get_data(as_text=True)

    token = f.csrf_token(client, "/console/workbench")
    url = f"/console/workbench/{own.id}/tags/{quick.id}"
    r = client.post(url, data={"csrf_token": token, "action": "add", "back": "list"})
    assert r.status_code == 303
    db.session.expire_all()
    on = db.session.execute(select(MemberTag).where(MemberTag.member_id == own.id)).scalars()
    assert quick.id in {t.tag_id for t in on}
    page = client.get(f"/console/workbench/{own.id}").get_data(as_text=True)
    assert (
        "高意向" in page
        and "快捷标签" in page
        and "quick tag" not in page
        and 'aria-pressed="true"' in page
    )
    r = client.post(url, data={"csrf_token": token, "action": "remove"})
    assert r.status_code == 303
    db.session.expire_all()
    history = db.session.execute(
        select(TagHistory.action, TagHistory.staff_id).order_by(TagHistory.id)
    ).all()
    assert [tuple(h) for h in history[-2:]] == [("added", w.guide.id), ("removed", w.guide.id)]

    # Another guide's customer: 404, nothing written.
    r = client.post(f"/console/workbench/{other.id}/tags/{quick.id}", data={"csrf_token": token})
    assert r.status_code == 404
    assert client.get(f"/console/workbench/{other.id}").status_code == 404
    db.session.expire_all()
    rows = select(MemberTag).where(MemberTag.member_id == other.id, MemberTag.tag_id == quick.id)
    assert db.session.execute(rows).all() == []


def test_non_quick_tag_and_missing_csrf_write_nothing(client, world):
    w = world
    own = f.member(phone="13900000001", activated=True, guide=w.guide)
    plain = tags.create_tag(kind="product", name="护肤偏好")
    quick = tags.create_tag(kind="brand", name="高意向", is_quick=True)
    db.session.commit()
    f.login(client, w.brand, w.guide)
    token = f.csrf_token(client, "/console/workbench")
    r = client.post(f"/console/workbench/{own.id}/tags/{plain.id}", data={"csrf_token": token})
    assert r.status_code == 400
    r = client.post(f"/console/workbench/{own.id}/tags/{quick.id}")
    assert r.status_code == 400
    r = client.post(f"/console/workbench/{own.id}/tags/999999", data={"csrf_token": token})
    assert r.status_code == 404
    db.session.expire_all()
    mine = (plain.id, quick.id)
    assert db.session.execute(select(MemberTag).where(MemberTag.tag_id.in_(mine))).all() == []
    assert db.session.execute(select(TagHistory).where(TagHistory.tag_id.in_(mine))).all() == []


def test_store_manager_workbench_shows_the_store_only(client, world):
    w = world
    f.member(phone="13900000001", activated=True, guide=w.guide, name="林晓")
    f.member(phone="13900000003", activated=True, guide=w.other_store_guide, name="李娜")
    f.login(client, w.brand, w.manager)
    html = client.get("/console/workbench").get_data(as_text=True)
    assert "林晓" in html and "李娜" not in html and "13900000001" not in html
