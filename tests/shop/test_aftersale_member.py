"""The member's order pages, the mini-program API of orders and after-sale, and the till's
refunds over the POS API."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from coupons.pos_api import create_key
from shop import fulfilment, refunds
from shop.models import TILL, AfterSale, Order, OrderLine, Refund, Sku
from tests import factories
from tests.shop import factories as sf
from tests.shop.aftersale_fixtures import *  # noqa: F403 - the fixtures
from tests.support.mini_program import activate, api, bearer


def _fresh(model, ident):
    return db.session.execute(
        select(model).where(model.id == ident).execution_options(populate_existing=True)
    ).scalar_one()


def test_my_orders_detail_pickup_code_and_after_sale(client, brand, store, skus, member_id):
    o = sf.paid_order(member_id=member_id, lines=[(skus[0], 2), (skus[1], 1)], store_id=store.id,
                      fulfilment="pickup")  # fmt: skip
    code = fulfilment.mark_ready(order_id=o.id).pickup_code
    db.session.commit()
    base = f"/m/{brand.slug}/shop/orders"
    assert client.get(base).status_code == 302  # to sign in
    factories.sign_in_member(client, brand, member_id)
    html = client.get(base).get_data(as_text=True)
    assert "我的订单" in html and o.order_no in html and "待自提" in html
    detail = client.get(f"{base}/{o.order_no}").get_data(as_text=True)
    assert "提货码" in detail and "<svg" in detail and f"{code[:4]} {code[4:]}" in detail
    line = db.session.scalars(select(OrderLine).where(OrderLine.order_id == o.id)).first()
    token = factories.csrf(detail)
    r = client.post(
        f"{base}/{o.order_no}/after-sale",
        data={"csrf_token": token, "line_id": line.id, "quantity": 1, "kind": "return_refund",
              "reason": "尺码偏小"},
    )  # fmt: skip
    assert r.status_code == 303
    req = db.session.scalars(select(AfterSale)).one()
    assert req.request_no == f"{o.order_no}A1" and req.amount_fen == line.pay_fen // 2
    detail = client.get(f"{base}/{o.order_no}").get_data(as_text=True)
    assert "已提交" in detail and "待审核" in detail and "尺码偏小" in detail
    assert "该商品有处理中的售后申请" in detail
    # a second request for the same line is refused, with a message
    r = client.post(
        f"{base}/{o.order_no}/after-sale",
        data={"csrf_token": token, "line_id": line.id, "quantity": 1, "kind": "refund_only",
              "reason": "again"},
        follow_redirects=True,
    )  # fmt: skip
    assert "已有处理中的售后申请" in r.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(AfterSale)) == 1
    client.post(f"/m/{brand.slug}/shop/after-sales/{req.request_no}/cancel",
                data={"csrf_token": token})  # fmt: skip
    assert _fresh(AfterSale, req.id).status == "cancelled"


def test_the_order_page_tells_money_on_its_way_from_money_back(
    client, brand, store, skus, member_id
):
    o = sf.paid_order(member_id=member_id, lines=[(skus[0], 2)], store_id=store.id,
                      points_used=200)  # fmt: skip
    line = db.session.scalars(select(OrderLine).where(OrderLine.order_id == o.id)).one()
    refund = refunds.start(order_id=o.id, items=[refunds.Item(line.id, 1)])
    db.session.commit()
    factories.sign_in_member(client, brand, member_id)
    url = f"/m/{brand.slug}/shop/orders/{o.order_no}"
    html = client.get(url).get_data(as_text=True)
    half = f"¥{refund.amount_fen / 100:.2f}"
    assert f'<div class="muted" data-refunding>退款中 {half}</div>' in html
    assert "data-refunded>" not in html and "data-refund-points" not in html
    assert refunds.succeed(refund_id=refund.id, refund_no="R-TEST", via="query")
    db.session.commit()
    refund = _fresh(Refund, refund.id)
    html = client.get(url).get_data(as_text=True)
    assert f'<div class="muted" data-refunded>已退款 {half}</div>' in html
    assert "data-refunding>" not in html
    assert f"已退回抵扣的 {refund.points_returned} 积分" in html and refund.points_returned == 100


def test_another_members_order_is_404_and_receipt_confirmed(client, brand, store, skus, member_id):
    o = sf.paid_order(member_id=member_id, lines=[(skus[0], 1)], store_id=store.id)
    fulfilment.ship(order_id=o.id, carrier="顺丰", tracking_no="SF1")
    db.session.commit()
    stranger = factories.member().id
    factories.sign_in_member(client, brand, stranger)
    assert client.get(f"/m/{brand.slug}/shop/orders/{o.order_no}").status_code == 404
    factories.sign_in_member(client, brand, member_id)
    page = client.get(f"/m/{brand.slug}/shop/orders/{o.order_no}").get_data(as_text=True)
    assert "确认收货" in page and "SF1" in page
    r = client.post(f"/m/{brand.slug}/shop/orders/{o.order_no}/receive",
                    data={"csrf_token": factories.csrf(page)})  # fmt: skip
    assert r.status_code == 303
    assert _fresh(Order, o.id).status == "received"


def test_mini_program_orders_and_after_sale(wx_client, wx_brand, wx_consumer):
    token, _ = activate(wx_client, wx_brand, wx_consumer)
    with use_brand(wx_brand.id):
        from members.models import Member

        member = db.session.scalars(select(Member).where(Member.phone == "13912345678")).one()
        store = factories.store(wx_brand)
        skus = sf.catalog()
        o = sf.paid_order(member_id=member.id, lines=[(skus[0], 3)], store_id=store.id)
        line_id = db.session.scalars(select(OrderLine.id).where(OrderLine.order_id == o.id)).one()
        order_no, pay_fen = o.order_no, o.pay_fen
    h = bearer(token)
    listing = wx_client.get(api(wx_brand, "shop/orders"), headers=h)
    assert listing.status_code == 200 and listing.json["items"][0]["order_no"] == order_no
    detail = wx_client.get(api(wx_brand, f"shop/orders/{order_no}"), headers=h).json
    assert detail["lines"][0]["pay_fen"] == pay_fen and detail["lines"][0]["may_request"] is True
    bad = wx_client.post(api(wx_brand, f"shop/orders/{order_no}/after-sales"), headers=h,
                         json={"kind": "refund_only", "reason": "x",
                               "lines": [{"line_id": line_id, "quantity": -1}]})  # fmt: skip
    assert bad.status_code == 400 and bad.json["error"]["field"] == "lines.0.quantity"
    too_many = wx_client.post(api(wx_brand, f"shop/orders/{order_no}/after-sales"), headers=h,
                              json={"kind": "refund_only", "reason": "x",
                                    "lines": [{"line_id": line_id, "quantity": 4}]})  # fmt: skip
    assert too_many.status_code == 400 and too_many.json["error"]["field"] == "lines.0.quantity"
    ok = wx_client.post(api(wx_brand, f"shop/orders/{order_no}/after-sales"), headers=h,
                        json={"kind": "refund_only", "reason": "不想要了",
                              "lines": [{"line_id": line_id, "quantity": 1}]})  # fmt: skip
    assert ok.status_code == 201 and ok.json["request_no"] == f"{order_no}A1"
    assert ok.json["amount_fen"] == pay_fen // 3
    assert (
        wx_client.get(api(wx_brand, "shop/orders/19990101000000001"), headers=h).status_code == 404
    )
    doc = wx_client.get("/api/mp/openapi.json").json
    assert "/api/mp/{brand_slug}/shop/orders/{order_no}/after-sales" in doc["paths"]
    assert "AfterSaleRequest" in doc["components"]["schemas"]


def test_till_refund_over_the_pos_api_once_per_key(client, brand, store, skus, member_id):
    o = sf.paid_order(member_id=member_id, lines=[(skus[0], 2)], store_id=store.id,
                      channel=TILL, fulfilment="in_store")  # fmt: skip
    db.session.execute(
        Order.__table__.update().where(Order.id == o.id).values(pos_order_no="TILL-0001")
    )
    db.session.commit()
    _row, raw = create_key(store_id=store.id, label="till")
    other = factories.store(brand)
    _row2, other_raw = create_key(store_id=other.id, label="till 2")
    db.session.commit()
    stock_before = _fresh(Sku, skus[0].id).stock
    url = f"/api/pos/{brand.slug}/orders/TILL-0001/refunds"
    body = {"idempotency_key": "rf-1", "lines": [{"sku_code": skus[0].code, "quantity": 1}]}
    first = client.post(url, json=body, headers={"Authorization": f"Bearer {raw}"})
    again = client.post(url, json=body, headers={"Authorization": f"Bearer {raw}"})
    assert first.status_code == 201 and first.json["status"] == "success"
    assert again.json["refund_no"] == first.json["refund_no"] == f"{o.order_no}R1"
    assert db.session.scalar(select(func.count()).select_from(Refund)) == 1
    assert _fresh(Sku, skus[0].id).stock == stock_before + 1
    foreign = client.post(url, json=body, headers={"Authorization": f"Bearer {other_raw}"})
    assert foreign.status_code == 404
    assert client.post(url, json=body).status_code == 403
    bad = client.post(url, headers={"Authorization": f"Bearer {raw}"},
                      json={"idempotency_key": "rf-2", "lines": [{"sku_code": skus[0].code,
                                                                    "quantity": 5}]})  # fmt: skip
    assert bad.status_code == 400 and bad.json["error"]["field"] == "lines.0.quantity"
