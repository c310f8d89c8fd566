"""Campaigns: member segments, push campaigns, tracking, analytics and the brand dashboard.

Segments (``campaigns.segments``) compile a JSON condition tree to one SQL query of member
ids; the brand dashboard (``campaigns.dashboard``) reads the daily rollups. No lower package
imports campaigns; it sits beside games and guide distribution.
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
