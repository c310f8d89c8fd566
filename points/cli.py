"""Command line: run the points jobs for one brand now (operations, backfills)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from core.db import db
from core.tenancy import use_brand
from org.models import Brand
from points import expiry

points_cli = AppGroup("points", help="Points ledger maintenance.")


def _brand(slug: str) -> Brand:
    brand = Brand.by_slug(slug)
    if brand is None:
        raise click.ClickException(f"no brand {slug}")
    return brand


@points_cli.command("release")
@click.option("--brand", "slug", required=True)
def release(slug: str) -> None:
    """Release a brand's pending points that are due."""
    brand = _brand(slug)
    with use_brand(brand.id):
        n = expiry.release_due(limit=100_000)
        db.session.commit()
    click.echo(f"released {n} lots")


@points_cli.command("expire")
@click.option("--brand", "slug", required=True)
def expire(slug: str) -> None:
    """Expire a brand's points that are past their expiry."""
    brand = _brand(slug)
    with use_brand(brand.id):
        n = expiry.expire_due(limit=100_000)
        db.session.commit()
    click.echo(f"expired {n} points")


def init_app(app: Flask) -> None:
    app.cli.add_command(points_cli)
