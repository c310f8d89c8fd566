"""Games: interactive game campaigns (lucky wheel, scratch card, nine-grid, daily check-in)
over one draw engine, with exact prize pools and provably fair draws.

Other packages change games data only through ``games.services`` (plays, check-ins, grants,
extra plays, gift addresses; campaign settings from ``games.setup``). Reads are in
``games.queries``; the generated rules in ``games.rules``. Its periodic jobs
(``games.jobs``: writing the plays Redis decided, grant recovery, the hourly rollup, ending
campaigns past their end) are listed in ``app.periodic_jobs()``; the mini-program's play is
served by ``games.front`` ahead of Flask's pipeline. A paid order
(``shop.signals.order_paid``) earns extra plays in the campaigns that give them; a member
merge moves plays, wins, check-ins and extra plays to the kept member (``games.merge``).
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from games import api, cli, demo, hooks, jobs, labels, models, views_console  # noqa: F401

    hooks.connect()
    from games import merge
    from members.merge import register_merge_handler

    register_merge_handler(merge.merge_member)
    app.register_blueprint(views_console.bp)
    api.init_app(app)
    cli.init_app(app)
    # the mini-program's play, ahead of Flask's pipeline (its route above answers the rest)
    from games import front

    front.init_app(app)

    # the member's pages: the games, their rules and fairness, my prizes; the entry points
    # (the member center's slot, the official account's keywords, the console's QR poster)
    from games import entry_points, views_member

    views_member.init_app(app)
    app.register_blueprint(entry_points.qr_bp)
    entry_points.register_keywords()
