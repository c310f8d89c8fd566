"""Pages: the member center (my coupons, mall, sharing), the staff redemption page and the
console, through the real routes, in Chinese."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from core.db import db
from coupons import claims
from coupons.models import Coupon, CouponTemplate, PosKey, Redemption
from points import services as points
from tests import factories
from tests.support import bulk


def test_my_coupons_shows_qr_and_tabs_in_chinese(client, brand):
    tpl = factories.coupon_template(name="满100减20", value_fen=2000, threshold_fen=10000)
    member = factories.member().id
    c = claims.claim(template_id=tpl.id, member_id=member, idempotency_key="a")
    db.session.commit()
    assert client.get(f"/m/{brand.slug}/coupons").status_code == 302  # to sign in
    factories.sign_in_member(client, brand, member)
    html = client.get(f"/m/{brand.slug}/coupons").get_data(as_text=True)
    assert "我的优惠券" in html and "可使用" in html and "满100减20" in html
    assert c.code in html and "<svg" in html and "¥20.00" in html
    used = client.get(f"/m/{brand.slug}/coupons?tab=used").get_data(as_text=True)
    assert c.code not in used


def test_another_members_session_of_another_brand_sees_nothing(client, brand):
    other = factories.brand()
    factories.sign_in_member(client, other, 1)
    assert client.get(f"/m/{brand.slug}/coupons").status_code == 302  # to sign in


def test_mall_exchange_from_the_page_once_per_tap(client, brand):
    tpl = factories.coupon_template(name="5元券")
    item = factories.mall_item(tpl)
    member = factories.member().id
    points.adjust(member_id=member, points=250, reason="grant", idempotency_key="g")
    db.session.commit()
    factories.sign_in_member(client, brand, member)
    html = client.get(f"/m/{brand.slug}/mall").get_data(as_text=True)
    assert "积分商城" in html and "100积分换5元券" in html
    key = re.search(r'name="request_key" value="([^"]+)"', html).group(1)
    data = {"csrf_token": factories.csrf(html), "request_key": key}
    for _ in range(2):  # a double tap
        r = client.post(f"/m/{brand.slug}/mall/{item.id}/exchange", data=data)
        assert r.status_code == 303
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Coupon)) == 1
    assert points.balance(member).balance == 150


def test_share_link_is_taken_by_a_friend(client, brand):
    tpl = factories.coupon_template(name="分享券")
    sharer = factories.member().id
    c = claims.claim(template_id=tpl.id, member_id=sharer, idempotency_key="s")
    db.session.commit()
    factories.sign_in_member(client, brand, sharer)
    html = client.get(f"/m/{brand.slug}/coupons").get_data(as_text=True)
    r = client.post(
        f"/m/{brand.slug}/coupons/{c.id}/share", data={"csrf_token": factories.csrf(html)}
    )
    assert r.status_code == 200 and "送给好友" in r.get_data(as_text=True)
    link = re.search(r"/m/[^/]+/coupons/share/[A-Za-z0-9_-]+", r.get_data(as_text=True)).group(0)
    friend_client = client.application.test_client()
    factories.sign_in_member(friend_client, brand, None, openid="o_friend_0000000000000009")
    page = friend_client.get(link).get_data(as_text=True)
    assert "好友送你一张优惠券" in page
    r = friend_client.post(link, data={"csrf_token": factories.csrf(page)})
    assert r.status_code == 302
    db.session.expire_all()
    got = db.session.scalars(select(Coupon).where(Coupon.source == "share")).one()
    assert got.member_id != sharer


def test_staff_redeems_by_typed_code(client, brand, store):
    tpl = factories.coupon_template(threshold_fen=5000, value_fen=500)
    c = claims.claim(template_id=tpl.id, member_id=factories.member().id, idempotency_key="x")
    db.session.commit()
    guide = factories.staff(brand, "guide", store)
    factories.login(client, brand, guide)
    page = client.get("/console/coupons/redeem")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "核销优惠券" in html
    key = re.search(r'name="request_key"[^>]*value="([^"]+)"', html)
    form = {
        "csrf_token": factories.csrf(html),
        "request_key": key.group(1),
        "code": c.code,
        "order_id": "A1",
        "amount": "49.99",
    }
    r = client.post("/console/coupons/redeem", data=form)
    assert r.status_code == 400  # below the 50-yuan threshold
    assert "订单金额需满" in r.get_data(as_text=True)
    form["amount"] = "50"
    assert client.post("/console/coupons/redeem", data=form).status_code == 303
    red = db.session.scalars(select(Redemption)).one()
    assert (red.store_id, red.staff_id, red.order_amount_fen) == (store.id, guide.id, 5000)
    form["amount"] = "-1"
    assert client.post("/console/coupons/redeem", data=form).status_code == 400


def test_console_template_issue_keys_and_report(client, brand, store):
    admin = factories.staff(brand, "brand_admin")
    factories.login(client, brand, admin)
    html = client.get("/console/coupons/templates/new").get_data(as_text=True)
    assert "新建优惠券" in html
    r = client.post(
        "/console/coupons/templates/new",
        data={
            "csrf_token": factories.csrf(html),
            "name": "满50减5",
            "kind": "cash",
            "value": "5",
            "threshold": "50",
            "percent_off": "0",
            "cap": "0",
            "valid_days": "7",
            "per_member_limit": "0",
            "per_day_limit": "0",
            "shareable": "y",
            "active": "y",
        },
    )
    assert r.status_code == 302
    tpl = db.session.scalars(select(CouponTemplate)).one()
    assert (tpl.value_fen, tpl.threshold_fen, tpl.valid_days) == (500, 5000, 7)
    bad = client.post(
        "/console/coupons/templates/new",
        data={"csrf_token": factories.csrf(html), "name": "x", "kind": "cash", "value": "-5"},
    )
    assert bad.status_code == 400
    members = [factories.member().id for _ in range(3)]
    page = client.get(f"/console/coupons/templates/{tpl.id}/issue").get_data(as_text=True)
    key = re.search(r'name="request_key"[^>]*value="([^"]+)"', page).group(1)
    data = {
        "csrf_token": factories.csrf(page),
        "request_key": key,
        "member_ids": ",".join(map(str, members)),
    }
    for _ in range(2):  # a double submit issues once
        assert (
            client.post(f"/console/coupons/templates/{tpl.id}/issue", data=data).status_code == 302
        )
    assert db.session.scalar(select(func.count()).select_from(Coupon)) == 3
    keys = client.get("/console/coupons/pos-keys").get_data(as_text=True)
    r = client.post(
        "/console/coupons/pos-keys",
        data={"csrf_token": factories.csrf(keys), "store_id": store.id, "label": "1号收银台"},
    )
    raw = re.search(r"<code>(wmbpos_[^<]+)</code>", r.get_data(as_text=True)).group(1)
    row = db.session.scalars(select(PosKey)).one()
    assert raw not in row.key_hash and row.prefix == raw[:12]
    report = client.get("/console/coupons/report").get_data(as_text=True)
    assert "优惠券报表" in report and "data-echart=" in report and "满50减5" in report
    assert client.get("/console/coupons/redemptions").status_code == 200
    assert client.get("/console/coupons/mall").status_code == 200


def test_guide_cannot_open_admin_pages(client, brand, store):
    guide = factories.staff(brand, "guide", store)
    factories.login(client, brand, guide)
    assert client.get("/console/coupons/templates").status_code == 403


def test_template_amounts_in_yuan_round_trip_to_fen(client, brand, store):
    admin = factories.staff(brand, "brand_admin")
    factories.login(client, brand, admin)
    html = client.get("/console/coupons/templates/new").get_data(as_text=True)
    data = {
        "csrf_token": factories.csrf(html),
        "name": "满88减12.5",
        "kind": "cash",
        "value": "12.50",
        "threshold": "88.8",
        "percent_off": "0",
        "cap": "0",
        "valid_days": "7",
        "per_member_limit": "0",
        "per_day_limit": "0",
        "store_ids": [str(store.id)],
        "active": "y",
    }
    refused = client.post("/console/coupons/templates/new", data=dict(data, value="12.505"))
    assert refused.status_code == 400 and "12.50" in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(CouponTemplate)) == 0
    assert client.post("/console/coupons/templates/new", data=data).status_code == 302
    tpl = db.session.scalars(select(CouponTemplate)).one()
    assert (tpl.value_fen, tpl.threshold_fen, tpl.store_ids) == (1250, 8880, [store.id])
    page = client.get(f"/console/coupons/templates/{tpl.id}").get_data(as_text=True)
    assert 'value="12.50"' in page and 'value="88.80"' in page
    # the store scope is a picker: the chosen store shows by its code and name, selected
    assert re.search(rf'<option selected value="{store.id}">{store.code} ', page) or re.search(
        rf'<option value="{store.id}" selected>', page
    ), page[page.find("store_ids") - 200 : page.find("store_ids") + 600]


def test_reach_preview_counts_up_to_a_thousand(client, brand):
    admin = factories.staff(brand, "brand_admin")
    factories.login(client, brand, admin)
    tpl = factories.coupon_template()
    db.session.commit()
    url = f"/console/coupons/templates/{tpl.id}/issue"

    def preview() -> str:
        page = client.get(url).get_data(as_text=True)
        key = re.search(r'name="request_key"[^>]*value="([^"]+)"', page).group(1)
        data = {"csrf_token": factories.csrf(page), "preview": "1", "request_key": key}
        return client.post(url, data=data).get_data(as_text=True)

    bulk.members(brand.id, 999)
    assert "将覆盖 999 位会员。" in preview()
    bulk.members(brand.id, 2, phone="'135' || lpad(g::text, 8, '0')")
    assert "将覆盖 1,000+ 位会员。" in preview()
    assert db.session.scalar(select(func.count()).select_from(Coupon)) == 0
