"""The shop's writes: the one module other packages call. Services flush; the caller commits.

Each part of the shop re-exports its services here under its own heading.
"""

from __future__ import annotations

# --- catalog: categories, products and SKUs, stock adjustments, flash sales, CSV import ---
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
    "adjust_stock",
    "cancel_order",
    "checkout",
    "close_order",
    "create_category",
    "create_flash_sale",
    "create_product",
    "create_till_order",
    "get_product",
    "get_sku",
    "import_catalog",
    "mark_paid",
    "parse_spec",
    "refresh_payment",
    "remove_from_cart",
    "set_on_sale",
    "start_payment",
    "stop_flash_sale",
    "update_cart",
    "update_category",
    "update_flash_sale",
    "update_product",
]
