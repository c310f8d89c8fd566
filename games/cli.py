"""`flask games ...`: verify a campaign's draws, grant pending draws, refresh the figures."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from core.db import db
from core.tenancy import all_brands, use_brand

games_cli = AppGroup("games", help="Game campaigns: fairness and maintenance.")


@games_cli.command("verify")
@click.argument("campaign_id", type=int)
@click.option("--seed", default=None, help="Check with this seed (default: the stored one).")
def verify(campaign_id: int, seed: str | None) -> None:
    """Recompute every draw of CAMPAIGN from its seed and report mismatches."""
    from games import fairness
    from games.models import ENDED, GameCampaign

    campaign = db.session.execute(
        all_brands(select(GameCampaign).where(GameCampaign.id == campaign_id))
    ).scalar_one_or_none()
    if campaign is None:
        raise click.ClickException(f"no campaign {campaign_id}")
    with use_brand(campaign.brand_id):
        report = fairness.verify(campaign.id, seed=seed)
    click.echo(f"campaign {campaign.id} ({campaign.name}), seed hash {campaign.seed_hash}")
    if campaign.status == ENDED:
        click.echo(f"seed (revealed): {campaign.seed}")
    else:
        click.echo("the campaign has not ended: its seed is not public yet")
    click.echo(f"{report.checked} draws checked, {len(report.mismatches)} mismatches")
    for line in report.mismatches[:100]:
        click.echo(f"  {line}")
    if not report.ok:
        raise SystemExit(1)


@games_cli.command("grant-pending")
@click.option("--older-than", default=30, show_default=True, help="Seconds.")
def grant_pending(older_than: int) -> None:
    """Grant draws left pending (what the periodic recovery job does)."""
    from games import jobs

    n = jobs.recover_grants(older_than_seconds=older_than)
    db.session.commit()
    click.echo(f"{n} draws granted")


@games_cli.command("stats")
def stats() -> None:
    """Refresh the hourly figures of live and recent campaigns."""
    from games import jobs

    n = jobs.stats_all()
    db.session.commit()
    click.echo(f"{n} campaigns refreshed")


def init_app(app: Flask) -> None:
    app.cli.add_command(games_cli)
