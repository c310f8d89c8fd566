"""The shop's public writes: the only way other packages change shop data. Each part of the
shop re-exports its operations here under its own heading."""

from __future__ import annotations

# Fulfilment, after-sale, refunds and reconciliation.
from shop.aftersale import approve as approve_after_sale
from shop.aftersale import cancel as cancel_after_sale
from shop.aftersale import receive_return, set_return_tracking
from shop.aftersale import refuse as refuse_after_sale
from shop.aftersale import request as request_after_sale
from shop.fulfilment import (
    auto_complete_due,
    auto_receive_due,
    complete,
    confirm_receipt,
    mark_ready,
    ship,
    verify_pickup,
)
from shop.reconcile import resolve as resolve_reconciliation_issue
from shop.reconcile import run_day as reconcile_day
from shop.refunds import Item as RefundItem
from shop.refunds import on_refund_notify
from shop.refunds import start as start_refund
from shop.refunds import submit as submit_refund

__all__ = [
    "RefundItem",
    "approve_after_sale",
    "auto_complete_due",
    "auto_receive_due",
    "cancel_after_sale",
    "complete",
    "confirm_receipt",
    "mark_ready",
    "on_refund_notify",
    "receive_return",
    "reconcile_day",
    "refuse_after_sale",
    "request_after_sale",
    "resolve_reconciliation_issue",
    "set_return_tracking",
    "ship",
    "start_refund",
    "submit_refund",
    "verify_pickup",
]
