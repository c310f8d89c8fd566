"""Points: the ledger, earning rules, pending points and expiry.

Other packages use ``points.services`` (earn, spend, refund, adjust, balance, history ...);
its periodic jobs (points.jobs) are listed in ``app.periodic_jobs()``.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from members import activation, merge
    from points import cli, demo, hooks, jobs, views, wechat_keywords  # noqa: F401 - register

    app.register_blueprint(views.bp)
    from points import views_member

    views_member.init_app(app)
    cli.init_app(app)
    merge.register_merge_handler(hooks.merge_accounts)
    activation.register_welcome_gift(hooks.welcome_gift)
