"""The same refund notify delivered many times at once: one effect."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import db
from core.tenancy import use_brand
from members.models import MemberActivity
from points.models import PointsEntry
from shop import refunds, signals
from shop.models import RF_SUCCESS, OrderLine, Refund, SalesDayRollup, StockEntry
from tests.shop import factories as sf
from tests.shop.aftersale_fixtures import *  # noqa: F403 - the fixtures
from tests.shop.aftersale_fixtures import Notice
from tests.support.concurrency import run_concurrently


def test_the_same_refund_notify_ten_times_at_once_applies_once(
    app, brand, store, skus, member_id, fake_pay
):
    order = sf.paid_order(
        member_id=member_id, lines=[(skus[0], 2)], store_id=store.id, points_used=500
    )
    line = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).one()
    fake_pay.mode = "PROCESSING"
    r = refunds.start(order_id=order.id, items=[refunds.Item(line.id, 2)], restock=True)
    db.session.commit()
    refunds.submit(refund_id=r.id)
    db.session.commit()
    notice = Notice(f"{order.order_no}P1", r.out_refund_no, "50300123", "SUCCESS", r.amount_fen)
    sent = []
    with signals.order_refunded.connected_to(lambda sender, **kw: sent.append(kw)):
        results = run_concurrently(app, brand.id, 10, lambda i: refunds.on_refund_notify(notice))
    outcomes = sorted(r[1] for r in results)
    assert outcomes == ["applied"] + ["duplicate"] * 9, results
    assert len(sent) == 1
    with use_brand(brand.id):
        db.session.expire_all()
        assert db.session.get(Refund, r.id).status == RF_SUCCESS
        for key in (f"shop:{r.out_refund_no}:reverse", f"shop:{r.out_refund_no}:return"):
            assert db.session.scalar(
                select(func.count()).select_from(PointsEntry).where(
                    PointsEntry.idempotency_key == key)) == 1  # fmt: skip
        key = f"shop:{r.out_refund_no}:refund"
        acts = select(func.count()).select_from(MemberActivity)
        assert db.session.scalar(acts.where(MemberActivity.idempotency_key == key)) == 1
        assert db.session.scalar(select(func.sum(StockEntry.delta)).where(
            StockEntry.reason == "restock")) == 2  # fmt: skip
        assert db.session.scalar(select(SalesDayRollup.refunded_fen)) == r.amount_fen


def test_eight_refunds_of_a_three_unit_line_at_once_refund_three_units(
    app, brand, store, skus, member_id, fake_pay
):
    order = sf.paid_order(
        member_id=member_id, lines=[(skus[1], 3)], store_id=store.id, points_used=301
    )
    line = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).one()
    results = run_concurrently(
        app,
        brand.id,
        8,
        lambda i: refunds.start(order_id=order.id, items=[refunds.Item(line.id, 1)]).id,
    )
    ok = [r[1] for r in results if r[0] == "ok"]
    assert len(ok) == 3, results
    assert {r[1] for r in results if r[0] == "error"} == {"ValidationError"}
    with use_brand(brand.id):
        for rid in ok:
            refunds.submit(refund_id=rid)
        db.session.commit()
        db.session.expire_all()
        line = db.session.get(OrderLine, line.id)
        got = db.session.scalars(select(Refund.amount_fen).where(Refund.order_id == order.id))
        assert sum(got) == line.pay_fen == line.refunded_fen
        assert line.refunded_points == line.points_used == 301
        returned = db.session.scalars(select(Refund.points_returned)).all()
        assert sum(returned) == 301
