"""Console configuration: tier levels and settings, the tag library (bad input writes nothing)."""

from __future__ import annotations

from sqlalchemy import select

from core.db import db
from members.models import TagDefinition, TierLevel, TierSettings
from members.tiers_tags import tags, tiers
from tests import factories as f


def levels() -> list[tuple]:
    db.session.expire_all()
    rows = db.session.execute(select(TierLevel).order_by(TierLevel.rank)).scalars()
    return [(lv.code, lv.name, lv.threshold, lv.active) for lv in rows]


def test_tier_levels_create_edit_and_bad_input(client, world):
    w = world
    f.login(client, w.brand, w.admin)
    token = f.csrf_token(client, "/console/members/tiers")
    base = {"csrf_token": token, "points_multiplier": "1", "birthday_gift": ""}
    r = client.post(
        "/console/members/tiers",
        data={**base, "code": "normal", "name": "普通会员", "rank": "0", "threshold": "0"},
    )
    assert r.status_code == 302
    r = client.post(
        "/console/members/tiers",
        data={**base, "code": "gold", "name": "金卡会员", "rank": "2", "threshold": "5000"},
    )
    assert r.status_code == 302
    assert levels() == [("normal", "普通会员", 0, True), ("gold", "金卡会员", 500000, True)]
    for bad, status in (
        ({"code": "silver", "name": "银卡", "rank": "1", "threshold": "-5"}, 400),
        ({"code": "silver", "name": "", "rank": "1", "threshold": "100"}, 400),
        ({"code": "silver", "name": "银卡", "rank": "x", "threshold": "100"}, 400),
        ({"code": "gold", "name": "重复", "rank": "5", "threshold": "100"}, 409),
        ({"code": "other", "name": "同级", "rank": "2", "threshold": "100"}, 409),
    ):
        r = client.post("/console/members/tiers", data={**base, **bad})
        assert r.status_code == status, bad
        assert 'class="error"' in r.get_data(as_text=True)
    assert len(levels()) == 2

    gold = db.session.execute(select(TierLevel).where(TierLevel.code == "gold")).scalar_one()
    p = f"l{gold.id}-"
    edit = {
        "csrf_token": token,
        p + "name": "黑金会员",
        p + "threshold": "8000.00",  # yuan of spend, kept in fen
        p + "points_multiplier": "2",
        p + "birthday_gift": "生日礼盒",
        p + "active": "y",
    }
    assert client.post(f"/console/members/tiers/{gold.id}", data=edit).status_code == 302
    assert levels()[-1] == ("gold", "黑金会员", 800000, True)
    bad = {**edit, p + "threshold": "-1"}
    assert client.post(f"/console/members/tiers/{gold.id}", data=bad).status_code == 400
    bad = {**edit, p + "threshold": "8000.005"}  # a fraction of a fen is refused, not rounded
    assert client.post(f"/console/members/tiers/{gold.id}", data=bad).status_code == 400
    assert levels()[-1] == ("gold", "黑金会员", 800000, True)
    page = client.get("/console/members/tiers").get_data(as_text=True)
    assert 'value="8000.00"' in page and 'value="2"' in page  # shown as typed: 元 and 倍
    assert db.session.get(TierLevel, gold.id).points_multiplier_permille == 2000


def test_tier_settings(client, world):
    f.login(client, world.brand, world.admin)
    token = f.csrf_token(client, "/console/members/tiers")
    data = {
        "csrf_token": token,
        "basis": "growth",
        "review_month": "7",
        "review_day": "1",
        "growth_per_yuan": "2",
    }
    assert client.post("/console/members/tiers/settings", data=data).status_code == 302
    for bad in ({"review_day": "31"}, {"basis": "points"}, {"review_month": "0"}):
        r = client.post(
            "/console/members/tiers/settings",
            data={**data, **bad, "basis": bad.get("basis", "spend")},
        )
        assert r.status_code == 400, bad
    db.session.expire_all()
    s = db.session.execute(select(TierSettings)).scalar_one()
    assert (s.basis, s.review_month, s.growth_per_yuan) == ("growth", 7, 2)


def test_tag_library_crud_and_bad_input(client, world):
    w = world
    tags.system_tag(code="activated")
    db.session.commit()
    f.login(client, w.brand, w.admin)
    token = f.csrf_token(client, "/console/members/tags")
    page = client.get("/console/members/tags").get_data(as_text=True)
    assert "已激活" in page
    for kind, name in (("behaviour", "需回访"), ("brand", "高意向"), ("product", "敏感肌"),
                       ("platform", "京东会员")):  # fmt: skip
        r = client.post(
            "/console/members/tags",
            data={"csrf_token": token, "kind": kind, "name": name, "is_quick": "y"},
        )
        assert r.status_code == 302
    assert len(tags.list_tags(quick_only=True)) == 4
    before = db.session.execute(select(TagDefinition.id)).all()
    for bad in (
        {"kind": "weird", "name": "x"},
        {"kind": "brand", "name": ""},
        {"kind": "brand", "name": "x", "code": "Bad Code!"},
        {"kind": "brand", "name": "y" * 61},
    ):
        r = client.post("/console/members/tags", data={"csrf_token": token, **bad})
        assert r.status_code == 400, bad
    r = client.post(
        "/console/members/tags",
        data={"csrf_token": token, "kind": "brand", "name": "dup", "code": "activated"},
    )
    assert r.status_code == 400 and "activated" in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.execute(select(TagDefinition.id)).all() == before

    tag = tags.tag_by_code(code=tags.list_tags(kind="brand")[0].code)
    p = f"t{tag.id}-"
    r = client.post(
        f"/console/members/tags/{tag.id}",
        data={
            "csrf_token": token,
            p + "kind": "product",
            p + "name": "很高",
            p + "active": "y",
        },
    )
    assert r.status_code == 302
    db.session.expire_all()
    tag = db.session.get(TagDefinition, tag.id)
    assert (tag.kind, tag.name, tag.is_quick, tag.active) == ("product", "很高", False, True)
    system = tags.tag_by_code(code="activated")
    r = client.post(
        f"/console/members/tags/{system.id}",
        data={"csrf_token": token, f"t{system.id}-kind": "brand", f"t{system.id}-name": "x"},
    )
    assert r.status_code == 400
    db.session.expire_all()
    assert db.session.get(TagDefinition, system.id).kind == "behaviour"


def test_config_pages_are_for_admins(client, world):
    f.login(client, world.brand, world.manager)
    assert client.get("/console/members/tiers").status_code == 403
    assert client.get("/console/members/tags").status_code == 403
    assert tiers.list_levels() == []


def test_store_map_places_moves_and_removes_a_store_and_refuses_bad_input(client, world):
    from members import store_locations

    w = world
    f.login(client, w.brand, w.admin)
    page = client.get("/console/members/store-locations")
    assert page.status_code == 200
    assert w.store.name in page.get_data(as_text=True)
    url = f"/console/members/store-locations/{w.store.id}"
    token = f.csrf_token(client, url)

    r = client.post(url, data={"csrf_token": token, "coords": "121.4556,31.2295"})
    assert r.status_code == 302
    assert store_locations.location_of(store_id=w.store.id) == (31.2295, 121.4556)
    # the mini-program's "stores near me" finds it, nearest first
    near = store_locations.stores_near(lat=31.23, lng=121.46)
    assert [n.store.id for n in near] == [w.store.id] and near[0].distance_m < 1000

    for bad in ("91,121", "31,-181", "abc,121", "", "nan,1", "121.4", "1,2,3", "0,0"):
        r = client.post(url, data={"csrf_token": token, "coords": bad})
        assert r.status_code == 400, bad
    assert client.post(url, data={"coords": "121,31"}).status_code == 400  # no CSRF
    db.session.expire_all()
    assert store_locations.location_of(store_id=w.store.id) == (31.2295, 121.4556)

    # Tencent's picker gives 纬度,经度: the order is read from the ranges.
    r = client.post(url, data={"csrf_token": token, "coords": "30.259，120.164"})
    assert r.status_code == 302
    assert store_locations.location_of(store_id=w.store.id) == (30.259, 120.164)

    r = client.post(url + "/clear", data={"csrf_token": token})
    assert r.status_code == 302
    db.session.expire_all()
    assert store_locations.location_of(store_id=w.store.id) is None
    assert store_locations.stores_near(lat=31.23, lng=121.46) == []


def test_store_map_is_for_admins_and_for_the_brand_s_own_stores(client, world):
    other_store = f.store(f.brand(), code="XX001")
    f.login(client, world.brand, world.manager)
    assert client.get("/console/members/store-locations").status_code == 403
    f.login(client, world.brand, world.admin)
    token = f.csrf_token(client, f"/console/members/store-locations/{world.store.id}")
    r = client.post(
        f"/console/members/store-locations/{other_store.id}",
        data={"csrf_token": token, "coords": "121.47,31.23"},
    )
    assert r.status_code == 404
