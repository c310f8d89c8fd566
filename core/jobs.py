"""Background jobs with a transactional outbox.

``enqueue()`` writes an ``outbox_job`` row in the caller's transaction. Only after that
transaction commits does the relay move the row to RQ, so a job never runs before its data
is committed, and a job is never lost when Redis is down or the process dies after the
commit: the row stays ``pending`` and the periodic relay sends it later. A job run locks its
outbox row and marks it ``done`` in the same transaction as its effects, so a job delivered
twice has one effect. Retries with backoff are scheduled on the row itself.

A worker started by ``flask rq worker`` proves it is alive with a Redis key of a short TTL
(``WorkerLiveness``) and notes which row it runs; ``core.scheduler.requeue_orphans`` sends a
row again soon after its worker died (SIGKILL, out of memory, lost machine). RQ's own
abandoned-job cleanup would take the job timeout plus a minute (a ``SimpleWorker`` sends no
heartbeat while it runs a job) and knows nothing of the outbox.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import importlib
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import redis
from flask import current_app, has_app_context
from rq import Queue
from sqlalchemy import JSON, Index, Integer, String, Text, event, func, insert, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import (
    BigId,
    IdMixin,
    UTCDateTime,
    db,
    insert_ignoring,
    savepoint_event,
    utcnow,
)
from core.metrics import JOB_SECONDS, JOBS
from core.redis import get_redis, key
from core.tenancy import current_brand_id, use_brand

log = logging.getLogger(__name__)

PENDING, QUEUED, DONE, RETRY, FAILED = "pending", "queued", "done", "retry", "failed"
QUEUES = ("high", "default", "low")
# A row queued this long ago and still not done was lost by Redis: send it again.
STALE_QUEUED = dt.timedelta(minutes=15)
# Seconds a worker's liveness key lives without a refresh (refreshed every quarter of it).
LIVENESS_TTL = 20.0


class OutboxJob(IdMixin, db.Model):
    """A job waiting for, or done after, delivery to a worker."""

    __tablename__ = "outbox_job"
    __table_args__ = (Index("ix_outbox_job_due", "status", "available_at"),)

    brand_id: Mapped[int | None] = mapped_column(BigId, index=True)
    func: Mapped[str] = mapped_column(String(200))
    args: Mapped[dict] = mapped_column(JSON, default=dict)
    queue: Mapped[str] = mapped_column(String(40), default="default")
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    available_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    queued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclasses.dataclass(frozen=True)
class JobSpec:
    name: str
    func: Callable
    queue: str
    timeout: int
    retries: int
    backoff: tuple[int, ...]

    def delay_for(self, attempt: int) -> int:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        if not self.backoff:
            return 0
        return self.backoff[min(attempt, len(self.backoff)) - 1]


REGISTRY: dict[str, JobSpec] = {}


def job(
    queue: str = "default",
    *,
    timeout: int = 60,
    retries: int = 3,
    backoff: Sequence[int] = (10, 60, 300, 900),
):
    """Declare a job: its queue, timeout in seconds, retries and backoff schedule."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")

    def decorate(fn: Callable) -> Callable:
        name = f"{fn.__module__}.{fn.__qualname__}"
        spec = JobSpec(name, fn, queue, timeout, retries, tuple(backoff))
        REGISTRY[name] = spec

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)

        wrapper.spec = spec  # type: ignore[attr-defined]
        wrapper.enqueue = functools.partial(enqueue, wrapper)  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _spec_of(fn_or_name: Callable | str) -> JobSpec:
    name = fn_or_name if isinstance(fn_or_name, str) else fn_or_name.spec.name
    if name not in REGISTRY:
        module = name.rsplit(".", 1)[0]
        while module and name not in REGISTRY:
            try:
                importlib.import_module(module)
            except ImportError:
                module = module.rsplit(".", 1)[0] if "." in module else ""
                continue
            break
    if name not in REGISTRY:
        raise LookupError(f"no job named {name}")
    return REGISTRY[name]


def enqueue(
    fn: Callable | str,
    *args: Any,
    brand_id: int | None = None,
    delay: int | float = 0,
    dedupe_key: str | None = None,
    **kwargs: Any,
) -> int | None:
    """Write an outbox row for ``fn(*args, **kwargs)`` in the current transaction.

    Arguments must be JSON values (ids, not objects). With ``dedupe_key`` a second enqueue of
    the same key is a no-op (and returns None). The job runs after the caller commits.
    """
    spec = _spec_of(fn)
    values = {
        "brand_id": brand_id if brand_id is not None else current_brand_id(),
        "func": spec.name,
        "args": {"args": list(args), "kwargs": kwargs},
        "queue": spec.queue,
        "dedupe_key": dedupe_key,
        "status": PENDING,
        "attempts": 0,
        "max_attempts": spec.retries + 1,
        "available_at": utcnow() + dt.timedelta(seconds=delay),
        "created_at": utcnow(),
    }
    if dedupe_key is not None:
        # Compiled once (SQLAlchemy compiles PostgreSQL's ON CONFLICT insert on every call).
        stmt = insert_ignoring(OutboxJob.__tablename__, tuple(values), ("dedupe_key",), "id")
        row_id = db.session.execute(stmt, values).scalar()
    else:
        stmt = insert(OutboxJob).values(**values).returning(OutboxJob.id)
        row_id = db.session.execute(stmt).scalar()
    if row_id is not None and not delay:
        db.session.info.setdefault("wmb_outbox", []).append(row_id)
    return row_id


@event.listens_for(Session, "after_commit")
def _outbox_committed(session: Session) -> None:
    if savepoint_event(session):
        return
    ids = session.info.pop("wmb_outbox", None)
    if ids:
        session.info.setdefault("wmb_outbox_committed", []).extend(ids)


@event.listens_for(Session, "after_rollback")
def _outbox_rolled_back(session: Session) -> None:
    if savepoint_event(session):
        return
    session.info.pop("wmb_outbox", None)


def relay_committed() -> int:
    """Hand the jobs committed by this session to the workers now (best effort)."""
    ids = db.session.info.pop("wmb_outbox_committed", None)
    if not ids:
        return 0
    try:
        return relay(ids=ids)
    except Exception:
        # Redis or the database is unavailable: the rows stay pending for the periodic relay.
        log.warning("outbox relay deferred", exc_info=True)
        return 0


def _queue(name: str) -> Queue:
    return Queue(name, connection=get_redis())


def relay(*, ids: Sequence[int] | None = None, limit: int = 500) -> int:
    """Move due outbox rows to RQ (or run them now in inline mode). Returns rows relayed."""
    inline = current_app.config.get("JOBS_INLINE")
    now = utcnow()
    with Session(db.engine) as s:
        q = select(OutboxJob).execution_options(all_brands=True)
        if ids is not None:
            q = q.where(OutboxJob.id.in_(ids), OutboxJob.status == PENDING)
        else:
            q = q.where(
                or_(
                    (OutboxJob.status.in_([PENDING, RETRY])) & (OutboxJob.available_at <= now),
                    (OutboxJob.status == QUEUED) & (OutboxJob.queued_at < now - STALE_QUEUED),
                )
            )
        q = q.order_by(OutboxJob.id).limit(limit)
        q = q.with_for_update(skip_locked=True)
        rows = s.execute(q).scalars().all()
        stale = [row.id for row in rows if row.status == QUEUED]
        if stale:
            # A long job that commits as it goes (the member import) no longer holds its
            # row's lock: it is not lost while a live worker runs it.
            running = running_jobs(stale)
            rows = [row for row in rows if not running.get(row.id, ("", False))[1]]
        if not rows:
            return 0
        if not inline:
            pipe = get_redis().pipeline()
            for row in rows:
                spec = REGISTRY.get(row.func)
                timeout = spec.timeout if spec else 600
                _queue(row.queue).enqueue_call(
                    "core.jobs.run_outbox_job",
                    args=(row.id,),
                    job_id=f"outbox-{row.id}",
                    timeout=timeout,
                    result_ttl=300,
                    failure_ttl=7 * 24 * 3600,
                    pipeline=pipe,
                )
            pipe.execute()
        for row in rows:
            row.status = QUEUED
            row.queued_at = now
        ids_done = [r.id for r in rows]
        s.commit()
    if inline:
        app = current_app._get_current_object()
        for row_id in ids_done:
            with app.app_context():
                run_outbox_job(row_id)
    return len(ids_done)


def run_outbox_job(outbox_id: int) -> str:
    """Run one outbox job: lock its row, run it, mark it done in the same transaction."""
    if not has_app_context():
        raise RuntimeError("run_outbox_job needs an application context")
    session = db.session
    started = time.perf_counter()
    row = session.execute(
        select(OutboxJob)
        .where(OutboxJob.id == outbox_id)
        .with_for_update()
        .execution_options(all_brands=True)
    ).scalar_one_or_none()
    if row is None or row.status in (DONE, FAILED):
        session.rollback()
        return "skipped"
    name, brand_id, payload = row.func, row.brand_id, row.args or {}
    noted = _note_running(outbox_id)
    try:
        spec = _spec_of(name)
        with use_brand(brand_id):
            spec.func(*payload.get("args", []), **payload.get("kwargs", {}))
        row.status = DONE
        row.attempts = row.attempts + 1
        row.finished_at = utcnow()
        row.last_error = None
        session.commit()
    except Exception as exc:
        session.rollback()
        _record_failure(outbox_id, name, exc)
        if noted:
            _forget_running(outbox_id)
        JOBS.labels(name, "error").inc()
        return "error"
    finally:
        JOB_SECONDS.labels(name).observe(time.perf_counter() - started)
    # Not in `finally`: a worker stopped mid-job (SystemExit) leaves its note for the reaper.
    if noted:
        _forget_running(outbox_id)
    JOBS.labels(name, "done").inc()
    relay_committed()
    return "done"


def _record_failure(outbox_id: int, name: str, exc: Exception) -> None:
    log.warning("job %s (outbox %s) failed: %s", name, outbox_id, exc, exc_info=exc)
    row = db.session.execute(
        select(OutboxJob)
        .where(OutboxJob.id == outbox_id)
        .with_for_update()
        .execution_options(all_brands=True)
    ).scalar_one()
    row.attempts = row.attempts + 1
    row.last_error = "".join(traceback.format_exception(exc))[-4000:]
    spec = REGISTRY.get(name)
    if spec is None or row.attempts >= row.max_attempts:
        row.status = FAILED
        row.finished_at = utcnow()
    else:
        row.status = RETRY
        row.available_at = utcnow() + dt.timedelta(seconds=spec.delay_for(row.attempts))
    db.session.commit()


def _running_key() -> str:
    return key(None, "outbox", "running")


def _alive_key(worker: str) -> str:
    return key(None, "worker", worker, "alive")


class WorkerLiveness:
    """A worker's proof of life: a Redis key with a short TTL, refreshed by a daemon thread.

    Used as a context manager around the worker's loop. Meanwhile ``run_outbox_job`` notes
    (one HSET, one HDEL per job) which outbox row this worker runs, so that
    ``core.scheduler.requeue_orphans`` can send the row again soon after the key expires. A
    clean exit deletes the key at once.
    """

    def __init__(self, client: redis.Redis, name: str, ttl: float = LIVENESS_TTL):
        self.client, self.name, self.ttl = client, name, ttl
        self.key = _alive_key(name)
        self.value = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"liveness-{name}", daemon=True)

    def _set(self, **kwargs: bool) -> bool:
        return bool(self.client.set(self.key, self.value, px=int(self.ttl * 1000), **kwargs))

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                if not self._set(xx=True):
                    log.warning(
                        "worker %s: liveness lapsed; its job may have been sent to another worker",
                        self.name,
                    )
                    self._set()
            except redis.RedisError:
                log.warning("worker %s: liveness not refreshed", self.name, exc_info=True)

    def __enter__(self) -> WorkerLiveness:
        global _LIVENESS
        self._set()
        self._thread.start()
        _LIVENESS = self
        return self

    def __exit__(self, *exc_info: object) -> None:
        global _LIVENESS
        _LIVENESS = None
        self._stop.set()
        self._thread.join(self.ttl)
        try:
            self.client.delete(self.key)
        except redis.RedisError:
            log.warning("worker %s: liveness key left to expire", self.name, exc_info=True)


_LIVENESS: WorkerLiveness | None = None


def _note_running(outbox_id: int) -> bool:
    liveness = _LIVENESS
    if liveness is None:  # not a worker process (tests, inline mode, a plain RQ worker)
        return False
    try:
        liveness.client.hset(_running_key(), str(outbox_id), liveness.name)
    except redis.RedisError:
        log.warning("outbox %s: running worker not noted", outbox_id, exc_info=True)
        return False
    return True


def _forget_running(outbox_id: int) -> None:
    try:
        get_redis().hdel(_running_key(), str(outbox_id))
    except redis.RedisError:
        log.warning("outbox %s: running note left", outbox_id, exc_info=True)


def running_jobs(ids: Sequence[int] | None = None) -> dict[int, tuple[str, bool]]:
    """Runs noted by workers (of ``ids``, or all): outbox id -> (worker name, worker alive)."""
    r = get_redis()
    if ids is not None and not ids:
        return {}
    if ids is None:
        notes = r.hgetall(_running_key()).items()
    else:
        notes = zip(ids, r.hmget(_running_key(), [str(i) for i in ids]), strict=True)
    running = {int(i): w.decode() for i, w in notes if w is not None}
    workers = sorted(set(running.values()))
    if not workers:
        return {}
    with r.pipeline(transaction=False) as pipe:
        for worker in workers:
            pipe.exists(_alive_key(worker))
        alive = {w for w, n in zip(workers, pipe.execute(), strict=True) if n}
    return {i: (w, w in alive) for i, w in running.items()}


def forget_runs(ids: Sequence[int]) -> None:
    """Remove the notes of these runs (the reaper settled them)."""
    get_redis().hdel(_running_key(), *[str(i) for i in ids])


def retry_failed(outbox_id: int) -> bool:
    """Send a failed job again (from the console). Flushes; the caller commits."""
    row = db.session.execute(
        select(OutboxJob).where(OutboxJob.id == outbox_id).execution_options(all_brands=True)
    ).scalar_one_or_none()
    if row is None or row.status != FAILED:
        return False
    row.status = PENDING
    row.attempts = 0
    row.available_at = utcnow()
    row.finished_at = None
    db.session.flush()
    db.session.info.setdefault("wmb_outbox", []).append(row.id)
    return True


def queue_depths() -> dict[str, int]:
    if current_app.config.get("JOBS_INLINE"):
        return {name: 0 for name in QUEUES}
    return {name: _queue(name).count for name in QUEUES}


def outbox_counts() -> dict[str, int]:
    rows = db.session.execute(
        select(OutboxJob.status, func.count())
        .group_by(OutboxJob.status)
        .execution_options(all_brands=True)
    ).all()
    return {status: n for status, n in rows}


def init_app(app) -> None:
    @app.after_request
    def _relay_after_request(response):
        # A request that never opened a database session committed no jobs; asking would
        # create a session just to find that out.
        if db.session.registry.has():
            relay_committed()
        return response
