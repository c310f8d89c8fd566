"""Jobs of the order core: the release of an unpaid order at its pay deadline (a job per
order, enqueued by checkout, plus a periodic sweep of any it missed) and the active query of
payments still pending after a few minutes.

Both are idempotent: an order closes once (``checkout.close_order``'s conditional UPDATE),
a payment is applied once (``payments.mark_paid``'s). Before closing an order with a pending
payment, WeChat Pay is asked: a paid order is marked paid instead, and the attempt is closed
there before the order closes here.

Once an order is paid, its other attempts are closed at WeChat Pay (``close_attempts``, a job
the payment enqueues); the active query closes any attempt of an order that no longer waits
for payment, so none stays pending.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from core.db import db, utcnow
from core.jobs import job
from core.tenancy import use_brand
from shop.models import CREATED, PAY_PENDING, Order, Payment

log = logging.getLogger(__name__)
SWEEP_BATCH = 500
QUERY_AFTER = dt.timedelta(minutes=2)


def release(order_id: int, *, now: dt.datetime | None = None) -> str:
    """Close the current brand's order if it is still unpaid past its deadline."""
    from shop import checkout, payments

    now = now or utcnow()
    order = db.session.execute(
        select(Order).where(Order.id == order_id).with_for_update()
    ).scalar_one_or_none()
    if order is None or order.status != CREATED:
        return "done"
    if order.pay_deadline is not None and order.pay_deadline > now:
        return "not_due"
    if payments.settle_before_close(order):
        return "paid"
    checkout.close_order(order.id, reason="timeout", now=now)
    return "closed"


@job("default", timeout=120, retries=5, backoff=(30, 60, 300, 900))
def release_order(order_id: int) -> str:
    """The job checkout enqueues for an order's pay deadline (runs in the order's brand)."""
    return release(order_id)


def _due(model, *conds, limit: int) -> list[tuple[int, int]]:
    return [
        tuple(r)
        for r in db.session.execute(
            select(model.brand_id, model.id)
            .where(*conds)
            .order_by(model.id)
            .limit(limit)
            .execution_options(all_brands=True)
        ).all()
    ]


@job("low", timeout=600, retries=1)
def release_due() -> int:
    """Every brand's unpaid orders past their deadline, each closed in its own transaction
    (one failing order does not hold the others back)."""
    now = utcnow()
    due = _due(Order, Order.status == CREATED, Order.pay_deadline <= now, limit=SWEEP_BATCH)
    closed = 0
    for brand_id, order_id in due:
        with use_brand(brand_id):
            try:
                if release(order_id, now=now) == "closed":
                    closed += 1
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception("release of order %s failed", order_id)
    return closed


@job("default", timeout=120, retries=5, backoff=(30, 60, 300, 900))
def close_attempts(order_id: int) -> int:
    """Close at WeChat Pay the pending attempts of a paid order (its brand's), so that the
    member cannot pay it twice; one paid meanwhile is returned."""
    from shop import payments

    return payments.close_attempts(order_id)


@job("low", timeout=600, retries=1)
def query_pending() -> int:
    """Ask WeChat Pay about attempts still pending after two minutes (a notify may be late
    or lost); the paid ones are marked paid. An attempt of an order that no longer waits for
    payment is closed (or, paid meanwhile, returned)."""
    from shop import payments

    before = utcnow() - QUERY_AFTER
    due = _due(
        Payment,
        Payment.status == PAY_PENDING,
        Payment.created_at <= before,
        limit=SWEEP_BATCH,
    )
    applied = 0
    for brand_id, payment_id in due:
        with use_brand(brand_id):
            try:
                payment = db.session.get(Payment, payment_id)
                order = db.session.get(Order, payment.order_id)
                if order.status != CREATED:
                    payments.close_attempt(payment)
                elif payments.sync_payment(payment) == "applied":
                    applied += 1
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception("query of payment %s failed", payment_id)
    return applied
