"""The tag library and tags on members, with history (services: flush, never commit).

Behaviour tags with ``is_system`` are set by events: ``activated`` on activation,
``visited_store`` and ``purchased`` on a purchase at a store, ``lapsed_90d`` by the
periodic job when a member has not bought anything for 90 days (brand-local days).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, String, bindparam, delete, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, insert

from core.db import UTCDateTime, db, utcnow
from core.errors import Forbidden, NotFound, ValidationError
from core.tenancy import require_brand_id
from members.models import (
    ACTIVE,
    ADDED,
    REMOVED,
    TAG_KINDS,
    Member,
    MemberTag,
    TagDefinition,
    TagHistory,
    TierSettings,
)
from org.models import Brand, Staff
from wechat import brand_settings

SYSTEM_TAGS = {
    "activated": "已激活",
    "visited_store": "到店",
    "purchased": "已消费",
    "lapsed_90d": "90天未消费",
    # written back by campaigns for later segments
    "campaign_received": "收到营销推送",
    "campaign_opened": "打开营销推送",
    "campaign_redeemed": "营销券已核销",
}
LAPSED_DAYS = 90
LAPSED = "lapsed_90d"  # the behaviour tag's code
LAPSED_REASON = f"no purchase for {LAPSED_DAYS} days"
LAPSED_BATCH = 5000  # members tagged per statement
_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def create_tag(
    *, kind: str, name: str, code: str | None = None, is_quick: bool = False
) -> TagDefinition:
    """Add a tag to the brand's library."""
    name = (name or "").strip()
    if kind not in TAG_KINDS:
        raise ValidationError(_l("unknown tag kind"), field="kind")
    if not name or len(name) > 60:
        raise ValidationError(_l("name: 1-60 characters"), field="name")
    code = (code or "").strip().lower() or f"t-{secrets.token_hex(4)}"
    if not _CODE_RE.match(code):
        raise ValidationError(_l("code: lowercase letters, digits, - or _"), field="code")
    if tag_by_code(code=code) is not None:
        raise ValidationError(_l("a tag with this code exists"), field="code")
    tag = TagDefinition(kind=kind, name=name, code=code, is_quick=is_quick, active=True)
    db.session.add(tag)
    db.session.flush()
    return tag


def update_tag(
    *,
    tag_id: int,
    name: str | None = None,
    kind: str | None = None,
    is_quick: bool | None = None,
    active: bool | None = None,
) -> TagDefinition:
    """Rename, re-kind, (un)mark quick or (de)activate a tag; system tags keep their kind."""
    tag = get_tag(tag_id=tag_id)
    if name is not None:
        name = name.strip()
        if not name or len(name) > 60:
            raise ValidationError(_l("name: 1-60 characters"), field="name")
        tag.name = name
    if kind is not None and kind != tag.kind:
        if kind not in TAG_KINDS:
            raise ValidationError(_l("unknown tag kind"), field="kind")
        if tag.is_system:
            raise ValidationError(_l("system tags keep their kind"), field="kind")
        tag.kind = kind
    if is_quick is not None:
        tag.is_quick = is_quick
    if active is not None:
        tag.active = active
    db.session.flush()
    return tag


def get_tag(*, tag_id: int) -> TagDefinition:
    """A tag of the current brand, or NotFound."""
    tag = db.session.get(TagDefinition, tag_id)
    if tag is None or tag.brand_id != require_brand_id():
        raise NotFound(_l("no such tag"))
    return tag


def tag_by_code(*, code: str) -> TagDefinition | None:
    """A tag of the current brand by its code."""
    return db.session.execute(
        select(TagDefinition).where(TagDefinition.code == code)
    ).scalar_one_or_none()


def list_tags(
    *, kind: str | None = None, quick_only: bool = False, include_inactive: bool = False
) -> list[TagDefinition]:
    """The brand's tag library, by kind then name."""
    q = select(TagDefinition)
    if kind:
        q = q.where(TagDefinition.kind == kind)
    if quick_only:
        q = q.where(TagDefinition.is_quick.is_(True))
    if not include_inactive:
        q = q.where(TagDefinition.active.is_(True))
    return list(db.session.execute(q.order_by(TagDefinition.kind, TagDefinition.name)).scalars())


def system_tag(*, code: str) -> TagDefinition:
    """The system behaviour tag ``code``, created on first use (concurrency-safe)."""
    if code not in SYSTEM_TAGS:
        raise ValueError(f"unknown system tag {code}")
    tag = tag_by_code(code=code)
    if tag is not None:
        return tag
    now = utcnow()
    db.session.execute(
        insert(TagDefinition)
        .values(
            brand_id=require_brand_id(),
            kind="behaviour",
            code=code,
            name=SYSTEM_TAGS[code],
            is_quick=False,
            is_system=True,
            active=True,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["brand_id", "code"])
    )
    return tag_by_code(code=code)


def _member(member_id: int) -> Member:
    member = db.session.get(Member, member_id)
    if member is None or member.brand_id != require_brand_id() or member.status != ACTIVE:
        raise NotFound(_l("no such member"))
    return member


_ADD_TAG = text(
    "WITH added AS ("
    " INSERT INTO member_tag (brand_id, member_id, tag_id, source, staff_id, created_at)"
    " VALUES (:brand_id, :member_id, :tag_id, :source, :staff_id, :created_at)"
    " ON CONFLICT (member_id, tag_id) DO NOTHING RETURNING id)"
    " INSERT INTO tag_history"
    " (brand_id, member_id, tag_id, action, source, staff_id, reason, created_at)"
    " SELECT :brand_id, :member_id, :tag_id, :action, :source, :staff_id, :reason, :created_at"
    " FROM added RETURNING id"
).bindparams(
    bindparam("brand_id", type_=BigInteger),
    bindparam("member_id", type_=BigInteger),
    bindparam("tag_id", type_=BigInteger),
    bindparam("staff_id", type_=BigInteger),
    bindparam("source", type_=String),
    bindparam("action", type_=String),
    bindparam("reason", type_=String),
    bindparam("created_at", type_=UTCDateTime),
)


def add_tag(
    *,
    member_id: int,
    tag_id: int,
    staff_id: int | None = None,
    source: str | None = None,
    reason: str = "",
) -> bool:
    """Put a tag on a member; False when it was already there. History records who and why."""
    _member(member_id)
    tag = get_tag(tag_id=tag_id)
    return _add(member_id, tag.id, tag.active, staff_id, source, reason)


def _add(member_id, tag_id, active, staff_id, source, reason) -> bool:
    if not active:
        raise ValidationError(_l("this tag is inactive"), field="tag_id")
    source = source or ("staff" if staff_id else "system")
    db.session.flush()
    # The tag and its history row in one statement: the history row is written only when
    # the tag was not there already.
    added = db.session.execute(
        _ADD_TAG,
        {
            "brand_id": require_brand_id(),
            "member_id": member_id,
            "tag_id": tag_id,
            "source": source,
            "staff_id": staff_id,
            "created_at": utcnow(),
            "action": ADDED,
            "reason": (reason or "")[:200],
        },
    ).scalar()
    return added is not None


def remove_tag(
    *,
    member_id: int,
    tag_id: int,
    staff_id: int | None = None,
    source: str | None = None,
    reason: str = "",
) -> bool:
    """Take a tag off a member; False when it was not there."""
    _member(member_id)
    get_tag(tag_id=tag_id)
    source = source or ("staff" if staff_id else "system")
    removed = db.session.execute(
        delete(MemberTag)
        .where(MemberTag.member_id == member_id, MemberTag.tag_id == tag_id)
        .returning(MemberTag.id)
    ).scalar()
    if removed is None:
        return False
    _history(member_id, tag_id, REMOVED, source, staff_id, reason)
    return True


def _history(member_id, tag_id, action, source, staff_id, reason) -> None:
    db.session.add(
        TagHistory(
            member_id=member_id,
            tag_id=tag_id,
            action=action,
            source=source,
            staff_id=staff_id,
            reason=(reason or "")[:200],
        )
    )
    db.session.flush()


def _check_guide_may_tag(member: Member, staff_id: int) -> None:
    staff = db.session.get(Staff, staff_id)
    if staff is None or staff.brand_id != member.brand_id or not staff.active:
        raise Forbidden(_l("unknown staff member"))
    if staff.role == "guide" and member.guide_id != staff.id:
        raise Forbidden(_l("you may only tag your own customers"))
    if staff.role == "store_manager" and member.store_id != staff.store_id:
        raise Forbidden(_l("you may only tag your store's customers"))


def quick_tag(*, member_id: int, tag_id: int, staff_id: int, remove: bool = False) -> bool:
    """A guide's one-tap tag (or untag with ``remove``): quick tags on their own customers only."""
    member = _member(member_id)
    _check_guide_may_tag(member, staff_id)
    tag = get_tag(tag_id=tag_id)
    if not tag.is_quick or not tag.active:
        raise ValidationError(_l("not a quick tag"), field="tag_id")
    if remove:
        return remove_tag(member_id=member_id, tag_id=tag_id, staff_id=staff_id, reason="quick tag")
    return add_tag(member_id=member_id, tag_id=tag_id, staff_id=staff_id, reason="quick tag")


def apply_system_tag(*, member_id: int, code: str, reason: str = "") -> bool:
    """Set a system behaviour tag on a member (an event happened)."""
    tag = system_tag_state(code=code)
    _member(member_id)
    return _add(member_id, *tag, None, "system", reason or code)


def system_tag_state(*, code: str) -> tuple[int, bool]:
    """(id, active) of the system tag ``code``, created on first use. Member requests find it
    cached in the process (``wechat.brand_settings``) once the tag exists."""
    tag = _cached_tag_state(code)
    if tag is None:
        found = system_tag(code=code)
        tag = (found.id, found.active)
    return tag


brand_settings.watch(TagDefinition)


def _cached_tag_state(code: str) -> tuple[int, bool] | None:
    """(id, active) of the tag ``code`` from the process's cache of the brand (None: no such
    tag yet)."""
    return brand_settings.get(f"system-tag:{code}", lambda: _tag_state(code))


def _tag_state(code: str) -> tuple[int, bool] | None:
    row = db.session.execute(
        select(TagDefinition.id, TagDefinition.active).where(TagDefinition.code == code)
    ).first()
    return tuple(row) if row is not None else None


def clear_system_tag(*, member_id: int, code: str, reason: str = "") -> bool:
    """Clear a system behaviour tag if the member has it."""
    tag = _cached_tag_state(code)
    if tag is None:  # never used: no member has it
        return False
    return remove_tag(member_id=member_id, tag_id=tag[0], source="system", reason=reason or code)


def member_tags(*, member_id: int) -> list[TagDefinition]:
    """The tags on a member."""
    return list(
        db.session.execute(
            select(TagDefinition)
            .join(MemberTag, MemberTag.tag_id == TagDefinition.id)
            .where(MemberTag.member_id == member_id)
            .order_by(TagDefinition.kind, TagDefinition.name)
        ).scalars()
    )


def tag_history(*, member_id: int, limit: int = 200) -> list[TagHistory]:
    """A member's tag history, newest first."""
    return list(
        db.session.execute(
            select(TagHistory)
            .where(TagHistory.member_id == member_id)
            .order_by(TagHistory.created_at.desc(), TagHistory.id.desc())
            .limit(limit)
        ).scalars()
    )


def lapsed_cutoff(*, brand: Brand, now: dt.datetime) -> dt.datetime:
    """Local midnight LAPSED_DAYS days ago in the brand's time zone, as UTC."""
    local_day = now.astimezone(brand.tz).date() - dt.timedelta(days=LAPSED_DAYS)
    return dt.datetime.combine(local_day, dt.time(), tzinfo=brand.tz).astimezone(dt.UTC)


def tag_lapsed(*, now: dt.datetime | None = None) -> int:
    """Tag the current brand's active members whose last purchase (or, never having bought,
    activation) fell past the cutoff since the last run; answers how many were tagged.

    Only the members who crossed the cutoff since the brand's mark
    (``TierSettings.lapsed_tagged_until``) are read, through two index ranges (the last
    purchase, the activation of those who never bought); the mark then moves to the cutoff.
    Nothing is untagged here: a purchase clears the tag at once (``tiers.record_purchase``)
    and a merge sets it anew (``recheck_lapsed``)."""
    now = now or utcnow()
    brand = db.session.get(Brand, require_brand_id())
    cutoff = lapsed_cutoff(brand=brand, now=now)
    since = _lapse_mark()
    if since is not None and since >= cutoff:
        return 0
    bought = select(Member.id).where(
        Member.status == ACTIVE,
        Member.last_purchase_at.is_not(None),
        Member.last_purchase_at < cutoff,
    )
    never = select(Member.id).where(
        Member.status == ACTIVE,
        Member.last_purchase_at.is_(None),
        Member.activated_at < cutoff,
    )
    if since is not None:
        bought = bought.where(Member.last_purchase_at >= since)
        never = never.where(Member.activated_at >= since)
    ids = db.session.execute(bought.union_all(never)).scalars().all()
    added = 0
    for at in range(0, len(ids), LAPSED_BATCH):
        added += apply_system_tag_many(
            member_ids=list(ids[at : at + LAPSED_BATCH]), code=LAPSED, reason=LAPSED_REASON
        )
    db.session.execute(
        update(TierSettings)
        .where(TierSettings.brand_id == brand.id)
        .values(lapsed_tagged_until=cutoff)
        .execution_options(synchronize_session=False)
    )
    return added


def _lapse_mark() -> dt.datetime | None:
    """The brand's lapsed-tag mark, its settings row locked (one run of a brand at a time)."""
    from members.tiers_tags.tiers import settings_row

    settings_row()
    return db.session.execute(
        select(TierSettings.lapsed_tagged_until).with_for_update()
    ).scalar_one()


def purchased(*, member_id: int, latest: dt.datetime, now: dt.datetime | None = None) -> None:
    """A purchase was recorded and the member's latest purchase is now ``latest``: the lapsed
    tag goes, unless even the latest is before the cutoff (a purchase recorded long after it
    happened, of a member who has not bought since)."""
    now = now or utcnow()
    # The cutoff is a brand-local midnight 90 to 91 days ago: a later purchase is after it.
    if latest < now - dt.timedelta(days=LAPSED_DAYS - 1):
        brand = db.session.get(Brand, require_brand_id())
        if latest < lapsed_cutoff(brand=brand, now=now):
            return
    clear_system_tag(member_id=member_id, code=LAPSED, reason="purchased again")


def recheck_lapsed(*, member_id: int, now: dt.datetime | None = None) -> None:
    """Set or clear one member's lapsed tag by their last purchase or activation (after a
    merge joined two members' histories and tags)."""
    member = db.session.get(Member, member_id)
    brand = db.session.get(Brand, require_brand_id())
    touch = member.last_purchase_at or member.activated_at
    cutoff = lapsed_cutoff(brand=brand, now=now or utcnow())
    if member.status == ACTIVE and touch is not None and touch < cutoff:
        apply_system_tag(member_id=member_id, code=LAPSED, reason=LAPSED_REASON)
    else:
        clear_system_tag(member_id=member_id, code=LAPSED, reason="purchased again")


_ADD_TAG_MANY = text(
    "WITH added AS ("
    " INSERT INTO member_tag (brand_id, member_id, tag_id, source, staff_id, created_at)"
    " SELECT :brand_id, m, :tag_id, 'system', NULL, :created_at"
    " FROM unnest(CAST(:member_ids AS bigint[])) AS m"
    " ON CONFLICT (member_id, tag_id) DO NOTHING RETURNING member_id)"
    " INSERT INTO tag_history"
    " (brand_id, member_id, tag_id, action, source, staff_id, reason, created_at)"
    " SELECT :brand_id, member_id, :tag_id, :action, 'system', NULL, :reason, :created_at"
    " FROM added RETURNING id"
).bindparams(
    bindparam("brand_id", type_=BigInteger),
    bindparam("tag_id", type_=BigInteger),
    bindparam("member_ids", type_=ARRAY(BigInteger)),
    bindparam("action", type_=String),
    bindparam("reason", type_=String),
    bindparam("created_at", type_=UTCDateTime),
)


def apply_system_tag_many(*, member_ids: list[int], code: str, reason: str = "") -> int:
    """Set a system behaviour tag on many members of the current brand in one statement (a
    campaign's recipients); returns how many did not have it yet. History as for one."""
    if not member_ids:
        return 0
    tag = system_tag(code=code)
    added = db.session.execute(
        _ADD_TAG_MANY,
        {
            "brand_id": require_brand_id(),
            "tag_id": tag.id,
            "member_ids": sorted(set(member_ids)),
            "action": ADDED,
            "reason": (reason or code)[:200],
            "created_at": utcnow(),
        },
    ).all()
    return len(added)
