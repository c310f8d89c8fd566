"""Periodic jobs: one scheduler loop that relays the outbox and enqueues jobs on time.

The list of periodic jobs is declared in one place, ``app.periodic_jobs()``, which
``create_app`` hands to ``core.scheduler.init_app``. Several
scheduler processes may run: each period's slot is claimed in Redis with SET NX, so every
periodic job is enqueued once per period. Every ``REAP_EVERY`` seconds one of them also sends
again the jobs of workers that died while running them (``requeue_orphans``).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import time
from collections.abc import Callable

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import jobs
from core.db import db, utcnow
from core.jobs import FAILED, PENDING, QUEUED, OutboxJob
from core.redis import get_redis, key

log = logging.getLogger(__name__)

# Seconds between two looks for jobs of dead workers (a worker is dead once its liveness key,
# jobs.LIVENESS_TTL, has expired).
REAP_EVERY = 10.0
# A job whose worker died this many times (or max_attempts, if more) is failed, not sent
# again: a job that kills its worker (out of memory) must not take every worker down in turn.
DEAD_WORKER_RUNS = 3


@dataclasses.dataclass(frozen=True)
class Periodic:
    """Run ``job`` every ``every`` seconds (slots aligned to the Unix epoch)."""

    name: str
    job: Callable
    every: int


_EXT = "wmb_periodic_jobs"


def init_app(app: Flask, periodics: Callable[[], list[Periodic]]) -> None:
    """Give the scheduler the product's periodic jobs (a function returning the list)."""
    app.extensions[_EXT] = periodics


def periodic_jobs() -> list[Periodic]:
    """The current app's periodic jobs."""
    return current_app.extensions[_EXT]()


def tick(
    periodics: list[Periodic], now: float | None = None, reap_every: float = REAP_EVERY
) -> list[str]:
    """Enqueue due periodic jobs, relay the outbox, now and then resend dead workers' jobs."""
    now = time.time() if now is None else now
    fired = []
    r = get_redis()
    for p in periodics:
        slot = int(now // p.every)
        if r.set(key(None, "sched", p.name, slot), 1, nx=True, ex=max(p.every * 2, 60)):
            jobs.enqueue(p.job, dedupe_key=f"periodic:{p.name}:{slot}")
            fired.append(p.name)
    if fired:
        db.session.commit()
        jobs.relay_committed()
    jobs.relay()
    reap_slot = key(None, "sched", "reap", int(now // reap_every))
    if r.set(reap_slot, 1, nx=True, ex=max(int(reap_every * 2), 60)):
        requeue_orphans()
    return fired


def requeue_orphans() -> list[int]:
    """Send again the jobs whose worker died while running them; returns their outbox ids.

    A row is taken back only while it is still ``queued`` and not locked: a dead process's
    transaction may not have been rolled back yet, and then a later call tries again. The
    job itself runs to completion at most once (``run_outbox_job`` locks the row and checks
    ``done``; jobs that commit as they go are idempotent).
    """
    orphans = {i: w for i, (w, alive) in jobs.running_jobs().items() if not alive}
    if not orphans:
        return []
    now, requeued = utcnow(), []
    with Session(db.engine) as s:
        by_id = (
            select(OutboxJob).where(OutboxJob.id.in_(orphans)).execution_options(all_brands=True)
        )
        present = set(s.execute(by_id.with_only_columns(OutboxJob.id)).scalars())
        rows = s.execute(by_id.with_for_update(skip_locked=True)).scalars().all()
        # Looked at again with the rows locked: a note naming another worker is a new run's.
        settled = [i for i in orphans if i not in present] + [row.id for row in rows]
        notes = jobs.running_jobs(settled).items()
        settled = [i for i, (w, alive) in notes if w == orphans[i] and not alive]
        for row in rows:
            if row.id not in settled or row.status != QUEUED:
                continue
            row.attempts = row.attempts + 1
            row.last_error = f"worker {orphans[row.id]} died while running this job"
            if row.attempts >= max(row.max_attempts, DEAD_WORKER_RUNS):
                row.status = FAILED
                row.finished_at = now
            else:
                row.status = PENDING
                row.available_at = now
                requeued.append(row.id)
        if settled:
            jobs.forget_runs(settled)
        s.commit()
    if requeued:
        log.warning("outbox jobs %s of dead workers sent again", requeued)
        jobs.relay(ids=requeued)
    return requeued


def run_forever(
    periodics: list[Periodic], interval: float = 1.0, reap_every: float = REAP_EVERY
) -> None:
    stop = False

    def _stop(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("scheduler started with %d periodic jobs", len(periodics))
    while not stop:
        try:
            tick(periodics, reap_every=reap_every)
        except Exception:
            db.session.rollback()
            log.exception("scheduler tick failed")
        finally:
            db.session.remove()
        time.sleep(interval)
