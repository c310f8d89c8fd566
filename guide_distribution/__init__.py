"""Guide distribution: guides' mini-shops, customer binding to a store and an exclusive
guide, attribution of orders, performance and commission ledgers, payouts, the guide's
workbench.

It subscribes to the shop's order signals (``shop.signals``) and the members' signals; no
lower package imports it. Other packages change its data only through its services.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from guide_distribution import attribution, models  # noqa: F401 - register the tables

    attribution.connect()

    # commission: rules, ledger, settlement, payouts, their pages and jobs
    from guide_distribution import (  # noqa: F401 - register
        demo_commission,
        jobs,
        ledger,
        views_console_commission,
        views_workbench_commission,
    )

    ledger.connect()
    app.register_blueprint(views_console_commission.bp)
    app.register_blueprint(views_workbench_commission.bp)
