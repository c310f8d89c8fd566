"""The job outbox: nothing lost when Redis is down, one effect per job, committed data only."""

from __future__ import annotations

import threading

import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import func, select

from core import jobs
from core.audit import AuditLog
from core.db import db
from core.tenancy import use_brand
from org.models import Store
from tests import factories as f
from tests.support.apps import make_config


@jobs.job("default", timeout=30, retries=2, backoff=(0, 0))
def record_effect(marker: str, store_id: int | None = None) -> None:
    """Test job: one audit row per run, noting the store it could see."""
    seen = None
    if store_id is not None:
        store = db.session.get(Store, store_id)
        seen = store.name if store else None
    db.session.add(
        AuditLog(
            actor_kind="system",
            actor_label="test",
            action="effect",
            object_type="marker",
            object_id=marker,
            after={"seen": seen},
        )
    )


FAILURES: dict[str, int] = {}


@jobs.job("default", timeout=30, retries=2, backoff=(0, 0))
def flaky(marker: str, fail_times: int) -> None:
    """Test job: fails its first ``fail_times`` runs."""
    FAILURES[marker] = FAILURES.get(marker, 0) + 1
    if FAILURES[marker] <= fail_times:
        raise RuntimeError(f"boom {FAILURES[marker]}")
    record_effect(marker)


def effects(marker: str) -> list[AuditLog]:
    return list(db.session.execute(select(AuditLog).where(AuditLog.object_id == marker)).scalars())


@pytest.fixture
def queued_app(app, own_redis):
    """An app on the test database whose Redis is a server the test controls."""
    from app import create_app

    other = create_app(make_config(REDIS_URL=f"redis://127.0.0.1:{own_redis.port}/0"))
    return other


def work_burst(application) -> None:
    with application.app_context():
        from core.redis import get_redis

        conn = get_redis()
        SimpleWorker([Queue(q, connection=conn) for q in jobs.QUEUES], connection=conn).work(
            burst=True
        )


def test_job_survives_redis_down_between_commit_and_relay(queued_app, own_redis):
    own_redis.stop()
    with queued_app.app_context():
        row_id = jobs.enqueue(record_effect, "m1")
        db.session.commit()
        assert jobs.relay_committed() == 0  # Redis is down: deferred, not lost
        row = db.session.get(jobs.OutboxJob, row_id)
        assert row.status == jobs.PENDING
        assert effects("m1") == []
        db.session.remove()
    own_redis.start()  # a fresh, empty Redis: nothing of the job survived in it
    with queued_app.app_context():
        assert jobs.relay() == 1
        db.session.remove()
    work_burst(queued_app)
    with queued_app.app_context():
        assert len(effects("m1")) == 1
        assert db.session.get(jobs.OutboxJob, row_id).status == jobs.DONE


def test_job_lost_by_redis_after_relay_is_sent_again(queued_app, own_redis):
    with queued_app.app_context():
        row_id = jobs.enqueue(record_effect, "m2")
        db.session.commit()
        assert jobs.relay_committed() == 1
        db.session.remove()
    own_redis.stop()
    own_redis.start()  # Redis restarted without persistence: the queued job is gone
    with queued_app.app_context():
        row = db.session.get(jobs.OutboxJob, row_id)
        row.queued_at = row.queued_at - jobs.STALE_QUEUED * 2
        db.session.commit()
        assert jobs.relay() == 1
        db.session.remove()
    work_burst(queued_app)
    with queued_app.app_context():
        assert len(effects("m2")) == 1


def test_job_delivered_twice_has_one_effect(queued_app):
    with queued_app.app_context():
        row_id = jobs.enqueue(record_effect, "m3")
        db.session.commit()
        jobs.relay_committed()
        # the same job handed to the queue a second time (a relay that died before marking)
        Queue("default", connection=__import__("core.redis").redis.get_redis()).enqueue_call(
            "core.jobs.run_outbox_job", args=(row_id,)
        )
        db.session.remove()
    work_burst(queued_app)
    with queued_app.app_context():
        assert len(effects("m3")) == 1


def test_concurrent_duplicate_runs_have_one_effect(app):
    with app.app_context():
        row_id = jobs.enqueue(record_effect, "m4")
        db.session.commit()
        db.session.info.pop("wmb_outbox_committed", None)
    results = []
    barrier = threading.Barrier(8)

    def run():
        with app.app_context():
            barrier.wait()
            results.append(jobs.run_outbox_job(row_id))
            db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["done"] + ["skipped"] * 7
    with app.app_context():
        assert len(effects("m4")) == 1


def test_job_never_sees_uncommitted_data(app, ctx):
    b = f.brand()
    with use_brand(b.id):
        store = Store(code="NEW1", name="尚未提交的门店", city="上海")
        db.session.add(store)
        db.session.flush()
        jobs.enqueue(record_effect, "m5", store_id=store.id)
        # Another process relays while this transaction is still open: nothing to send.
        assert jobs.relay() == 0
        db.session.commit()
    with app.app_context():
        assert jobs.relay() == 1
        effects_seen = [e.after["seen"] for e in effects("m5")]
    assert effects_seen == []  # not run yet: the relay only queued it
    work_burst(app)
    assert [e.after["seen"] for e in effects("m5")] == ["尚未提交的门店"]


def test_rolled_back_enqueue_never_runs(app, ctx):
    jobs.enqueue(record_effect, "m6")
    db.session.rollback()
    assert jobs.relay() == 0
    n = db.session.execute(select(func.count()).select_from(jobs.OutboxJob)).scalar()
    assert n == 0


def test_failing_job_retries_with_backoff_then_fails_visibly(app, ctx):
    FAILURES.clear()
    row_id = jobs.enqueue(flaky, "m7", 5)
    db.session.commit()
    for expected in (jobs.RETRY, jobs.RETRY, jobs.FAILED):
        with app.app_context():
            assert jobs.run_outbox_job(row_id) == "error"
            row = db.session.get(jobs.OutboxJob, row_id)
            assert row.status == expected
            assert "boom" in row.last_error
    with app.app_context():
        assert effects("m7") == []
        assert jobs.retry_failed(row_id)
        db.session.commit()
        FAILURES["m7"] = 10  # the cause is fixed
        assert jobs.run_outbox_job(row_id) == "done"
        assert len(effects("m7")) == 1


def test_dedupe_key_enqueues_once(app, ctx):
    a = jobs.enqueue(record_effect, "m8", dedupe_key="once")
    b = jobs.enqueue(record_effect, "m8", dedupe_key="once")
    db.session.commit()
    assert a is not None and b is None
    assert db.session.execute(select(func.count()).select_from(jobs.OutboxJob)).scalar() == 1


def test_inline_mode_runs_after_commit(ctx):
    from app import create_app

    inline = create_app(make_config(JOBS_INLINE="1"))
    with inline.app_context():
        jobs.enqueue(record_effect, "m9")
        assert effects("m9") == []
        db.session.commit()
        jobs.relay_committed()
        assert len(effects("m9")) == 1


def test_savepoints_inside_the_transaction_neither_relay_nor_drop_its_jobs(app, ctx):
    """SQLAlchemy reports a savepoint's release as a commit and its rollback as a rollback:
    the jobs of the transaction around it are relayed at its own commit, all of them."""
    first = jobs.enqueue(record_effect, "m10")
    with db.session.begin_nested():  # released: the transaction goes on
        second = jobs.enqueue(record_effect, "m11")
    assert "wmb_outbox_committed" not in db.session.info
    savepoint = db.session.begin_nested()
    db.session.execute(select(1))
    savepoint.rollback()  # rolled back: the jobs enqueued before it stay
    db.session.commit()
    assert sorted(db.session.info["wmb_outbox_committed"]) == sorted([first, second])
    assert jobs.relay_committed() == 2


def test_a_released_savepoint_in_a_rolled_back_transaction_relays_nothing(app, ctx):
    with db.session.begin_nested():
        jobs.enqueue(record_effect, "m12")
    db.session.rollback()
    assert "wmb_outbox_committed" not in db.session.info
    assert jobs.relay_committed() == 0
