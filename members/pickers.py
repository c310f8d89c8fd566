"""Members, tiers and tags in the console's pickers (core.pickers).

A member is shown by name, card number and masked phone; the search matches a name, a
card number or a whole phone number (never a phone fragment: a picker is no way to guess
numbers)."""

from __future__ import annotations

from collections.abc import Iterable

from flask_login import current_user
from sqlalchemy import or_, select

from core.db import db
from core.pickers import register_picker
from core.validators import is_mobile, mask_phone, normalize_phone
from members.models import Member, TagDefinition, TierLevel
from members.privacy.access import visible_members


def _member_label(m: Member) -> str:
    parts = [m.name or "", m.card_no or "", mask_phone(m.phone) if m.phone else ""]
    return " · ".join(p for p in parts if p)


def search_members(q: str, limit: int) -> list[tuple[int, str]]:
    """Members the current user may see, by name, card number or whole phone number."""
    stmt = visible_members(staff=current_user).order_by(Member.id.desc()).limit(limit)
    if q:
        conds = [Member.name.ilike(f"%{q}%"), Member.card_no == q]
        phone = normalize_phone(q)
        if is_mobile(phone):
            conds.append(Member.phone == phone)
        stmt = stmt.where(or_(*conds))
    return [(m.id, _member_label(m)) for m in db.session.execute(stmt).scalars()]


def member_labels(ids: Iterable[int]) -> list[tuple[int, str]]:
    """Labels of those of ``ids`` that the current user may see."""
    ids = list(ids)
    if not ids:
        return []
    stmt = visible_members(staff=current_user).where(Member.id.in_(ids))
    return [(m.id, _member_label(m)) for m in db.session.execute(stmt).scalars()]


def search_tiers(q: str, limit: int) -> list[tuple[int, str]]:
    """Active tier levels whose name holds ``q``, lowest rank first."""
    stmt = select(TierLevel).where(TierLevel.active.is_(True)).order_by(TierLevel.rank)
    if q:
        stmt = stmt.where(TierLevel.name.ilike(f"%{q}%"))
    return [(t.id, t.name) for t in db.session.execute(stmt.limit(limit)).scalars()]


def tier_labels(ids: Iterable[int]) -> list[tuple[int, str]]:
    """Labels of those of ``ids`` that are this brand's tier levels."""
    ids = list(ids)
    if not ids:
        return []
    stmt = select(TierLevel).where(TierLevel.id.in_(ids)).order_by(TierLevel.rank)
    return [(t.id, t.name) for t in db.session.execute(stmt).scalars()]


def search_tags(q: str, limit: int) -> list[tuple[int, str]]:
    """Active tags whose name holds ``q``, by name."""
    stmt = select(TagDefinition).where(TagDefinition.active.is_(True))
    if q:
        stmt = stmt.where(TagDefinition.name.ilike(f"%{q}%"))
    stmt = stmt.order_by(TagDefinition.name).limit(limit)
    return [(t.id, t.name) for t in db.session.execute(stmt).scalars()]


def tag_labels(ids: Iterable[int]) -> list[tuple[int, str]]:
    """Labels of those of ``ids`` that are this brand's tags."""
    ids = list(ids)
    if not ids:
        return []
    stmt = select(TagDefinition).where(TagDefinition.id.in_(ids)).order_by(TagDefinition.name)
    return [(t.id, t.name) for t in db.session.execute(stmt).scalars()]


ADMIN_AND_MANAGERS = ("brand_admin", "store_manager")
register_picker("members", search=search_members, labels=member_labels, roles=ADMIN_AND_MANAGERS)
register_picker(
    "tiers", search=search_tiers, labels=tier_labels, roles=ADMIN_AND_MANAGERS, small=True
)
register_picker("tags", search=search_tags, labels=tag_labels, roles=ADMIN_AND_MANAGERS, small=True)
