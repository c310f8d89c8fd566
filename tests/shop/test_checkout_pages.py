"""The member's cart, checkout and pay pages (H5)."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import db
from points import services as points
from shop.models import Order, Reservation
from tests import factories
from tests.shop.conftest import coupon, member


def _signed_in(client, shop, **kw):
    m = member(**kw)
    factories.sign_in_member(client, shop.brand, m.id)
    return m


def _csrf(client, shop):
    return factories.csrf(client, f"/m/{shop.brand.slug}/shop/cart")


def test_add_to_cart_check_out_and_reach_the_pay_page(client, shop):
    m = _signed_in(client, shop, points_balance=800)
    c = coupon(m.id, value_fen=500, name="满减券")
    base = f"/m/{shop.brand.slug}/shop"
    token = _csrf(client, shop)
    r = client.post(
        f"{base}/cart", data={"sku_id": shop.sku.id, "quantity": 2, "csrf_token": token}
    )
    assert r.status_code == 303 and r.headers["Location"].endswith("/shop/cart")
    page = client.get(f"{base}/cart").get_data(as_text=True)
    assert "乌龙茶" in page and "¥40.00" in page

    page = client.get(f"{base}/checkout").get_data(as_text=True)
    assert "满减券" in page and "¥48.00" in page  # 40.00 + 8.00 shipping
    key = factories.csrf(page)
    request_key = page.split('name="request_key" value="')[1].split('"')[0]
    form = {
        "csrf_token": key,
        "request_key": request_key,
        f"price_{shop.sku.id}": "2000",
        "fulfilment": "delivery",
        "address_name": "张三",
        "address_phone": "13800138000",
        "address_province": "上海",
        "address_city": "上海",
        "address_district": "徐汇区",
        "address_detail": "漕溪北路 1 号",
        "coupon": c.code,
        "points": "500",
    }
    r = client.post(f"{base}/checkout", data=form)
    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    order = db.session.scalars(select(Order)).one()
    assert r.headers["Location"].endswith(f"/shop/orders/{order.order_no}/pay")
    assert (order.pay_fen, order.channel) == (4000 - 500 - 500 + 800, "h5")
    again = client.post(f"{base}/checkout", data=form)  # a second tap
    assert again.status_code == 303
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1
    assert points.balance(m.id).balance == 300

    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "¥38.00" in page and order.order_no in page


def test_buy_now_goes_to_the_checkout_with_that_sku(client, shop):
    _signed_in(client, shop)
    base = f"/m/{shop.brand.slug}/shop"
    r = client.post(
        f"{base}/cart",
        data={
            "sku_id": shop.other_sku.id,
            "quantity": 1,
            "buy_now": "1",
            "csrf_token": _csrf(client, shop),
        },
    )
    assert r.status_code == 303 and "/shop/checkout?" in r.headers["Location"]
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "茶杯" in page and "乌龙茶" not in page


def test_a_price_changed_before_placing_shows_the_new_price_and_creates_nothing(client, shop):
    _signed_in(client, shop)
    base = f"/m/{shop.brand.slug}/shop"
    page = client.get(f"{base}/checkout?sku_id={shop.sku.id}&quantity=1").get_data(as_text=True)
    shop.sku.price_fen = 2600
    db.session.commit()
    form = {
        "csrf_token": factories.csrf(page),
        "request_key": "k1",
        "sku_id": shop.sku.id,
        "quantity": "1",
        f"price_{shop.sku.id}": "2000",
        "fulfilment": "pickup",
        "store_id": shop.store.id,
    }
    r = client.post(f"{base}/checkout", data=form)
    assert r.status_code == 409
    assert "26.00" in r.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Reservation)) == 0


def test_a_guest_is_sent_to_sign_in(client, shop):
    r = client.get(f"/m/{shop.brand.slug}/shop/cart")
    assert r.status_code == 302


def test_a_flash_sale_bought_now_from_the_page_and_a_sold_out_answer(client, shop):
    from tests.shop.conftest import flash_sale

    sale = flash_sale(shop.other_sku, quantity=1, price_fen=990)
    base = f"/m/{shop.brand.slug}/shop"
    _signed_in(client, shop)
    token = _csrf(client, shop)
    r = client.post(
        f"{base}/cart",
        data={"sku_id": shop.other_sku.id, "quantity": 1, "buy_now": "1",
              "flash_sale_id": sale.id, "csrf_token": token},
    )  # fmt: skip
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "¥9.90" in page
    form = {
        "csrf_token": token,
        "sku_id": shop.other_sku.id,
        "quantity": "1",
        "flash_sale_id": sale.id,
        f"price_{shop.other_sku.id}": "990",
        "fulfilment": "pickup",
        "store_id": shop.store.id,
    }
    assert client.post(f"{base}/checkout", data={**form, "request_key": "a"}).status_code == 303
    other = factories.brand()  # noqa: F841 - another brand's data stays apart
    _signed_in(client, shop)
    r = client.post(
        f"{base}/checkout", data={**form, "request_key": "b", "csrf_token": _csrf(client, shop)}
    )
    assert r.status_code == 409 and "已售罄" in r.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1
