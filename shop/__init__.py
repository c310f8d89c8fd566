"""The shop: catalog, carts, orders of every channel (mini-program, H5, store till), WeChat
Pay, stock, flash sales, fulfilment, after-sale and refunds, reconciliation.

Other packages change shop data only through ``shop.services``; reads are in
``shop.queries``. Paid, completed and refunded orders are announced by the signals in
``shop.signals`` (ids only) that higher packages subscribe to.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # The tables; then fulfilment, after-sale, refunds and reconciliation: jobs, labels, the
    # demo step, the overview's sales section, the console's orders, the member's orders, the
    # mini-program API and the till's refunds.
    from shop import (  # noqa: F401 - register
        api_orders,
        demo_aftersale,
        jobs_aftersale,
        labels_orders,
        models,
        overview_sales,
        pos_refunds,
        views_console_orders,
        views_member_orders,
    )

    app.register_blueprint(views_console_orders.bp)
    app.register_blueprint(views_member_orders.bp)
    app.register_blueprint(pos_refunds.bp)
    app.extensions["csrf"].exempt(pos_refunds.bp)
    api_orders.init_app(app)
