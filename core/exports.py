"""Exports as background jobs: a file per request, written by a job, downloaded later.

A console page asks for an export with ``request_export`` (an ``export_file`` row, an audit
entry and a job, in the caller's transaction); the request returns at once. The job
``run_export`` calls the writer its kind registered (``register_export``), which streams
the rows into a file under ``EXPORTS_DIR`` and reports progress; progress and the outcome
are committed on a connection of the job's own, so a page can poll them while the job runs.
The file is downloadable by the user who asked (or a brand admin) until ``expires_at``
(``EXPORT_TTL_HOURS`` after it was written); ``purge_expired`` (a periodic job in
``core.housekeeping``) deletes expired files and their rows.

Packages register their kinds; core never imports them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import secrets
from collections.abc import Callable
from typing import BinaryIO

from flask import current_app
from flask_babel import force_locale, get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, BigInteger, Index, String, Text, delete, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from core import audit
from core.db import IdMixin, UTCDateTime, db, utcnow
from core.errors import AppError
from core.jobs import enqueue, job
from core.labels import register_labels
from core.tenancy import BrandScoped, require_brand_id

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATUSES = (QUEUED, RUNNING, DONE, FAILED)
UNFINISHED = (QUEUED, RUNNING)
# Exports one user may have waiting or running at once.
MAX_UNFINISHED = 3
RECENT = 10


class ExportFile(IdMixin, BrandScoped, db.Model):
    """One export a console user asked for, its progress and its file."""

    __tablename__ = "export_file"
    __table_args__ = (
        Index("ix_export_file_requester", "brand_id", "requested_by", "id"),
        Index("ix_export_file_expires_at", "expires_at"),
    )

    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    # The console user's id as the login manager knows it ("s:12" staff, "p:3" platform).
    requested_by: Mapped[str] = mapped_column(String(40))
    requested_by_label: Mapped[str] = mapped_column(String(120), default="")
    # The language of the page that asked: the file's header and labels speak it.
    locale: Mapped[str] = mapped_column(String(10), default="zh")
    status: Mapped[str] = mapped_column(String(10), default=QUEUED)
    rows_done: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_expected: Mapped[int | None] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(200))
    # Relative to EXPORTS_DIR; set once the file is complete.
    path: Mapped[str | None] = mapped_column(String(300))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    @property
    def finished(self) -> bool:
        return self.status in (DONE, FAILED)

    def expired(self, now: dt.datetime | None = None) -> bool:
        return self.expires_at <= (now or utcnow())

    @property
    def percent(self) -> int:
        if self.status == DONE:
            return 100
        if not self.rows_expected:
            return 0
        return min(99, int(100 * self.rows_done / self.rows_expected))


Progress = Callable[..., None]
Writer = Callable[[ExportFile, BinaryIO, Progress], int]


@dataclasses.dataclass(frozen=True)
class ExportKind:
    kind: str
    label: object
    write: Writer
    mimetype: str = "text/csv"


KINDS: dict[str, ExportKind] = {}


def register_export(kind: str, *, label, write: Writer, mimetype: str = "text/csv") -> None:
    """Let a package offer exports of ``kind``: ``write(export, out, progress)`` streams the
    file into ``out`` (binary), calls ``progress(rows_done, rows_expected=None)`` as it goes
    and returns the number of rows written. It runs in a job, with the export's brand set."""
    KINDS[kind] = ExportKind(kind, label, write, mimetype)
    register_labels("export_kind", {kind: label})


class TooManyExports(AppError):
    status = 429
    code = "too_many_exports"


def exports_dir() -> str:
    """The folder of export files (EXPORTS_DIR, by default instance/exports)."""
    cfg = current_app.config
    return cfg.get("EXPORTS_DIR") or os.path.join(
        cfg.get("INSTANCE_PATH") or current_app.instance_path, "exports"
    )


def ttl() -> dt.timedelta:
    return dt.timedelta(hours=float(current_app.config.get("EXPORT_TTL_HOURS") or 24))


def request_export(
    *, kind: str, params: dict, requested_by: str, requested_by_label: str, filename: str
) -> ExportFile:
    """Record an export of the current brand, audit it and enqueue its job (flushes; the
    caller commits, and the job runs after the commit)."""
    if kind not in KINDS:
        raise LookupError(f"no export kind {kind!r}")
    waiting = db.session.execute(
        select(func.count())
        .select_from(ExportFile)
        .where(ExportFile.requested_by == requested_by, ExportFile.status.in_(UNFINISHED))
    ).scalar_one()
    if waiting >= MAX_UNFINISHED:
        raise TooManyExports(_l("Wait until one of your exports in progress has finished."))
    now = utcnow()
    row = ExportFile(
        kind=kind,
        params=params,
        requested_by=requested_by,
        requested_by_label=requested_by_label[:120],
        locale=str(get_locale() or current_app.config.get("BABEL_DEFAULT_LOCALE") or "zh"),
        status=QUEUED,
        rows_done=0,
        filename=filename[:200],
        created_at=now,
        expires_at=now + ttl(),
    )
    db.session.add(row)
    db.session.flush()
    audit.record(action="export", object_type="export_file", object_id=row.id, after=dict(params))
    enqueue(run_export, row.id)
    db.session.flush()
    return row


def recent_exports(*, requested_by: str, kind: str | None = None) -> list[ExportFile]:
    """The user's latest exports of the current brand (of ``kind`` when given), newest first."""
    stmt = select(ExportFile).where(ExportFile.requested_by == requested_by)
    if kind is not None:
        stmt = stmt.where(ExportFile.kind == kind)
    return list(db.session.execute(stmt.order_by(ExportFile.id.desc()).limit(RECENT)).scalars())


def downloadable(*, export_id: int, requested_by: str, sees_all: bool) -> ExportFile | None:
    """The finished, unexpired export of the current brand that this user may download
    (their own, or any when ``sees_all``: a brand admin); None otherwise."""
    row = db.session.get(ExportFile, export_id)
    if row is None or row.brand_id != require_brand_id():
        return None
    if not sees_all and row.requested_by != requested_by:
        return None
    if row.status != DONE or row.path is None or row.expired():
        return None
    return row


def file_path(row: ExportFile) -> str | None:
    """The export's file on disk, or None when it is gone."""
    if row.path is None:
        return None
    base = os.path.realpath(exports_dir())
    path = os.path.realpath(os.path.join(base, row.path))
    if not path.startswith(base + os.sep) or not os.path.isfile(path):
        return None
    return path


def record_download(row: ExportFile) -> None:
    """Write the download to the audit log (the caller commits)."""
    audit.record(
        action="download",
        object_type="export_file",
        object_id=row.id,
        after={"kind": row.kind, "rows": row.rows_done, "size_bytes": row.size_bytes},
    )


@job("default", timeout=3600, retries=0)
def run_export(export_id: int) -> None:
    """Write an export's file, committing progress as it goes (idempotent: a finished
    export is left alone; a failed or interrupted one is written again from the start)."""
    row = db.session.get(ExportFile, export_id)
    if row is None or row.status == DONE:
        return
    spec = KINDS[row.kind]
    suffix = os.path.splitext(row.filename)[1].lower() or ".csv"
    relative = os.path.join(str(row.brand_id), f"{export_id}-{secrets.token_hex(8)}{suffix}")
    final = os.path.join(exports_dir(), relative)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    partial = final + ".part"
    table = ExportFile.__table__
    with db.engine.connect() as side:

        def save(**values) -> None:
            side.execute(update(table).where(table.c.id == export_id).values(**values))
            side.commit()

        def progress(rows_done: int, rows_expected: int | None = None) -> None:
            values = {"rows_done": rows_done}
            if rows_expected is not None:
                values["rows_expected"] = rows_expected
            save(**values)

        save(status=RUNNING, started_at=utcnow(), rows_done=0, error=None, path=None)
        try:
            with open(partial, "wb") as out, force_locale(row.locale):
                rows = spec.write(row, out, progress)
            os.replace(partial, final)
        except Exception as exc:
            side.rollback()
            _remove(partial)
            save(status=FAILED, finished_at=utcnow(), error=f"{type(exc).__name__}: {exc}"[:2000])
            raise
        now = utcnow()
        save(
            status=DONE,
            rows_done=rows,
            rows_expected=rows,
            path=relative,
            size_bytes=os.path.getsize(final),
            finished_at=now,
            expires_at=now + ttl(),
        )


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _remove_stale_partials(now: dt.datetime) -> None:
    """Partial files a killed worker left behind (its export was written again since)."""
    base = exports_dir()
    if not os.path.isdir(base):
        return
    cutoff = (now - dt.timedelta(days=1)).timestamp()
    for folder in os.scandir(base):
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder.path):
            if entry.name.endswith(".part") and entry.stat().st_mtime < cutoff:
                _remove(entry.path)


def purge_expired(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Delete expired exports of every brand: their files, then their rows (flushes; the
    job commits). Returns how many were removed."""
    now = now or utcnow()
    _remove_stale_partials(now)
    rows = db.session.execute(
        select(ExportFile.id, ExportFile.path)
        .where(ExportFile.expires_at <= now)
        .order_by(ExportFile.expires_at)
        .limit(limit)
        .execution_options(all_brands=True)
    ).all()
    if not rows:
        return 0
    base = exports_dir()
    for _id, path in rows:
        if path:
            _remove(os.path.join(base, path))
    db.session.execute(
        delete(ExportFile)
        .where(ExportFile.id.in_([r.id for r in rows]))
        .execution_options(all_brands=True)
    )
    return len(rows)


register_labels(
    "export_status",
    {
        QUEUED: _l("Waiting to start"),
        RUNNING: _l("Exporting"),
        DONE: _l("Ready to download"),
        FAILED: _l("Export failed"),
    },
)
register_labels("job", {"core.exports.run_export": _l("Export file")})
register_labels("job_arg", {"export_id": _l("Export")})
register_labels("audit_object", {"export_file": _l("Export file")})
register_labels(
    "audit_field",
    {
        "export_file.segment": _l("Filters"),
        "export_file.full_phones": _l("Full phone numbers"),
        "export_file.rows": _l("Rows"),
        "export_file.size_bytes": _l("File size (bytes)"),
    },
)
