"""Reconciliation: WeChat Pay's trade bill for a brand-local day against our payments.

Every row of the bill (``gateway.pay_trade_bill``: out_trade_no, transaction_id,
trade_state, amount_fen, refund_fen, out_refund_no) is matched with our payment of that
``out_trade_no`` and our refund of that ``out_refund_no``; every payment we recorded as paid
that day is looked for in the bill. What disagrees becomes a ``ReconciliationIssue``:

- ``missing_here``: paid in the bill, not paid here (unknown, or still pending / closed);
- ``missing_there``: paid here that day, absent from the bill;
- ``amount``: the paid amounts differ;
- ``state``: the bill says the payment was not a success but we recorded it paid;
- ``refund``: a refund in the bill that we do not have as succeeded, or of another amount;
- ``surplus``: not from the bill: a surplus payment (an order paid twice) that WeChat Pay
  would not return (``refunds.fail``), to be returned by hand.

A surplus payment counts as paid here: it is in the bill as paid, and its return as a refund.

``ours`` and ``theirs`` say what each side has as "<state> <fen> [<refund number>]" (a state
code of ours or WeChat Pay's trade or refund state; the console shows them in words).

One issue per (day, out_trade_no, kind): running the day again adds only what is new and
never reopens an issue someone resolved.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from core import audit
from core.db import db
from core.errors import NotFound
from core.tenancy import require_brand_id
from shop.models import (
    PAY_PAID,
    PAY_SURPLUS,
    RF_SUCCESS,
    Payment,
    ReconciliationIssue,
    Refund,
)

log = logging.getLogger(__name__)

KINDS = ("missing_here", "missing_there", "amount", "state", "refund", "surplus")
PAID_HERE = (PAY_PAID, PAY_SURPLUS)
REFUND_STATES = ("REFUND", "REVOKED")  # bill rows of refunds rather than payments


def _fen(value) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _day_bounds(day: dt.date, tz) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)
    return start, start + dt.timedelta(days=1)


def compare(*, bill_date: dt.date, rows: list[dict]) -> list[dict]:
    """The differences between the bill's rows and our payments and refunds of that day."""
    from org.models import Brand

    tz = db.session.get(Brand, require_brand_id()).tz
    start, end = _day_bounds(bill_date, tz)
    issues: list[dict] = []
    seen: set[str] = set()
    payments: dict[str, Payment] = {}
    trade_nos = {str(r.get("out_trade_no") or "") for r in rows} - {""}
    if trade_nos:
        payments = {
            p.out_trade_no: p
            for p in db.session.execute(
                select(Payment).where(Payment.out_trade_no.in_(trade_nos))
            ).scalars()
        }
    refund_nos = {str(r.get("out_refund_no") or "").strip() for r in rows} - {"", "0"}
    refunds: dict[str, Refund] = {}
    if refund_nos:
        refunds = {
            r.out_refund_no: r
            for r in db.session.execute(
                select(Refund).where(Refund.out_refund_no.in_(refund_nos))
            ).scalars()
        }

    def add(no: str, kind: str, ours: str, theirs: str) -> None:
        issues.append({"out_trade_no": no, "kind": kind, "ours": ours, "theirs": theirs})

    for row in rows:
        no = str(row.get("out_trade_no") or "")
        state = str(row.get("trade_state") or "").upper()
        if not no:
            continue
        # A payment's line carries "0" in the refund columns (WeChat's bill).
        refund_no = str(row.get("out_refund_no") or "").strip()
        if refund_no == "0":
            refund_no = ""
        if refund_no or state in REFUND_STATES:
            ours = refunds.get(refund_no)
            theirs = _fen(row.get("refund_fen"))
            if ours is None or ours.status != RF_SUCCESS:
                add(
                    no,
                    "refund",
                    f"{ours.status} {ours.amount_fen} {refund_no}"
                    if ours
                    else f"none 0 {refund_no}",
                    f"{state or 'REFUND'} {theirs} {refund_no}",
                )
            elif ours.amount_fen != theirs:
                add(
                    no,
                    "refund",
                    f"{ours.status} {ours.amount_fen} {refund_no}",
                    f"{state or 'REFUND'} {theirs} {refund_no}",
                )
            continue
        seen.add(no)
        pay = payments.get(no)
        amount = _fen(row.get("amount_fen"))
        if state == "SUCCESS":
            if pay is None or pay.status not in PAID_HERE:
                add(
                    no,
                    "missing_here",
                    f"{pay.status} {pay.amount_fen}" if pay else "none",
                    f"SUCCESS {amount}",
                )
            elif pay.amount_fen != amount:
                add(no, "amount", f"{pay.status} {pay.amount_fen}", f"SUCCESS {amount}")
        elif pay is not None and pay.status in PAID_HERE:
            add(no, "state", f"{pay.status} {pay.amount_fen}", f"{state} {amount}")

    ours_paid = db.session.execute(
        select(Payment.out_trade_no, Payment.status, Payment.amount_fen).where(
            Payment.status.in_(PAID_HERE), Payment.paid_at >= start, Payment.paid_at < end
        )
    ).all()
    for no, status, amount in ours_paid:
        if no not in seen:
            add(no, "missing_there", f"{status} {amount}", "none")
    return issues


def add_issue(*, bill_date: dt.date, out_trade_no: str, kind: str, ours: str, theirs: str) -> bool:
    """Store one difference of the brand's day, unless that (day, out_trade_no, kind) is
    already there (resolved or not); answers whether it is new."""
    inserted = db.session.execute(
        pg_insert(ReconciliationIssue)
        .values(
            brand_id=require_brand_id(),
            bill_date=bill_date,
            out_trade_no=out_trade_no[:64],
            kind=kind,
            ours=ours[:120],
            theirs=theirs[:120],
        )
        .on_conflict_do_nothing(index_elements=["brand_id", "bill_date", "out_trade_no", "kind"])
        .returning(ReconciliationIssue.id)
    ).scalar()
    return inserted is not None


def record(*, bill_date: dt.date, rows: list[dict]) -> int:
    """Store the day's differences (idempotent); answers how many are new."""
    new = sum(
        add_issue(bill_date=bill_date, **issue) for issue in compare(bill_date=bill_date, rows=rows)
    )
    db.session.flush()
    return new


def run_day(*, bill_date: dt.date) -> int:
    """Download the day's trade bill from WeChat Pay and record the differences."""
    from wechat import gateway

    rows = gateway.pay_trade_bill(require_brand_id(), bill_date)
    new = record(bill_date=bill_date, rows=rows)
    log.info("reconciled %s: %d bill rows, %d new issues", bill_date, len(rows), new)
    return new


def resolve(*, issue_id: int, operator: str | None = None) -> ReconciliationIssue:
    """Mark an issue as looked into (audited)."""
    issue = db.session.execute(
        select(ReconciliationIssue).where(ReconciliationIssue.id == issue_id)
    ).scalar_one_or_none()
    if issue is None:
        raise NotFound(_l("No such issue."))
    db.session.execute(
        update(ReconciliationIssue)
        .where(ReconciliationIssue.id == issue.id)
        .values(resolved=True)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        action="shop_reconciliation_resolve",
        object_type="shop_reconciliation_issue",
        object_id=issue.id,
        after={"out_trade_no": issue.out_trade_no, "kind": issue.kind, "by": operator},
    )
    db.session.refresh(issue)
    return issue
