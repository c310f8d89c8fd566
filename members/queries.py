"""Reads of members for the pages: the console's search and filters, a member's detail, the
guide workbench and the member card. Everything here works in the current brand."""

from __future__ import annotations

import dataclasses

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    func,
    or_,
    select,
    text,
)

from core import rollups
from core.db import db
from core.validators import is_mobile, normalize_phone
from members.models import (
    Member,
    MemberAttribution,
    MemberImport,
    MemberMerge,
    MemberTag,
    TagDefinition,
    TierLevel,
)
from members.privacy.access import visible_members
from members.rollups import MEMBERS_DAY, MEMBERS_DAY_TOTAL, NONE
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


def escape_like(value: str) -> str:
    """``value`` with LIKE's wildcards escaped (backslash, PostgreSQL's default escape)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def match_members(q: str) -> ColumnElement[bool] | None:
    """The condition a search box query puts on members, chosen by the query's shape so that
    every branch is served by an index of ``member`` (never a scan of the brand):

    * a mobile number, however typed: the phone by equality (unique (brand_id, phone));
    * other digits, three or more: a fragment of the phone (trigram ``ix_member_phone_trgm``);
    * anything else: a name, three or more characters anywhere in it (trigram
      ``ix_member_name_trgm``), one or two at its start (``ix_member_brand_name_prefix``);
    * and always the card number by equality (unique (brand_id, card_no)).

    The branches are ORed only with each other, so the plan is a BitmapOr of index scans.
    None for an empty query."""
    q = q.strip()[:SEARCH_MAX]
    if not q:
        return None
    conds = [Member.card_no == q]
    digits = normalize_phone(q)
    if digits.isascii() and digits.isdigit():
        if is_mobile(digits):
            conds.append(Member.phone == digits)
        elif len(digits) >= 3:
            conds.append(Member.phone.like(f"%{digits}%"))
        # One or two digits are neither a useful phone fragment nor a name: card number only.
        return or_(*conds)
    pattern = escape_like(q)
    if len(q) >= 3:
        conds.append(Member.name.ilike(f"%{pattern}%"))
    else:
        # Trigrams need three characters; a short name is looked up by its start.
        conds.append(Member.name.like(f"{pattern}%"))
    return or_(*conds)


def search_members(
    *,
    staff: Staff,
    q: str = "",
    store_id: int | None = None,
    tier_id: int | None = None,
    tag_id: int | None = None,
) -> Select:
    """The members ``staff`` may see, matching a name, card number or phone (see
    ``match_members``) and the filters, newest first (a SELECT to page)."""
    stmt = visible_members(staff=staff)
    cond = match_members(q)
    if cond is not None:
        stmt = stmt.where(cond)
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
    """The workbench's search: a guide's customers by name, card number or phone digits (the
    last four are how guides know their customers), as ``match_members`` matches them."""
    stmt = visible_members(staff=staff)
    cond = match_members(q)
    if cond is not None:
        stmt = stmt.where(cond)
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
    return select(MemberMerge).order_by(MemberMerge.id.desc())


def card_numbers(member_ids) -> dict[int, str]:
    """Card numbers of these members (merged ones included)."""
    ids = set(member_ids)
    if not ids:
        return {}
    rows = db.session.execute(select(Member.id, Member.card_no).where(Member.id.in_(ids)))
    return dict(rows.all())


def all_imports() -> Select:
    """The brand's CSV imports, newest first (a SELECT to page)."""
    return select(MemberImport).order_by(MemberImport.id.desc())


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


# ``home_of`` as two one-column SELECTs (parameters ``:store``, ``:guide``, ``:brand_id``)
# for a page that reads them with its other figures: one JSON array per row found.
_HOME_FIGURES = (
    select(func.json_build_array(Store.id, Store.code, Store.name, Store.city)).where(
        Store.id == bindparam("store"), Store.brand_id == bindparam("brand_id")
    ),
    select(func.json_build_array(Staff.id, Staff.name)).where(
        Staff.id == bindparam("guide"), Staff.brand_id == bindparam("brand_id")
    ),
)


def home_figures(member) -> tuple[tuple[Select, Select], dict]:
    """The SELECTs of ``home_of`` and their parameters (read them with ``home_from``)."""
    return _HOME_FIGURES, {"store": member.store_id, "guide": member.guide_id}


def home_from(store: list | None, guide: list | None) -> tuple[HomeStore | None, HomeGuide | None]:
    """``home_of``'s answer from the values of ``home_figures``' SELECTs."""
    return (HomeStore(*store) if store else None, HomeGuide(*guide) if guide else None)


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
# Each function reads the members rollup (core.rollups: a few rows per day, the days changed
# since its watermark counted live), never member rows.


_DAYS = (
    "SELECT day, sum(new_members), sum(activations) FROM {rel} u WHERE day >= :d0 AND day < :d1"
    " GROUP BY day HAVING sum(new_members) > 0 OR sum(activations) > 0 ORDER BY day"
)
_DAYS_OF_STORE = (
    "SELECT day, sum(new_members), sum(activations) FROM {rel} u WHERE day >= :d0 AND day < :d1"
    " AND store_id = :store"
    " GROUP BY day HAVING sum(new_members) > 0 OR sum(activations) > 0 ORDER BY day"
)


def overview_daily(*, period, store_id: int | None) -> list[tuple]:
    """(brand-calendar day, new members, card activations) per day of the period's window."""
    # Brand-wide from the per-day rollup; a store's from the fine one.
    if store_id is None:
        name, where = MEMBERS_DAY_TOTAL.name, _DAYS
    else:
        name, where = MEMBERS_DAY.name, _DAYS_OF_STORE
    rows = rollups.query(
        name,
        where,
        tz=period.tz.key,
        d0=period.window_start,
        d1=period.end,
        store=store_id,
    )
    return [(d, int(n), int(a)) for d, n, a in rows]


def overview_new_by(*, period, store_id: int | None, limit: int = 10) -> dict[str, list[tuple]]:
    """The period's new members by channel (source), store and guide, top ``limit`` of each,
    in one pass (GROUPING SETS) over the rollup's rows."""
    rows = rollups.query(
        MEMBERS_DAY.name,
        "SELECT grouping(source, store_id, guide_id), source, store_id, guide_id,"
        " sum(new_members) FROM {rel} u WHERE day >= :d0 AND day < :d1"
        " AND (CAST(:store AS bigint) IS NULL OR store_id = :store)"
        " GROUP BY GROUPING SETS ((source), (store_id), (guide_id))"
        " HAVING sum(new_members) > 0",
        tz=period.tz.key,
        d0=period.start,
        d1=period.end,
        store=store_id,
    )
    # grouping() sets a bit for each column left out of the row's set: 3 = by source ...
    sets = {3: ("source", 1), 5: ("store", 2), 6: ("guide", 3)}
    out: dict[str, list[tuple]] = {"source": [], "store": [], "guide": []}
    for row in rows:
        name, col = sets[row[0]]
        key = row[col]
        if name in ("store", "guide") and key == NONE:
            if name == "guide":
                continue  # members no guide won are nobody's figure
            key = None
        out[name].append((key, int(row[4])))
    for group in out.values():
        group.sort(key=lambda r: (-r[1], str(r[0])))
        del group[limit:]
    return out
