"""Points: the ledger, earning rules, pending points and expiry.

Other packages use ``points.services`` (earn, spend, refund, adjust, balance, history ...);
its periodic jobs (points.jobs) are listed in ``app.periodic_jobs()``.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from members import activation, merge
    from points import (  # noqa: F401 - register
        api,
        cli,
        demo,
        hooks,
        jobs,
        labels,  # noqa: F401 - Chinese names of the package's codes
        overview,
        rollups,
        views_console,
        views_member,
        wechat_keywords,
    )

    app.register_blueprint(views_console.bp)
    views_member.init_app(app)
    api.init_app(app)
    cli.init_app(app)
    merge.register_merge_handler(hooks.merge_accounts)
    activation.register_welcome_gift(hooks.welcome_gift)
