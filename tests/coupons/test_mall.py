"""The points mall's exchange: every row it writes, replays, the general path, and races on
stock (the one-statement hot path must write everything or nothing)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from core.db import db
from core.errors import Conflict
from core.jobs import OutboxJob
from coupons import mall
from coupons.models import Coupon, CouponStockEntry, CouponTemplate, MallItem, MallOrder
from points import rules
from points import services as points
from points.errors import InsufficientPoints
from points.models import PointsEntry, PointsLot
from tests import factories
from tests.support.concurrency import run_concurrently
from tests.support.points import account_of, check_invariants

NOW = dt.datetime.now(dt.UTC)


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _earn(member: int, yuan: int, key: str, days_ago: int) -> None:
    when = NOW - dt.timedelta(days=days_ago)
    points.earn_for_purchase(
        member_id=member, amount_fen=yuan * 100, occurred_at=when, idempotency_key=key, now=when
    )
    db.session.commit()


def test_exchange_writes_every_row_once_and_takes_earliest_expiring_points(brand):
    rules.update_settings(pending_days=0, expiry_months=12)
    db.session.commit()
    tpl = factories.coupon_template(
        name="5元券", stock=None, valid_days=7, valid_from=None, valid_until=None
    )
    item = factories.mall_item(tpl)
    member = factories.member().id
    _earn(member, 100, "later", days_ago=10)  # expires 10 days after the other
    _earn(member, 80, "sooner", days_ago=20)

    done = mall.exchange(item_id=item.id, member_id=member, idempotency_key="k1")
    db.session.commit()

    assert done.title == "100积分换5元券" and done.points == 100
    entry = db.session.get(PointsEntry, done.points_entry_id)
    assert (entry.kind, entry.points, entry.delta_balance, entry.reason) == (
        "spend",
        -100,
        -100,
        "mall",
    )
    assert entry.idempotency_key == "mall:k1" and entry.member_id == member
    lots = db.session.scalars(select(PointsLot).order_by(PointsLot.earned_at)).all()
    assert [(lot.amount, lot.remaining) for lot in lots] == [(80, 0), (100, 80)]
    account = check_invariants(member)
    assert (account.balance, account.lifetime_spent) == (80, 100)
    assert account.last_entry_id == entry.id
    coupon = db.session.get(Coupon, done.coupon_id)
    assert (coupon.member_id, coupon.template_id, coupon.source, coupon.status) == (
        member,
        tpl.id,
        "mall",
        "available",
    )
    assert coupon.idempotency_key == "mall:k1" and len(coupon.code) == 17
    assert coupon.valid_until - coupon.valid_from <= dt.timedelta(days=7)
    order = db.session.get(MallOrder, done.order_id)
    assert (order.item_id, order.member_id, order.points, order.points_entry_id) == (
        item.id,
        member,
        100,
        entry.id,
    )
    assert order.coupon_id == coupon.id and order.idempotency_key == "k1"
    stock = db.session.scalars(select(CouponStockEntry)).one()
    assert (stock.template_id, stock.delta_issued, stock.idempotency_key) == (
        tpl.id,
        1,
        "issue:mall:k1",
    )
    db.session.expire_all()
    assert db.session.get(MallItem, item.id).sold == 1
    assert db.session.get(CouponTemplate, tpl.id).issued == 1
    # The member's card and notification are asked for, by a job.
    assert _count(OutboxJob, OutboxJob.func == "points.jobs.sync_members") == 1

    # The same tap again: the same exchange, nothing new.
    again = mall.exchange(item_id=item.id, member_id=member, idempotency_key="k1")
    db.session.commit()
    assert again == done
    assert (
        _count(Coupon),
        _count(MallOrder),
        _count(PointsEntry, PointsEntry.kind == "spend"),
    ) == (
        1,
        1,
        1,
    )
    # The key of another exchange is refused, and spends nothing.
    other = factories.mall_item(tpl, title="另一个")
    with pytest.raises(Conflict):
        mall.exchange(item_id=other.id, member_id=member, idempotency_key="k1")
    db.session.rollback()
    assert account_of(member).balance == 80


def test_expired_points_never_pay_and_a_refusal_writes_nothing(brand):
    rules.update_settings(pending_days=0, expiry_policy="months", expiry_months=1)
    db.session.commit()
    tpl = factories.coupon_template(stock=None)
    item = factories.mall_item(tpl)
    member = factories.member().id
    _earn(member, 150, "old", days_ago=45)  # past its expiry, the expiry job has not run yet
    _earn(member, 60, "new", days_ago=1)
    with pytest.raises(InsufficientPoints):
        mall.exchange(item_id=item.id, member_id=member, idempotency_key="k1")
    db.session.rollback()
    assert (_count(Coupon), _count(MallOrder), _count(CouponStockEntry)) == (0, 0, 0)
    assert db.session.get(MallItem, item.id).sold == 0
    assert db.session.get(CouponTemplate, tpl.id).issued == 0

    _earn(member, 50, "more", days_ago=0)
    done = mall.exchange(item_id=item.id, member_id=member, idempotency_key="k2")
    db.session.commit()
    assert done.coupon_id
    account = check_invariants(member)
    assert (account.balance, account.lifetime_expired) == (10, 150)


def test_concurrent_exchanges_of_an_item_with_stock_5_sell_exactly_5(app, brand):
    tpl = factories.coupon_template(stock=None)
    item = factories.mall_item(tpl, stock=5)
    members = [factories.member().id for _ in range(30)]
    for m in members:
        points.adjust(member_id=m, points=300, reason="grant", idempotency_key=f"g{m}")
    db.session.commit()
    results = run_concurrently(
        app,
        brand.id,
        30,
        lambda i: mall.exchange(
            item_id=item.id, member_id=members[i], idempotency_key=f"x{i}"
        ).coupon_id,
    )
    winners = [members[i] for i, r in enumerate(results) if r[0] == "ok"]
    assert len(winners) == 5
    assert {r[1] for r in results if r[0] == "error"} == {"SoldOut"}
    db.session.expire_all()
    assert db.session.get(MallItem, item.id).sold == 5
    assert db.session.get(CouponTemplate, tpl.id).issued == 5
    assert (_count(Coupon), _count(MallOrder), _count(CouponStockEntry)) == (5, 5, 5)
    assert _count(PointsEntry, PointsEntry.kind == "spend") == 5
    for m in members:
        account = check_invariants(m)
        assert account.balance == (200 if m in winners else 300)


def test_concurrent_exchanges_stop_at_the_templates_stock(app, brand):
    tpl = factories.coupon_template(stock=3)
    item = factories.mall_item(tpl, stock=None)
    members = [factories.member().id for _ in range(12)]
    for m in members:
        points.adjust(member_id=m, points=100, reason="grant", idempotency_key=f"g{m}")
    db.session.commit()
    results = run_concurrently(
        app,
        brand.id,
        12,
        lambda i: mall.exchange(
            item_id=item.id, member_id=members[i], idempotency_key=f"m{members[i]}"
        ).order_id,
    )
    assert sum(1 for r in results if r[0] == "ok") == 3
    assert {r[1] for r in results if r[0] == "error"} == {"SoldOut"}
    db.session.expire_all()
    assert db.session.get(CouponTemplate, tpl.id).issued == 3
    assert db.session.get(MallItem, item.id).sold == 3
    assert db.session.scalar(select(func.sum(PointsLot.remaining))) == 900


def test_one_member_tapping_twice_at_once_gets_one_exchange(app, brand):
    tpl = factories.coupon_template(stock=None)
    item = factories.mall_item(tpl)
    member = factories.member().id
    points.adjust(member_id=member, points=1000, reason="grant", idempotency_key="g")
    db.session.commit()
    results = run_concurrently(
        app,
        brand.id,
        8,
        lambda i: mall.exchange(item_id=item.id, member_id=member, idempotency_key="tap").order_id,
    )
    assert [r[0] for r in results] == ["ok"] * 8
    assert len({r[1] for r in results}) == 1
    assert (_count(Coupon), _count(MallOrder)) == (1, 1)
    assert check_invariants(member).balance == 900


def test_an_exchange_is_three_statements(brand, monkeypatch):
    """The hot path (see coupons.mall): read, account lock, one statement for the rest."""
    import psycopg

    tpl = factories.coupon_template(stock=100)
    item = factories.mall_item(tpl, stock=100)
    member = factories.member().id
    points.adjust(member_id=member, points=500, reason="grant", idempotency_key="g")
    db.session.commit()
    mall.exchange(item_id=item.id, member_id=member, idempotency_key="warm")  # sync job queued
    db.session.commit()
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def counted(self, query, *args, **kwargs):
        sent.append(" ".join(str(query).split()[:2]))
        return execute(self, query, *args, **kwargs)

    item_id = item.id
    assert brand.timezone  # as in a request, the brand is loaded (and the transaction begun)
    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    mall.exchange(item_id=item_id, member_id=member, idempotency_key="k")
    monkeypatch.undo()
    db.session.commit()
    # (An outbox insert when the warm-up's sync slot ended meanwhile, 10 s slots.)
    assert [s for s in sent if s != "INSERT INTO"] == [
        "SELECT i.template_id,",
        "SELECT a.id,",
        "WITH lots",
    ]
    assert check_invariants(member).balance == 300
