"""Periodic jobs: one scheduler loop that relays the outbox and enqueues jobs on time.

The list of periodic jobs is declared in one place, ``app.periodic_jobs()``, which
``create_app`` hands to ``core.scheduler.init_app``. Several
scheduler processes may run: each period's slot is claimed in Redis with SET NX, so every
periodic job is enqueued once per period.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import time
from collections.abc import Callable

from flask import Flask, current_app

from core import jobs
from core.db import db
from core.redis import get_redis, key

log = logging.getLogger(__name__)


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


def tick(periodics: list[Periodic], now: float | None = None) -> list[str]:
    """Enqueue the periodic jobs whose slot has come and relay due outbox rows."""
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
    return fired


def run_forever(periodics: list[Periodic], interval: float = 1.0) -> None:
    stop = False

    def _stop(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("scheduler started with %d periodic jobs", len(periodics))
    while not stop:
        try:
            tick(periodics)
        except Exception:
            db.session.rollback()
            log.exception("scheduler tick failed")
        finally:
            db.session.remove()
        time.sleep(interval)
