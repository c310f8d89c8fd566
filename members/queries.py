"""Reads of members for the pages: the console's search and filters, a member's detail, the
guide workbench and the member card. Everything here works in the current brand."""

from __future__ import annotations

import dataclasses

from sqlalchemy import Date, Select, and_, case, cast, func, or_, select, text, tuple_

from core.db import db
from core.validators import normalize_phone
from members.models import (
    MERGED,
    Member,
    MemberAttribution,
    MemberImport,
    MemberMerge,
    MemberTag,
    TagDefinition,
    TierLevel,
)
from members.privacy.access import visible_members
from members.tiers_tags import tags, tiers
from org.models import Staff, Store
from org.services import list_stores

SEARCH_MAX = 80


def filter_choices(*, staff: Staff) -> dict:
    """Stores, tiers and tags ``staff`` may filter the member list by."""
    if staff.role == "brand_admin":
        stores = list_stores()
    elif staff.store_id is None:
        stores = []
    else:
        stores = list_stores(store_id=staff.store_id)
    return {"stores": stores, "levels": tiers.list_levels(), "tag_library": tags.list_tags()}


def search_members(
    *,
    staff: Staff,
    q: str = "",
    store_id: int | None = None,
    tier_id: int | None = None,
    tag_id: int | None = None,
) -> Select:
    """The members ``staff`` may see, matching a name, card number or phone digits and the
    filters, newest first (a SELECT to page)."""
    stmt = visible_members(staff=staff)
    q = q.strip()[:SEARCH_MAX]
    if q:
        digits = normalize_phone(q)
        conds = [Member.name.ilike(f"%{q}%"), Member.card_no == q]
        if digits.isdigit():
            conds.append(Member.phone.contains(digits))
        stmt = stmt.where(or_(*conds))
    if store_id:
        stmt = stmt.where(Member.store_id == store_id)
    if tier_id:
        stmt = stmt.where(Member.tier_id == tier_id)
    if tag_id:
        stmt = stmt.where(
            select(MemberTag.id)
            .where(MemberTag.member_id == Member.id, MemberTag.tag_id == tag_id)
            .exists()
        )
    return stmt


def search_customers(*, staff: Staff, q: str = "") -> Select:
    """The workbench's search: a guide's customers by name, card number or the phone's last
    four digits (how guides know their customers)."""
    stmt = visible_members(staff=staff)
    if q:
        conds = [Member.name.ilike(f"%{q}%"), Member.card_no == q]
        if q.isdigit() and len(q) == 4:
            conds.append(Member.phone.endswith(q))
        stmt = stmt.where(or_(*conds))
    return stmt


def names_of(*, store_ids, guide_ids) -> dict[str, dict[int, str]]:
    """Names of these stores and guides, and of every tier level, for a page to show."""
    stores = {i for i in store_ids if i}
    guides = {i for i in guide_ids if i}
    out: dict[str, dict[int, str]] = {"stores": {}, "guides": {}, "tiers": {}}
    if stores:
        out["stores"] = dict(
            db.session.execute(select(Store.id, Store.name).where(Store.id.in_(stores))).all()
        )
    if guides:
        out["guides"] = dict(
            db.session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(guides))).all()
        )
    out["tiers"] = dict(db.session.execute(select(TierLevel.id, TierLevel.name)).all())
    return out


def tag_names() -> dict[int, str]:
    """Every tag of the library by id, inactive ones too (history still shows them)."""
    return dict(db.session.execute(select(TagDefinition.id, TagDefinition.name)).all())


def tags_by_member(member_ids: list[int]) -> dict[int, set[int]]:
    """The ids of the tags on each of these members."""
    out: dict[int, set[int]] = {mid: set() for mid in member_ids}
    if member_ids:
        for mid, tid in db.session.execute(
            select(MemberTag.member_id, MemberTag.tag_id).where(MemberTag.member_id.in_(member_ids))
        ):
            out[mid].add(tid)
    return out


def attributions_of(*, member_id: int) -> list[MemberAttribution]:
    """A member's store and guide touches, oldest first."""
    return list(
        db.session.execute(
            select(MemberAttribution)
            .where(MemberAttribution.member_id == member_id)
            .order_by(MemberAttribution.created_at, MemberAttribution.id)
        ).scalars()
    )


def merges_of(*, member_id: int) -> list[MemberMerge]:
    """Merges in which the member was kept or merged, newest first."""
    return list(
        db.session.execute(
            select(MemberMerge)
            .where(or_(MemberMerge.kept_id == member_id, MemberMerge.merged_id == member_id))
            .order_by(MemberMerge.created_at.desc())
        ).scalars()
    )


def all_merges() -> Select:
    """The brand's merges, newest first (a SELECT to page)."""
    return select(MemberMerge).order_by(MemberMerge.created_at.desc(), MemberMerge.id.desc())


def card_numbers(member_ids) -> dict[int, str]:
    """Card numbers of these members (merged ones included)."""
    ids = set(member_ids)
    if not ids:
        return {}
    rows = db.session.execute(select(Member.id, Member.card_no).where(Member.id.in_(ids)))
    return dict(rows.all())


def recent_imports(*, limit: int = 20) -> list[MemberImport]:
    """The brand's latest CSV imports, newest first."""
    return list(
        db.session.execute(
            select(MemberImport).order_by(MemberImport.id.desc()).limit(limit)
        ).scalars()
    )


@dataclasses.dataclass(frozen=True, slots=True)
class HomeStore:
    id: int
    code: str
    name: str
    city: str


@dataclasses.dataclass(frozen=True, slots=True)
class HomeGuide:
    id: int
    name: str


_HOME = text(
    "SELECT s.id, s.code, s.name, s.city, t.id, t.name FROM (SELECT 1) AS one"
    " LEFT JOIN store s ON s.id = :store AND s.brand_id = :brand"
    " LEFT JOIN staff t ON t.id = :guide AND t.brand_id = :brand"
)


def home_of(member) -> tuple[HomeStore | None, HomeGuide | None]:
    """The member's store and guide (first touch), when known: one statement, no ORM."""
    if not member.store_id and not member.guide_id:
        return None, None
    row = (
        db.session.connection()
        .execute(
            _HOME,
            {"store": member.store_id, "guide": member.guide_id, "brand": member.brand_id},
        )
        .one()
    )
    store = HomeStore(*row[:4]) if row[0] is not None else None
    guide = HomeGuide(*row[4:]) if row[4] is not None else None
    return store, guide


def tier_of(member: Member) -> TierLevel | None:
    """The member's tier level, if any."""
    return db.session.get(TierLevel, member.tier_id) if member.tier_id else None


# --- the data overview (core.overview) ------------------------------------------------------
# Each function is one SQL aggregate returning per-day or per-group rows (never member rows);
# a later rollup table answers the same shapes from a few rows per day.


def overview_daily(*, period, store_id: int | None) -> list[tuple]:
    """(brand-calendar day, new members, card activations) per day of the period's window, in
    one pass over the members created or activated in it."""
    lo, hi, tz = period.utc(period.window_start), period.utc(period.end), period.tz.key
    created_in = and_(Member.created_at >= lo, Member.created_at < hi)
    activated_in = and_(Member.activated_at >= lo, Member.activated_at < hi)
    created = case((created_in, cast(func.timezone(tz, Member.created_at), Date)))
    activated = case((activated_in, cast(func.timezone(tz, Member.activated_at), Date)))
    stmt = (
        select(created, activated, func.count())
        .where(Member.status != MERGED, or_(created_in, activated_in))
        .group_by(created, activated)
    )
    if store_id is not None:
        stmt = stmt.where(Member.store_id == store_id)
    out: dict = {}
    for c_day, a_day, n in db.session.execute(stmt).all():
        if c_day is not None:
            out.setdefault(c_day, [0, 0])[0] += int(n)
        if a_day is not None:
            out.setdefault(a_day, [0, 0])[1] += int(n)
    return [(d, *v) for d, v in sorted(out.items())]


def overview_new_by(*, period, store_id: int | None, limit: int = 10) -> dict[str, list[tuple]]:
    """The period's new members by channel (source), store and guide, top ``limit`` of each,
    in one pass (GROUPING SETS)."""
    s, e = period.utc(period.start), period.utc(period.end)
    which = func.grouping(Member.source, Member.store_id, Member.guide_id)
    stmt = (
        select(which, Member.source, Member.store_id, Member.guide_id, func.count())
        .where(Member.status != MERGED, Member.created_at >= s, Member.created_at < e)
        .group_by(
            func.grouping_sets(
                tuple_(Member.source), tuple_(Member.store_id), tuple_(Member.guide_id)
            )
        )
    )
    if store_id is not None:
        stmt = stmt.where(Member.store_id == store_id)
    # grouping() sets a bit for each column left out of the row's set: 3 = by source ...
    sets = {3: ("source", 1), 5: ("store", 2), 6: ("guide", 3)}
    out: dict[str, list[tuple]] = {"source": [], "store": [], "guide": []}
    for row in db.session.execute(stmt).all():
        name, col = sets[row[0]]
        if name == "guide" and row[col] is None:
            continue  # members no guide won are nobody's figure
        out[name].append((row[col], int(row[4])))
    for rows in out.values():
        rows.sort(key=lambda r: (-r[1], str(r[0])))
        del rows[limit:]
    return out
