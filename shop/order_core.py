"""Registration of the order core (cart, checkout, flash sales, payment, till) in the app."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from members.merge import register_merge_handler
    from shop import (  # noqa: F401 - jobs, hooks
        api_orders,
        jobs,
        merge,
        till,
        txhooks,
        views_member_orders,
        views_pay,
    )

    register_merge_handler(merge.merge_member)
    app.register_blueprint(views_pay.bp)
    app.extensions["csrf"].exempt(views_pay.bp)
    app.register_blueprint(till.bp)
    app.extensions["csrf"].exempt(till.bp)
    api_orders.init_app(app)
    app.register_blueprint(views_member_orders.bp)
