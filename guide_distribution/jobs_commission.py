"""Jobs of commission: settlement, monthly statements, transfers and their follow-up.

Periodic jobs (listed in ``app.periodic_jobs()``) run without a brand: they find the brands
with work and enqueue one per-brand job each, deduplicated per time slot. Every job is
idempotent: it moves only rows still in the state it looks for.
"""

from __future__ import annotations

import datetime as dt
import time

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.db import db, utcnow
from core.jobs import enqueue, job
from core.labels import register_labels
from core.tenancy import use_brand
from guide_distribution import payouts, settlement
from guide_distribution.models.commission import (
    FROZEN,
    P_TRANSFERRING,
    P_WAIT_CONFIRM,
    CommissionLine,
    GuideAccount,
    Payout,
)
from org.queries import brands_with

QUERY_AFTER = dt.timedelta(minutes=5)


def _slot(seconds: int) -> int:
    return int(time.time()) // seconds


@job("low", timeout=120, retries=2)
def settle_all() -> int:
    """Enqueue the settlement of every brand with frozen commission due."""
    brands = brands_with(
        CommissionLine, CommissionLine.state == FROZEN, CommissionLine.settle_due_at <= utcnow()
    )
    for bid in brands:
        enqueue(settle_brand, bid, brand_id=bid, dedupe_key=f"guide:settle:{bid}:{_slot(3600)}")
    return len(brands)


@job("low", timeout=3600, retries=3)
def settle_brand(brand_id: int) -> int:
    """Settle a brand's due commission, committing batch by batch."""
    with use_brand(brand_id):
        return settlement.settle_due(commit=db.session.commit).lines


@job("low", timeout=120, retries=2)
def statements_all() -> int:
    """On a brand's first local day of a month, enqueue last month's statements."""
    from org.models import Brand

    n = 0
    brands = db.session.execute(
        select(Brand).where(Brand.active.is_(True)).execution_options(all_brands=True)
    ).scalars()
    with_accounts = set(brands_with(GuideAccount))
    for b in brands:
        if b.id not in with_accounts:
            continue
        local = utcnow().astimezone(b.tz).date()
        month = (local.replace(day=1) - dt.timedelta(days=1)).replace(day=1).isoformat()
        enqueue(close_month, b.id, month, brand_id=b.id, dedupe_key=f"guide:stmt:{b.id}:{month}")
        n += 1
    return n


@job("low", timeout=1800, retries=3)
def close_month(brand_id: int, month: str) -> int:
    with use_brand(brand_id):
        written = payouts.close_month(dt.date.fromisoformat(month))
        db.session.commit()
        return written


@job("default", timeout=60, retries=6, backoff=(10, 30, 60, 300, 900, 3600))
def transfer_payout(brand_id: int, payout_id: int) -> str:
    """Send an approved payout to WeChat Pay (a retry after a timeout is safe)."""
    with use_brand(brand_id):
        if payouts.start_transfer(payout_id) is None:
            return "nothing"
        db.session.commit()
        state = payouts.send_transfer(payout_id).state
        db.session.commit()
        return state


@job("low", timeout=120, retries=2)
def query_transfers_all() -> int:
    """Ask WeChat Pay about transfers waiting for a while (a guide confirmed, or not)."""
    rows = db.session.execute(
        select(Payout.brand_id, Payout.id)
        .where(
            Payout.state.in_((P_TRANSFERRING, P_WAIT_CONFIRM)),
            Payout.updated_at <= utcnow() - QUERY_AFTER,
        )
        .limit(1000)
        .execution_options(all_brands=True)
    ).all()
    for bid, pid in rows:
        enqueue(query_transfer, bid, pid, brand_id=bid, dedupe_key=f"guide:tq:{pid}:{_slot(300)}")
    return len(rows)


@job("default", timeout=60, retries=3)
def query_transfer(brand_id: int, payout_id: int) -> str:
    with use_brand(brand_id):
        state = payouts.query(payout_id).state
        db.session.commit()
        return state


register_labels(
    "job",
    {
        "guide_distribution.jobs_commission.settle_all": _l("Settle due commission (all brands)"),
        "guide_distribution.jobs_commission.settle_brand": _l("Settle a brand's due commission"),
        "guide_distribution.jobs_commission.statements_all": _l(
            "Monthly commission statements (all brands)"
        ),
        "guide_distribution.jobs_commission.close_month": _l(
            "Close a month's commission statements"
        ),
        "guide_distribution.jobs_commission.transfer_payout": _l(
            "Send a commission payout to WeChat Pay"
        ),
        "guide_distribution.jobs_commission.query_transfers_all": _l(
            "Check waiting commission transfers"
        ),
        "guide_distribution.jobs_commission.query_transfer": _l("Check a commission transfer"),
    },
)
