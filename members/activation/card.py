"""Completing an activation, and the WeChat member card (会员卡) it activates.

Both doors lead to ``complete_activation``: the H5 page (WeChat OAuth, phone + SMS code,
consent) and the native card path (the consumer takes the card -> ``user_get_card``; fills
WeChat's activation form -> ``submit_membercard_user_info`` / the jump-activation page with
an ``activate_ticket`` read through activatetempinfo). The store and guide come from the
code the WeChat user scanned last (recorded from WeChat's signed callback, never from the
page). The WeChat card itself is activated through the card API by a job, once the member
exists and the card code is known, whichever comes first.
"""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert

from core.db import db, utcnow
from core.errors import ValidationError
from core.jobs import job
from core.tenancy import require_brand_id
from members.activation import qrcodes
from members.activation.services import activate_member
from members.identities import find_by_identity
from members.models import ACTIVE, EV_ACTIVATION, Member, MemberCardCode
from wechat import gateway

# The version of the privacy terms shown on templates/members/member/activate/terms.html.
PRIVACY_TERMS_VERSION = "2026-01"
# WeChat's own activation form carries the brand's terms; consent is recorded as such.
CARD_TERMS_VERSION = "card-" + PRIVACY_TERMS_VERSION

_FORM_FIELDS = {
    "USER_FORM_INFO_FLAG_MOBILE": "phone",
    "USER_FORM_INFO_FLAG_NAME": "name",
    "USER_FORM_INFO_FLAG_BIRTHDAY": "birthday",
    "USER_FORM_INFO_FLAG_SEX": "gender",
}


def complete_activation(
    *,
    phone: str,
    openid: str,
    unionid: str | None,
    source: str,
    consent_version: str,
    profile: dict | None = None,
) -> tuple[Member, bool]:
    """Activate (or find) the member of this phone and WeChat user, attribute the code they
    scanned, count it, fill an empty profile and queue the card activation."""
    qr = qrcodes.last_scanned(openid=openid)
    now = utcnow()
    member, created = activate_member(
        phone=phone,
        oa_openid=openid,
        unionid=unionid,
        store_id=qr.store_id if qr else None,
        guide_id=qr.staff_id if qr else None,
        source=source,
        consent_version=consent_version,
        scene=qr.scene if qr else None,
        now=now,
    )
    # activated_at is set to ``now`` only by the call that activated the member first (the
    # calls are serialised by activate_member's locks), so a double tap counts once.
    if qr is not None and member.activated_at == now:
        qrcodes.record_event(qr=qr, kind=EV_ACTIVATION, openid=openid, member_id=member.id)
    for field, value in (profile or {}).items():
        if value and not getattr(member, field):
            setattr(member, field, value)
    queue_card_activation(member_id=member.id, openid=openid)
    db.session.flush()
    return member, created


def record_card_code(*, openid: str, card_id: str, code: str) -> MemberCardCode:
    """Keep a card code the consumer took; activate it at once when they are a member."""
    if not (openid and card_id and code) or max(len(openid), len(card_id), len(code)) > 64:
        raise ValidationError(_l("incomplete card event"), field="code")
    db.session.execute(
        insert(MemberCardCode)
        .values(
            brand_id=require_brand_id(),
            card_id=card_id,
            code=code,
            openid=openid,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["brand_id", "code"])
    )
    row = db.session.execute(select(MemberCardCode).where(MemberCardCode.code == code)).scalar_one()
    member = find_by_identity(kind="oa_openid", value=openid)
    if member is not None and member.holds_card:
        queue_card_activation(member_id=member.id, openid=openid)
    return row


_cc = MemberCardCode.__table__.c
_WAITING_CODES = select(_cc.id).where(
    _cc.brand_id == bindparam("brand_id"),
    _cc.openid == bindparam("openid"),
    _cc.activated_at.is_(None),
)


def queue_card_activation(*, member_id: int, openid: str) -> int:
    """Enqueue the activation of every card code of this WeChat user not yet activated."""
    # Most members took no card (yet): a Core look first, the ORM rows only when there are.
    db.session.flush()
    waiting = (
        db.session.connection()
        .execute(_WAITING_CODES, {"brand_id": require_brand_id(), "openid": openid})
        .first()
    )
    if waiting is None:
        return 0
    rows = db.session.execute(
        select(MemberCardCode).where(
            MemberCardCode.openid == openid, MemberCardCode.activated_at.is_(None)
        )
    ).scalars()
    n = 0
    for row in rows:
        row.member_id = member_id
        activate_card_job.enqueue(row.id, dedupe_key=f"card-activate:{row.brand_id}:{row.id}")
        n += 1
    db.session.flush()
    return n


@job("default", timeout=30, retries=5)
def activate_card_job(card_code_id: int) -> None:
    """Activate a WeChat member card with the member's card number (idempotent)."""
    row = db.session.get(MemberCardCode, card_code_id)
    if row is None or row.activated_at is not None or row.member_id is None:
        return
    member = db.session.get(Member, row.member_id)
    if member is None or member.status != ACTIVE:
        return
    gateway.activate_member_card(
        row.brand_id, code=row.code, card_id=row.card_id, membership_number=member.card_no
    )
    row.activated_at = utcnow()


def form_values(info: dict) -> dict:
    """What the consumer typed into WeChat's activation form: phone, name, birthday, gender."""
    out = {}
    for item in info.get("common_field_list") or []:
        field = _FORM_FIELDS.get(item.get("name"))
        if field:
            out[field] = str(item.get("value") or "").strip()
    if out.get("gender") not in (None, "m", "f"):
        out["gender"] = {"男": "m", "MALE": "m", "女": "f", "FEMALE": "f"}.get(out["gender"], "")
    birthday = out.pop("birthday", "")
    try:
        out["birthday"] = dt.date.fromisoformat(birthday) if birthday else None
    except ValueError:
        out["birthday"] = None
    out["name"] = (out.get("name") or "")[:80]
    return out


def native_activate(
    *, activate_ticket: str, card_id: str, code: str, openid: str
) -> tuple[Member, bool]:
    """The native path: read WeChat's activation form and activate like the H5 page does.

    ``code`` and ``openid`` must come from WeChat (the card event, or card/code/decrypt and
    card/code/get), never from a page's query string.
    """
    info = gateway.get_activate_info(require_brand_id(), activate_ticket)
    return _activate_from_form(info, card_id=card_id, code=code, openid=openid)


def native_activate_by_code(*, card_id: str, code: str, openid: str) -> tuple[Member, bool]:
    """The native path without a ticket (WeChat's own one-tap activation form): the form is
    read from the card's holder (card/membercard/userinfo/get), who must be ``openid``."""
    holder = gateway.get_member_card_user(require_brand_id(), card_id=card_id, code=code)
    if holder.get("openid") != openid:
        raise ValidationError(_l("the card belongs to someone else"), field="code")
    return _activate_from_form(
        holder.get("user_info") or {}, card_id=card_id, code=code, openid=openid
    )


def _activate_from_form(info: dict, *, card_id: str, code: str, openid: str):
    values = form_values(info)
    phone = values.pop("phone", "")
    if not phone:
        raise ValidationError(_l("the card form has no phone number"), field="phone")
    record_card_code(openid=openid, card_id=card_id, code=code)
    return complete_activation(
        phone=phone,
        openid=openid,
        unionid=None,
        source="card",
        consent_version=CARD_TERMS_VERSION,
        profile=values,
    )


@job("high", timeout=30, retries=5)
def native_activate_job(openid: str, card_id: str, code: str, activate_ticket: str) -> None:
    """``submit_membercard_user_info`` with a ticket: activate outside WeChat's 5 s."""
    native_activate(activate_ticket=activate_ticket, card_id=card_id, code=code, openid=openid)


@job("high", timeout=30, retries=5)
def native_activate_by_code_job(openid: str, card_id: str, code: str) -> None:
    """``submit_membercard_user_info`` without a ticket: activate outside WeChat's 5 s."""
    native_activate_by_code(card_id=card_id, code=code, openid=openid)


def card_owner(*, encrypt_code: str, card_id: str | None) -> tuple[str, str]:
    """(code, openid) behind a jump-activation page's encrypt_code, as WeChat tells it."""
    brand_id = require_brand_id()
    code = gateway.decrypt_card_code(brand_id, encrypt_code)
    info = gateway.get_card_code(brand_id, code, card_id=card_id)
    return code, info["openid"]
