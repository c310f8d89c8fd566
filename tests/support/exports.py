"""Export helpers: run the queued export jobs as a worker would, read an export's file."""

from __future__ import annotations

from sqlalchemy import select

from core import exports, jobs
from core.db import db


def run_export_jobs() -> list[str]:
    """Run every pending export job (``core.exports.run_export``); their outcomes."""
    ids = db.session.execute(
        select(jobs.OutboxJob.id)
        .where(
            jobs.OutboxJob.func == exports.run_export.spec.name,
            jobs.OutboxJob.status.in_((jobs.PENDING, jobs.QUEUED)),
        )
        .order_by(jobs.OutboxJob.id)
        .execution_options(all_brands=True)
    ).scalars()
    outcomes = [jobs.run_outbox_job(i) for i in list(ids)]
    db.session.expire_all()
    return outcomes


def export_row(export_id: int) -> exports.ExportFile:
    db.session.expire_all()
    return db.session.execute(
        select(exports.ExportFile)
        .where(exports.ExportFile.id == export_id)
        .execution_options(all_brands=True)
    ).scalar_one()


def export_text(export_id: int) -> str:
    """The finished export's file, decoded (the BOM kept)."""
    row = export_row(export_id)
    assert row.status == exports.DONE, (row.status, row.error)
    with open(exports.file_path(row), encoding="utf-8", newline="") as fh:
        return fh.read()
