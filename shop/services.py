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

__all__ = [
    "adjust_stock",
    "create_category",
    "create_flash_sale",
    "create_product",
    "get_product",
    "get_sku",
    "import_catalog",
    "parse_spec",
    "set_on_sale",
    "stop_flash_sale",
    "update_category",
    "update_flash_sale",
    "update_product",
]
