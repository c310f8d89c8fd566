"""Members: one member per brand and phone number, channel identities, activation, tiers,
tags, the member center and the mini-program API.

Public services live in: ``activation`` (activate_member, record_scan,
register_welcome_gift), ``identities`` (find_by_identity, attach_identity,
ensure_identity_member), ``merge`` (merge_members, register_merge_handler), ``tiers``,
``tags``, ``importer``, ``export``, ``access`` (store scoping, phone privacy) and
``privacy`` (PIPL download and deletion). Signals: ``members.signals``.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from members import cli, demo, jobs, models  # noqa: F401 - register models, jobs, demo

    app.cli.add_command(cli.members_cli)
    __import__("members.web_console", fromlist=["init_app"]).init_app(app)  # M2b
    __import__("members.web_member", fromlist=["init_app"]).init_app(app)  # M2a
