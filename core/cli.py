"""Command line: workers, the scheduler, the outbox relay, platform admins, the demo."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from core.audit import Actor, acting_as
from core.db import db
from core.jobs import LIVENESS_TTL
from core.scheduler import REAP_EVERY

rq_cli = AppGroup("rq", help="Background job workers and the scheduler.")
rollups_cli = AppGroup("rollups", help="Report rollups: rebuild from the ledgers, check.")
admin_cli = AppGroup("platform-admin", help="Platform operators.")

# Steps of `flask demo`, in order; each package adds its own. Each step is idempotent.
DEMO_STEPS: list[tuple[int, Callable[[], list[str]]]] = []

CLI_ACTOR = Actor("cli", None, "command line")


def demo_step(order: int):
    """Register a function as a step of `flask demo`; it returns lines to print."""

    def decorate(fn):
        DEMO_STEPS.append((order, fn))
        DEMO_STEPS.sort(key=lambda s: s[0])
        return fn

    return decorate


@rq_cli.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--log-level", default="INFO", show_default=True, help="RQ's own log level.")
@click.option(
    "--liveness-ttl",
    type=click.FloatRange(min=0.5),
    default=LIVENESS_TTL,
    show_default=True,
    help="Seconds after which a silent worker counts as dead and its job is sent again.",
)
def worker(queues: tuple[str, ...], burst: bool, log_level: str, liveness_ttl: float) -> None:
    """Run a worker on the given queues (default: high, default, low)."""
    from rq import Queue, SimpleWorker

    from core.jobs import QUEUES, WorkerLiveness
    from core.redis import get_redis

    if current_app.config.get("JOBS_INLINE"):
        click.echo("JOBS_INLINE is on: jobs run in the web process, not in workers.", err=True)
        sys.exit(2)
    conn = get_redis()
    qs = [Queue(name, connection=conn) for name in (queues or QUEUES)]
    w = SimpleWorker(qs, connection=conn)
    w.push_exc_handler(_cleanup_session)
    with WorkerLiveness(conn, w.name, ttl=liveness_ttl):
        w.work(burst=burst, with_scheduler=False, logging_level=log_level.upper())


def _cleanup_session(job, *exc_info):
    db.session.remove()
    return True


@rq_cli.command("scheduler")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between ticks.")
@click.option(
    "--reap-every",
    type=click.FloatRange(min=1),
    default=REAP_EVERY,
    show_default=True,
    help="Seconds between two looks for jobs of dead workers.",
)
def scheduler(interval: float, reap_every: float) -> None:
    """Relay the outbox, enqueue periodic jobs and resend dead workers' jobs, forever."""
    from core.scheduler import periodic_jobs, run_forever

    run_forever(periodic_jobs(), interval=interval, reap_every=reap_every)


@rq_cli.command("relay")
def relay() -> None:
    """Relay due outbox rows to the queues once."""
    from core.jobs import relay as do_relay

    click.echo(f"relayed {do_relay()} jobs")


@admin_cli.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True)
def create_platform_admin(username: str, password: str) -> None:
    """Create a platform admin, or reset their password."""
    from core.auth import PlatformAdmin

    if len(password) < 8:
        raise click.BadParameter("at least 8 characters", param_hint="--password")
    with acting_as(CLI_ACTOR):
        admin = PlatformAdmin.by_username(username) or PlatformAdmin(username=username)
        admin.set_password(password)
        db.session.add(admin)
        db.session.commit()
    click.echo(f"platform admin {username} ready")


def init_app(app: Flask) -> None:
    app.cli.add_command(rq_cli)
    app.cli.add_command(rollups_cli)
    app.cli.add_command(admin_cli)

    @app.cli.command("demo")
    def demo() -> None:
        """Create (or refresh) the demo brand and print how to use it."""
        from core.jobs import relay_committed

        lines: list[str] = []
        with acting_as(CLI_ACTOR):
            for _, step in DEMO_STEPS:
                lines.extend(step())
                db.session.commit()
                relay_committed()
        click.echo("\n".join(lines))


def _rollup_brands(slug: str | None) -> list[tuple[int, str, str]]:
    from core import rollups

    listed = rollups.brands(slug)
    if slug is not None and not listed:
        raise click.ClickException(f"no brand {slug}")
    return listed


@rollups_cli.command("rebuild")
@click.option("--brand", "slug", default=None, help="One brand's slug (default: every brand).")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Recompute the days from this brand-local date on (default: everything).",
)
def rollups_rebuild(slug: str | None, since) -> None:
    """Recompute the rollups from the ledgers (idempotent: a rerun writes the same rows)."""
    from core import rollups

    day = since.date() if since is not None else None
    for bid, name, tz in _rollup_brands(slug):
        counts = rollups.rebuild_brand(bid, tz, since=day)
        db.session.commit()
        rows = ", ".join(f"{k} {v}" for k, v in counts.items())
        click.echo(f"{name}: {rows}")


@rollups_cli.command("check")
@click.option("--brand", "slug", default=None, help="One brand's slug (default: every brand).")
def rollups_check(slug: str | None) -> None:
    """Compare every rollup row with the ledgers; exit 1 listing any mismatch."""
    from core import rollups

    bad = 0
    for bid, name, tz in _rollup_brands(slug):
        for line in rollups.check_brand(bid, tz):
            click.echo(f"{name}: {line}")
            bad += 1
        db.session.rollback()
    if bad:
        click.echo(f"{bad} mismatches", err=True)
        sys.exit(1)
    click.echo("rollups agree with the ledgers")
