"""The scheduler enqueues each periodic job once per period, however many schedulers run."""

from __future__ import annotations

from sqlalchemy import select

from app import periodic_jobs
from core import jobs
from core.db import db
from core.scheduler import Periodic, tick


def test_every_periodic_job_is_a_registered_job(app):
    names = [p.name for p in periodic_jobs()]
    assert len(names) == len(set(names))
    for p in periodic_jobs():
        assert p.job.spec.name in jobs.REGISTRY
        assert p.every >= 5


def test_two_schedulers_enqueue_a_period_once(app, ctx):
    from tests.core.test_jobs import record_effect

    periodic = [Periodic("probe", record_effect, every=60)]
    now = 1_800_000_000.0
    assert tick(periodic, now=now) == ["probe"]
    assert tick(periodic, now=now + 1) == []  # another scheduler, same period
    assert tick(periodic, now=now + 61) == ["probe"]
    rows = (
        db.session.execute(select(jobs.OutboxJob).execution_options(all_brands=True))
        .scalars()
        .all()
    )
    assert len(rows) == 2
