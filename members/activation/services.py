"""Activation: a consumer with a confirmed phone becomes (or is found as) a member.

``activate_member`` is safe under concurrency: every call for the same phone or identity
takes PostgreSQL transaction-level advisory locks on those keys first, so double taps and
WeChat retries run one after the other and the second finds what the first created. The
inserts are still ``ON CONFLICT DO NOTHING`` so that writers which take no lock (the
import) cannot make it fail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, String, bindparam, select, text
from sqlalchemy.orm import make_transient_to_detached

from core.audit import current_actor
from core.db import UTCDateTime, db, utcnow
from core.errors import Conflict, NotFound, ValidationError
from core.tenancy import require_brand_id
from core.validators import is_mobile, normalize_phone
from members import signals
from members.identities import (
    advisory_lock,
    check_identity,
    create_member_row,
    insert_identities,
    lock_key,
    owner_of,
)
from members.merge import merge_members
from members.models import ACTIVE, ADDED, SOURCES, Member, MemberAttribution, card_no_sql
from members.tiers_tags import tags, tiers

WelcomeGift = Callable[[int], None]
WELCOME_GIFTS: list[WelcomeGift] = []


def register_welcome_gift(fn: WelcomeGift) -> WelcomeGift:
    """Register ``fn(member_id)``, called once when a member is activated.

    It runs inside the activation's transaction and must be idempotent per member (e.g.
    ``enqueue(grant_gift, member_id, dedupe_key=f"welcome:{member_id}")``). Usable as a
    decorator.
    """
    if fn not in WELCOME_GIFTS:
        WELCOME_GIFTS.append(fn)
    return fn


def check_phone(phone: str | None) -> str:
    """A normalised mainland mobile number, or ValidationError."""
    phone = normalize_phone(phone or "")
    if not is_mobile(phone):
        raise ValidationError(_l("invalid mobile phone number"), field="phone")
    return phone


_TOUCH = text(
    "SELECT s.id, g.id, g.store_id FROM (SELECT 1) AS one"
    " LEFT JOIN store s ON s.id = :store AND s.brand_id = :brand"
    " LEFT JOIN staff g ON g.id = :guide AND g.brand_id = :brand"
)


def _check_touch(store_id: int | None, guide_id: int | None) -> tuple[int | None, int | None]:
    if store_id is None and guide_id is None:
        return None, None
    found = (
        db.session.connection()
        .execute(_TOUCH, {"store": store_id, "guide": guide_id, "brand": require_brand_id()})
        .one()
    )
    return _checked_touch(store_id, guide_id, *found)


def _checked_touch(
    store_id: int | None,
    guide_id: int | None,
    found_store: int | None,
    found_guide: int | None,
    guide_store: int | None,
) -> tuple[int | None, int | None]:
    """The touch's store and guide once ``_TOUCH``'s row is read: unknown ones refused, a
    guide's store when no store was given."""
    if store_id is not None and found_store is None:
        raise ValidationError(_l("unknown store"), field="store_id")
    if guide_id is not None:
        if found_guide is None:
            raise ValidationError(_l("unknown guide"), field="guide_id")
        if store_id is None:
            store_id = guide_store
    return store_id, guide_id


# After the locks, in one round trip: the member of the phone and the holders of the
# identities (a later statement than the locks', so it sees what the lock holders committed),
# and the touch's store and guide as ``_TOUCH`` reads them.
_HOLDERS = text(
    "SELECT (SELECT m.id FROM member m WHERE m.brand_id = :brand AND m.phone = :phone),"
    " ARRAY(SELECT i.member_id FROM member_identity i"
    " JOIN unnest(CAST(:kinds AS varchar[]), CAST(:values AS varchar[])) AS t(kind, value)"
    " ON i.kind = t.kind AND i.value = t.value WHERE i.brand_id = :brand),"
    " s.id, g.id, g.store_id FROM (SELECT 1) AS one"
    " LEFT JOIN store s ON s.id = :store AND s.brand_id = :brand"
    " LEFT JOIN staff g ON g.id = :guide AND g.brand_id = :brand"
)

# A new member, already activated, in one statement: the member (the card number computed as
# ``create_member_row`` does), its first touch, its identities (those another writer took
# meanwhile are left out, as ``insert_identities`` leaves them) and, given :tag, the
# ``activated`` tag with its history row (as ``tags.apply_system_tag`` writes them). Nothing
# when the phone is taken meanwhile by a writer that takes no lock (the import).
_NEW_ACTIVATED = text(
    "WITH n AS (SELECT nextval(pg_get_serial_sequence('member', 'id')) AS id),"
    " m AS (INSERT INTO member (id, brand_id, phone, card_no, source, status, name, gender,"
    " store_id, guide_id, tier_id, tier_since, activated_at, consent_version, consented_at,"
    " created_at, updated_at)"
    " SELECT n.id, :brand, :phone, {card_no}, :source, :status, '', '', :store, :guide,"
    " :tier, :tier_since, :now, :consent, :now, :created, :created"
    " FROM n ON CONFLICT (brand_id, phone) DO NOTHING RETURNING id, card_no),"
    " a AS (INSERT INTO member_attribution"
    " (brand_id, member_id, kind, store_id, guide_id, source, scene, created_at)"
    " SELECT :brand, m.id, 'first_touch', :store, :guide, :source, :scene, :created"
    " FROM m WHERE :touch),"
    " i AS (INSERT INTO member_identity (brand_id, member_id, kind, value, created_at)"
    " SELECT :brand, m.id, t.kind, t.value, :created FROM m,"
    " unnest(CAST(:kinds AS varchar[]), CAST(:values AS varchar[])) AS t(kind, value)"
    " ON CONFLICT (brand_id, kind, value) DO NOTHING RETURNING kind),"
    " t AS (INSERT INTO member_tag (brand_id, member_id, tag_id, source, staff_id, created_at)"
    " SELECT :brand, m.id, :tag, 'system', NULL, :created FROM m WHERE :tag IS NOT NULL"
    " ON CONFLICT (member_id, tag_id) DO NOTHING RETURNING member_id),"
    " h AS (INSERT INTO tag_history"
    " (brand_id, member_id, tag_id, action, source, staff_id, reason, created_at)"
    " SELECT :brand, member_id, :tag, :added, 'system', NULL, 'activated', :created FROM t)"
    " SELECT id, card_no, ARRAY(SELECT kind FROM i) FROM m".replace(
        "{card_no}", card_no_sql("n.id")
    )
).bindparams(
    *(bindparam(n, type_=BigInteger) for n in ("brand", "store", "guide", "tier", "tag")),
    *(bindparam(n, type_=UTCDateTime) for n in ("now", "created", "tier_since")),
    *(bindparam(n, type_=String) for n in ("phone", "source", "status", "consent", "scene")),
    bindparam("added", type_=String),
)


def activate_member(
    *,
    phone: str,
    oa_openid: str | None = None,
    mp_openid: str | None = None,
    unionid: str | None = None,
    store_id: int | None = None,
    guide_id: int | None = None,
    source: str,
    consent_version: str,
    scene: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[Member, bool]:
    """Create or find the member of this phone, attach the identities, record the store and
    guide (first touch kept), merge a phone-less record of the same identities, and on first
    activation fire ``member_activated`` and the welcome-gift hooks. Returns (member, created).
    """
    phone = check_phone(phone)
    if not (consent_version or "").strip():
        raise ValidationError(_l("consent to the privacy terms is required"), field="consent")
    idents = {
        k: check_identity(k, v)
        for k, v in (("oa_openid", oa_openid), ("mp_openid", mp_openid), ("unionid", unionid))
        if v
    }
    now = now or utcnow()
    bid = require_brand_id()
    advisory_lock(f"member:{bid}:phone:{phone}", *(lock_key(k, v) for k, v in idents.items()))

    db.session.flush()
    by_phone, holder_ids, *found = (
        db.session.connection()
        .execute(
            _HOLDERS,
            {
                "brand": bid,
                "phone": phone,
                "kinds": list(idents),
                "values": list(idents.values()),
                "store": store_id,
                "guide": guide_id,
            },
        )
        .one()
    )
    store_id, guide_id = _checked_touch(store_id, guide_id, *found)
    holders = set(holder_ids or ())
    holders.discard(by_phone)
    others = (
        db.session.execute(select(Member).where(Member.id.in_(holders)).order_by(Member.id))
        .scalars()
        .all()
        if holders
        else []
    )
    if any(m.phone is not None for m in others):
        # This WeChat user is bound to a member with another phone number.
        raise Conflict(_l("this WeChat account is linked to another phone number"), field="phone")

    created, member, owners, tagged = False, None, {}, False
    consent_version = consent_version.strip()[:20]
    if by_phone is not None:
        member_id = by_phone
    elif others:
        # A phone-less record (mini-program login, POS) of this person: give it the phone.
        member_id = others[0].id
        others = others[1:]
        db.session.get(Member, member_id).phone = phone
        db.session.flush()
    else:
        made = _create_activated(
            phone=phone,
            idents=idents,
            source=source,
            store_id=store_id,
            guide_id=guide_id,
            scene=scene,
            consent_version=consent_version,
            now=now,
        )
        if made is not None:
            member, owners, tagged = made
            member_id, created = member.id, True
        else:
            member_id, created = create_member_row(phone=phone, source=source)
    for other in others:
        merge_members(kept_id=member_id, merged_id=other.id, reason="same phone at activation")
    if member is None:
        owners = insert_identities(member_id, idents)
    for k, owner in owners.items():
        if owner != member_id:
            raise Conflict(_l("this identity belongs to another member"), field=k)

    if member is not None:
        first_activation = True
    else:
        member = db.session.execute(
            select(Member)
            .where(Member.id == member_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()
        if member.status != ACTIVE:
            raise NotFound(_l("no such member"))
        first_activation = member.activated_at is None
        _record_touch(member, store_id=store_id, guide_id=guide_id, source=source, scene=scene)
        if first_activation:
            member.activated_at = now
            member.consent_version = consent_version
            member.consented_at = now
            # A member created by this call has no activity yet: its value is 0.
            tiers.assign_base_level(member=member, value=0 if created else None)
            db.session.flush()
        elif member.consent_version != consent_version:
            member.consent_version = consent_version
            member.consented_at = now
    if first_activation:
        if not tagged:
            tags.apply_system_tag(member_id=member.id, code="activated")
        for gift in WELCOME_GIFTS:
            gift(member.id)
        signals.member_activated.send(
            bid,
            member_id=member.id,
            created=created,
            store_id=member.store_id,
            guide_id=member.guide_id,
            source=source,
        )
    db.session.flush()
    return member, created


def _create_activated(
    *,
    phone: str,
    idents: dict[str, str],
    source: str,
    store_id: int | None,
    guide_id: int | None,
    scene: str | None,
    consent_version: str,
    now: dt.datetime,
) -> tuple[Member, dict[str, int | None], bool] | None:
    """A new member, activated, with its first touch, base level, identities and (when the tag
    is active) the ``activated`` tag, written by one statement. Returns the member as a loaded
    row (no SELECT), each identity's owner (as ``insert_identities``) and whether it was
    tagged; None when the phone was taken meanwhile, or when an audit actor is set (the ORM
    path then writes the audit log)."""
    if current_actor() is not None:
        return None
    if source not in SOURCES:
        raise ValidationError(_l("unknown source"), field="source")
    # A member created by this call has no activity yet: its value is 0.
    level = tiers.base_level(value=0)
    # An inactive tag is left to ``apply_system_tag``, which refuses it.
    tag_id, tag_active = tags.system_tag_state(code="activated")
    created_at = utcnow()
    values = {
        "brand_id": require_brand_id(),
        "phone": phone,
        "source": source,
        "status": ACTIVE,
        "store_id": store_id,
        "guide_id": guide_id,
        "tier_id": level.id if level is not None else None,
        "tier_since": created_at if level is not None else None,
        "activated_at": now,
        "consent_version": consent_version,
        "consented_at": now,
        "created_at": created_at,
        "updated_at": created_at,
    }
    db.session.flush()
    row = db.session.execute(
        _NEW_ACTIVATED,
        {
            "brand": values["brand_id"],
            "phone": phone,
            "source": source,
            "status": ACTIVE,
            "store": store_id,
            "guide": guide_id,
            "tier": values["tier_id"],
            "tier_since": values["tier_since"],
            "now": now,
            "consent": consent_version,
            "created": created_at,
            "scene": scene,
            "touch": store_id is not None or guide_id is not None,
            "kinds": list(idents),
            "values": list(idents.values()),
            "tag": tag_id if tag_active else None,
            "added": ADDED,
        },
    ).first()
    if row is None:
        return None
    member_id, card_no, inserted = row
    member = Member(
        id=member_id,
        card_no=card_no,
        name="",
        gender="",
        birthday=None,
        merged_into_id=None,
        deleted_at=None,
        **values,
    )
    # Known as written: kept in the session as if it had been read back.
    make_transient_to_detached(member)
    db.session.add(member)
    owners = {k: member_id if k in inserted else owner_of(k, v) for k, v in idents.items()}
    return member, owners, tag_active


def _record_touch(
    member: Member, *, store_id: int | None, guide_id: int | None, source: str, scene: str | None
) -> MemberAttribution | None:
    """First touch fills the member's store and guide; any other touch is history only."""
    if store_id is None and guide_id is None:
        return None
    first = member.store_id is None and member.guide_id is None
    if first:
        member.store_id, member.guide_id = store_id, guide_id
        kind = "first_touch"
    elif (store_id, guide_id) == (member.store_id, member.guide_id):
        return None
    else:
        kind = "scan"
    row = MemberAttribution(
        member_id=member.id,
        kind=kind,
        store_id=store_id,
        guide_id=guide_id,
        source=source,
        scene=scene,
    )
    db.session.add(row)
    return row


def record_scan(
    *,
    member_id: int,
    store_id: int | None = None,
    guide_id: int | None = None,
    source: str = "oa",
    scene: str | None = None,
) -> MemberAttribution | None:
    """An existing member scanned a store or guide code: recorded when it is another one's."""
    store_id, guide_id = _check_touch(store_id, guide_id)
    member = db.session.get(Member, member_id)
    if member is None or member.brand_id != require_brand_id() or member.status != ACTIVE:
        raise NotFound(_l("no such member"))
    row = _record_touch(member, store_id=store_id, guide_id=guide_id, source=source, scene=scene)
    db.session.flush()
    signals.member_scanned.send(
        require_brand_id(),
        member_id=member.id,
        store_id=store_id,
        guide_id=guide_id,
        source=source,
    )
    return row
