"""Members: one member per brand and phone number, channel identities, activation, tiers,
tags, the member center and the mini-program API.

Other packages change members through ``members.activation`` (activate_member,
register_welcome_gift), ``members.identities`` (find_by_identity, attach_identity,
ensure_identity_member) and ``members.merge`` (merge_members, register_merge_handler); their
member pages use ``members.center`` (member_blueprint, register_center_slot) and
``members.session``. Signals: ``members.signals``. The map of the package is in the README.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the models, jobs, demo steps, CLI, router handlers and every page of members."""
    from members import (
        api,
        cli,
        consent,  # noqa: F401 - router handlers of the subscribe-message events
        demo,  # noqa: F401 - registers the demo steps
        jobs,  # noqa: F401 - registers the jobs
        labels,  # noqa: F401 - Chinese names of the package's codes
        models,  # noqa: F401 - registers the tables
        overview,  # noqa: F401 - registers the overview section
        pickers,  # noqa: F401 - members, tiers and tags in the console's pickers
        rollups,  # noqa: F401 - registers the members rollup
        views_console,
        views_console_config,
        views_console_qr,
        views_console_workbench,
        views_member,
    )
    from members.activation import sms, wechat_handlers  # noqa: F401 - router handlers

    app.cli.add_command(cli.members_cli)
    app.register_blueprint(views_console.bp)
    app.register_blueprint(views_console_config.bp)
    app.register_blueprint(views_console_qr.bp)
    app.register_blueprint(views_console_workbench.bp)
    app.register_blueprint(views_member.activate_bp)
    app.register_blueprint(views_member.center_bp)
    api.init_app(app)  # bearer tokens, no cookies: CSRF-exempt
    if app.config.get("SANDBOX_ENABLED") and sms.uses_sandbox_sender(app):
        app.register_blueprint(sms.sandbox_bp)
