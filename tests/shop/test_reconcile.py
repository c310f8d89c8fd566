"""Reconciliation against a fake trade bill: every disagreement recorded once per day."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.db import db
from shop import reconcile, refunds
from shop.models import OrderLine, Payment, ReconciliationIssue
from tests.shop import factories as sf
from tests.shop.aftersale_fixtures import *  # noqa: F403 - the fixtures

DAY = dt.date(2026, 3, 10)
AT = dt.datetime(2026, 3, 10, 4, tzinfo=dt.UTC)  # 12:00 in Shanghai


def _issues():
    return {
        (i.out_trade_no, i.kind): (i.ours, i.theirs)
        for i in db.session.scalars(select(ReconciliationIssue))
    }


def test_fake_bill_differences_are_listed_once(brand, store, skus, member_id, fake_pay):
    ok = sf.paid_order(member_id=member_id, lines=[(skus[0], 1)], store_id=store.id, paid_at=AT)
    short = sf.paid_order(member_id=member_id, lines=[(skus[1], 1)], store_id=store.id, paid_at=AT)
    absent = sf.paid_order(member_id=member_id, lines=[(skus[2], 1)], store_id=store.id, paid_at=AT)
    refunded = sf.paid_order(member_id=member_id, lines=[(skus[2], 2)], store_id=store.id,
                             paid_at=AT)  # fmt: skip
    line = db.session.scalars(select(OrderLine).where(OrderLine.order_id == refunded.id)).one()
    r = refunds.start(order_id=refunded.id, items=[refunds.Item(line.id, 1)], now=AT)
    refunds.submit(refund_id=r.id, now=AT)
    db.session.commit()
    pay = {p.order_id: p for p in db.session.scalars(select(Payment))}
    fake_pay.bill = [
        {"out_trade_no": pay[ok.id].out_trade_no, "transaction_id": "t1", "trade_state": "SUCCESS",
         "amount_fen": ok.pay_fen, "refund_fen": 0, "out_refund_no": ""},
        {"out_trade_no": pay[short.id].out_trade_no, "transaction_id": "t2",
         "trade_state": "SUCCESS", "amount_fen": short.pay_fen - 1, "refund_fen": 0,
         "out_refund_no": ""},
        {"out_trade_no": "20260310999P1", "transaction_id": "t3", "trade_state": "SUCCESS",
         "amount_fen": 100, "refund_fen": 0, "out_refund_no": ""},
        {"out_trade_no": pay[refunded.id].out_trade_no, "transaction_id": "t4",
         "trade_state": "SUCCESS", "amount_fen": refunded.pay_fen, "refund_fen": 0,
         "out_refund_no": ""},
        {"out_trade_no": pay[refunded.id].out_trade_no, "transaction_id": "t4",
         "trade_state": "REFUND", "amount_fen": 0, "refund_fen": r.amount_fen + 5,
         "out_refund_no": r.out_refund_no},
    ]  # fmt: skip
    assert reconcile.run_day(bill_date=DAY) == 4
    db.session.commit()
    issues = _issues()
    assert set(issues) == {
        (pay[short.id].out_trade_no, "amount"),
        ("20260310999P1", "missing_here"),
        (pay[absent.id].out_trade_no, "missing_there"),
        (pay[refunded.id].out_trade_no, "refund"),
    }
    assert issues[(pay[short.id].out_trade_no, "amount")] == (
        f"paid {short.pay_fen}",
        f"SUCCESS {short.pay_fen - 1}",
    )
    assert issues[(pay[refunded.id].out_trade_no, "refund")] == (
        f"success {r.amount_fen} {r.out_refund_no}",
        f"REFUND {r.amount_fen + 5} {r.out_refund_no}",
    )
    # again: nothing new, and a resolved issue stays resolved
    first = db.session.scalars(select(ReconciliationIssue).order_by(ReconciliationIssue.id)).first()
    reconcile.resolve(issue_id=first.id)
    db.session.commit()
    assert reconcile.run_day(bill_date=DAY) == 0
    db.session.commit()
    assert db.session.get(ReconciliationIssue, first.id).resolved is True
    # another day's payments are not that day's business
    assert reconcile.record(bill_date=DAY + dt.timedelta(days=1), rows=[]) == 0
