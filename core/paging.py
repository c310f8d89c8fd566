"""Counts that stay cheap on a brand with millions of rows.

A page view never counts a brand's rows in full: ``capped_count`` stops at ``cap`` and says
"1,000+" beyond it, so a list, an export form or a reach preview costs at most ``cap`` index
entries however big the brand is.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, select

from core.db import db

CAP = 1000


@dataclass(frozen=True)
class CappedCount:
    """How many rows matched, up to ``cap``; ``more`` when there are more than ``cap``."""

    n: int
    more: bool
    cap: int = CAP

    def __str__(self) -> str:
        return f"{self.cap:,}+" if self.more else f"{self.n:,}"

    def __int__(self) -> int:
        return self.n

    def __bool__(self) -> bool:
        return self.n > 0


def capped_count(stmt: Select, *, cap: int = CAP) -> CappedCount:
    """Count the rows of ``stmt`` up to ``cap`` (one query reading at most ``cap + 1`` rows)."""
    limited = stmt.order_by(None).limit(cap + 1).subquery()
    n = db.session.execute(select(func.count()).select_from(limited)).scalar_one()
    return CappedCount(n=min(n, cap), more=n > cap, cap=cap)
