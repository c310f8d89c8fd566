"""Runs of the CSV member import (``members.imports``), with their progress and bad rows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import BigId, IdMixin, UTCDateTime, db, utcnow
from core.tenancy import BrandScoped


class MemberImport(IdMixin, BrandScoped, db.Model):
    """One run of the CSV import; updated after every batch so a page can show progress."""

    __tablename__ = "member_import"

    filename: Mapped[str] = mapped_column(String(255))
    path: Mapped[str | None] = mapped_column(Text)  # the uploaded file, for the job variant
    status: Mapped[str] = mapped_column(String(12), default="pending")
    encoding: Mapped[str | None] = mapped_column(String(16))
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    bad: Mapped[int] = mapped_column(Integer, default=0)
    # The first bad rows: [{"line": n, "reason": "..."}]; ``bad`` counts them all.
    errors: Mapped[list] = mapped_column(JSON, default=list)
    message: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def percent(self) -> int:
        if self.status == "done":
            return 100
        if not self.total_rows:
            return 0
        return min(99, self.processed * 100 // self.total_rows)
