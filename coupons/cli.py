"""`flask coupons ...`: expire coupons and send reminders now (what the periodic jobs do)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from core.db import db

coupons_cli = AppGroup("coupons", help="Coupon engine maintenance.")


@coupons_cli.command("expire")
def expire() -> None:
    """Mark coupons past their validity as expired."""
    from coupons import jobs

    n = jobs.expire_due()
    db.session.commit()
    click.echo(f"{n} coupons expired")


@coupons_cli.command("remind")
def remind() -> None:
    """Queue the "expiring soon" reminders."""
    from coupons import jobs

    n = jobs.remind_expiring()
    db.session.commit()
    click.echo(f"{n} reminders queued")


def init_app(app: Flask) -> None:
    from coupons import demo  # noqa: F401 - registers the demo step

    app.cli.add_command(coupons_cli)
