"""Segments of members and their CSV export, written by a background job (``core.exports``).

The job streams the rows out of PostgreSQL with ``COPY (SELECT ...) TO STDOUT (FORMAT csv)``
straight into the file: no ORM object and no Python tuple per row. Names of stores, guides
and tiers are looked up in SQL (from JSON objects of the few stores, staff and tiers, each
name neutralised once), a member's tags are aggregated in SQL (``string_agg`` ordered by
name), the labels (gender, source) and the brand-local activation time are computed in SQL,
and every other text cell is neutralised against spreadsheet formulas in SQL
(``core.csvsafe.safe_cell_sql``, the same rule as ``SafeWriter``). Phones are masked unless
the staff may see them. The export is audited when asked for and when downloaded
(``core.exports``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from typing import BinaryIO

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Select, String, case, cast, func, literal, select, true
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by

from core import audit, exports, paging
from core.csvsafe import SafeWriter, safe_cell, safe_cell_sql
from core.db import db
from core.errors import Forbidden
from core.tenancy import require_brand_id
from members.labels import GENDER, MEMBER_SOURCE
from members.models import ACTIVE, Member, MemberTag, TagDefinition, TierLevel
from members.privacy.access import may_see_full_phones, scope_members
from org.models import Brand, Staff, Store
from org.services import list_stores

KIND = "members"
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
# Progress is committed every CHUNK rows.
CHUNK = 50_000
# Up to this many members, tags are looked up member by member (see _export_select).
PER_MEMBER_TAGS_UP_TO = 10_000


@dataclasses.dataclass(frozen=True)
class _Names:
    """The header and the code names of an export, in the language of the page that asked."""

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

    @classmethod
    def from_dict(cls, data: dict) -> Segment:
        day = lambda v: dt.date.fromisoformat(v) if v else None  # noqa: E731
        return cls(
            store_ids=tuple(int(i) for i in data.get("store_ids") or ()),
            tier_ids=tuple(int(i) for i in data.get("tier_ids") or ()),
            tag_ids=tuple(int(i) for i in data.get("tag_ids") or ()),
            city=data.get("city") or None,
            activated_from=day(data.get("activated_from")),
            activated_to=day(data.get("activated_to")),
        )


def _local_midnight(day: dt.date, brand: Brand) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=brand.tz).astimezone(dt.UTC)


def _filtered(q: Select, segment: Segment, staff: Staff | None) -> Select:
    """``q`` (a SELECT over member) restricted to the current brand's active members in
    ``segment`` that ``staff`` may see. The brand is spelled out: the export's COPY runs
    below the ORM, where no tenancy hook adds it."""
    brand_id = require_brand_id()
    q = q.where(Member.brand_id == brand_id, Member.status == ACTIVE)
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
        q = q.where(
            Member.store_id.in_(
                select(Store.id).where(
                    Store.brand_id == brand_id, Store.city == segment.city.strip()
                )
            )
        )
    if segment.activated_from or segment.activated_to:
        brand = db.session.get(Brand, brand_id)
        if segment.activated_from:
            q = q.where(Member.activated_at >= _local_midnight(segment.activated_from, brand))
        if segment.activated_to:
            end = _local_midnight(segment.activated_to + dt.timedelta(days=1), brand)
            q = q.where(Member.activated_at < end)
    if staff is not None:
        q = scope_members(q, staff=staff)
    return q


def segment_query(*, segment: Segment, staff: Staff | None = None) -> Select:
    """Active members matching ``segment`` (and visible to ``staff`` when given), by id."""
    return _filtered(select(Member), segment, staff).order_by(Member.id)


def count_segment(*, segment: Segment, staff: Staff | None = None) -> int:
    """How many members a segment holds (a full count: for jobs, not for page views)."""
    sub = _filtered(select(Member.id), segment, staff).subquery()
    return db.session.execute(select(func.count()).select_from(sub)).scalar_one()


def reach(*, segment: Segment, staff: Staff | None = None) -> paging.CappedCount:
    """How many members a segment holds, counted up to ``core.paging.CAP`` (for pages)."""
    return paging.capped_count(_filtered(select(Member.id), segment, staff))


def request_member_export(*, segment: Segment, staff: Staff, full_phones: bool = False):
    """Queue an export of ``segment`` as ``staff`` sees it (audited; flushes, the caller
    commits). Guides get masked phones only: asking for full ones is refused."""
    if full_phones and not may_see_full_phones(staff=staff):
        raise Forbidden(_l("guides see masked phone numbers only"))
    stamp = dt.datetime.now(db.session.get(Brand, require_brand_id()).tz)
    actor = audit.current_actor() or audit.Actor("staff", staff.id, staff.display_name)
    with audit.acting_as(actor):
        return exports.request_export(
            kind=KIND,
            params={"segment": segment.as_dict(), "full_phones": bool(full_phones)},
            requested_by=staff.get_id(),
            requested_by_label=staff.display_name,
            filename=f"members-{stamp:%Y%m%d-%H%M}.csv",
        )


def _requester(requested_by: str) -> Staff | None:
    """The staff an export is for (None: a platform admin, who sees the brand as its admin
    does). A staff member gone or deactivated since gets nothing."""
    prefix, _, ident = requested_by.partition(":")
    if prefix == "p":
        return None
    staff = db.session.get(Staff, int(ident)) if prefix == "s" and ident.isdigit() else None
    if staff is None or staff.brand_id != require_brand_id() or not staff.active:
        raise Forbidden(_l("The staff member who asked for this export can no longer see it."))
    return staff


def _export_select(
    segment: Segment,
    staff: Staff | None,
    full_phones: bool,
    names: _Names,
    *,
    per_member_tags: bool,
):
    """The export's rows as one SELECT of text columns, in the order of EXPORT_COLUMNS.

    ``per_member_tags``: look each member's tags up (cheap for a small segment of a big
    brand) rather than aggregate all of the brand's tags in one pass (4x faster per member
    once the segment is a good part of the brand; see ``_tags_per_member``)."""
    brand_id = require_brand_id()
    brand = db.session.get(Brand, brand_id)
    safe = safe_cell_sql
    # Stores, guides and tiers are few: their names go into the statement as JSON objects
    # (id -> neutralised name) and each row looks them up, instead of joining them: joins
    # made PostgreSQL hash and then sort the brand's members.
    stores = list_stores()
    store_code = _lookup({s.id: s.code for s in stores})
    store_name = _lookup({s.id: s.name for s in stores})
    store_city = _lookup({s.id: s.city for s in stores})
    guide_name = _lookup(
        dict(
            db.session.execute(select(Staff.id, Staff.name).where(Staff.brand_id == brand_id)).all()
        )
    )
    tier_name = _lookup(
        dict(
            db.session.execute(
                select(TierLevel.id, TierLevel.name).where(TierLevel.brand_id == brand_id)
            ).all()
        )
    )
    names_of_tags = func.string_agg(
        TagDefinition.name, aggregate_order_by(literal("|"), TagDefinition.name)
    ).label("names")
    if per_member_tags:
        # A few members: each one's tags through the (member_id, tag_id) index.
        tags = (
            select(names_of_tags)
            .select_from(MemberTag)
            .join(TagDefinition, TagDefinition.id == MemberTag.tag_id)
            .where(MemberTag.member_id == Member.id, MemberTag.brand_id == Member.brand_id)
            .lateral("tg")
        )
        tags_on = true()
    else:
        # Many: the brand's tags aggregated in member order, merged with the members.
        tags = (
            select(MemberTag.member_id, names_of_tags)
            .join(TagDefinition, TagDefinition.id == MemberTag.tag_id)
            .where(MemberTag.brand_id == brand_id)
            .group_by(MemberTag.member_id)
            .subquery("tg")
        )
        tags_on = tags.c.member_id == Member.id
    if full_phones:
        phone: ColumnElement = safe(Member.phone)
    else:
        phone = case(
            (
                func.length(Member.phone) == 11,
                func.left(Member.phone, 3) + "****" + func.right(Member.phone, 4),
            ),
            (Member.phone.is_not(None), literal("***")),
        )
    columns = (
        Member.card_no,
        phone,
        safe(Member.name),
        _labelled(Member.gender, names.genders),
        func.to_char(Member.birthday, "YYYY-MM-DD"),
        store_code(Member.store_id),
        store_name(Member.store_id),
        store_city(Member.store_id),
        guide_name(Member.guide_id),
        tier_name(Member.tier_id),
        safe(tags.c.names),
        _labelled(Member.source, names.sources),
        func.to_char(func.timezone(brand.timezone, Member.activated_at), "YYYY-MM-DD HH24:MI"),
    )
    q = select(*columns).select_from(Member).outerjoin(tags, tags_on)
    return _filtered(q, segment, staff).order_by(Member.id)


def _lookup(names: dict[int, str]):
    """``fn(id_column)``: the name of that id (neutralised), from a JSON object in the
    statement; NULL for no id."""
    table = cast(literal(json.dumps({str(k): safe_cell(v) for k, v in names.items()})), JSONB)
    return lambda column: table.op("->>", return_type=String)(cast(column, String))


def _labelled(column, table: dict[str, str]) -> ColumnElement:
    """A code shown by its label; a code without one as itself (neutralised)."""
    if not table:
        return safe_cell_sql(column)
    return case(
        {code: cast(literal(text), String) for code, text in table.items()},
        value=column,
        else_=safe_cell_sql(column),
    )


def _tags_per_member(segment: Segment, staff: Staff | None, expected: int) -> bool:
    """Whether to look tags up member by member (about 20 µs a member) rather than aggregate
    all of the brand's tags in one pass (about 5 µs per member of the brand): for a small
    segment, or one under a quarter of the brand."""
    if expected <= PER_MEMBER_TAGS_UP_TO:
        return True
    if staff is None and segment == Segment():
        return False
    return expected * 4 < count_segment(segment=Segment())


def write_members_csv(export: exports.ExportFile, out: BinaryIO, progress) -> int:
    """The export job's writer: the CSV (UTF-8 with a BOM, which Excel needs) into ``out``."""
    params = export.params or {}
    segment = Segment.from_dict(params.get("segment") or {})
    staff = _requester(export.requested_by)
    full = bool(params.get("full_phones")) and (staff is None or may_see_full_phones(staff=staff))
    names = _Names.now()
    expected = count_segment(segment=segment, staff=staff)
    progress(0, expected)
    head = io.StringIO()
    SafeWriter(head, lineterminator="\n").writerow(names.header)
    out.write(("\ufeff" + head.getvalue()).encode("utf-8"))

    conn = db.session.connection()
    stmt = _export_select(
        segment, staff, full, names, per_member_tags=_tags_per_member(segment, staff, expected)
    ).compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    rows = 0
    with (
        conn.connection.driver_connection.cursor() as cur,
        cur.copy(f"COPY ({stmt.string}) TO STDOUT (FORMAT csv)", stmt.params) as copy,
    ):
        for data in copy:  # one row per message
            out.write(data)
            rows += 1
            if rows % CHUNK == 0:
                progress(rows)
    progress(rows)
    return rows


exports.register_export(KIND, label=_l("Members"), write=write_members_csv)
