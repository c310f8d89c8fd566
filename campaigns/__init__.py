"""Campaigns: member segments, push campaigns, tracking, analytics and the brand dashboard.

Segments (``campaigns.segments``) compile a JSON condition tree to one SQL query of member
ids; the brand dashboard (``campaigns.dashboard``) reads the daily rollups. Push campaigns
(``campaigns.push``, fanned out by ``campaigns.fanout``) send a coupon and/or a message to a
segment; ``campaigns.tracking`` follows delivery, opens, claims and redemptions, and
``campaigns.analytics`` reads the funnel. No lower package imports campaigns; it sits beside
games and guide distribution.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from campaigns import (
        dashboard,
        demo,  # noqa: F401 - registers the demo step
        models,  # noqa: F401 - register the tables
        views_console_dashboard,
        views_console_segments,
    )

    dashboard.connect()
    app.register_blueprint(views_console_segments.bp)
    app.register_blueprint(views_console_dashboard.bp)

    # push campaigns: tracking registers its WeChat handler and signal receivers on import
    from campaigns import (  # noqa: F401
        analytics,
        demo_push,
        fanout,
        tracking,
        views_console_push,
        views_track,
    )

    app.register_blueprint(views_console_push.bp)
    app.register_blueprint(views_track.bp)
