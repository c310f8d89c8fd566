"""The shop: catalog, carts, orders of every channel (mini-program, H5, store till), WeChat
Pay, stock, flash sales, fulfilment, after-sale and refunds, reconciliation.

Other packages change shop data only through ``shop.services``; reads are in
``shop.queries``. Paid, completed and refunded orders are announced by the signals in
``shop.signals`` (ids only) that higher packages subscribe to.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # catalog: console pages, member pages, the mini-program API, the import job, the demo
    from shop import (  # noqa: F401 - register
        api_catalog,
        catalog_import,
        demo,
        models,  # noqa: F401 - register the tables
        views_console_catalog,
        views_member_catalog,
    )

    app.register_blueprint(views_console_catalog.bp)
    app.register_blueprint(views_member_catalog.bp)
    api_catalog.init_app(app)
    _catalog_center_link()

    # order core: cart, checkout, payment notify, till orders, release jobs
    from shop.order_core import init_app as init_order_core

    init_order_core(app)

    # fulfilment, after-sale, refunds and reconciliation: jobs, labels, the demo step, the
    # overview's sales section, the console's orders, the member's orders and after-sale,
    # the mini-program API and the till's refunds
    from shop import (  # noqa: F401 - register
        api_aftersale,
        demo_aftersale,
        jobs_aftersale,
        labels_orders,
        overview_sales,
        pos_refunds,
        views_console_orders,
        views_member_aftersale,
    )

    app.register_blueprint(views_console_orders.bp)
    app.register_blueprint(views_member_aftersale.bp)
    _orders_center_link()
    app.register_blueprint(pos_refunds.bp)
    app.extensions["csrf"].exempt(pos_refunds.bp)
    api_aftersale.init_app(app)

    # the shop rules page
    from shop import views_console_settings

    app.register_blueprint(views_console_settings.bp)


def _catalog_center_link() -> None:
    """Link the shop from the member's card page."""
    from flask_babel import lazy_gettext as _l

    from members.center import register_center_slot

    register_center_slot("shop", _l("Shop"), "shop_catalog_member.product_list", order=15)


def _orders_center_link() -> None:
    """Link the member's orders from the card page, beside the shop."""
    from flask_babel import lazy_gettext as _l

    from members.center import register_center_slot

    register_center_slot("shop_orders", _l("My orders"), "shop_member_aftersale.orders", order=16)
