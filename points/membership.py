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


def wechat_targets(member_ids) -> dict[int, WeChatTarget]:
    """Where to tell each of these members about their points, in two statements: their
    first official-account openid, and the WeChat member card they activated last (without
    one only the template message is sent)."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    openids = dict(
        db.session.execute(
            select(MemberIdentity.member_id, MemberIdentity.value)
            .where(MemberIdentity.member_id.in_(ids), MemberIdentity.kind == "oa_openid")
            .distinct(MemberIdentity.member_id)
            .order_by(MemberIdentity.member_id, MemberIdentity.id)
        ).all()
    )
    cards = {
        row.member_id: row
        for row in db.session.execute(
            select(MemberCardCode.member_id, MemberCardCode.code, MemberCardCode.card_id)
            .where(MemberCardCode.member_id.in_(ids), MemberCardCode.activated_at.is_not(None))
            .distinct(MemberCardCode.member_id)
            .order_by(MemberCardCode.member_id, MemberCardCode.activated_at.desc())
        )
    }
    return {
        i: WeChatTarget(
            openid=openids.get(i),
            card_code=cards[i].code if i in cards else None,
            card_id=cards[i].card_id if i in cards else None,
        )
        for i in ids
    }
