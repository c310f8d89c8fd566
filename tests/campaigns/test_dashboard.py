"""The brand dashboard's figures equal the records underneath them, on a small brand whose
members joined, bought at the till (some orders backdated), claimed and redeemed coupons,
and earned and spent points through the real services and the POS API."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import text

from campaigns import dashboard
from core.db import db, utcnow
from coupons import claims
from coupons import services as coupon_services
from points import services as points
from shop import signals
from shop.models import Order
from tests import factories
from tests.support.concurrency import run_concurrently


def _till(client, brand, key, *, n, phone=None, pay=1000, days_ago=0.0, coupon=None):
    body = {
        "idempotency_key": f"sale-{n}",
        "pos_order_no": f"POS{n:04d}",
        "lines": [{"name": "手提袋", "unit_price_fen": pay, "quantity": 1}],
        "pay_fen": pay,
        "paid_at": (utcnow() - dt.timedelta(days=days_ago)).isoformat(),
    }
    if phone:
        body["member"] = {"phone": phone}
    if coupon:
        body["coupons"] = [coupon]
        body["pay_fen"] = pay - 500
    r = client.post(
        f"/api/pos/{brand.slug}/orders", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 201, r.get_json()
    return r.get_json()


@pytest.fixture
def shop_world(client, brand):
    a = factories.store(brand, name="静安店")
    b = factories.store(brand, name="朝阳店")
    guide = factories.staff(brand, "guide", store=a)
    _r, key_a = coupon_services.create_key(store_id=a.id, label="till a")
    _r, key_b = coupon_services.create_key(store_id=b.id, label="till b")
    db.session.commit()
    m1 = factories.member(activated=True, store=a, guide=guide, openid="o-1")
    m2 = factories.member(activated=True, store=b, openid="o-2")
    m3 = factories.member()
    m4 = factories.member()
    # m4 joined 40 days ago: outside a 30-day window
    db.session.execute(
        text("UPDATE member SET created_at = now() - interval '40 days' WHERE id = :m"),
        {"m": m4.id},
    )
    tpl = factories.coupon_template(name="满减券", value_fen=500)
    coupons = [
        claims.claim(template_id=tpl.id, member_id=m.id, idempotency_key=f"k{m.id}")
        for m in (m1, m2, m3, m4)
    ]
    points.adjust(member_id=m1.id, points=500, reason="gift", idempotency_key="g1")
    points.spend(member_id=m1.id, points=200, reason="mall", idempotency_key="s1")
    db.session.commit()
    sales = [
        dict(phone=m1.phone, days_ago=10, pay=3000, key=key_a),
        dict(phone=m1.phone, days_ago=9.99, pay=2000, key=key_a),  # same day: not returning
        dict(phone=m1.phone, days_ago=2, pay=1500, key=key_b, coupon=coupons[0].code),
        dict(phone=m2.phone, days_ago=5, pay=800, key=key_b),
        dict(phone=m3.phone, days_ago=35, pay=900, key=key_a),  # before the window
        dict(phone=m3.phone, days_ago=3, pay=1200, key=key_a),
        dict(phone=None, days_ago=1, pay=700, key=key_a),  # no member
    ]
    for n, sale in enumerate(sales, start=1):
        key = sale.pop("key")
        _till(client, brand, key, n=n, **sale)
    return {"stores": (a, b), "guide": guide, "members": (m1, m2, m3, m4)}


def _one(sql: str, **params):
    return db.session.execute(text(sql), params).scalar_one()


def test_figures_equal_the_records(brand, shop_world):
    data = dashboard.build(days=30)
    w = data["window"]
    lo = dt.datetime.combine(w.d0, dt.time(), w.tz).astimezone(dt.UTC)
    p = {"b": brand.id, "lo": lo}
    a, b = shop_world["stores"]

    # members recruited: by channel, store and guide
    rec = data["recruits"]
    assert (
        rec["total"]
        == _one("SELECT count(*) FROM member WHERE brand_id = :b AND created_at >= :lo", **p)
        == 3
    )
    by_source = dict(
        db.session.execute(
            text(
                "SELECT source, count(*) FROM member WHERE brand_id = :b AND created_at >= :lo"
                " GROUP BY source"
            ),
            p,
        ).all()
    )
    assert rec["by_channel"] == by_source and by_source["oa"] == 2
    assert dict(rec["by_store"]) == {a.id: 1, b.id: 1, 0: 1}
    assert rec["by_guide"] == [(shop_world["guide"].id, 1)]

    # coupons: 4 claimed today, one redeemed at the till
    cp = data["coupons"]
    assert (
        cp["issued"]
        == _one("SELECT count(*) FROM coupon WHERE brand_id = :b AND issued_at >= :lo", **p)
        == 4
    )
    assert (
        cp["redeemed"]
        == _one(
            "SELECT count(*) FROM coupon_redemption WHERE brand_id = :b AND created_at >= :lo"
            " AND reversed_at IS NULL",
            **p,
        )
        == 1
    )
    assert cp["rate_permille"] == 250

    # points: given (purchases, the gift) against spent
    pt = data["points"]
    assert pt["issued"] == _one(
        "SELECT sum(points) FROM points_entry WHERE brand_id = :b AND local_day >= :d0"
        " AND kind IN ('earn', 'welcome', 'adjust') AND points > 0",
        b=brand.id,
        d0=w.d0,
    )
    assert pt["spent"] == 200
    assert pt["rate_permille"] == 200 * 1000 // pt["issued"]

    # customers: first purchases against purchases of members who bought before
    cu = data["customers"]
    assert cu["new"] == 2  # m1 (10 days ago) and m2; m3's first order is older
    assert cu["returning"] == 2  # m1 two days ago, m3 three days ago (m1's same-day second: no)
    net = _one(
        "SELECT sum(paid_fen - refunded_fen) FROM shop_order WHERE brand_id = :b"
        " AND member_id IS NOT NULL AND paid_at >= :lo",
        **p,
    )
    assert cu["net_fen"] == net == 3000 + 2000 + 1000 + 800 + 1200
    members = _one("SELECT count(*) FROM member WHERE brand_id = :b", b=brand.id)
    assert data["arpu"]["members"] == members == 4
    assert data["arpu_fen"] == net // members
    month = data["arpu"]["rows"][-1]
    month_net = _one(
        "SELECT sum(paid_fen) FROM shop_order WHERE brand_id = :b AND member_id IS NOT NULL"
        " AND paid_at >= :m0",
        b=brand.id,
        m0=dt.datetime.combine(w.today.replace(day=1), dt.time(), w.tz).astimezone(dt.UTC),
    )
    assert month["net_fen"] == (month_net or 0) and month["members"] == 4

    # reach comes with push campaigns
    assert data["reach"] is None


def test_the_rollup_kept_by_the_signals_equals_a_rebuild(brand, shop_world):
    sql = text(
        "SELECT day, store_key, orders, paid_fen, refunded_fen, new_customers,"
        " returning_customers FROM campaign_customer_day WHERE brand_id = :b ORDER BY 1, 2"
    )
    kept = db.session.execute(sql, {"b": brand.id}).all()
    assert sum(r.orders for r in kept) == 6 and sum(r.new_customers for r in kept) == 3
    dashboard.rebuild()
    db.session.commit()
    assert db.session.execute(sql, {"b": brand.id}).all() == kept


def test_the_page_shows_the_figures_in_chinese(client, brand, shop_world):
    admin = factories.staff(brand, "brand_admin")
    factories.login(client, brand, admin)
    html = client.get("/console/campaigns/dashboard/?days=30").get_data(as_text=True)
    assert "品牌看板" in html and "核销率" in html and "25.0%" in html
    assert "新客" in html and "老客" in html and "ARPU" in html
    assert "推送活动" in html  # reach: said to come with push campaigns
    assert client.get("/console/campaigns/dashboard/?days=7").status_code == 200
    manager = factories.staff(brand, "store_manager", store=shop_world["stores"][0])
    other = client.application.test_client()
    factories.login(other, brand, manager)
    assert other.get("/console/campaigns/dashboard/").status_code == 403


def test_another_brands_records_stay_out(client, brand, shop_world):
    from core.tenancy import use_brand

    other = factories.brand()
    with use_brand(other.id):
        factories.member()
        dashboard_other = dashboard.build(days=30)
    assert dashboard_other["recruits"]["total"] == 1
    assert dashboard_other["customers"]["new"] == 0 and dashboard_other["coupons"]["issued"] == 0
    assert dashboard.build(days=30)["recruits"]["total"] == 3


def _totals(brand_id: int) -> tuple:
    return tuple(
        db.session.execute(
            text(
                "SELECT sum(orders), sum(paid_fen), sum(new_customers),"
                " sum(returning_customers) FROM campaign_customer_day WHERE brand_id = :b"
            ),
            {"b": brand_id},
        ).one()
    )


def test_concurrent_till_orders_are_all_counted(app, brand):
    store = factories.store(brand)
    _r, key = coupon_services.create_key(store_id=store.id, label="till")
    db.session.commit()
    n = 8
    buyers = [factories.member() for _ in range(n)]
    for m in buyers:  # members with a points account, as activated members have
        points.adjust(member_id=m.id, points=1, reason="gift", idempotency_key=f"a{m.id}")
    db.session.commit()
    phones = [m.phone for m in buyers]
    url = f"/api/pos/{brand.slug}/orders"
    barrier = threading.Barrier(n)
    statuses = []
    lock = threading.Lock()

    def post(i: int) -> None:
        client = app.test_client()
        barrier.wait()
        r = client.post(
            url,
            json={
                "idempotency_key": f"race-{i}",
                "pos_order_no": f"R{i:04d}",
                "lines": [{"name": "手提袋", "unit_price_fen": 100 * (i + 1), "quantity": 1}],
                "pay_fen": 100 * (i + 1),
                "member": {"phone": phones[i]},
            },
            headers={"Authorization": f"Bearer {key}"},
        )
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert statuses == [201] * n
    db.session.expire_all()
    # one shared row of the day and store took every order, each buyer new
    assert _totals(brand.id) == (n, sum(100 * (i + 1) for i in range(n)), n, 0)
    dashboard.rebuild()
    db.session.commit()
    assert _totals(brand.id) == (n, sum(100 * (i + 1) for i in range(n)), n, 0)


def _pay(brand_id: int, member_id: int, order_no: str) -> int:
    """An order paid as the order core pays it, and the shop's signal."""
    order = Order(
        order_no=order_no,
        channel="mini_program",
        status="paid",
        member_id=member_id,
        goods_fen=1000,
        pay_fen=1000,
        paid_fen=1000,
        paid_at=utcnow(),
    )
    db.session.add(order)
    db.session.flush()
    signals.order_paid.send(
        brand_id, order_id=order.id, member_id=member_id, store_id=None, channel="h5"
    )
    return order.id


def test_one_members_concurrent_first_payments_make_one_new_customer(app, brand):
    member_id = factories.member().id
    n = 6

    def pay(i: int) -> int:
        return _pay(brand.id, member_id, f"C{i:04d}")

    results = run_concurrently(app, brand.id, n, pay)
    assert [r[0] for r in results] == ["ok"] * n, results
    db.session.expire_all()
    assert _totals(brand.id) == (n, 1000 * n, 1, 0)
    dashboard.rebuild()
    db.session.commit()
    assert _totals(brand.id) == (n, 1000 * n, 1, 0)


def test_the_rollup_row_waits_for_the_outermost_commit(brand):
    """A savepoint released after the payment (a receiver of ``order_paid`` keeps its own
    work in one) does not write the shared row of the day: taken mid-transaction, before the
    shop's own sales row, two payments would take the two rows in opposite orders and
    deadlock."""
    _pay(brand.id, factories.member().id, "S0001")
    with db.session.begin_nested():
        db.session.execute(text("SELECT 1"))
    rows = "SELECT count(*) FROM campaign_customer_day WHERE brand_id = :b"
    assert db.session.scalar(text(rows), {"b": brand.id}) == 0
    # A savepoint rolled back keeps the payment's row pending: it is the transaction's.
    savepoint = db.session.begin_nested()
    db.session.execute(text("SELECT 1"))
    savepoint.rollback()
    db.session.commit()
    assert _totals(brand.id) == (1, 1000, 1, 0)
