"""Org: brands (tenants, with their WeChat credentials), stores and staff.

Other packages use ``org.services`` (``list_stores`` is the one way to list a brand's stores)
and ``org.models``; the console's login finds staff through ``org.queries.find_login``.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from org import cli, views_console

    app.register_blueprint(views_console.bp)
    cli.init_app(app)
