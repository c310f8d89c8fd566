"""Channel identities: one member across the official account, mini-program, POS, JD...

Rules when an identity is already attached to another member:

* that member has no phone (it only existed through channel identities): it is the same
  person as the target member, so it is merged into the target;
* that member has a phone: two phone-proven people claim one identity; that is a
  ``Conflict`` for an operator to look at, never a silent move.
"""

from __future__ import annotations

import hashlib

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, bindparam, insert, select, text

from core.db import UTCDateTime, db, insert_ignoring, utcnow
from core.errors import Conflict, NotFound, ValidationError
from core.tenancy import require_brand_id
from members.merge import merge_members
from members.models import (
    ACTIVE,
    IDENTITY_KINDS,
    SOURCES,
    Member,
    MemberIdentity,
    card_no_for,
    card_no_sql,
)


def check_identity(kind: str, value: str | None) -> str:
    """Validate an identity kind and value; returns the stripped value."""
    if kind not in IDENTITY_KINDS:
        raise ValidationError(_l("unknown identity kind"), field="kind")
    value = (value or "").strip()
    if not value or len(value) > 128:
        raise ValidationError(_l("identity: 1-128 characters"), field=kind)
    return value


def lock_key(kind: str, value: str) -> str:
    return f"member:{require_brand_id()}:{kind}:{value}"


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def advisory_lock(*keys: str) -> None:
    """Serialise transactions on these keys until commit (sorted: no lock-order deadlock)."""
    ids = [_lock_id(k) for k in sorted(set(keys))]
    # One round trip: the locks are taken row by row in the array's order.
    db.session.execute(
        text(
            "SELECT pg_advisory_xact_lock(k)"
            " FROM unnest(CAST(:ks AS bigint[])) WITH ORDINALITY AS t(k, i) ORDER BY i"
        ),
        {"ks": ids},
    )


def find_by_identity(*, kind: str, value: str) -> Member | None:
    """The active member holding this identity in the current brand, or None."""
    value = check_identity(kind, value)
    return db.session.execute(
        select(Member)
        .join(MemberIdentity, MemberIdentity.member_id == Member.id)
        .where(MemberIdentity.kind == kind, MemberIdentity.value == value)
    ).scalar_one_or_none()


_mc, _ic = Member.__table__.c, MemberIdentity.__table__.c
_HOLDER = (
    select(_mc.id, _mc.activated_at)
    .select_from(MemberIdentity.__table__.join(Member.__table__, _mc.id == _ic.member_id))
    .where(
        _ic.brand_id == bindparam("brand_id"),
        _ic.kind == bindparam("kind"),
        _ic.value == bindparam("value"),
        _mc.brand_id == bindparam("brand_id"),
    )
)


def card_holder_id(*, kind: str, value: str) -> int | None:
    """The id of the member holding this identity in the current brand when they hold the
    card (were activated), else None: ``find_by_identity`` as one Core row, no ORM object."""
    value = check_identity(kind, value)
    row = (
        db.session.connection()
        .execute(_HOLDER, {"brand_id": require_brand_id(), "kind": kind, "value": value})
        .first()
    )
    return row.id if row is not None and row.activated_at is not None else None


def identities_of(*, member_id: int) -> list[MemberIdentity]:
    """A member's identities."""
    return list(
        db.session.execute(
            select(MemberIdentity)
            .where(MemberIdentity.member_id == member_id)
            .order_by(MemberIdentity.kind, MemberIdentity.id)
        ).scalars()
    )


def owner_of(kind: str, value: str) -> int | None:
    return db.session.execute(
        select(MemberIdentity.member_id).where(
            MemberIdentity.kind == kind, MemberIdentity.value == value
        )
    ).scalar_one_or_none()


def insert_identity(member_id: int, kind: str, value: str) -> int:
    """Attach unless already attached (ON CONFLICT); returns the identity's owner id."""
    db.session.flush()
    inserted = db.session.execute(
        insert_ignoring(
            "member_identity", _IDENTITY_COLUMNS, ("brand_id", "kind", "value"), "member_id"
        ),
        {
            "brand_id": require_brand_id(),
            "member_id": member_id,
            "kind": kind,
            "value": value,
            "created_at": utcnow(),
        },
    ).scalar()
    # Inserted: this member holds it; already there: whoever holds it.
    return member_id if inserted is not None else owner_of(kind, value)


_IDENTITY_COLUMNS = ("brand_id", "member_id", "kind", "value", "created_at")

_INSERT_MANY = text(
    "INSERT INTO member_identity (brand_id, member_id, kind, value, created_at)"
    " SELECT :brand, :member, t.kind, t.value, :now"
    " FROM unnest(CAST(:kinds AS varchar[]), CAST(:values AS varchar[])) AS t(kind, value)"
    " ON CONFLICT (brand_id, kind, value) DO NOTHING RETURNING kind"
).bindparams(
    bindparam("brand", type_=BigInteger),
    bindparam("member", type_=BigInteger),
    bindparam("now", type_=UTCDateTime),
)


def insert_identities(member_id: int, idents: dict[str, str]) -> dict[str, int | None]:
    """``insert_identity`` of several kinds in one statement: each kind's owner id."""
    if len(idents) < 2:
        return {k: insert_identity(member_id, k, v) for k, v in idents.items()}
    db.session.flush()
    inserted = set(
        db.session.execute(
            _INSERT_MANY,
            {
                "brand": require_brand_id(),
                "member": member_id,
                "now": utcnow(),
                "kinds": list(idents),
                "values": list(idents.values()),
            },
        ).scalars()
    )
    return {k: member_id if k in inserted else owner_of(k, v) for k, v in idents.items()}


def attach_identity(*, member_id: int, kind: str, value: str) -> MemberIdentity:
    """Attach an identity to a member; a phone-less holder is merged in, else Conflict."""
    value = check_identity(kind, value)
    advisory_lock(lock_key(kind, value))
    member = db.session.get(Member, member_id)
    if member is None or member.brand_id != require_brand_id() or member.status != ACTIVE:
        raise NotFound(_l("no such member"))
    owner = insert_identity(member_id, kind, value)
    if owner != member_id:
        holder = db.session.get(Member, owner)
        if holder.phone is not None:
            raise Conflict(_l("this identity belongs to another member"), field=kind)
        merge_members(kept_id=member_id, merged_id=owner, reason=f"same {kind}")
    return db.session.execute(
        select(MemberIdentity).where(MemberIdentity.kind == kind, MemberIdentity.value == value)
    ).scalar_one()


_NEW_MEMBER = text(
    "WITH n AS (SELECT nextval(pg_get_serial_sequence('member', 'id')) AS id)"
    " INSERT INTO member"
    " (id, brand_id, phone, card_no, source, status, name, gender, created_at, updated_at)"
    " SELECT n.id, :brand_id, :phone, {card_no}, :source, :status, '', '', :now, :now"
    " FROM n ON CONFLICT (brand_id, phone) DO NOTHING RETURNING id".replace(
        "{card_no}", card_no_sql("n.id")
    )
).bindparams(bindparam("brand_id", type_=BigInteger), bindparam("now", type_=UTCDateTime))


def create_member_row(*, phone: str | None, source: str, **fields) -> tuple[int, bool]:
    """Insert a member (ON CONFLICT on the phone: an existing one is returned, not duplicated).

    Returns (member id, created).
    """
    if source not in SOURCES:
        raise ValidationError(_l("unknown source"), field="source")
    if phone is not None and not fields:
        # One round trip: the id reserved, the card number derived from it and the row
        # inserted by one statement (the card number computed as ``card_no_for`` does).
        db.session.flush()
        now = utcnow()
        created = db.session.execute(
            _NEW_MEMBER,
            {
                "brand_id": require_brand_id(),
                "phone": phone,
                "source": source,
                "status": ACTIVE,
                "now": now,
            },
        ).scalar()
        if created is not None:
            return created, True
        existing = db.session.execute(select(Member.id).where(Member.phone == phone)).scalar_one()
        return existing, False
    # The id is reserved first: the card number derives from it.
    new_id = db.session.execute(
        text("SELECT nextval(pg_get_serial_sequence('member', 'id'))")
    ).scalar_one()
    now = utcnow()
    values = dict(
        id=new_id,
        brand_id=require_brand_id(),
        phone=phone,
        card_no=card_no_for(new_id),
        source=source,
        status=ACTIVE,
        name=fields.pop("name", "") or "",
        gender=fields.pop("gender", "") or "",
        created_at=now,
        updated_at=now,
        **fields,
    )
    db.session.flush()
    if phone is not None:
        stmt = insert_ignoring("member", tuple(values), ("brand_id", "phone"), "id")
        created = db.session.execute(stmt, values).scalar()
    else:
        created = db.session.execute(
            insert(Member.__table__).values(**values).returning(Member.__table__.c.id)
        ).scalar()
    if created is not None:
        return created, True
    existing = db.session.execute(select(Member.id).where(Member.phone == phone)).scalar_one()
    return existing, False


def ensure_identity_member(
    *, kind: str, value: str, source: str, extra: dict[str, str] | None = None
) -> tuple[Member, bool]:
    """The member holding an identity, created phone-less if none (mini-program login,
    a POS or JD record). ``extra`` identities ({kind: value}, e.g. the unionid) attach too.
    Concurrency-safe; returns (member, created)."""
    value = check_identity(kind, value)
    extra = {k: check_identity(k, v) for k, v in (extra or {}).items() if v}
    advisory_lock(lock_key(kind, value), *(lock_key(k, v) for k, v in extra.items()))
    owner = owner_of(kind, value)
    if owner is None:
        # The unionid may already be known through another channel: same person.
        owner = next((o for k, v in extra.items() if (o := owner_of(k, v)) is not None), None)
    created = False
    if owner is None:
        owner, created = create_member_row(phone=None, source=source)
    owner = insert_identity(owner, kind, value)
    for k, v in extra.items():
        holder = insert_identity(owner, k, v)
        if holder != owner:
            raise Conflict(_l("this identity belongs to another member"), field=k)
    return db.session.get(Member, owner), created
