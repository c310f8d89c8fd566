"""Cart, checkout and payment in the mini-program API (sign-in through the sandbox; WeChat
Pay's calls faked until the APIv3 gateway lands)."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from members.models import Member
from points import services as points
from shop.models import CLOSED, Order, ShopSettings
from tests.shop.conftest import ADDRESS, product
from tests.support.mini_program import activate, api, bearer

PHONE = "13912345678"


def _setup(brand):
    with use_brand(brand.id):
        db.session.add(ShopSettings(shipping_fee_fen=0, points_per_yuan=100, max_points_percent=50))
        db.session.commit()
        sku = product(name="铁观音", price_fen=3000, stock_units=10)
        return sku.id


def _member(brand):
    with use_brand(brand.id):
        return db.session.execute(select(Member.id).where(Member.phone == PHONE)).scalar_one()


def test_cart_quote_checkout_pay_and_cancel(wx_client, wx_brand, wx_consumer, fake_pay):
    sku_id = _setup(wx_brand)
    token, _ = activate(wx_client, wx_brand, wx_consumer, phone=PHONE)
    h = bearer(token)
    mid = _member(wx_brand)
    with use_brand(wx_brand.id):
        points.adjust(member_id=mid, points=1000, reason="测试", idempotency_key="g")
        db.session.commit()

    r = wx_client.post(
        api(wx_brand, "shop/cart"), json={"sku_id": sku_id, "quantity": 2}, headers=h
    )
    assert r.status_code == 200, r.json
    assert r.json["goods_fen"] == 6000 and r.json["items"][0]["seen_price_fen"] == 3000
    r = wx_client.post(api(wx_brand, f"shop/cart/{sku_id}"), json={"quantity": 0}, headers=h)
    assert r.status_code == 400 and r.json["error"]["field"] == "quantity"

    body = {"points": 1000, "address": ADDRESS}
    r = wx_client.post(api(wx_brand, "shop/checkout/quote"), json=body, headers=h)
    assert r.status_code == 200, r.json
    assert (r.json["pay_fen"], r.json["points_fen"], r.json["max_points"]) == (5000, 1000, 3000)

    r = wx_client.post(
        api(wx_brand, "shop/checkout"), json={**body, "idempotency_key": "t1"}, headers=h
    )
    assert r.status_code == 201, r.json
    order_no = r.json["order_no"]
    again = wx_client.post(
        api(wx_brand, "shop/checkout"), json={**body, "idempotency_key": "t1"}, headers=h
    )
    assert again.status_code == 200 and again.json["order_no"] == order_no
    assert wx_client.get(api(wx_brand, "shop/cart"), headers=h).json["items"] == []

    r = wx_client.post(api(wx_brand, f"shop/orders/{order_no}/pay"), headers=h)
    assert r.status_code == 200, r.json
    assert r.json["out_trade_no"] == order_no + "P1"
    assert fake_pay.prepays[0]["notify_url"].endswith(f"/pay/notify/{wx_brand.slug}")
    r = wx_client.post(api(wx_brand, f"shop/orders/{order_no}/pay/check"), headers=h)
    assert r.json["status"] == "created"

    r = wx_client.post(api(wx_brand, f"shop/orders/{order_no}/cancel"), headers=h)
    assert r.status_code == 200 and r.json["status"] == CLOSED
    with use_brand(wx_brand.id):
        assert points.balance(mid).balance == 1000


def test_bad_checkouts_answer_json_errors_and_create_nothing(wx_client, wx_brand, wx_consumer):
    sku_id = _setup(wx_brand)
    token, _ = activate(wx_client, wx_brand, wx_consumer, phone=PHONE)
    h = bearer(token)
    cases = [
        ({"items": [{"sku_id": sku_id, "quantity": -1}]}, 400, "items.0.quantity"),
        ({"items": [{"sku_id": 999999, "quantity": 1}]}, 404, "items.0.sku_id"),
        (
            {"items": [{"sku_id": sku_id, "quantity": 1, "seen_price_fen": 2500}]},
            409,
            "items.0.price",
        ),
        ({"items": [{"sku_id": sku_id, "quantity": 1}], "coupons": ["NOPE"]}, 404, "coupons"),
        ({"items": [{"sku_id": sku_id, "quantity": 1}], "points": 10}, 409, "points"),
        ({"items": [{"sku_id": sku_id, "quantity": 11}]}, 409, "items.0.quantity"),
    ]
    for extra, status, field in cases:
        body = {"address": ADDRESS, "idempotency_key": f"k{status}{field}", **extra}
        r = wx_client.post(api(wx_brand, "shop/checkout"), json=body, headers=h)
        assert (r.status_code, r.json["error"]["field"]) == (status, field), (extra, r.json)
    with use_brand(wx_brand.id):
        assert db.session.scalar(select(func.count()).select_from(Order)) == 0


def test_the_openapi_document_lists_the_shop_operations(wx_client):
    doc = wx_client.get("/api/mp/openapi.json").json
    for path in ("shop/cart", "shop/checkout", "shop/checkout/quote", "shop/orders/{order_no}/pay"):
        assert "/api/mp/{brand_slug}/" + path in doc["paths"]
