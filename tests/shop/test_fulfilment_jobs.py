"""The periodic jobs of fulfilment, refunds and reconciliation: listed, fanned out per brand,
idempotent."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.db import db
from core.jobs import OutboxJob
from shop import fulfilment, jobs_aftersale
from shop.models import COMPLETED, RECEIVED, Order, ReconciliationIssue
from tests.shop import factories as sf
from tests.shop.aftersale_fixtures import *  # noqa: F403 - the fixtures


def test_the_jobs_are_periodic(app):
    from app import periodic_jobs

    names = {p.job.spec.name for p in periodic_jobs()}
    assert {
        "shop.jobs_aftersale.fulfilment_all",
        "shop.jobs_aftersale.refunds_query_all",
        "shop.jobs_aftersale.reconcile_all",
    } <= names


def test_fulfilment_fans_out_per_brand_and_moves_due_orders(brand, store, skus, member_id):
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    o = sf.paid_order(member_id=member_id, lines=[(skus[0], 1)], store_id=store.id)
    fulfilment.ship(order_id=o.id, carrier="EMS", tracking_no="E1", now=long_ago)
    db.session.commit()
    assert jobs_aftersale.fulfilment_all() == 1
    assert jobs_aftersale.fulfilment_all() == 1
    queued = db.session.scalars(
        select(OutboxJob).where(OutboxJob.func == "shop.jobs_aftersale.fulfilment_brand")
    ).all()
    assert len(queued) == 1  # one per brand and hour
    assert jobs_aftersale.fulfilment_brand(brand.id) == 1  # received (completes in a week)
    db.session.commit()
    assert db.session.get(Order, o.id).status == RECEIVED
    db.session.execute(
        Order.__table__.update().where(Order.id == o.id).values(received_at=long_ago)
    )
    assert jobs_aftersale.fulfilment_brand(brand.id) == 1
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Order, o.id).status == COMPLETED
    assert jobs_aftersale.fulfilment_brand(brand.id) == 0


def test_reconcile_brand_runs_the_day_with_the_gateways_bill(brand, store, skus, fake_pay):
    fake_pay.bill = [{"out_trade_no": "NOPE1", "trade_state": "SUCCESS", "amount_fen": 5}]
    assert jobs_aftersale.reconcile_brand(brand.id, "2026-03-10") == 1
    assert jobs_aftersale.reconcile_brand(brand.id, "2026-03-10") == 0
    issue = db.session.scalars(select(ReconciliationIssue)).one()
    assert (issue.bill_date, issue.kind) == (dt.date(2026, 3, 10), "missing_here")
