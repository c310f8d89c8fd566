"""China's PIPL: a member may download everything held about them and delete their account.

Deletion anonymises instead of dropping rows: the member row stays (status ``deleted``,
phone, name, gender and birthday cleared, identities and tags removed) so that ledger rows
(activity, and the points and coupons of later packages) stay referentially intact.
"""

from __future__ import annotations

from collections.abc import Callable

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select

from core.audit import Actor, acting_as, current_actor
from core.db import db, model_to_dict, utcnow
from core.errors import NotFound
from core.tenancy import require_brand_id
from members import signals
from members.models import (
    DELETED,
    Member,
    MemberActivity,
    MemberAttribution,
    MemberIdentity,
    MemberMerge,
    MemberTag,
    SubscribeConsent,
    SubscribeConsentEvent,
    SubscribeConsentUse,
    TagDefinition,
    TagHistory,
    TierLevel,
)
from members.privacy.access import record_as

DataExporter = Callable[[int], dict]
DATA_EXPORTERS: list[DataExporter] = []


def register_data_exporter(fn: DataExporter) -> DataExporter:
    """Register ``fn(member_id) -> {section: data}`` adding a package's data to the download."""
    if fn not in DATA_EXPORTERS:
        DATA_EXPORTERS.append(fn)
    return fn


def _member(member_id: int) -> Member:
    member = db.session.get(Member, member_id)
    if member is None or member.brand_id != require_brand_id():
        raise NotFound(_l("no such member"))
    return member


def _rows(model, member_id: int, exclude=frozenset({"brand_id", "member_id"})) -> list[dict]:
    return [
        model_to_dict(r, exclude)
        for r in db.session.execute(
            select(model).where(model.member_id == member_id).order_by(model.id)
        ).scalars()
    ]


def export_member_data(*, member_id: int) -> dict:
    """Everything held about a member, as JSON-ready data."""
    member = _member(member_id)
    data = {
        "member": model_to_dict(member, frozenset({"brand_id"})),
        "identities": _rows(MemberIdentity, member_id),
        "tags": [
            {"code": t.code, "name": t.name, "kind": t.kind}
            for t in db.session.execute(
                select(TagDefinition)
                .join(MemberTag, MemberTag.tag_id == TagDefinition.id)
                .where(MemberTag.member_id == member_id)
            ).scalars()
        ],
        "tag_history": _rows(TagHistory, member_id),
        "activity": _rows(MemberActivity, member_id),
        "attributions": _rows(MemberAttribution, member_id),
        "merges": [
            model_to_dict(m, frozenset({"brand_id"}))
            for m in db.session.execute(
                select(MemberMerge).where(
                    (MemberMerge.kept_id == member_id) | (MemberMerge.merged_id == member_id)
                )
            ).scalars()
        ],
    }
    if member.tier_id:
        tier = db.session.get(TierLevel, member.tier_id)
        data["tier"] = {"code": tier.code, "name": tier.name} if tier else None
    for fn in DATA_EXPORTERS:
        data.update(fn(member_id) or {})
    for key in ("birthday",):
        if data["member"].get(key) is not None:
            data["member"][key] = str(data["member"][key])
    return data


def delete_member(*, member_id: int, reason: str = "member request") -> Member:
    """Anonymise a member and mark it deleted; ledgers stay, pointing at the anonymous row."""
    member = db.session.execute(
        select(Member).where(Member.id == member_id).with_for_update()
    ).scalar_one_or_none()
    if member is None or member.brand_id != require_brand_id():
        raise NotFound(_l("no such member"))
    if member.status == DELETED:
        return member
    # The subscribe-message choices WeChat reported for the member's openids go with them.
    openids = select(MemberIdentity.value).where(
        MemberIdentity.member_id == member_id,
        MemberIdentity.kind.in_(("oa_openid", "mp_openid")),
    )
    consents = 0
    for model in (SubscribeConsentUse, SubscribeConsentEvent, SubscribeConsent):
        consents += db.session.execute(delete(model).where(model.openid.in_(openids))).rowcount
    counts = {
        "subscribe_consents": consents,
        "identities": db.session.execute(
            delete(MemberIdentity).where(MemberIdentity.member_id == member_id)
        ).rowcount,
        "tags": db.session.execute(
            delete(MemberTag).where(MemberTag.member_id == member_id)
        ).rowcount,
        "tag_history": db.session.execute(
            delete(TagHistory).where(TagHistory.member_id == member_id)
        ).rowcount,
    }
    member.phone = None
    member.name = ""
    member.gender = ""
    member.birthday = None
    member.consent_version = None
    member.status = DELETED
    member.deleted_at = utcnow()
    db.session.flush()
    entry = dict(
        action="delete_member",
        object_type="member",
        object_id=member.id,
        after={"reason": reason[:200], "removed": counts},
    )
    if current_actor() is None:  # the member's own request from the member center
        with acting_as(Actor("member", member.id, f"member {member.card_no}")):
            record_as(None, **entry)
    else:
        record_as(None, **entry)
    signals.member_deleted.send(require_brand_id(), member_id=member.id)
    return member
