"""Campaigns: member segments, push campaigns, tracking, analytics and the brand dashboard.

Segments (``campaigns.segments``) compile a JSON condition tree to one SQL query of member
ids; the brand dashboard (``campaigns.dashboard``) reads the daily rollups. No lower package
imports campaigns; it sits beside games and guide distribution.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from campaigns import models  # noqa: F401 - register the tables
