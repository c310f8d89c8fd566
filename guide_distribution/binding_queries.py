"""Reads for the binding pages: names of guides and stores, guides with their customer
counts, a guide's customers."""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select

from core.db import db
from guide_distribution.models import CustomerBinding
from members.models import Member
from org.models import Staff, Store

SOURCE_LABELS = {
    "scan": _l("Scanned a code"),
    "share_link": _l("Opened a share link"),
    "activation": _l("Card activated by the guide"),
    "till": _l("Chosen at the till"),
    "import": _l("Imported"),
    "forced": _l("Changed by an operator"),
    "guide_left": _l("Guide left, handed over"),
    "merge": _l("Members merged"),
}


def source_label(source: str) -> str:
    return str(SOURCE_LABELS.get(source, _l("Other")))


def guide_names(ids: Iterable[int | None]) -> dict[int, str]:
    ids = [i for i in set(ids) if i]
    if not ids:
        return {}
    return dict(db.session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(ids))).all())


def store_names(ids: Iterable[int | None]) -> dict[int, str]:
    ids = [i for i in set(ids) if i]
    if not ids:
        return {}
    return dict(db.session.execute(select(Store.id, Store.name).where(Store.id.in_(ids))).all())


def guides_with_counts(q: str = "", *, limit: int = 200) -> list[tuple[Staff, int]]:
    """The brand's guides (active first) with how many customers are bound to each."""
    counts = (
        select(CustomerBinding.guide_id, func.count().label("n"))
        .where(CustomerBinding.guide_id.is_not(None))
        .group_by(CustomerBinding.guide_id)
        .subquery()
    )
    stmt = (
        select(Staff, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.guide_id == Staff.id)
        .where(Staff.role == "guide")
        .order_by(Staff.active.desc(), Staff.name, Staff.id)
        .limit(limit)
    )
    if q:
        stmt = stmt.where(Staff.name.ilike(f"%{q}%") | (Staff.phone == q))
    return [(s, n) for s, n in db.session.execute(stmt).all()]


def customers_of(guide_id: int) -> Select:
    """Members bound to the guide (for paging, newest member first)."""
    return (
        select(Member)
        .join(CustomerBinding, CustomerBinding.member_id == Member.id)
        .where(CustomerBinding.guide_id == guide_id)
    )


def bindings_of(member_ids: list[int]) -> dict[int, CustomerBinding]:
    if not member_ids:
        return {}
    rows = db.session.execute(
        select(CustomerBinding).where(CustomerBinding.member_id.in_(member_ids))
    ).scalars()
    return {b.member_id: b for b in rows}
