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

    # binding and guides' shops: signal receivers, console, workbench, member pages, API
    from guide_distribution import (  # noqa: F401
        api_shop,
        demo,
        jobs,
        pickers,
        receivers,
        views_console_binding,
        views_member_shop,
        views_workbench_shop,
    )

    receivers.connect()
    app.register_blueprint(views_console_binding.bp)
    app.register_blueprint(views_workbench_shop.bp)
    app.register_blueprint(views_member_shop.bp)
    api_shop.init_app(app)

    # commission: rules, ledger, settlement, payouts, their pages and jobs
    from guide_distribution import (  # noqa: F401 - register
        demo_commission,
        jobs_commission,
        ledger,
        views_console_commission,
        views_workbench_commission,
    )

    ledger.connect()
    app.register_blueprint(views_console_commission.bp)
    app.register_blueprint(views_workbench_commission.bp)


def init_workbench(app: Flask) -> None:
    """The guide's workbench sections, their console pages and the overview's guide sales."""
    from guide_distribution import (  # noqa: F401 - register
        demo_workbench,
        labels_workbench,
        overview_guides,
        views_console_workbench,
        views_workbench,
        workbench,
    )

    workbench.register()
    app.register_blueprint(views_workbench.bp)
    app.register_blueprint(views_console_workbench.bp)
