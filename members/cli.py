"""Command line of the members package: `flask --app app members ...`."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from core.audit import acting_as
from core.cli import CLI_ACTOR
from core.db import db
from core.errors import AppError
from core.tenancy import use_brand
from org.models import Brand

members_cli = AppGroup("members", help="Members: import, tier review.")


def _brand(slug: str) -> Brand:
    brand = Brand.by_slug(slug)
    if brand is None:
        raise click.ClickException(f"no brand {slug}")
    return brand


@members_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--brand", "brand_slug", required=True, help="Brand slug")
@click.option("--batch-size", default=20_000, show_default=True)
def import_command(path: str, brand_slug: str, batch_size: int) -> None:
    """Import members from a POS/CRM CSV export (UTF-8 or GBK)."""
    from members import imports

    brand = _brand(brand_slug)
    with use_brand(brand.id), acting_as(CLI_ACTOR):
        try:
            _, lines = imports.sniff(path)
        except AppError as exc:
            raise click.ClickException(exc.message) from exc
        with click.progressbar(length=max(0, lines - 1), label="Importing", show_pos=True) as bar:
            seen = {"n": 0}

            def progress(imp) -> None:
                bar.update(imp.processed - seen["n"])
                seen["n"] = imp.processed

            imp = imports.import_file(path=path, batch_size=batch_size, on_progress=progress)
    click.echo(
        f"import #{imp.id} {imp.status}: {imp.processed} rows, {imp.inserted} inserted, "
        f"{imp.updated} updated, {imp.unchanged} unchanged, {imp.bad} bad"
    )
    for err in imp.errors[:20]:
        click.echo(f"  line {err['line']}: {err['reason']}")
    if imp.bad > 20:
        click.echo(f"  ... and {imp.bad - 20} more bad rows")
    if imp.status != "done":
        raise click.ClickException(imp.message or "import failed")


@members_cli.command("review-tiers")
@click.option("--brand", "brand_slug", required=True)
@click.option("--force", is_flag=True, help="Review even if this year's review already ran.")
def review_command(brand_slug: str, force: bool) -> None:
    """Apply the yearly tier review now."""
    from members.tiers_tags import tiers

    brand = _brand(brand_slug)
    with use_brand(brand.id), acting_as(CLI_ACTOR):
        changed = tiers.review_tiers(force=force)
        db.session.commit()
    click.echo(f"{changed} members changed level")
