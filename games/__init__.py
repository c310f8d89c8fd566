"""Games: interactive game campaigns (lucky wheel, scratch card, nine-grid, daily check-in)
over one draw engine, with exact prize pools and provably fair draws.

Other packages change games data only through ``games.services`` (plays, check-ins, grants,
extra plays, gift addresses; campaign settings from ``games.setup``). Reads are in
``games.queries``; the generated rules in ``games.rules``. Its periodic jobs
(``games.jobs``: grant recovery, the hourly rollup, ending campaigns past their end) are
listed in ``app.periodic_jobs()``. A paid order (``shop.signals.order_paid``) earns extra
plays in the campaigns that give them.
"""

from __future__ import annotations

import importlib

from flask import Flask


def init_app(app: Flask) -> None:
    from games import hooks, models  # noqa: F401 - register the tables

    hooks.connect()
    for name in ("labels", "jobs", "views_console", "api", "cli", "demo"):
        try:
            module = importlib.import_module(f"games.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"games.{name}":
                raise
            continue
        if hasattr(module, "bp"):
            app.register_blueprint(module.bp)
        if hasattr(module, "init_app"):
            module.init_app(app)

    # the member's pages: the games, their rules and fairness, my prizes; the entry points
    # (the member center's slot, the official account's keywords, the console's QR poster)
    from games import entry_points, views_member

    views_member.init_app(app)
    app.register_blueprint(entry_points.qr_bp)
    entry_points.register_keywords()
