"""A job whose worker died is sent again within a minute, and still has one effect.

Real worker processes (`flask rq worker`) on the test database and Redis: one is killed
(SIGKILL) in the middle of a job, another takes the job over after the scheduler's reaper
saw the first one's liveness key expire. A busy worker that is alive keeps its job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq import Queue
from sqlalchemy import text, update
from sqlalchemy.orm import Session

from core import jobs
from core.db import db, utcnow
from core.redis import get_redis, key
from core.scheduler import DEAD_WORKER_RUNS, requeue_orphans, tick
from tests.core.test_jobs import effects, record_effect
from tests.support.apps import DATABASE_URL, REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
TTL = 1.5  # the workers' liveness TTL in these tests (20 s by default)


def _test_key(marker: str, what: str) -> str:
    return key(None, "test", marker, what)


@jobs.job("default", timeout=60, retries=0)
def slow_effect(marker: str, commit_first: bool = False) -> None:
    """Test job: its first run waits until the test releases it; each finished run records
    one effect. ``commit_first`` ends the row's lock first, as the member import does."""
    if commit_first:
        db.session.commit()
    r = get_redis()
    if r.incr(_test_key(marker, "runs")) == 1:
        deadline = time.monotonic() + 45
        while not r.exists(_test_key(marker, "release")) and time.monotonic() < deadline:
            time.sleep(0.05)
    record_effect(marker)


class WorkerProcess:
    """`flask rq worker` in a process of its own, on the test database and Redis."""

    def __init__(self, logs: Path, name: str):
        self.log_path = logs / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        env = {
            **os.environ,
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "INSTANCE_PATH": str(self.log_path.parent),
            "LOG_JSON": "0",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        command = [sys.executable, "-m", "flask", "--app", "app", "rq", "worker", "default"]
        command += ["--liveness-ttl", str(TTL), "--log-level", "WARNING"]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(  # noqa: S603
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(30)

    def output(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
def workers(tmp_path):
    started: list[WorkerProcess] = []

    def start(name: str) -> WorkerProcess:
        started.append(WorkerProcess(tmp_path, name).start())
        return started[-1]

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait(30)


def wait_for(condition, what: str, timeout: float = 30, every: float = 0.1, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if worker is not None and worker.proc.poll() is not None:
            pytest.fail(f"worker exited ({worker.proc.returncode}):\n{worker.output()}")
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what}" + (f":\n{worker.output()}" if worker else ""))


def row_of(row_id: int) -> jobs.OutboxJob:
    with Session(db.engine) as s:
        return s.get(jobs.OutboxJob, row_id)


def enqueue_slow(marker: str, **kwargs) -> int:
    row_id = jobs.enqueue(slow_effect, marker, **kwargs)
    db.session.commit()
    assert jobs.relay_committed() == 1
    return row_id


def running_started(row_id: int, marker: str):
    """The worker noted the run and the job function has begun: (worker name, alive)."""
    note = jobs.running_jobs([row_id]).get(row_id)
    return note if note and get_redis().get(_test_key(marker, "runs")) else None


def test_job_of_a_killed_worker_is_sent_again_and_runs_once(app, ctx, workers):
    row_id = enqueue_slow("killed")
    first = workers("first")
    name, alive = wait_for(lambda: running_started(row_id, "killed"), "job start", worker=first)
    assert alive

    first.stop(signal.SIGKILL)  # no clean-up of any kind: the row stays queued
    killed_at = time.monotonic()
    second = workers("second")
    tick([], reap_every=1)  # the first worker's liveness key has not expired yet
    assert row_of(row_id).status == jobs.QUEUED

    def done():
        tick([], reap_every=1)
        return row_of(row_id).status == jobs.DONE

    wait_for(done, "the job run by the second worker", timeout=60, every=0.25, worker=second)
    assert time.monotonic() - killed_at < 60
    row = row_of(row_id)
    assert row.attempts == 2  # the abandoned run and the finished one
    assert int(get_redis().get(_test_key("killed", "runs"))) == 2
    assert len(effects("killed")) == 1
    assert jobs.running_jobs() == {}
    # nothing more to send: the reaper and the relay leave the finished job alone
    assert requeue_orphans() == []
    assert jobs.relay() == 0

    assert second.stop() == 0
    names = {k.decode() for k in get_redis().keys(key(None, "worker", "*", "alive"))}
    assert names == set()  # the clean exit took its liveness key away at once


def test_job_of_a_busy_live_worker_is_not_sent_again(app, ctx, workers):
    # The job ends its row lock early (as the import does): only liveness protects it.
    row_id = enqueue_slow("busy", commit_first=True)
    worker = workers("busy")
    name, _ = wait_for(lambda: running_started(row_id, "busy"), "job start", worker=worker)
    busy_until = time.monotonic() + 3 * TTL
    while time.monotonic() < busy_until:
        tick([], reap_every=1)
        time.sleep(0.2)
    # even the 15-minute resend leaves a job that a live worker runs alone
    db.session.execute(
        update(jobs.OutboxJob)
        .where(jobs.OutboxJob.id == row_id)
        .values(queued_at=utcnow() - 2 * jobs.STALE_QUEUED)
    )
    db.session.commit()
    assert jobs.relay() == 0
    row = row_of(row_id)
    assert (row.status, row.attempts) == (jobs.QUEUED, 0)
    assert jobs.running_jobs() == {row_id: (name, True)}
    assert Queue("default", connection=get_redis()).count == 0

    get_redis().set(_test_key("busy", "release"), 1)
    wait_for(lambda: row_of(row_id).status == jobs.DONE, "the job to finish", worker=worker)
    assert len(effects("busy")) == 1
    assert jobs.running_jobs() == {}
    assert worker.stop() == 0


def _noted_by_dead_worker(row_id: int, worker: str = "gone") -> None:
    get_redis().hset(jobs._running_key(), str(row_id), worker)


def test_reaper_waits_for_a_dead_workers_transaction_to_end(app, ctx):
    row_id = enqueue_slow("locked")
    Queue("default", connection=get_redis()).empty()  # a worker took it, then died
    _noted_by_dead_worker(row_id)
    with db.engine.connect() as dying:  # its backend has not noticed the death yet
        dying.execute(text("SELECT 1 FROM outbox_job WHERE id = :id FOR UPDATE"), {"id": row_id})
        assert requeue_orphans() == []
        assert jobs.running_jobs() == {row_id: ("gone", False)}  # tried again next time
    assert requeue_orphans() == [row_id]
    row = row_of(row_id)
    assert (row.status, row.attempts) == (jobs.QUEUED, 1)  # relayed again at once
    assert "gone" in row.last_error
    assert Queue("default", connection=get_redis()).job_ids == [f"outbox-{row_id}"]
    assert jobs.running_jobs() == {}


def test_reaper_drops_notes_of_finished_jobs(app, ctx):
    done_id = jobs.enqueue(record_effect, "finished")
    db.session.commit()
    db.session.info.pop("wmb_outbox_committed", None)
    assert jobs.run_outbox_job(done_id) == "done"
    _noted_by_dead_worker(done_id)  # died after the commit, before forgetting its run
    _noted_by_dead_worker(10_000)  # a row purged since
    assert requeue_orphans() == []
    assert jobs.running_jobs() == {}
    assert row_of(done_id).attempts == 1
    assert len(effects("finished")) == 1


def test_job_that_keeps_killing_its_workers_is_failed(app, ctx):
    row_id = enqueue_slow("poison")
    for _ in range(DEAD_WORKER_RUNS - 1):
        _noted_by_dead_worker(row_id)
        assert requeue_orphans() == [row_id]
    _noted_by_dead_worker(row_id)
    assert requeue_orphans() == []
    row = row_of(row_id)
    assert (row.status, row.attempts) == (jobs.FAILED, DEAD_WORKER_RUNS)
    assert "died" in row.last_error


def test_worker_notes_its_run_only_while_it_runs(app, ctx):
    row_id = jobs.enqueue(record_effect, "noted")
    db.session.commit()
    db.session.info.pop("wmb_outbox_committed", None)
    with jobs.WorkerLiveness(get_redis(), "here", ttl=5):
        assert jobs.running_jobs() == {}
        assert jobs.run_outbox_job(row_id) == "done"
        assert jobs.running_jobs() == {}
        assert get_redis().exists(jobs._alive_key("here"))
    assert not get_redis().exists(jobs._alive_key("here"))
