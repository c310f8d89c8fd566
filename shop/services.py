"""The shop's writes other packages may call (re-exported from each part's modules)."""

from __future__ import annotations

# --- order core: cart, checkout, flash sales, payment, till ---------------------------------
from shop.cart import add as add_to_cart
from shop.cart import remove as remove_from_cart
from shop.cart import update as update_cart
from shop.checkout import cancel as cancel_order
from shop.checkout import checkout, close_order
from shop.payments import mark_paid, start_payment
from shop.payments import refresh as refresh_payment
from shop.till import create_order as create_till_order

__all__ = [
    "add_to_cart",
    "cancel_order",
    "checkout",
    "close_order",
    "create_till_order",
    "mark_paid",
    "refresh_payment",
    "remove_from_cart",
    "start_payment",
    "update_cart",
]
