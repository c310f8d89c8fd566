"""The mini-program API against the WeChat sandbox: login, phone, profile, card, stores."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.db import db
from core.redis import get_redis
from core.tenancy import use_brand
from members import store_locations, tillcode
from members.models import Member, MemberIdentity
from tests import factories as f
from tests.support.mini_program import CONSENT, activate, api, bearer, login
from wechat.sandbox.api_mp import issue_js_code, issue_phone_code


def test_login_round_trip_and_code_single_use(wx_client, wx_brand, wx_consumer):
    code = issue_js_code(wx_brand.mp_appid, wx_consumer["uid"])
    r = wx_client.post(api(wx_brand, "login"), json={"code": code})
    assert r.status_code == 200
    body = r.json
    assert body["token"].startswith("mps_") and body["activated"] is False
    assert body["expires_in"] > 0
    # No WeChat session_key in the answer, and the token itself is not a Redis key.
    assert "session_key" not in r.get_data(as_text=True)
    stored = [k.decode() for k in get_redis().scan_iter("*mp-session*")]
    assert len(stored) == 1 and body["token"] not in stored[0]
    raw = get_redis().get(stored[0]).decode()
    assert wx_consumer["mp_openid"] in raw
    # A session before activation: profile says "not activated".
    r = wx_client.get(api(wx_brand, "profile"), headers=bearer(body["token"]))
    assert r.status_code == 403 and r.json["error"]["code"] == "not_activated"
    # The same code again: WeChat says used (40163) -> 400 on the code field.
    r = wx_client.post(api(wx_brand, "login"), json={"code": code})
    assert r.status_code == 400
    assert r.json["error"] == {
        "code": "invalid_code",
        "message": r.json["error"]["message"],
        "field": "code",
    }


def test_login_validation_errors(wx_client, wx_brand):
    r = wx_client.post(api(wx_brand, "login"), json={})
    assert r.status_code == 400 and r.json["error"]["field"] == "code"
    r = wx_client.post(api(wx_brand, "login"), data="not json", content_type="application/json")
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid"
    r = wx_client.post(api(wx_brand, "login"), json={"code": "x" * 129})
    assert r.status_code == 400 and r.json["error"]["field"] == "code"
    r = wx_client.post(api(wx_brand, "login"), json={"code": "unknown-code"})
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid_code"
    r = wx_client.post("/api/mp/no-such-brand/login", json={"code": "abc"})
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


def test_phone_by_code_activates_and_links_the_member(wx_client, wx_brand, wx_consumer):
    token, body = activate(wx_client, wx_brand, wx_consumer, phone="13912345678")
    assert body["created"] is True
    profile = body["profile"]
    assert profile["phone"] == "139****5678"
    assert len(profile["card_no"]) == 10
    with use_brand(wx_brand.id):
        member = Member.by_phone("13912345678")
        assert member.source == "mp" and member.activated_at is not None
        assert member.consent_version == CONSENT
        kinds = {
            i.kind: i.value
            for i in db.session.execute(
                select(MemberIdentity).where(MemberIdentity.member_id == member.id)
            ).scalars()
        }
    assert kinds["mp_openid"] == wx_consumer["mp_openid"]
    assert kinds["unionid"] == wx_consumer["unionid"]
    # Logging in again (new wx.login code) finds the activated member.
    again = login(wx_client, wx_brand, wx_consumer)
    assert again["activated"] is True
    r = wx_client.get(api(wx_brand, "profile"), headers=bearer(again["token"]))
    assert r.status_code == 200 and r.json["card_no"] == profile["card_no"]
    # Confirming again is idempotent; a reused phone code is refused.
    code = issue_phone_code(wx_brand.mp_appid, wx_consumer["uid"], "13912345678")
    ok = {"code": code, "consent_version": CONSENT}
    r = wx_client.post(api(wx_brand, "phone"), json=ok, headers=bearer(token))
    assert r.status_code == 200 and r.json["created"] is False
    r = wx_client.post(api(wx_brand, "phone"), json=ok, headers=bearer(token))
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid_code"
    # Another phone number for the same WeChat user is a conflict, never a second member.
    code = issue_phone_code(wx_brand.mp_appid, wx_consumer["uid"], "13900000000")
    r = wx_client.post(api(wx_brand, "phone"), json={**ok, "code": code}, headers=bearer(token))
    assert r.status_code == 409
    with use_brand(wx_brand.id):
        assert len(db.session.execute(select(Member)).all()) == 1


def test_phone_needs_session_and_consent(wx_client, wx_brand, wx_consumer):
    token = login(wx_client, wx_brand, wx_consumer)["token"]
    code = issue_phone_code(wx_brand.mp_appid, wx_consumer["uid"])
    r = wx_client.post(api(wx_brand, "phone"), json={"code": code, "consent_version": CONSENT})
    assert r.status_code == 401 and r.json["error"]["code"] == "invalid_session"
    r = wx_client.post(api(wx_brand, "phone"), json={"code": code}, headers=bearer(token))
    assert r.status_code == 400 and r.json["error"]["field"] == "consent_version"
    with use_brand(wx_brand.id):
        assert db.session.execute(select(Member)).first() is None


def test_profile_update_and_validation(wx_client, wx_brand, wx_consumer):
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    url, h = api(wx_brand, "profile"), bearer(token)
    r = wx_client.patch(
        url, json={"name": " 小王 ", "gender": "f", "birthday": "1990-05-01"}, headers=h
    )
    assert r.status_code == 200
    assert (r.json["name"], r.json["gender"], r.json["birthday"]) == ("小王", "f", "1990-05-01")
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    bad = [
        ({"birthday": tomorrow}, "birthday"),
        ({"birthday": "1990-02-30"}, "birthday"),
        ({"birthday": 0}, "birthday"),
        ({"birthday": 1700000000}, "birthday"),
        ({"gender": "x"}, "gender"),
        ({"name": ""}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "x" * 81}, "name"),
        ({"phone": "13900000000"}, "phone"),
    ]
    for payload, field in bad:
        r = wx_client.patch(url, json=payload, headers=h)
        assert r.status_code == 400, payload
        assert r.json["error"]["field"] == field, (payload, r.json)
    # Nothing of the bad requests was written.
    r = wx_client.get(url, headers=h)
    assert (r.json["name"], r.json["gender"], r.json["birthday"]) == ("小王", "f", "1990-05-01")


def test_card_and_till_code_verify(wx_client, wx_brand, wx_consumer):
    token, body = activate(wx_client, wx_brand, wx_consumer)
    r = wx_client.get(api(wx_brand, "card"), headers=bearer(token))
    assert r.status_code == 200
    card = r.json
    assert card["card_no"] == body["profile"]["card_no"]
    code = card["till_code"]
    assert len(code) == 18 and code.isdigit() and 1 <= card["till_code_refresh_in"] <= 60
    assert card["progress"]["basis"] == "spend"
    with use_brand(wx_brand.id):
        member = Member.by_phone("13912345678")
        assert tillcode.verify_till_code(code) == member.id


def test_tampered_and_foreign_session_tokens(wx_client, wx_brand, wx_consumer):
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    other = f.brand(mp_appid="wxmpother00001", mp_secret="other-secret")
    url = api(wx_brand, "profile")
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for headers in (
        {},
        bearer(tampered),
        bearer(token + "x"),
        bearer("mps_" + "a" * 43),
        {"Authorization": f"Basic {token}"},
        bearer("é" * 10),
    ):
        r = wx_client.get(url, headers=headers)
        assert r.status_code == 401, headers
        assert r.json["error"]["code"] == "invalid_session"
    # Brand isolation: brand A's token on brand B's API.
    r = wx_client.get(api(other, "profile"), headers=bearer(token))
    assert r.status_code == 401
    assert wx_client.get(url, headers=bearer(token)).status_code == 200


def test_stores_near_a_point(wx_client, wx_brand):
    places = {
        "SH001": (31.2295, 121.4556),
        "SH002": (31.2360, 121.5020),
        "HZ001": (30.2590, 120.1640),
    }
    ids = {}
    for code, (lat, lng) in places.items():
        s = f.store(wx_brand, code=code)
        ids[code] = s.id
        with use_brand(wx_brand.id):
            store_locations.set_store_location(store_id=s.id, lat=lat, lng=lng)
            db.session.commit()
    f.store(wx_brand, code="NOGEO")  # no coordinates: not listed
    other = f.brand()
    far = f.store(other, code="OTHER")
    with use_brand(other.id):
        store_locations.set_store_location(store_id=far.id, lat=31.2300, lng=121.4560)
        db.session.commit()

    # Standing at People's Square in Shanghai.
    r = wx_client.get(api(wx_brand, "stores"), query_string={"lat": "31.2304", "lng": "121.4737"})
    assert r.status_code == 200
    body = r.json
    assert [s["code"] for s in body["items"]] == ["SH001", "SH002", "HZ001"]
    assert body["total"] == 3
    d = [s["distance_m"] for s in body["items"]]
    assert 1500 < d[0] < 2000 and 2500 < d[1] < 3500 and 150_000 < d[2] < 200_000
    r = wx_client.get(
        api(wx_brand, "stores"),
        query_string={"lat": "31.2304", "lng": "121.4737", "page": 2, "per_page": 2},
    )
    assert [s["code"] for s in r.json["items"]] == ["HZ001"] and r.json["total"] == 3
    for bad in ({"lat": "91", "lng": "0"}, {"lat": "nan", "lng": "0"}, {"lng": "0"},
                {"lat": "1", "lng": "1", "per_page": "51"}, {"lat": "x", "lng": "1"}):  # fmt: skip
        r = wx_client.get(api(wx_brand, "stores"), query_string=bad)
        assert r.status_code == 400, bad
        assert r.json["error"]["field"] in ("lat", "lng", "per_page")


def test_openapi_document(wx_client):
    r = wx_client.get("/api/mp/openapi.json")
    assert r.status_code == 200
    doc = r.json
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    assert set(paths) == {
        "/api/mp/{brand_slug}/login",
        "/api/mp/{brand_slug}/phone",
        "/api/mp/{brand_slug}/profile",
        "/api/mp/{brand_slug}/card",
        "/api/mp/{brand_slug}/stores",
        "/api/mp/{brand_slug}/till-code",
        # registered by points and coupons into the same document
        "/api/mp/{brand_slug}/points",
        "/api/mp/{brand_slug}/points/pending",
        "/api/mp/{brand_slug}/points/history",
        "/api/mp/{brand_slug}/points/expiring",
        "/api/mp/{brand_slug}/coupons",
        "/api/mp/{brand_slug}/coupons/{coupon_id}",
        "/api/mp/{brand_slug}/coupons/claim/{template_id}",
        "/api/mp/{brand_slug}/coupons/{coupon_id}/share",
        "/api/mp/{brand_slug}/coupons/share/{token}",
        "/api/mp/{brand_slug}/coupons/share/{token}/take",
        "/api/mp/{brand_slug}/mall",
        "/api/mp/{brand_slug}/mall/{item_id}/exchange",
        # registered by the shop's catalog
        "/api/mp/{brand_slug}/products",
        "/api/mp/{brand_slug}/products/{product_id}",
        # the shop: cart, checkout and payment
        "/api/mp/{brand_slug}/shop/cart",
        "/api/mp/{brand_slug}/shop/cart/{sku_id}",
        "/api/mp/{brand_slug}/shop/checkout",
        "/api/mp/{brand_slug}/shop/checkout/quote",
        "/api/mp/{brand_slug}/shop/orders/{order_no}/cancel",
        "/api/mp/{brand_slug}/shop/orders/{order_no}/pay",
        "/api/mp/{brand_slug}/shop/orders/{order_no}/pay/check",
        # the shop: the member's orders and after-sale
        "/api/mp/{brand_slug}/shop/orders",
        "/api/mp/{brand_slug}/shop/orders/{order_no}",
        "/api/mp/{brand_slug}/shop/orders/{order_no}/receive",
        "/api/mp/{brand_slug}/shop/orders/{order_no}/after-sales",
        "/api/mp/{brand_slug}/shop/after-sales/{request_no}/cancel",
        "/api/mp/{brand_slug}/shop/after-sales/{request_no}/tracking",
        # guide distribution: a guide's shop by the scene of their mini-program code
        "/api/mp/{brand_slug}/guide-shops/{scene}",
        "/api/mp/{brand_slug}/games/{campaign_id}/draws",
    }
    assert set(paths["/api/mp/{brand_slug}/profile"]) == {"get", "patch"}
    login_op = paths["/api/mp/{brand_slug}/login"]["post"]
    assert login_op["security"] == []
    schema_ref = login_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("/LoginRequest")
    assert "401" in paths["/api/mp/{brand_slug}/card"]["get"]["responses"]
    assert "TierOut" in doc["components"]["schemas"]
