"""The shop rules: defaults until the brand saves its own (reading writes nothing), the
console form as the brand admin fills it (yuan, provinces, checks), bad values refused with
nothing saved, and what checkout then charges."""

from __future__ import annotations

from sqlalchemy import func, select

from core.audit import AuditLog
from core.db import db
from core.tenancy import use_brand
from shop import pricing
from shop import settings as shop_settings
from shop.models import DELIVERY, PICKUP, ShopSettings
from tests import factories

URL = "/console/shop/settings"


def _rows() -> int:
    return db.session.scalar(select(func.count()).select_from(ShopSettings))


def _form(client, **changes) -> dict:
    data = {
        "csrf_token": factories.csrf_token(client, URL),
        "points_per_yuan": "100",
        "max_points_percent": "50",
        "pay_timeout_minutes": "15",
        "allow_delivery": "y",
        "allow_pickup": "y",
        "shipping_fee": "8",
        "free_shipping": "99",
        "shipping_by_region": "新疆 20\n西藏：25.5",
        "auto_receive_days": "10",
        "auto_complete_days": "7",
        "return_window_days": "15",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_defaults_are_read_without_writing(brand):
    s = shop_settings.get_settings()
    assert (s.points_per_yuan, s.max_points_percent, s.pay_timeout_minutes) == (100, 50, 15)
    assert (s.auto_receive_days, s.auto_complete_days, s.return_window_days) == (10, 7, 15)
    assert s.allow_delivery and s.allow_pickup and s.shipping_by_region == {}
    db.session.flush()
    assert _rows() == 0


def test_the_admin_saves_the_rules_and_checkout_charges_them(client, brand):
    factories.login(client, brand, factories.staff(brand, "brand_admin"))
    html = client.get(URL).get_data(as_text=True)
    assert "商城设置" in html and "抵扣 1 元所需积分" in html and "按省份设置运费" in html
    r = client.post(URL, data=_form(client, points_per_yuan="200", auto_receive_days="14"))
    assert r.status_code == 302
    db.session.expire_all()
    with use_brand(brand.id):
        s = shop_settings.get_settings()
        assert (s.points_per_yuan, s.shipping_fee_fen, s.free_shipping_fen) == (200, 800, 9900)
        assert s.shipping_by_region == {"新疆": 2000, "西藏": 2550}
        assert s.auto_receive_days == 14
        fee = pricing.shipping_fee
        assert fee(s, fulfilment=DELIVERY, province="新疆", fen=5000) == 2000
        assert fee(s, fulfilment=DELIVERY, province="浙江", fen=5000) == 800
        assert fee(s, fulfilment=DELIVERY, province="新疆", fen=9900) == 0  # free from 99
        assert fee(s, fulfilment=PICKUP, province=None, fen=100) == 0
        audit = db.session.scalars(
            select(AuditLog).where(AuditLog.object_type == "shop_settings")
        ).all()
        assert len(audit) == 1 and audit[0].after["points_per_yuan"] == 200
    # The form shows what was saved, in yuan and one province a line.
    html = client.get(URL).get_data(as_text=True)
    assert 'value="200"' in html and 'value="8.00"' in html and "新疆 20.00" in html


def test_bad_values_are_refused_and_nothing_is_saved(client, brand):
    factories.login(client, brand, factories.staff(brand, "brand_admin"))
    for changes, message in [
        ({"shipping_by_region": "新疆\n"}, "第 1 行：请填写省份和运费（元）"),
        ({"shipping_by_region": "浙江 5\n新疆 -3"}, "第 2 行"),
        ({"allow_delivery": None, "allow_pickup": None}, "请至少开启快递配送或门店自提中的一种"),
        ({"points_per_yuan": "0"}, None),
        ({"pay_timeout_minutes": "1"}, None),
        ({"return_window_days": "181"}, None),
        ({"auto_receive_days": "2"}, None),
        ({"auto_receive_days": "31"}, None),
        ({"shipping_fee": "8.001"}, None),
    ]:
        r = client.post(URL, data=_form(client, **changes))
        assert r.status_code == 400, changes
        html = r.get_data(as_text=True)
        assert 'class="error"' in html, changes
        if message:
            assert message in html, changes
    with use_brand(brand.id):
        assert _rows() == 0


def test_only_brand_admins_and_each_brand_its_own(client, brand, app):
    store = factories.store(brand)
    factories.login(client, brand, factories.staff(brand, "store_manager", store=store))
    assert client.get(URL).status_code == 403
    other = factories.brand()
    with use_brand(other.id):
        shop_settings.update_settings(points_per_yuan=500)
        db.session.commit()
    with use_brand(brand.id):
        assert shop_settings.get_settings().points_per_yuan == 100
    with use_brand(other.id):
        assert shop_settings.get_settings().points_per_yuan == 500
