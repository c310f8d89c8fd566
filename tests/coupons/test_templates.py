"""Coupon templates and mall items through coupons.services, and their console pages."""

from __future__ import annotations

import datetime as dt

import pytest

from core.db import db
from core.errors import NotFound, ValidationError
from coupons import services
from coupons.models import CouponTemplate, MallItem
from tests import factories

UNTIL = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def _fields(tpl: CouponTemplate, **changes) -> dict:
    values = {
        "name": tpl.name,
        "kind": tpl.kind,
        "value_fen": tpl.value_fen,
        "valid_until": tpl.valid_until,
        "stock": tpl.stock,
    }
    values.update(changes)
    return values


def test_create_template_checks_its_fields(brand):
    with pytest.raises(ValidationError) as exc:
        services.create_template(name=" ", kind="cash", valid_days=7)
    assert exc.value.field == "name"
    with pytest.raises(ValidationError) as exc:
        services.create_template(name="x", kind="voucher", valid_days=7)
    assert exc.value.field == "kind"
    with pytest.raises(ValidationError) as exc:
        services.create_template(name="x", kind="cash", value_fen=-1, valid_days=7)
    assert exc.value.field == "value_fen"
    with pytest.raises(ValidationError) as exc:
        services.create_template(name="x", kind="cash")
    assert exc.value.field == "valid_days"
    tpl = services.create_template(
        name=" 满50减5 ", kind="cash", value_fen=500, valid_days=7, valid_until=UNTIL
    )
    assert (tpl.name, tpl.valid_days, tpl.valid_until, tpl.issued) == ("满50减5", 7, None, 0)


def test_stock_cannot_go_below_what_was_issued(brand):
    tpl = factories.coupon_template(stock=5)
    for i in range(3):
        services.issue(
            template_id=tpl.id,
            member_id=factories.member().id,
            source="console",
            idempotency_key=f"i{i}",
        )
    db.session.commit()
    with pytest.raises(ValidationError) as exc:
        services.update_template(template=tpl, **_fields(tpl, stock=2))
    assert exc.value.field == "stock"
    db.session.rollback()
    services.update_template(template=tpl, **_fields(tpl, stock=3, name="改名"))
    db.session.commit()
    assert (tpl.stock, tpl.name) == (3, "改名")
    services.update_template(template=tpl, **_fields(tpl, stock=None))
    db.session.commit()
    assert db.session.get(CouponTemplate, tpl.id).stock is None


def test_stock_check_holds_against_an_issue_committed_since_the_read(brand):
    """The page read ``issued`` before another request issued one: the table still refuses."""
    tpl = factories.coupon_template(stock=5)
    assert tpl.issued == 0  # read now, in this session's transaction
    with db.engine.begin() as other:  # another request's transaction, committed
        other.execute(
            CouponTemplate.__table__.update().where(CouponTemplate.id == tpl.id).values(issued=1)
        )
    with pytest.raises(ValidationError) as exc:
        services.update_template(template=tpl, **_fields(tpl, stock=0))
    assert exc.value.field == "stock"
    db.session.rollback()


def test_mall_item_for_a_known_template_and_stock_not_below_sold(brand):
    with pytest.raises(NotFound) as exc:
        services.create_mall_item(template_id=999999, title="x", price_points=100)
    assert exc.value.field == "template_id"
    db.session.rollback()
    tpl = factories.coupon_template()
    with pytest.raises(ValidationError) as exc:
        services.create_mall_item(template_id=tpl.id, title="x", price_points=0)
    assert exc.value.field == "price_points"
    db.session.rollback()
    item = factories.mall_item(tpl, stock=10, sort=3)
    db.session.execute(MallItem.__table__.update().where(MallItem.id == item.id).values(sold=4))
    db.session.commit()
    values = {"template_id": tpl.id, "title": "新标题", "price_points": 120}
    with pytest.raises(ValidationError) as exc:
        services.update_mall_item(item=item, stock=3, **values)
    assert exc.value.field == "stock"
    db.session.rollback()
    services.update_mall_item(item=item, stock=4, tier_ids=[1, 2], **values)
    db.session.commit()
    item = db.session.get(MallItem, item.id)
    assert (item.title, item.stock, item.tier_ids, item.sort) == ("新标题", 4, [1, 2], 3)


def test_console_edit_shows_the_stock_error_on_its_field(client, brand):
    tpl = factories.coupon_template(name="限量券", stock=2, valid_days=7, valid_until=None)
    services.issue(
        template_id=tpl.id, member_id=factories.member().id, source="console", idempotency_key="a"
    )
    db.session.commit()
    factories.login(client, brand, factories.staff(brand, "brand_admin"))
    url = f"/console/coupons/templates/{tpl.id}"
    html = client.get(url).get_data(as_text=True)
    assert 'value="5.00"' in html
    form = {
        "csrf_token": factories.csrf(html),
        "name": "限量券",
        "kind": "cash",
        "value": "5",
        "threshold": "0",
        "percent_off": "0",
        "cap": "0",
        "valid_days": "7",
        "stock": "0",
        "per_member_limit": "0",
        "per_day_limit": "0",
        "active": "y",
    }
    r = client.post(url, data=form)
    assert r.status_code == 400
    assert "库存不能少于已发放数量" in r.get_data(as_text=True)
    form["stock"] = "1"
    assert client.post(url, data=form).status_code == 302
    db.session.expire_all()
    assert db.session.get(CouponTemplate, tpl.id).stock == 1


def test_console_mall_item_new_and_edit(client, brand):
    tpl = factories.coupon_template(name="5元券")
    factories.login(client, brand, factories.staff(brand, "brand_admin"))
    html = client.get("/console/coupons/mall/new").get_data(as_text=True)
    form = {
        "csrf_token": factories.csrf(html),
        "template_id": tpl.id,
        "title": "100积分换5元券",
        "price_points": "100",
        "stock": "",
        "per_member_limit": "0",
        "tier_ids": "",
        "active": "y",
    }
    assert client.post("/console/coupons/mall/new", data=form).status_code == 302
    item = db.session.query(MallItem).one()
    form["price_points"] = "80"
    assert client.post(f"/console/coupons/mall/{item.id}", data=form).status_code == 302
    db.session.expire_all()
    assert db.session.get(MallItem, item.id).price_points == 80
