"""Platform housekeeping jobs."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete

from core import exports
from core.db import db, utcnow
from core.jobs import DONE, OutboxJob, job

KEEP_DONE = dt.timedelta(days=7)


@job("low", timeout=300, retries=1)
def purge_finished_jobs() -> int:
    """Delete outbox rows that finished successfully more than a week ago. A job finishes
    after it becomes available, so the rows are found as a range of ``ix_outbox_job_due``
    (status, available_at): the hour's rows to delete, not the week's kept ones."""
    cutoff = utcnow() - KEEP_DONE
    result = db.session.execute(
        delete(OutboxJob)
        .where(
            OutboxJob.status == DONE,
            OutboxJob.available_at < cutoff,
            OutboxJob.finished_at < cutoff,
        )
        .execution_options(all_brands=True)
    )
    return result.rowcount


@job("low", timeout=300, retries=1)
def purge_expired_exports() -> int:
    """Delete the files and rows of exports past their expiry, in every brand."""
    return exports.purge_expired()
