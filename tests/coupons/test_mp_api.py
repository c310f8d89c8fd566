"""Points, coupons, the mall and the till code in the mini-program API (against the sandbox)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from coupons.models import Coupon, MallOrder
from members.models import Member
from points import services as points
from tests import factories as f
from tests.support.mini_program import activate, api, bearer, login
from wechat.sandbox import store as sandbox_store
from wechat.sandbox.api_mp import issue_js_code

KEY = "0123456789abcdef"


def _member_id(brand, phone="13912345678") -> int:
    with use_brand(brand.id):
        return db.session.execute(select(Member.id).where(Member.phone == phone)).scalar_one()


def _give_points(brand, member_id: int, n: int, key: str = "gift") -> None:
    with use_brand(brand.id):
        points.adjust(member_id=member_id, points=n, reason="测试", idempotency_key=key)
        db.session.commit()


def test_points_balance_history_expiring(wx_client, wx_brand, wx_consumer):
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    mid = _member_id(wx_brand)
    r = wx_client.get(api(wx_brand, "points"), headers=bearer(token))
    assert r.status_code == 200 and r.json["balance"] == 0
    for i in range(5):
        _give_points(wx_brand, mid, 10 + i, key=f"k{i}")
    r = wx_client.get(api(wx_brand, "points"), headers=bearer(token))
    assert r.json["balance"] == 60 and r.json["pending"] == 0
    # Keyset pages: 2 + 2 + 1, newest first, no overlap.
    seen, before = [], None
    for _ in range(3):
        q = {"limit": 2, **({"before": before} if before else {})}
        r = wx_client.get(api(wx_brand, "points/history"), query_string=q, headers=bearer(token))
        assert r.status_code == 200
        seen += [e["points"] for e in r.json["items"]]
        before = r.json["next_before"]
    assert seen == [14, 13, 12, 11, 10] and before is None
    r = wx_client.get(api(wx_brand, "points/expiring"), headers=bearer(token))
    assert r.status_code == 200 and sum(e["points"] for e in r.json["items"]) in (0, 60)
    r = wx_client.get(api(wx_brand, "points/pending"), headers=bearer(token))
    assert r.status_code == 200 and r.json == {"items": [], "total": 0}


def test_expiring_points_come_in_a_bounded_list(wx_client, wx_brand, wx_consumer):
    """A member of many years holds lots with many expiry times; the API lists the soonest
    ``limit`` of them and says more follow, instead of every one."""
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    mid = _member_id(wx_brand)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    with use_brand(wx_brand.id):
        for i in range(5):  # granted on five days: five expiry times, 12 months later
            points.adjust(
                member_id=mid,
                points=10 + i,
                reason="测试",
                idempotency_key=f"day{i}",
                now=start + dt.timedelta(days=i),
            )
        db.session.commit()
    r = wx_client.get(
        api(wx_brand, "points/expiring"), query_string={"limit": 2}, headers=bearer(token)
    )
    assert r.status_code == 200
    assert [e["points"] for e in r.json["items"]] == [10, 11] and r.json["has_more"] is True
    r = wx_client.get(api(wx_brand, "points/expiring"), headers=bearer(token))
    assert [e["points"] for e in r.json["items"]] == [10, 11, 12, 13, 14]
    assert r.json["has_more"] is False
    r = wx_client.get(
        api(wx_brand, "points/expiring"), query_string={"limit": 101}, headers=bearer(token)
    )
    assert r.status_code == 400 and r.json["error"]["field"] == "limit"


def test_points_need_an_activated_member(wx_client, wx_brand, wx_consumer):
    token = login(wx_client, wx_brand, wx_consumer)["token"]
    r = wx_client.get(api(wx_brand, "points"), headers=bearer(token))
    assert r.status_code == 403 and r.json["error"]["code"] == "not_activated"
    assert wx_client.get(api(wx_brand, "points")).status_code == 401


def test_validation_messages_are_chinese_and_name_the_field(wx_client, wx_brand, wx_consumer):
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    r = wx_client.get(
        api(wx_brand, "points/history"), query_string={"limit": "x"}, headers=bearer(token)
    )
    assert r.status_code == 400
    assert r.json["error"] == {"code": "invalid", "message": "limit 必须是整数。", "field": "limit"}
    r = wx_client.post(api(wx_brand, "mall/1/exchange"), json={}, headers=bearer(token))
    assert r.json["error"]["field"] == "idempotency_key"
    assert r.json["error"]["message"] == "idempotency_key 为必填项。"
    r = wx_client.post(api(wx_brand, "mall/1/exchange"), data="[", headers=bearer(token))
    assert r.status_code == 400 and r.json["error"]["message"] == "请求体必须是 JSON 对象。"


def test_coupons_list_detail_claim(wx_client, wx_brand, wx_consumer):
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    with use_brand(wx_brand.id):
        tpl = f.coupon_template()
    r = wx_client.post(
        api(wx_brand, f"coupons/claim/{tpl.id}"),
        json={"idempotency_key": KEY},
        headers=bearer(token),
    )
    assert r.status_code == 201, r.json
    coupon = r.json
    assert coupon["status"] == "available" and coupon["template"]["value_fen"] == 500
    # The same key again: the same coupon.
    again = wx_client.post(
        api(wx_brand, f"coupons/claim/{tpl.id}"),
        json={"idempotency_key": KEY},
        headers=bearer(token),
    )
    assert again.status_code == 201 and again.json["id"] == coupon["id"]
    r = wx_client.get(api(wx_brand, "coupons"), headers=bearer(token))
    assert [c["id"] for c in r.json["items"]] == [coupon["id"]]
    r = wx_client.get(api(wx_brand, "coupons"), query_string={"tab": "used"}, headers=bearer(token))
    assert r.json["items"] == []
    r = wx_client.get(api(wx_brand, f"coupons/{coupon['id']}"), headers=bearer(token))
    assert r.status_code == 200 and r.json["code"] == coupon["code"]
    r = wx_client.get(api(wx_brand, f"coupons/{coupon['id'] + 1000}"), headers=bearer(token))
    assert r.status_code == 404
    r = wx_client.post(
        api(wx_brand, "coupons/claim/999999"), json={"idempotency_key": KEY + "x"},
        headers=bearer(token),
    )  # fmt: skip
    assert r.status_code == 404 and r.json["error"]["field"] == "template_id"


def test_share_and_take(wx_client, wx_brand, wx_consumer):
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    with use_brand(wx_brand.id):
        tpl = f.coupon_template()
    coupon = wx_client.post(
        api(wx_brand, f"coupons/claim/{tpl.id}"), json={"idempotency_key": KEY},
        headers=bearer(token),
    ).json  # fmt: skip
    r = wx_client.post(api(wx_brand, f"coupons/{coupon['id']}/share"), headers=bearer(token))
    assert r.status_code == 200 and r.json["status"] == "open"
    share_token = r.json["token"]
    assert (
        wx_client.post(api(wx_brand, f"coupons/{coupon['id']}/share"), headers=bearer(token)).json
        == r.json
    )
    r = wx_client.get(api(wx_brand, f"coupons/share/{share_token}"))
    assert r.status_code == 200 and r.json["coupon_name"] == tpl.name
    # The sharer cannot take their own.
    r = wx_client.post(api(wx_brand, f"coupons/share/{share_token}/take"), headers=bearer(token))
    assert r.status_code == 409
    # A friend, logged in to the mini-program but not yet a member, takes it.
    code = issue_js_code(wx_brand.mp_appid, sandbox_store.create_consumer("小李")["uid"])
    friend_token = wx_client.post(api(wx_brand, "login"), json={"code": code}).json["token"]
    r = wx_client.post(
        api(wx_brand, f"coupons/share/{share_token}/take"), headers=bearer(friend_token)
    )
    assert r.status_code == 200, r.json
    assert r.json["code"] != coupon["code"] and r.json["status"] == "available"
    mine = wx_client.get(api(wx_brand, "coupons"), headers=bearer(token)).json["items"]
    assert mine == []
    assert wx_client.get(api(wx_brand, "coupons/share/nope")).status_code == 404


def test_mall_exchange_retried_gives_one_coupon(wx_client, wx_brand, wx_consumer):
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    mid = _member_id(wx_brand)
    _give_points(wx_brand, mid, 250)
    with use_brand(wx_brand.id):
        item = f.mall_item(f.coupon_template(), stock=5)
    r = wx_client.get(api(wx_brand, "mall"), headers=bearer(token))
    assert r.status_code == 200 and r.json["balance"] == 250
    assert [(i["id"], i["stock_left"]) for i in r.json["items"]] == [(item.id, 5)]
    answers = [
        wx_client.post(
            api(wx_brand, f"mall/{item.id}/exchange"),
            json={"idempotency_key": KEY},
            headers=bearer(token),
        )
        for _ in range(3)
    ]
    assert {a.status_code for a in answers} == {201}
    assert len({a.json["coupon_id"] for a in answers}) == 1 and answers[0].json["points"] == 100
    with use_brand(wx_brand.id):
        assert db.session.scalar(select(func.count()).select_from(MallOrder)) == 1
        assert db.session.scalar(select(func.count()).select_from(Coupon)) == 1
    r = wx_client.get(api(wx_brand, "points"), headers=bearer(token))
    assert r.json["balance"] == 150
    # A new key, a second exchange; a third is refused for lack of points.
    r = wx_client.post(
        api(wx_brand, f"mall/{item.id}/exchange"), json={"idempotency_key": KEY + "2"},
        headers=bearer(token),
    )  # fmt: skip
    assert r.status_code == 201
    r = wx_client.post(
        api(wx_brand, f"mall/{item.id}/exchange"), json={"idempotency_key": KEY + "3"},
        headers=bearer(token),
    )  # fmt: skip
    assert r.status_code == 409 and r.json["error"]["code"] == "insufficient_points"


def test_till_code(wx_client, wx_brand, wx_consumer):
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    r = wx_client.get(api(wx_brand, "till-code"), headers=bearer(token))
    assert r.status_code == 200
    assert len(r.json["till_code"]) == 18 and r.json["till_code"].isdigit()
    assert 0 < r.json["refresh_in"] <= 60
    card = wx_client.get(api(wx_brand, "card"), headers=bearer(token)).json
    assert card["card_no"] == r.json["card_no"]
