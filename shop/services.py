"""The shop's writes: the one module other packages call. Services flush; the caller commits.

Re-exported from the modules that hold them: the catalog (``catalog``, ``catalog_import``:
categories, products and SKUs, stock adjustments, flash sales, CSV import), the order core
(``cart``, ``checkout``, ``payments``, ``till``) and what follows payment (``fulfilment``,
``aftersale``, ``refunds``, ``reconcile``).
"""

from __future__ import annotations

from shop.aftersale import approve as approve_after_sale
from shop.aftersale import cancel as cancel_after_sale
from shop.aftersale import receive_return, set_return_tracking
from shop.aftersale import refuse as refuse_after_sale
from shop.aftersale import request as request_after_sale
from shop.cart import add as add_to_cart
from shop.cart import remove as remove_from_cart
from shop.cart import update as update_cart
from shop.catalog import (
    adjust_stock,
    create_category,
    create_flash_sale,
    create_product,
    get_product,
    get_sku,
    parse_spec,
    set_on_sale,
    stop_flash_sale,
    update_category,
    update_flash_sale,
    update_product,
)
from shop.catalog_import import run as import_catalog
from shop.checkout import cancel as cancel_order
from shop.checkout import checkout, close_order
from shop.fulfilment import (
    auto_complete_due,
    auto_receive_due,
    complete,
    confirm_receipt,
    mark_ready,
    ship,
    verify_pickup,
)
from shop.payments import mark_paid, start_payment
from shop.payments import refresh as refresh_payment
from shop.reconcile import resolve as resolve_reconciliation_issue
from shop.reconcile import run_day as reconcile_day
from shop.refunds import Item as RefundItem
from shop.refunds import on_refund_notify
from shop.refunds import start as start_refund
from shop.refunds import submit as submit_refund
from shop.till import create_order as create_till_order

__all__ = [
    "add_to_cart",
    "adjust_stock",
    "approve_after_sale",
    "auto_complete_due",
    "auto_receive_due",
    "cancel_after_sale",
    "cancel_order",
    "checkout",
    "close_order",
    "complete",
    "confirm_receipt",
    "create_category",
    "create_flash_sale",
    "create_product",
    "create_till_order",
    "get_product",
    "get_sku",
    "import_catalog",
    "mark_paid",
    "mark_ready",
    "on_refund_notify",
    "parse_spec",
    "receive_return",
    "reconcile_day",
    "refresh_payment",
    "RefundItem",
    "refuse_after_sale",
    "remove_from_cart",
    "request_after_sale",
    "resolve_reconciliation_issue",
    "set_on_sale",
    "set_return_tracking",
    "ship",
    "start_payment",
    "start_refund",
    "stop_flash_sale",
    "submit_refund",
    "update_cart",
    "update_category",
    "update_flash_sale",
    "update_product",
    "verify_pickup",
]
