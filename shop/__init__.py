"""The shop: catalog, carts, orders of every channel (mini-program, H5, store till), WeChat
Pay, stock, flash sales, fulfilment, after-sale and refunds, reconciliation.

Other packages change shop data only through ``shop.services``; reads are in
``shop.queries``. Paid, completed and refunded orders are announced by the signals in
``shop.signals`` (ids only) that higher packages subscribe to.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # order core: checkout, payment notify, till orders, release jobs
    from shop import (  # noqa: F401 - register the jobs and transaction hooks
        jobs,
        models,  # noqa: F401 - register the tables
        till,
        txhooks,
        views_pay,
    )

    app.register_blueprint(views_pay.bp)
    app.extensions["csrf"].exempt(views_pay.bp)
    app.register_blueprint(till.bp)
    app.extensions["csrf"].exempt(till.bp)
    api_orders.init_app(app)
