"""The scheduler enqueues each periodic job once per period, however many schedulers run."""

from __future__ import annotations

from sqlalchemy import select

from app import periodic_jobs
from core import jobs
from core.db import db
from core.redis import get_redis
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


def test_schedulers_look_for_dead_workers_jobs_once_per_interval(app, ctx):
    from tests.core.test_jobs import record_effect

    row_id = jobs.enqueue(record_effect, "reaped")
    db.session.commit()
    jobs.relay_committed()

    def attempts_after_tick(now: float) -> int:
        # the worker running the job died: its note is left, its liveness key is gone
        get_redis().hset(jobs._running_key(), str(row_id), "gone")
        tick([], now=now, reap_every=10)
        db.session.expire_all()
        return db.session.get(jobs.OutboxJob, row_id).attempts

    now = 1_800_000_000.0
    assert attempts_after_tick(now) == 1
    assert attempts_after_tick(now + 5) == 1  # another scheduler, same interval
    assert jobs.running_jobs() == {row_id: ("gone", False)}
    assert attempts_after_tick(now + 10) == 2
    assert jobs.running_jobs() == {}
    assert db.session.get(jobs.OutboxJob, row_id).status == jobs.QUEUED
