"""The coordinate picker and the store map: one field for what a map's coordinate picker
gives (either order, full-width commas, inside China or a clear Chinese error), on the
store's own page and its location page, and the offline map of China they draw on."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from core.db import db
from core.errors import ValidationError
from members import store_locations
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "text",
    [
        "121.473701,31.230416",  # Amap: 经度,纬度
        "31.230416,121.473701",  # Tencent's getPoint: 纬度,经度
        "121.473701，31.230416",  # full-width comma
        " 121.473701 , 31.230416 ",
        "121.473701 31.230416",
        "１２１.４７３７０１，３１.２３０４１６",  # full-width digits
        "经度:121.473701 纬度:31.230416",
        "(121.473701, 31.230416)",
    ],
)
def test_pasted_coordinates_are_read_in_either_order(ctx, text):
    assert store_locations.parse_coordinates(text) == (31.230416, 121.473701)


@pytest.mark.parametrize(
    "text, says",
    [
        ("", "请粘贴坐标"),
        ("   ", "请粘贴坐标"),
        ("121.47", "这不是坐标"),
        ("121.47,31.23,5", "这不是坐标"),
        ("121.47;abc;31.23", "这不是坐标"),
        ("上海市黄浦区", "这不是坐标"),
        ("-74.0060,40.7128", "不在中国境内"),  # New York
        ("2.35,48.85", "不在中国境内"),  # Paris: both numbers are latitudes
        ("140.0,35.0", "不在中国境内"),  # Tokyo
        ("121.47,60.0", "不在中国境内"),
    ],
)
def test_what_is_not_a_place_in_china_is_refused_in_chinese(ctx, text, says):
    with pytest.raises(ValidationError) as raised:
        store_locations.parse_coordinates(text)
    assert says in raised.value.message and raised.value.field == "coords"


def _map_config(page: str) -> dict:
    m = re.search(r'data-storemap="([^"]+)"', page)
    assert m, "no map on the page"
    return json.loads(html.unescape(m.group(1)))


def test_the_store_page_has_the_picker_with_the_brand_s_other_stores(client, world):
    w = world
    store_locations.set_store_location(store_id=w.store2.id, lat=30.259, lng=120.164)
    db.session.commit()
    f.login(client, w.brand, w.admin)
    page = client.get(f"/console/stores/{w.store.id}").get_data(as_text=True)
    assert "门店位置" in page and "坐标（经度,纬度）" in page
    assert "https://lbs.qq.com/getPoint/" in page and "https://lbs.amap.com/tools/picker" in page
    assert "GCJ-02（国测局坐标）" in page
    cfg = _map_config(page)
    assert cfg["picker"] is True and cfg["current"] == {"name": w.store.name, "city": "上海"}
    assert [(s["name"], s["lng"], s["lat"]) for s in cfg["stores"]] == [
        (w.store2.name, 120.164, 30.259)
    ]
    assert cfg["stores"][0]["url"] == f"/console/stores/{w.store2.id}#location"

    # Saved from the store's page, it comes back to the store's page.
    token = f.csrf(page)
    url = f"/console/members/store-locations/{w.store.id}"
    r = client.post(
        url, data={"csrf_token": token, "coords": "31.230416,121.473701", "back": "store"}
    )
    assert r.status_code == 302
    assert r.headers["Location"].endswith(f"/console/stores/{w.store.id}#location")
    page = client.get(f"/console/stores/{w.store.id}").get_data(as_text=True)
    assert 'value="121.473701,31.230416"' in page
    assert _map_config(page)["current"]["lng"] == 121.473701

    # A mistake shows on the location page, in Chinese, and changes nothing.
    r = client.post(url, data={"csrf_token": token, "coords": "2.35,48.85", "back": "store"})
    assert r.status_code == 400
    body = r.get_data(as_text=True)
    assert "坐标不在中国境内" in body and 'value="2.35,48.85"' in body
    db.session.expire_all()
    assert store_locations.location_of(store_id=w.store.id) == (31.230416, 121.473701)


def test_a_store_manager_sees_where_their_store_is_and_nothing_else(client, world):
    w = world
    store_locations.set_store_location(store_id=w.store.id, lat=31.23, lng=121.47)
    store_locations.set_store_location(store_id=w.store2.id, lat=30.259, lng=120.164)
    db.session.commit()
    f.login(client, w.brand, w.manager)
    page = client.get(f"/console/stores/{w.store.id}").get_data(as_text=True)
    assert "已在地图上标出：经度 121.470000，纬度 31.230000" in page
    assert 'name="coords"' not in page
    cfg = _map_config(page)
    assert cfg["picker"] is False and cfg["stores"] == []
    assert client.get(f"/console/members/store-locations/{w.store.id}").status_code == 403
    token = f.csrf(page) if "csrf_token" in page else ""
    r = client.post(
        f"/console/members/store-locations/{w.store.id}",
        data={"csrf_token": token, "coords": "121,31"},
    )
    assert r.status_code == 403


def test_the_store_map_shows_every_placed_store_linking_to_it(client, world):
    w = world
    store_locations.set_store_location(store_id=w.store.id, lat=31.23, lng=121.47)
    db.session.commit()
    f.login(client, w.brand, w.admin)
    page = client.get("/console/members/store-locations").get_data(as_text=True)
    cfg = _map_config(page)
    assert cfg["picker"] is False and cfg["current"] is None
    assert [(s["name"], s["url"]) for s in cfg["stores"]] == [
        (w.store.name, f"/console/stores/{w.store.id}#location")
    ]
    assert "已标注 1 家，共 2 家门店" in page and "121.470000,31.230000" in page
    assert 'data-map-city="上海"' in page and 'data-map-city="杭州"' not in page
    # The map and its city names are served by the app: nothing comes from the internet.
    for url in (cfg["geo"], cfg["cities"]):
        r = client.get(url)
        assert r.status_code == 200, url
        data = json.loads(r.get_data())
        assert data
    assert cfg["geo"].startswith("/static/vendor/") and cfg["cities"].startswith("/static/")


def test_the_vendored_map_says_where_it_comes_from_and_under_which_licence():
    vendor = ROOT / "static/vendor"
    notice = (vendor / "echarts-map-china-4.9.0.NOTICE").read_text()
    assert "echarts@4.9.0" in notice and "Apache" in notice
    assert "Apache License" in (vendor / "echarts-map-china-4.9.0.LICENSE").read_text()
    geo = json.loads((vendor / "echarts-map-china-4.9.0.json").read_text())
    names = {feature["properties"]["name"] for feature in geo["features"]}
    assert {"北京", "上海", "新疆", "西藏", "台湾", "海南", "香港", "澳门"} <= names
    cities = json.loads((vendor / "echarts-map-china-cities-4.9.0.json").read_text())
    shanghai = next(c for c in cities if c[0] == "上海")
    assert 121 < shanghai[1] < 122 and 31 < shanghai[2] < 32
