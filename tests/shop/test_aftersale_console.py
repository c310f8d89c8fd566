"""Console pages of orders, after-sale, pick-up and reconciliation through the real routes:
they render in Chinese, their forms submit, other brands' and other stores' orders are 404."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.db import db
from core.tenancy import use_brand
from shop import aftersale, fulfilment, refunds
from shop.models import AfterSale, Order, OrderLine, ReconciliationIssue, Refund
from tests import factories
from tests.shop import factories as sf
from tests.shop.aftersale_fixtures import *  # noqa: F403 - the fixtures


def _line(order) -> OrderLine:
    return db.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).first()


def _fresh(model, ident):
    return db.session.execute(
        select(model).where(model.id == ident).execution_options(populate_existing=True)
    ).scalar_one()


def test_order_list_searches_by_number_phone_store_and_filters(client, brand, store, skus):
    m = factories.member(phone="13912345678")
    other_store = factories.store(brand)
    a = sf.paid_order(member_id=m.id, lines=[(skus[0], 1)], store_id=store.id)
    b = sf.paid_order(member_id=None, lines=[(skus[1], 1)], store_id=other_store.id)
    factories.login(client, brand, factories.staff(brand))
    html = client.get("/console/shop/orders").get_data(as_text=True)
    assert "订单" in html and a.order_no in html and b.order_no in html
    assert "139****5678" in html and "13912345678" not in html
    only_a = client.get(f"/console/shop/orders?q={a.order_no}").get_data(as_text=True)
    assert a.order_no in only_a and b.order_no not in only_a
    by_phone = client.get("/console/shop/orders?q=139 1234 5678").get_data(as_text=True)
    assert a.order_no in by_phone and b.order_no not in by_phone
    by_store = client.get(f"/console/shop/orders?store_id={other_store.id}").get_data(as_text=True)
    assert b.order_no in by_store and a.order_no not in by_store
    shipped = client.get("/console/shop/orders?status=shipped").get_data(as_text=True)
    assert a.order_no not in shipped and "没有符合条件的订单" in shipped
    assert client.get("/console/shop/orders?channel=till&after=abc").status_code == 200


def test_order_detail_shows_allocations_and_ships(client, brand, store, skus, member_id):
    coupon = sf.coupon_for(member_id, value_fen=1000)
    o = sf.paid_order(
        member_id=member_id, lines=[(skus[0], 2), (skus[1], 1)], store_id=store.id,
        coupon=coupon, points_used=500,
    )  # fmt: skip
    factories.login(client, brand, factories.staff(brand))
    url = f"/console/shop/orders/{o.id}"
    html = client.get(url).get_data(as_text=True)
    assert o.order_no in html and "待发货" in html and f"{o.order_no}P1" in html
    for ln in db.session.scalars(select(OrderLine).where(OrderLine.order_id == o.id)):
        assert f"−¥{ln.discount_fen / 100:.2f}" in html and f"¥{ln.pay_fen / 100:.2f}" in html
    token = factories.csrf(html)
    bad = client.post(f"{url}/ship", data={"csrf_token": token, "carrier": "", "tracking_no": "1"})
    assert bad.status_code == 400 and "待发货" in bad.get_data(as_text=True)
    ok = client.post(
        f"{url}/ship", data={"csrf_token": token, "carrier": "顺丰", "tracking_no": "SF100"}
    )
    assert ok.status_code == 303
    assert _fresh(Order, o.id).status == "shipped"
    html = client.get(url).get_data(as_text=True)
    assert "已发货" in html and "SF100" in html
    again = client.post(
        f"{url}/ship", data={"csrf_token": token, "carrier": "顺丰", "tracking_no": "SF100"}
    )
    assert again.status_code == 409


def test_another_brands_order_and_another_stores_order_are_404(client, brand, store, skus):
    other_store = factories.store(brand)
    mine = sf.paid_order(member_id=None, lines=[(skus[0], 1)], store_id=store.id)
    theirs = sf.paid_order(member_id=None, lines=[(skus[0], 1)], store_id=other_store.id)
    manager = factories.staff(brand, role="store_manager", store=store)
    other_brand = factories.brand()
    with use_brand(other_brand.id):
        foreign_skus = sf.catalog()
        foreign = sf.paid_order(member_id=None, lines=[(foreign_skus[0], 1)])
    factories.login(client, brand, manager)
    assert client.get(f"/console/shop/orders/{mine.id}").status_code == 200
    assert client.get(f"/console/shop/orders/{theirs.id}").status_code == 404
    assert client.get(f"/console/shop/orders/{foreign.id}").status_code == 404
    listing = client.get("/console/shop/orders").get_data(as_text=True)
    assert mine.order_no in listing and theirs.order_no not in listing
    scoped = client.get(f"/console/shop/orders?store_id={other_store.id}").get_data(as_text=True)
    assert theirs.order_no not in scoped
    token = factories.csrf(client, f"/console/shop/orders/{mine.id}")
    r = client.post(
        f"/console/shop/orders/{theirs.id}/ship",
        data={"csrf_token": token, "carrier": "EMS", "tracking_no": "E1"},
    )
    assert r.status_code == 404
    with use_brand(brand.id):
        assert _fresh(Order, theirs.id).status == "paid"


def test_after_sale_queue_approves_and_refuses(client, brand, store, skus, member_id, fake_pay):
    o = sf.paid_order(member_id=member_id, lines=[(skus[0], 2), (skus[1], 1)], store_id=store.id)
    lines = list(db.session.scalars(select(OrderLine).where(OrderLine.order_id == o.id)))
    a = aftersale.request(order_id=o.id, member_id=member_id, kind="refund_only",
                          items=[refunds.Item(lines[0].id, 1)], reason="买多了")  # fmt: skip
    b = aftersale.request(order_id=o.id, member_id=member_id, kind="return_refund",
                          items=[refunds.Item(lines[1].id, 1)], reason="颜色不对")  # fmt: skip
    db.session.commit()
    factories.login(client, brand, factories.staff(brand))
    html = client.get("/console/shop/after-sales").get_data(as_text=True)
    assert a.request_no in html and b.request_no in html and "买多了" in html
    token = factories.csrf(html)
    r = client.post(f"/console/shop/after-sales/{a.id}/approve", data={"csrf_token": token})
    assert r.status_code == 303
    assert _fresh(AfterSale, a.id).status == "refunding"
    refund = db.session.scalars(select(Refund).where(Refund.after_sale_id == a.id)).one()
    refunds.submit(refund_id=refund.id)
    db.session.commit()
    assert _fresh(AfterSale, a.id).status == "refunded"
    empty = client.post(
        f"/console/shop/after-sales/{b.id}/refuse", data={"csrf_token": token, "refuse_reason": ""}
    )
    assert empty.status_code == 303 and _fresh(AfterSale, b.id).status == "requested"
    client.post(
        f"/console/shop/after-sales/{b.id}/refuse",
        data={"csrf_token": token, "refuse_reason": "已超过退货期限"},
    )
    assert _fresh(AfterSale, b.id).status == "refused"
    closed = client.get("/console/shop/after-sales?tab=closed").get_data(as_text=True)
    assert "已拒绝" in closed and "已超过退货期限" in closed and "已退款" in closed
    detail = client.get(f"/console/shop/orders/{o.id}").get_data(as_text=True)
    assert refund.out_refund_no in detail


def test_pickup_page_verifies_the_code_of_its_store(client, brand, store, skus, member_id):
    o = sf.paid_order(member_id=member_id, lines=[(skus[0], 1)], store_id=store.id,
                      fulfilment="pickup")  # fmt: skip
    code = fulfilment.mark_ready(order_id=o.id).pickup_code
    db.session.commit()
    other = factories.store(brand)
    guide = factories.staff(brand, role="guide", store=other)
    factories.login(client, brand, guide)
    token = factories.csrf(client, "/console/shop/pickup")
    wrong = client.post("/console/shop/pickup", data={"csrf_token": token, "code": code})
    assert wrong.status_code == 404 and "没有待自提的订单" in wrong.get_data(as_text=True)
    assert _fresh(Order, o.id).status == "ready"
    client.get("/console/logout")
    factories.login(client, brand, factories.staff(brand, role="guide", store=store))
    token = factories.csrf(client, "/console/shop/pickup")
    ok = client.post("/console/shop/pickup", data={"csrf_token": token, "code": code})
    assert ok.status_code == 303
    assert _fresh(Order, o.id).status == "received"


def test_reconciliation_page_lists_and_resolves(client, brand, store, skus, member_id, fake_pay):
    from shop import reconcile

    day = dt.date(2026, 3, 10)
    reconcile.record(bill_date=day, rows=[{"out_trade_no": "X1", "trade_state": "SUCCESS",
                                           "amount_fen": 100}])  # fmt: skip
    db.session.commit()
    factories.login(client, brand, factories.staff(brand))
    html = client.get("/console/shop/reconciliation").get_data(as_text=True)
    assert "对账" in html and "X1" in html and "2026-03-10" in html
    assert "微信支付已收款，本系统未记为已付" in html and "已付款 ¥1.00" in html
    issue = db.session.scalars(select(ReconciliationIssue)).one()
    token = factories.csrf(html)
    r = client.post(f"/console/shop/reconciliation/{issue.id}/resolve", data={"csrf_token": token})
    assert r.status_code == 303
    assert _fresh(ReconciliationIssue, issue.id).resolved is True
    manager = factories.staff(brand, role="store_manager", store=store)
    client.get("/console/logout")
    factories.login(client, brand, manager)
    assert client.get("/console/shop/reconciliation").status_code == 403


def test_overview_shows_the_sales_section(client, brand, store, skus, member_id):
    sf.paid_order(member_id=member_id, lines=[(skus[0], 1)], store_id=store.id)
    factories.login(client, brand, factories.staff(brand))
    html = client.get("/console/").get_data(as_text=True)
    assert "商城销售" in html and "按渠道" in html


def test_a_refunds_reason_reads_in_words_with_why_it_failed(app):
    from shop.views_console_orders import refund_reason

    cases = [
        (Refund(reason="尺码不合适"), "尺码不合适"),
        (
            Refund(reason="尺码不合适 [refused:NOT_ENOUGH]"),
            "尺码不合适；微信支付拒绝退款（商户账户余额不足）",
        ),
        (Refund(reason=" [refused:SOME_NEW_CODE]"), "微信支付拒绝退款"),
        (Refund(reason="坏了 [closed]"), "坏了；微信支付已关闭此退款"),
        (Refund(reason="", payment_id=7), "重复支付：多付的一笔全额原路退回"),
        (
            Refund(reason=" [abnormal]", payment_id=7),
            "重复支付：多付的一笔全额原路退回；退款异常，请在微信支付商户平台处理",
        ),
    ]
    with app.test_request_context("/console/shop/orders"):
        assert [refund_reason(r) for r, _want in cases] == [want for _r, want in cases]
