"""Monthly sales targets (业绩目标): operators set one per guide, or one per store that is
split over the store's active guides (to the fen, the remainder to the first guides), or
upload a CSV. A target is net sales in fen for a calendar month of the brand."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from core.db import db, utcnow
from core.errors import NotFound, ValidationError
from core.formfields import yuan_to_fen
from core.tenancy import require_brand_id
from guide_distribution.models import GuideTarget
from org.models import Staff, Store

TARGET_MAX_FEN = 100_000_000_000  # ¥1,000,000,000: a typo, not a target
MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")
CSV_MAX_ROWS = 5000
CSV_MAX_BYTES = 1024 * 1024


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def prev_month(month: dt.date) -> dt.date:
    return (month - dt.timedelta(days=1)).replace(day=1)


def parse_month(value: str | None, *, field: str = "month") -> dt.date:
    """``YYYY-MM`` as the month's first day; a ValidationError otherwise."""
    m = MONTH_PATTERN.match((value or "").strip())
    if not m or not 2000 <= int(m.group(1)) <= 2100 or not 1 <= int(m.group(2)) <= 12:
        raise ValidationError(_l("Give the month as YYYY-MM."), field=field)
    return dt.date(int(m.group(1)), int(m.group(2)), 1)


def _check_amount(target_fen: int, field: str = "target") -> int:
    if not isinstance(target_fen, int) or target_fen < 0:
        raise ValidationError(_l("A target cannot be negative."), field=field)
    if target_fen > TARGET_MAX_FEN:
        raise ValidationError(_l("The target is too large."), field=field)
    return target_fen


def _guide(guide_id: int) -> Staff:
    guide = db.session.execute(
        select(Staff).where(Staff.id == guide_id, Staff.role == "guide")
    ).scalar_one_or_none()
    if guide is None:
        raise NotFound(_l("No such guide."))
    return guide


def _upsert(*, guide: Staff, month: dt.date, target_fen: int, set_by: int | None) -> None:
    db.session.execute(
        insert(GuideTarget)
        .values(
            brand_id=require_brand_id(),
            month=month,
            guide_id=guide.id,
            store_id=guide.store_id,
            target_fen=target_fen,
            set_by=set_by,
            updated_at=utcnow(),
        )
        .on_conflict_do_update(
            index_elements=["brand_id", "month", "guide_id"],
            set_={
                "target_fen": target_fen,
                "store_id": guide.store_id,
                "set_by": set_by,
                "updated_at": utcnow(),
            },
        )
    )


def set_guide_target(
    *, guide_id: int, month: dt.date, target_fen: int, set_by: int | None = None
) -> None:
    """Set (or replace) one guide's target for the month."""
    _check_amount(target_fen)
    _upsert(guide=_guide(guide_id), month=month_start(month), target_fen=target_fen, set_by=set_by)
    db.session.flush()


def set_store_target(
    *, store_id: int, month: dt.date, target_fen: int, set_by: int | None = None
) -> int:
    """Split a store's target over its active guides; the number of guides it went to."""
    _check_amount(target_fen)
    store = db.session.execute(select(Store).where(Store.id == store_id)).scalar_one_or_none()
    if store is None:
        raise NotFound(_l("No such store."))
    guides = list(
        db.session.execute(
            select(Staff)
            .where(Staff.store_id == store.id, Staff.role == "guide", Staff.active.is_(True))
            .order_by(Staff.id)
        ).scalars()
    )
    if not guides:
        raise ValidationError(_l("The store has no active guides."), field="store_id")
    share, rest = divmod(target_fen, len(guides))
    for i, guide in enumerate(guides):
        _upsert(
            guide=guide,
            month=month_start(month),
            target_fen=share + (1 if i < rest else 0),
            set_by=set_by,
        )
    db.session.flush()
    return len(guides)


def import_csv(*, data: bytes, set_by: int | None = None) -> int:
    """Targets from a CSV of ``guide phone, month (YYYY-MM), target (yuan)`` with a header
    row; every row is checked before any is saved. The number of targets set."""
    if len(data) > CSV_MAX_BYTES:
        raise ValidationError(_l("The file is larger than 1 MB."), field="file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError(_l("The file is not UTF-8 text."), field="file") from None
    rows = list(csv.reader(io.StringIO(text)))[1:]
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise ValidationError(_l("The file has no rows."), field="file")
    if len(rows) > CSV_MAX_ROWS:
        raise ValidationError(
            _l("The file has more than %(n)d rows.", n=CSV_MAX_ROWS), field="file"
        )
    phones = {r[0].strip() for r in rows if r}
    guides = {
        g.phone: g
        for g in db.session.execute(
            select(Staff).where(Staff.phone.in_(phones), Staff.role == "guide")
        ).scalars()
    }
    parsed = []
    for n, row in enumerate(rows, start=2):
        if len(row) < 3:
            raise ValidationError(_l("Row %(n)d: three columns are needed.", n=n), field="file")
        guide = guides.get(row[0].strip())
        if guide is None:
            raise ValidationError(_l("Row %(n)d: no guide has this phone.", n=n), field="file")
        try:
            month = parse_month(row[1], field="file")
            fen = _check_amount(yuan_to_fen(row[2].strip()), field="file")
        except (ValidationError, ValueError):
            raise ValidationError(
                _l("Row %(n)d: the month or the target is not valid.", n=n), field="file"
            ) from None
        parsed.append((guide, month, fen))
    for guide, month, fen in parsed:
        _upsert(guide=guide, month=month, target_fen=fen, set_by=set_by)
    db.session.flush()
    return len(parsed)


def target_of(*, guide_id: int, month: dt.date) -> int | None:
    """The guide's target for the month in fen, or None when none is set."""
    return db.session.execute(
        select(GuideTarget.target_fen).where(
            GuideTarget.guide_id == guide_id, GuideTarget.month == month_start(month)
        )
    ).scalar()
