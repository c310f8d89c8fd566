"""The shop: catalog, carts, orders of every channel (mini-program, H5, store till), WeChat
Pay, stock, flash sales, fulfilment, after-sale and refunds, reconciliation.

Other packages change shop data only through ``shop.services``; reads are in
``shop.queries``. Paid, completed and refunded orders are announced by the signals in
``shop.signals`` (ids only) that higher packages subscribe to.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # Fulfilment, after-sale, refunds and reconciliation.
    from shop import (
        jobs_aftersale,  # noqa: F401 - register the jobs
        models,  # noqa: F401 - register the tables
    )
