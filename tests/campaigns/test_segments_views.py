"""Segment pages through the real routes: the live count, saving, the list; a store manager
limited to the store; another brand's segment; bad input answered 4xx with nothing saved."""

from __future__ import annotations

import json
import re

from sqlalchemy import func, select, text

from campaigns.models import Segment
from core.db import db
from core.tenancy import use_brand
from tests import factories

TAG_ANY = "tag"


def _csrf(client, url):
    return factories.csrf(client, url)


def _tree(world, *extra):
    items = [{"field": "tier", "op": "in", "value": [world.tiers[1].id]}, *extra]
    return {"op": "and", "items": items}


def _count(client, tree, token):
    return client.post(
        "/console/campaigns/segments/count",
        json={"definition": tree},
        headers={"X-CSRFToken": token},
    )


def _hand(world, where="true"):
    return db.session.execute(
        text(
            "SELECT count(*) FROM member m WHERE brand_id = :b AND status = 'active'"
            " AND deleted_at IS NULL AND " + where
        ),
        {"b": world.brand.id},
    ).scalar_one()


def test_live_count_then_save_and_list(client, world):
    factories.login(client, world.brand, world.admin)
    page = client.get("/console/campaigns/segments/new")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "新建人群" in html and "保存人群" in html
    token = _csrf(client, "/console/campaigns/segments/new")
    tree = _tree(world)
    r = _count(client, tree, token)
    gold = world.tiers[1].id
    expected = _hand(world, f"tier_id = {gold}")
    assert r.status_code == 200 and r.get_json()["count"] == expected
    r = client.post(
        "/console/campaigns/segments/new",
        data={"csrf_token": token, "name": "金卡会员", "definition": json.dumps(tree)},
    )
    assert r.status_code == 302
    seg = db.session.execute(select(Segment)).scalar_one()
    assert seg.name == "金卡会员" and seg.store_id is None and seg.last_count == expected
    assert seg.created_by == world.admin.id
    listing = client.get("/console/campaigns/segments/").get_data(as_text=True)
    assert "金卡会员" in listing and f"{expected:,}" in listing and "全品牌" in listing
    # saved segments are evaluated again when used: a member joins the tier
    db.session.execute(
        text(
            "UPDATE member SET tier_id = :t WHERE id = (SELECT min(id) FROM member"
            " WHERE brand_id = :b AND status = 'active' AND tier_id IS NULL)"
        ),
        {"t": gold, "b": world.brand.id},
    )
    db.session.commit()
    r = client.post(f"/console/campaigns/segments/{seg.id}/count", data={"csrf_token": token})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(Segment, seg.id).last_count == expected + 1


def test_store_manager_is_limited_to_the_store(client, world):
    own, other = world.stores[0], world.stores[1]
    with use_brand(world.brand.id):
        brand_wide = Segment(name="全员", definition=_tree(world), store_id=None)
        others = Segment(name="别店", definition=_tree(world), store_id=other.id)
        db.session.add_all([brand_wide, others])
        db.session.commit()
    factories.login(client, world.brand, world.manager)
    token = _csrf(client, "/console/campaigns/segments/new")
    # counts only ever include members of the manager's store
    r = _count(client, _tree(world), token)
    assert r.get_json()["count"] == _hand(
        world, f"tier_id = {world.tiers[1].id} AND store_id = {own.id}"
    )
    outside = {"op": "and", "items": [{"field": "store", "op": "in", "value": [other.id]}]}
    assert _count(client, outside, token).get_json()["count"] == 0
    # saved segments carry the store
    r = client.post(
        "/console/campaigns/segments/new",
        data={"csrf_token": token, "name": "本店金卡", "definition": json.dumps(_tree(world))},
    )
    assert r.status_code == 302
    mine = db.session.execute(select(Segment).where(Segment.name == "本店金卡")).scalar_one()
    assert mine.store_id == own.id
    # the list shows only the store's segments; others answer 404
    listing = client.get("/console/campaigns/segments/").get_data(as_text=True)
    assert "本店金卡" in listing and "全员" not in listing and "别店" not in listing
    for seg in (brand_wide, others):
        assert client.get(f"/console/campaigns/segments/{seg.id}").status_code == 404
        data = {"csrf_token": token}
        assert (
            client.post(f"/console/campaigns/segments/{seg.id}/count", data=data).status_code == 404
        )
        assert (
            client.post(f"/console/campaigns/segments/{seg.id}/delete", data=data).status_code
            == 404
        )
    assert db.session.execute(select(func.count()).select_from(Segment)).scalar_one() == 3


def test_another_brands_segment_is_not_found(client, world):
    other = factories.brand()
    with use_brand(other.id):
        seg = Segment(
            name="别的品牌", definition={"op": "and", "items": [{"field": "guide", "op": "set"}]}
        )
        db.session.add(seg)
        db.session.commit()
    factories.login(client, world.brand, world.admin)
    assert client.get(f"/console/campaigns/segments/{seg.id}").status_code == 404
    token = _csrf(client, "/console/campaigns/segments/new")
    assert (
        client.post(
            f"/console/campaigns/segments/{seg.id}/delete", data={"csrf_token": token}
        ).status_code
        == 404
    )
    assert "别的品牌" not in client.get("/console/campaigns/segments/").get_data(as_text=True)


def test_bad_input_is_4xx_and_saves_nothing(client, world):
    factories.login(client, world.brand, world.admin)
    token = _csrf(client, "/console/campaigns/segments/new")
    deep: dict = {"field": "guide", "op": "set"}
    for _ in range(8):
        deep = {"op": "not", "items": [deep]}
    huge = {"op": "or", "items": [{"field": "guide", "op": "set"}] * 500}
    bad_trees = [
        {"op": "and", "items": [{"field": "nope", "op": "in", "value": [1]}]},
        {"op": "and", "items": [{"field": "tier", "op": "like", "value": [1]}]},
        {"op": "and", "items": [{"field": "points_balance", "op": "gte", "value": -5}]},
        {"op": "and", "items": [{"field": "city", "op": "in", "value": ["上\x00海"]}]},
        deep,
        huge,
    ]
    for tree in bad_trees:
        r = _count(client, tree, token)
        assert 400 <= r.status_code < 500, tree
        message = r.get_json()["error"]["message"]
        assert re.search(r"[\u4e00-\u9fff]", message), message
        r = client.post(
            "/console/campaigns/segments/new",
            data={"csrf_token": token, "name": "坏的", "definition": json.dumps(tree)},
        )
        assert 400 <= r.status_code < 500
    for body in ("not json", '{"op": "and", "items": [', "\x00"):
        r = client.post(
            "/console/campaigns/segments/new",
            data={"csrf_token": token, "name": "坏的", "definition": body},
        )
        assert 400 <= r.status_code < 500
    r = client.post(
        "/console/campaigns/segments/count",
        data="{not json",
        headers={"X-CSRFToken": token, "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    r = client.post(
        "/console/campaigns/segments/new",
        data={"csrf_token": token, "name": "", "definition": json.dumps(_tree(world))},
    )
    assert r.status_code == 400 and "请输入名称" in r.get_data(as_text=True)
    assert db.session.execute(select(func.count()).select_from(Segment)).scalar_one() == 0


def test_guides_cannot_open_segments(client, world):
    factories.login(client, world.brand, world.guides[0])
    assert client.get("/console/campaigns/segments/").status_code == 403
