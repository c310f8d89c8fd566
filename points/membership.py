"""What points needs to know about members: who they are, their tier, how to reach them."""

from __future__ import annotations

import dataclasses

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select

from core.db import db
from core.tenancy import require_brand_id
from core.validators import normalize_phone
from members.models import ACTIVE, Member, MemberCardCode, MemberIdentity, TierLevel
from points.errors import InvalidPoints, UnknownMember

DEFAULT_PERMILLE = 1000


def check_member_id(member_id) -> None:
    """A member id must be a positive int (anything else is refused before any query)."""
    if not isinstance(member_id, int) or isinstance(member_id, bool) or member_id <= 0:
        raise InvalidPoints(_l("Unknown member."), field="member_id")


def require_member(member_id) -> Member:
    """An active member of the current brand, or ``UnknownMember``."""
    check_member_id(member_id)
    # By primary key: a member this request already loaded (the signed-in one) costs no query;
    # the identity map is not brand-filtered, hence the explicit check.
    member = db.session.get(Member, member_id)
    if member is None or member.brand_id != require_brand_id() or member.status != ACTIVE:
        raise UnknownMember(_l("Unknown member."), field="member_id")
    return member


def tier_permille(member: Member) -> int:
    """The points multiplier of the member's tier level (per-mille; 1000 = x1)."""
    if member.tier_id is None:
        return DEFAULT_PERMILLE
    level = db.session.execute(
        select(TierLevel).where(TierLevel.id == member.tier_id)
    ).scalar_one_or_none()
    if level is None or not level.active:
        return DEFAULT_PERMILLE
    return level.points_multiplier_permille


def find_member(query: str) -> Member | None:
    """A member of the current brand by card number or mobile number."""
    q = (query or "").strip()
    if not q:
        return None
    phone = normalize_phone(q)
    return db.session.execute(
        select(Member).where(or_(Member.card_no == q, Member.phone == phone)).limit(1)
    ).scalar_one_or_none()


@dataclasses.dataclass(frozen=True)
class WeChatTarget:
    openid: str | None
    card_code: str | None
    card_id: str | None


def wechat_target(member_id: int) -> WeChatTarget:
    """The member's official-account openid and WeChat member card, when known."""
    openid = db.session.execute(
        select(MemberIdentity.value)
        .where(MemberIdentity.member_id == member_id, MemberIdentity.kind == "oa_openid")
        .order_by(MemberIdentity.id)
        .limit(1)
    ).scalar_one_or_none()
    card_code, card_id = _card_of(member_id)
    return WeChatTarget(openid=openid, card_code=card_code, card_id=card_id)


def _card_of(member_id: int) -> tuple[str | None, str | None]:
    """(card code, card_id) of the member's activated WeChat member card, if they hold one;
    without one only the template message is sent."""
    row = db.session.execute(
        select(MemberCardCode.code, MemberCardCode.card_id)
        .where(MemberCardCode.member_id == member_id, MemberCardCode.activated_at.is_not(None))
        .order_by(MemberCardCode.activated_at.desc())
        .limit(1)
    ).first()
    return (row.code, row.card_id) if row else (None, None)
