"""Reads of members for the pages: the console's search and filters, a member's detail, the
guide workbench and the member card. Everything here works in the current brand."""

from __future__ import annotations

from sqlalchemy import Date, Select, and_, cast, func, or_, select

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


def home_of(member: Member) -> tuple[Store | None, Staff | None]:
    """The member's store and guide (first touch), when known."""
    store = db.session.get(Store, member.store_id) if member.store_id else None
    guide = db.session.get(Staff, member.guide_id) if member.guide_id else None
    return store, guide


def tier_of(member: Member) -> TierLevel | None:
    """The member's tier level, if any."""
    return db.session.get(TierLevel, member.tier_id) if member.tier_id else None


# --- the data overview (core.overview); every figure is one SQL aggregate ---------------------


def overview_counts(*, period, store_id: int | None) -> dict[str, int]:
    """New members and card activations in the period and in the one before it."""
    s, e, p = period.utc(period.start), period.utc(period.end), period.utc(period.prev_start)

    def between(col, lo, hi):
        return func.count().filter(col >= lo, col < hi)

    row = db.session.execute(
        select(
            between(Member.created_at, s, e).label("new"),
            between(Member.created_at, p, s).label("new_prev"),
            between(Member.activated_at, s, e).label("activated"),
            between(Member.activated_at, p, s).label("activated_prev"),
        )
        .select_from(Member)
        .where(
            Member.status != MERGED,
            or_(
                and_(Member.created_at >= p, Member.created_at < e),
                and_(Member.activated_at >= p, Member.activated_at < e),
            ),
            *([Member.store_id == store_id] if store_id is not None else []),
        )
    ).one()
    return {k: int(v) for k, v in row._mapping.items()}


def overview_daily(*, period, store_id: int | None) -> list[tuple]:
    """(brand-calendar day, new members, activations) over the period's trend days."""
    lo, hi, tz = period.utc(period.trend_start), period.utc(period.end), period.tz.key
    scope = [Member.status != MERGED]
    if store_id is not None:
        scope.append(Member.store_id == store_id)
    out: dict = {}
    for col, idx in ((Member.created_at, 0), (Member.activated_at, 1)):
        day = cast(func.timezone(tz, col), Date)
        rows = db.session.execute(
            select(day, func.count()).where(col >= lo, col < hi, *scope).group_by(day)
        ).all()
        for d, n in rows:
            out.setdefault(d, [0, 0])[idx] = int(n)
    return [(d, *v) for d, v in out.items()]


def overview_new_by(*, period, store_id: int | None, by: str, limit: int = 10) -> list[tuple]:
    """New members of the period by channel (source), store or guide: (key, count), top first."""
    col = {"source": Member.source, "store": Member.store_id, "guide": Member.guide_id}[by]
    s, e = period.utc(period.start), period.utc(period.end)
    stmt = (
        select(col, func.count())
        .where(Member.status != MERGED, Member.created_at >= s, Member.created_at < e)
        .group_by(col)
        .order_by(func.count().desc(), col)
        .limit(limit)
    )
    if store_id is not None:
        stmt = stmt.where(Member.store_id == store_id)
    if by == "guide":  # members no guide won are nobody's figure
        stmt = stmt.where(Member.guide_id.is_not(None))
    return [(k, int(n)) for k, n in db.session.execute(stmt).all()]
