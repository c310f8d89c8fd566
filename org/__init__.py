"""Org: brands (tenants, with their WeChat credentials), stores and staff.

Other packages use ``org.services`` (``list_stores`` is the one way to list a brand's stores)
and ``org.models``; the console's login finds staff through ``org.queries.find_login``.
"""

# Nothing is imported at the top of this module: the standard library's pickle tries
# ``from org.python.core import PyStringMap`` (a Jython check) while it loads, so importing
# Flask here would import pickle again half-loaded (seen in spawned multiprocessing children).
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> None:
    from org import cli, labels, pickers, views_console  # noqa: F401 - labels, pickers register

    app.register_blueprint(views_console.bp)
    cli.init_app(app)
