"""Till orders through the POS API: one order per idempotency key however often and however
concurrently it is posted, points earned once, another store's key refused, the stock
checked, bad input answered as JSON errors."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from core.db import db
from coupons import services as coupon_services
from members.tillcode import make_till_code
from points.models import PointsEntry
from shop import signals
from shop.models import COMPLETED, TILL, MemberPurchaseFacts, Order, OrderLine, Sku
from tests import factories
from tests.shop.conftest import coupon, member, product


@pytest.fixture
def till(shop):
    _row, raw = coupon_services.create_key(store_id=shop.store.id, label="till 1")
    db.session.commit()
    return raw


def _post(client, shop, key, body):
    slug = shop if isinstance(shop, str) else shop.brand.slug
    return client.post(
        f"/api/pos/{slug}/orders", json=body, headers={"Authorization": f"Bearer {key}"}
    )


def _body(shop, **kw):
    body = {
        "idempotency_key": "sale-1",
        "pos_order_no": "POS0001",
        "lines": [
            {"sku_code": shop.sku.code, "unit_price_fen": 2000, "quantity": 2},
            {"name": "手提袋", "unit_price_fen": 50, "quantity": 1},
        ],
        "pay_fen": 4050,
    }
    body.update(kw)
    return body


def _orders():
    return db.session.scalar(select(func.count()).select_from(Order))


def test_a_till_order_is_paid_completed_and_earns_points(client, shop, till):
    m = member()
    guide = factories.staff(shop.brand, role="guide", store=shop.store)
    c = coupon(m.id, value_fen=500)
    events = []
    with (
        signals.order_paid.connected_to(lambda s, **kw: events.append(("paid", kw["order_id"]))),
        signals.order_completed.connected_to(
            lambda s, **kw: events.append(("completed", kw["order_id"]))
        ),
    ):
        r = _post(
            client,
            shop,
            till,
            _body(
                shop,
                member={"phone": "+86 " + m.phone},
                guide_phone=guide.phone,
                coupons=[c.code],
                pay_fen=3550,
            ),
        )
    assert r.status_code == 201, r.get_json()
    out = r.get_json()
    assert out["created"] is True and out["discount_fen"] == 500 and out["member_id"] == m.id
    order = db.session.scalars(select(Order)).one()
    assert (order.channel, order.status, order.store_id, order.guide_id) == (
        TILL,
        COMPLETED,
        shop.store.id,
        guide.id,
    )
    assert order.pos_order_no == "POS0001" and order.paid_fen == 3550
    assert events == [("paid", order.id), ("completed", order.id)]
    lines = db.session.scalars(select(OrderLine).order_by(OrderLine.id)).all()
    assert [(ln.sku_id, ln.name, ln.discount_fen) for ln in lines] == [
        (shop.sku.id, "乌龙茶", 494),
        (None, "手提袋", 6),
    ]
    db.session.expire_all()
    assert db.session.get(Sku, shop.sku.id).stock == 98
    assert db.session.get(Sku, shop.sku.id).sold == 2
    assert out["points_earned"] == order.points_earned == 35
    facts = db.session.get(MemberPurchaseFacts, m.id)
    assert (facts.till_count, facts.spend_fen) == (1, 3550)
    db.session.refresh(c)
    assert c.status == "redeemed"


def test_the_member_by_till_code(client, shop, till):
    m = member()
    code = make_till_code(member_id=m.id)
    r = _post(client, shop, till, _body(shop, member={"till_code": code}))
    assert r.status_code == 201 and r.get_json()["member_id"] == m.id


def test_the_same_order_posted_ten_times_concurrently_is_one_order(app, shop, till):
    m = member()
    body = _body(shop, member={"phone": m.phone})
    slug = shop.brand.slug
    statuses = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def post():
        c = app.test_client()
        barrier.wait()
        r = _post(c, slug, till, body)
        with lock:
            statuses.append((r.status_code, r.get_json()["order_no"]))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for _ in range(2):
        r = _post(app.test_client(), shop, till, body)
        statuses.append((r.status_code, r.get_json()["order_no"]))
    assert sorted(s for s, _ in statuses) == [200] * 9 + [201]
    assert len({no for _, no in statuses}) == 1
    assert _orders() == 1
    earned = db.session.scalar(
        select(func.count()).where(PointsEntry.member_id == m.id, PointsEntry.kind == "earn")
    )
    assert earned == 1
    db.session.expire_all()
    assert db.session.get(Sku, shop.sku.id).stock == 98


def test_the_same_key_with_other_content_is_a_409(client, shop, till):
    assert _post(client, shop, till, _body(shop)).status_code == 201
    r = _post(
        client,
        shop,
        till,
        _body(
            shop,
            pay_fen=4000,
            lines=[{"sku_code": shop.sku.code, "unit_price_fen": 2000, "quantity": 2}],
        ),
    )
    assert r.status_code == 409
    assert r.get_json()["error"]["code"] == "idempotency_conflict"
    assert _orders() == 1


def test_another_stores_key_for_that_order_is_refused(client, shop, till):
    other_store = factories.store(shop.brand)
    _row, other_key = coupon_services.create_key(store_id=other_store.id)
    db.session.commit()
    assert _post(client, shop, till, _body(shop)).status_code == 201
    r = _post(client, shop, other_key, _body(shop))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "other_store"
    assert _post(client, shop, "wmbpos_wrong", _body(shop, idempotency_key="x")).status_code == 403
    assert _orders() == 1


def test_another_brands_key_is_refused(client, shop, till):
    other = factories.brand()
    r = client.post(
        f"/api/pos/{other.slug}/orders",
        json=_body(shop),
        headers={"Authorization": f"Bearer {till}"},
    )
    assert r.status_code == 403
    assert _orders() == 0


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"pay_fen": 4000}, 409, "pay_fen"),
        (
            {"lines": [{"sku_code": "S", "unit_price_fen": 100, "quantity": 0}]},
            400,
            "lines.0.quantity",
        ),
        (
            {"lines": [{"sku_code": "S", "unit_price_fen": -1, "quantity": 1}]},
            400,
            "lines.0.unit_price_fen",
        ),
        (
            {
                "lines": [{"sku_code": "UNKNOWN", "unit_price_fen": 100, "quantity": 1}],
                "pay_fen": 100,
            },
            400,
            "lines.0.name",
        ),
        ({"lines": []}, 400, "lines"),
        ({"member": {"phone": "13900000000"}}, 404, "member.phone"),
        ({"member": {"till_code": "123"}}, 400, "code"),
        ({"guide_phone": "13911112222"}, 400, "guide_phone"),
    ],
)
def test_bad_input_is_a_json_error_and_writes_nothing(client, shop, till, change, status, field):
    r = _post(client, shop, till, _body(shop, **change))
    assert r.status_code == status, r.get_json()
    assert r.get_json()["error"]["field"] == field
    assert _orders() == 0


def test_stock_short_is_a_409(client, shop, till):
    low = product(name="限量", stock_units=1)
    r = _post(
        client,
        shop,
        till,
        _body(
            shop, lines=[{"sku_code": low.code, "unit_price_fen": 100, "quantity": 2}], pay_fen=200
        ),
    )
    assert r.status_code == 409 and r.get_json()["error"]["field"] == "lines.0.quantity"
    assert _orders() == 0
    db.session.expire_all()
    assert db.session.get(Sku, low.id).stock == 1


def test_two_lines_of_one_sku_take_their_stock_together(client, shop, till):
    lines = [
        {"sku_code": shop.sku.code, "unit_price_fen": 2000, "quantity": 2},
        {"sku_code": shop.sku.code, "unit_price_fen": 1500, "quantity": 3},
    ]
    r = _post(client, shop, till, _body(shop, lines=lines, pay_fen=8500))
    assert r.status_code == 201, r.get_json()
    db.session.expire_all()
    assert db.session.get(Sku, shop.sku.id).stock == 95
    assert db.session.get(Sku, shop.sku.id).sold == 5


def test_one_members_orders_from_many_tills_at_once_all_succeed_and_earn_exactly(app, shop, till):
    """A family shares one card at several tills: distinct orders of one member at once are
    serialised on the member, never deadlocked, and each earns its own points."""
    m = member()
    slug = shop.brand.slug
    statuses = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    bodies = [
        _body(shop, member={"phone": m.phone}, idempotency_key=f"fam-{i}", pos_order_no=f"F{i}")
        for i in range(8)
    ]

    def post(i):
        body = bodies[i]
        c = app.test_client()
        barrier.wait()
        r = _post(c, slug, till, body)
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert statuses == [201] * 8
    assert _orders() == 8
    earned = db.session.execute(
        select(func.count(), func.sum(PointsEntry.points)).where(
            PointsEntry.member_id == m.id, PointsEntry.kind == "earn"
        )
    ).one()
    assert earned[0] == 8 and earned[1] % 8 == 0 and earned[1] > 0
    db.session.expire_all()
    assert db.session.get(Sku, shop.sku.id).stock == 100 - 8 * 2


def test_a_change_of_the_points_rules_is_seen_by_the_next_till_order(client, shop, till):
    """The till reads the brand's rules from the process's cache, as member pages do: an
    operator's change is committed, and the very next order earns by the new rule."""
    from points import rules

    m = member()
    first = _post(client, shop, till, _body(shop, member={"phone": m.phone}))
    assert first.status_code == 201 and first.get_json()["points_earned"] == 40
    rules.update_settings(earn_permille=2000)
    db.session.commit()
    again = _body(shop, member={"phone": m.phone}, idempotency_key="sale-2", pos_order_no="P2")
    second = _post(client, shop, till, again)
    assert second.status_code == 201 and second.get_json()["points_earned"] == 81


def test_a_deactivated_brand_takes_no_till_order(client, shop, till):
    assert _post(client, shop, till, _body(shop)).status_code == 201
    shop.brand.active = False
    db.session.commit()
    again = _body(shop, idempotency_key="sale-2", pos_order_no="P2")
    assert _post(client, shop, till, again).status_code == 404
    assert _orders() == 1


def test_a_till_order_reads_the_member_once_and_no_settings_row(client, shop, till, monkeypatch):
    """The member is read once and kept for the whole order (points, purchase activity, tier,
    tags, guide attribution); the brand and its rules come from the process's cache."""
    import psycopg

    m = member()
    guide = factories.staff(shop.brand, role="guide", store=shop.store)
    # The first orders create the system tags (which makes every process reload the brand's
    # cached rules); the one after them is the everyday order.
    for n in range(2):
        warm = _body(shop, member={"phone": m.phone}, idempotency_key=f"w{n}", pos_order_no="W")
        assert _post(client, shop, till, warm).status_code == 201
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def counted(self, query, *args, **kwargs):
        sent.append(" ".join(str(query).split()))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    body = _body(
        shop,
        member={"phone": m.phone},
        guide_phone=guide.phone,
        idempotency_key="sale-2",
        pos_order_no="P2",
    )
    r = _post(client, shop, till, body)
    monkeypatch.undo()
    assert r.status_code == 201, r.get_json()
    reads = [s for s in sent if s.startswith("SELECT")]

    def reading(table: str) -> list[str]:
        return [s for s in reads if f" FROM {table} " in s + " "]

    settings = ("brand", "points_settings", "tier_settings", "guide_settings", "tag_definition")
    assert [s for t in settings for s in reading(t)] == []
    member_reads = [s for s in reading("member") if "FOR UPDATE" not in s]
    assert len(member_reads) == 2  # the phone's member id, then the member
    assert len(reading("guide_order_attribution")) == 1  # none yet: then it is written
    order = db.session.scalars(select(Order).where(Order.pos_order_no == "P2")).one()
    assert order.guide_id == guide.id and order.points_earned == 40


def test_points_campaigns_count_from_the_next_till_order_and_for_an_order_sent_late(
    client, shop, till
):
    """Today's campaigns are read from the process's cache (an operator's new one counts from
    the next order); an order of an earlier day, sent late by the till, gets that day's."""
    import datetime as dt

    from core.db import utcnow
    from points import rules

    m = member()

    def order(n: int, **kw) -> int:
        body = _body(shop, member={"phone": m.phone}, idempotency_key=f"c{n}", pos_order_no=f"C{n}")
        r = _post(client, shop, till, {**body, **kw})
        assert r.status_code == 201, r.get_json()
        return r.get_json()["points_earned"]

    assert order(1) == 40  # 40.50 yuan at 1 point a yuan
    today = utcnow().astimezone(shop.brand.tz).date()
    rules.save_campaign(name="双倍日", multiplier_permille=2000, start_date=today, end_date=today)
    db.session.commit()
    assert order(2) == 81
    past = today - dt.timedelta(days=10)
    rules.save_campaign(name="三倍日", multiplier_permille=3000, start_date=past, end_date=past)
    db.session.commit()
    sent_late = dt.datetime.combine(past, dt.time(12), tzinfo=shop.brand.tz).isoformat()
    assert order(3, paid_at=sent_late) == 121
    assert order(4) == 81
