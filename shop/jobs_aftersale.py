"""Jobs of fulfilment, refunds and reconciliation.

Periodic jobs (listed in ``app.periodic_jobs()``) run without a brand: they find the brands
with work and enqueue one per-brand job each, deduplicated per time slot. Every job is
idempotent: it moves only rows still in the state it looks for.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from sqlalchemy import select

from core.db import utcnow
from core.jobs import enqueue, job
from core.tenancy import use_brand
from org.queries import brands_with
from shop import fulfilment, reconcile, refunds
from shop.models import RECEIVED, RF_PROCESSING, SHIPPED, Order, Refund

log = logging.getLogger(__name__)
REFUND_QUERY_AFTER = dt.timedelta(minutes=5)
# WeChat Pay's trade bill of a day can be downloaded from 10:00 the next day (Beijing time).
BILL_READY_HOUR = 10


def _slot(seconds: int) -> int:
    return int(time.time()) // seconds


@job("default", timeout=60, retries=6, backoff=(10, 30, 60, 300, 900, 3600))
def submit_refund(refund_id: int) -> str:
    """Send a refund to WeChat Pay (a retry after a timeout is safe: same out_refund_no)."""
    return refunds.submit(refund_id=refund_id)


@job("low", timeout=120, retries=2)
def fulfilment_all() -> int:
    """Enqueue the fulfilment sweep for every brand with shipped or received orders."""
    brands = brands_with(Order, Order.status.in_((SHIPPED, RECEIVED)))
    for bid in brands:
        enqueue(fulfilment_brand, bid, brand_id=bid, dedupe_key=f"shop:fulfil:{bid}:{_slot(3600)}")
    return len(brands)


@job("low", timeout=300, retries=3)
def fulfilment_brand(brand_id: int) -> int:
    """Receive a brand's orders shipped long enough ago and complete those received."""
    with use_brand(brand_id):
        now = utcnow()
        return fulfilment.auto_receive_due(now=now) + fulfilment.auto_complete_due(now=now)


@job("low", timeout=120, retries=2)
def refunds_query_all() -> int:
    """Enqueue a refund query for every brand with refunds processing for a while."""
    brands = brands_with(
        Refund, Refund.status == RF_PROCESSING, Refund.created_at <= utcnow() - REFUND_QUERY_AFTER
    )
    for bid in brands:
        enqueue(refunds_query_brand, bid, brand_id=bid, dedupe_key=f"shop:rq:{bid}:{_slot(300)}")
    return len(brands)


@job("default", timeout=300, retries=3)
def refunds_query_brand(brand_id: int) -> int:
    """Ask WeChat Pay how a brand's pending refunds went."""
    with use_brand(brand_id):
        return refunds.query_processing(older_than=REFUND_QUERY_AFTER)


@job("low", timeout=120, retries=2)
def reconcile_all() -> int:
    """Enqueue yesterday's reconciliation (brand-local) for every brand with WeChat Pay."""
    from core.db import db
    from org.models import Brand

    brands = db.session.execute(
        select(Brand).where(Brand.active.is_(True), Brand.mch_id.is_not(None))
    ).scalars()
    n = 0
    for b in brands:
        local = utcnow().astimezone(b.tz)
        if local.hour < BILL_READY_HOUR:
            continue
        day = (local.date() - dt.timedelta(days=1)).isoformat()
        enqueue(reconcile_brand, b.id, day, brand_id=b.id, dedupe_key=f"shop:recon:{b.id}:{day}")
        n += 1
    return n


@job("low", timeout=600, retries=5, backoff=(300, 900, 1800, 3600, 7200))
def reconcile_brand(brand_id: int, bill_date: str) -> int:
    """Reconcile one brand-local day (a bill not ready yet fails the job; the backoff retries
    it later)."""
    with use_brand(brand_id):
        return reconcile.run_day(bill_date=dt.date.fromisoformat(bill_date))
