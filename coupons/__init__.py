"""Coupons: templates, issuance, codes, redemption (核销) and the points mall.

Other packages change coupon data only through ``coupons.services``: templates and mall items
(create_template, update_template, create_mall_item, update_mall_item), and, re-exported from
the modules that hold them, issue / bulk_issue (``issuance``), claim / create_share /
claim_share (``claims``), redeem / reverse (``redemption``), exchange (``mall``) and POS keys
(``pos_api``). Reads for pages are in ``coupons.queries``. Its periodic jobs (coupons.jobs)
are listed in ``app.periodic_jobs()``.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from coupons import hooks, jobs, models, overview, pos_api, rollups  # noqa: F401 - register
    from members import activation, merge

    app.register_blueprint(pos_api.bp)
    app.extensions["csrf"].exempt(pos_api.bp)
    merge.register_merge_handler(hooks.merge_coupons)
    activation.register_welcome_gift(jobs.welcome_coupon)
    from coupons import api, cli, pickers, views_console, views_member, views_staff  # noqa: F401

    app.register_blueprint(views_console.bp)
    app.register_blueprint(views_staff.bp)
    app.register_blueprint(views_member.bp)
    api.init_app(app)
    _center_links()
    cli.init_app(app)


def _center_links() -> None:
    """Link "my coupons" and the mall from the member's card page (when members offers it)."""
    from flask_babel import lazy_gettext as _l

    from coupons.queries import USABLE_COUNT
    from members.center import register_center_slot

    register_center_slot(
        "coupons",
        _l("My coupons"),
        "coupons_member.my_coupons",
        order=20,
        figure=USABLE_COUNT,
        figure_label=_l("Coupons"),
    )
    register_center_slot("mall", _l("Points mall"), "coupons_member.mall_page", order=30)
