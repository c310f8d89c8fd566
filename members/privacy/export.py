"""Segments of members and their CSV export (streamed, phones masked, audited)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Iterator

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select

from core.csvsafe import SafeWriter
from core.db import db
from core.errors import Forbidden
from core.tenancy import require_brand_id, use_brand
from core.validators import mask_phone
from members.labels import GENDER, MEMBER_SOURCE
from members.models import ACTIVE, Member, MemberTag, TagDefinition, TierLevel
from members.privacy.access import may_see_full_phones, record_as, scope_members
from org.models import Brand, Staff, Store
from org.services import list_stores

EXPORT_COLUMNS = (
    "card_no",
    "phone",
    "name",
    "gender",
    "birthday",
    "store_code",
    "store_name",
    "city",
    "guide",
    "tier",
    "tags",
    "source",
    "activated_at",
)
# The header row, in the operator's language (the codes above are the columns' keys).
EXPORT_HEADERS = {
    "card_no": _l("Card number"),
    "phone": _l("Phone"),
    "name": _l("Member name"),
    "gender": _l("Gender"),
    "birthday": _l("Birthday"),
    "store_code": _l("Store code"),
    "store_name": _l("Store name"),
    "city": _l("City"),
    "guide": _l("Guide"),
    "tier": _l("Tier"),
    "tags": _l("Tags"),
    "source": _l("Source"),
    "activated_at": _l("Activated"),
}
CHUNK = 1000


@dataclasses.dataclass(frozen=True)
class _Names:
    """The header and the code names of an export, translated before streaming starts
    (the stream may run after the request's locale is gone)."""

    header: tuple[str, ...]
    genders: dict[str, str]
    sources: dict[str, str]

    @classmethod
    def now(cls) -> _Names:
        return cls(
            header=tuple(str(EXPORT_HEADERS[c]) for c in EXPORT_COLUMNS),
            genders={k: str(v) for k, v in GENDER.items()},
            sources={k: str(v) for k, v in MEMBER_SOURCE.items()},
        )


@dataclasses.dataclass(frozen=True)
class Segment:
    """Filters of a member segment; empty filters match everyone. Tags match any-of;
    activation dates are brand-local and inclusive."""

    store_ids: tuple[int, ...] = ()
    tier_ids: tuple[int, ...] = ()
    tag_ids: tuple[int, ...] = ()
    city: str | None = None
    activated_from: dt.date | None = None
    activated_to: dt.date | None = None

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for k in ("activated_from", "activated_to"):
            out[k] = out[k].isoformat() if out[k] else None
        for k in ("store_ids", "tier_ids", "tag_ids"):
            out[k] = list(out[k])
        return out


def _local_midnight(day: dt.date, brand: Brand) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=brand.tz).astimezone(dt.UTC)


def segment_query(*, segment: Segment, staff: Staff | None = None) -> Select:
    """Active members matching ``segment`` (and visible to ``staff`` when given), by id."""
    q = select(Member).where(Member.status == ACTIVE)
    if segment.store_ids:
        q = q.where(Member.store_id.in_(segment.store_ids))
    if segment.tier_ids:
        q = q.where(Member.tier_id.in_(segment.tier_ids))
    if segment.tag_ids:
        q = q.where(
            select(MemberTag.id)
            .where(MemberTag.member_id == Member.id, MemberTag.tag_id.in_(segment.tag_ids))
            .exists()
        )
    if segment.city:
        q = q.where(Member.store_id.in_(select(Store.id).where(Store.city == segment.city.strip())))
    if segment.activated_from or segment.activated_to:
        brand = db.session.get(Brand, require_brand_id())
        if segment.activated_from:
            q = q.where(Member.activated_at >= _local_midnight(segment.activated_from, brand))
        if segment.activated_to:
            end = _local_midnight(segment.activated_to + dt.timedelta(days=1), brand)
            q = q.where(Member.activated_at < end)
    if staff is not None:
        q = scope_members(q, staff=staff)
    return q.order_by(Member.id)


def count_segment(*, segment: Segment, staff: Staff | None = None) -> int:
    """How many members a segment holds."""
    sub = segment_query(segment=segment, staff=staff).order_by(None).subquery()
    return db.session.execute(select(func.count()).select_from(sub)).scalar_one()


def export_members(
    *, segment: Segment, staff: Staff | None, full_phones: bool = False
) -> Iterator[str]:
    """Record the export in the audit log now, and return the CSV as a stream of chunks.

    The caller commits (so the audit entry stays even if the download is cancelled), then
    streams the iterator. Phones are masked unless ``full_phones`` and the staff may see them.
    """
    if full_phones and staff is not None and not may_see_full_phones(staff=staff):
        raise Forbidden(_l("guides see masked phone numbers only"))
    record_as(
        staff,
        action="export",
        object_type="member",
        object_id=None,
        after={
            "segment": segment.as_dict(),
            "full_phones": full_phones,
            "rows": count_segment(segment=segment, staff=staff),
        },
    )
    return _rows(segment, staff, full_phones, require_brand_id(), _Names.now())


def _rows(
    segment: Segment, staff: Staff | None, full_phones: bool, brand_id: int, names: _Names
) -> Iterator[str]:
    with use_brand(brand_id):
        brand = db.session.get(Brand, brand_id)
        stores = {s.id: s for s in list_stores()}
        guides = dict(db.session.execute(select(Staff.id, Staff.name)).all())
        tiers = dict(db.session.execute(select(TierLevel.id, TierLevel.name)).all())
        buf = io.StringIO()
        writer = SafeWriter(buf)  # a member's own name may be a spreadsheet formula
        buf.write("\ufeff")  # Excel opens a UTF-8 CSV correctly only with a BOM
        writer.writerow(names.header)
        base = segment_query(segment=segment, staff=staff)
        last = 0
        while True:
            members = db.session.execute(base.where(Member.id > last).limit(CHUNK)).scalars().all()
            if not members:
                break
            last = members[-1].id
            tag_names: dict[int, list[str]] = {}
            for mid, name in db.session.execute(
                select(MemberTag.member_id, TagDefinition.name)
                .join(TagDefinition, TagDefinition.id == MemberTag.tag_id)
                .where(MemberTag.member_id.in_([m.id for m in members]))
                .order_by(TagDefinition.name)
            ):
                tag_names.setdefault(mid, []).append(name)
            for m in members:
                store = stores.get(m.store_id)
                phone = m.phone or ""
                writer.writerow(
                    (
                        m.card_no,
                        phone if full_phones else (mask_phone(phone) if phone else ""),
                        m.name,
                        names.genders.get(m.gender or "", m.gender or ""),
                        m.birthday.isoformat() if m.birthday else "",
                        store.code if store else "",
                        store.name if store else "",
                        store.city if store else "",
                        guides.get(m.guide_id, ""),
                        tiers.get(m.tier_id, ""),
                        "|".join(tag_names.get(m.id, [])),
                        names.sources.get(m.source, m.source),
                        brand.local(m.activated_at).strftime("%Y-%m-%d %H:%M")
                        if m.activated_at
                        else "",
                    )
                )
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
        if buf.tell():
            yield buf.getvalue()
