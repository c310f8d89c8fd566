"""Binding a customer to a service store and an exclusive guide (专属导购), and every change.

Where bindings come from: a scan of a guide's or store's code (``members.signals.
member_scanned``), a guide's share link or mini-program code (``shops.record_visit``), the
activating guide (``member_activated``), the cashier's guide at the till (``shop.signals.
order_created``), an operator's import (``binding_import``), a forced change by an operator
(``force_change``) and a guide leaving (``handover.hand_over``). Every binding and change
writes a ``BindingEvent``: from whom to whom, how, why and who did it.

The brand's rules (``DistributionSettings``) decide the automatic sources: the first guide
wins while the customer has none (default), only new customers are bound ("new": no member
record and no order before the scan), or every scan takes over; never inside the protection
period of another guide; a binding lasts for ever or ``validity_days``. A member whose phone
is an active staff member's is never bound to a guide (a guide cannot bind another guide);
their service store is still kept.

Concurrency: every change locks the member's row first (``SELECT ... FOR UPDATE``), then
the binding row, so two scans of one customer at once give one binding and events that tell
one story; the hand-over locks the binding rows it moves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, String, bindparam, delete, func, select, text, update

from core import audit
from core.audit import current_actor
from core.db import UTCDateTime, db, utcnow
from core.errors import Conflict, NotFound, ValidationError
from core.tenancy import require_brand_id
from guide_distribution.attribution import active_guide
from guide_distribution.models import (
    BIND_EVERY_SCAN,
    BIND_NEW_ONLY,
    BindingEvent,
    CustomerBinding,
    GuideVisit,
)
from guide_distribution.settings import get_settings
from members.models import ACTIVE, Member
from org.models import Staff, Store
from shop.models import Order

# A member record made this recently by the visit itself (the activation after a scan or a
# share link) still counts as a new customer when it has no order.
NEW_WINDOW = dt.timedelta(minutes=30)
FORCED_LIMIT = 2
FORCED_WINDOW = dt.timedelta(days=90)
REASON_MAX = 200

# Outcomes of an automatic binding attempt.
BOUND, STORE_ONLY, SAME, PROTECTED, KEPT, NOT_NEW, STAFF, NO_GUIDE = (
    "bound",
    "store_only",
    "same",
    "protected",
    "kept",
    "not_new",
    "staff",
    "no_guide",
)


@dataclasses.dataclass(frozen=True)
class Outcome:
    result: str
    binding: CustomerBinding | None

    @property
    def changed(self) -> bool:
        return self.result in (BOUND, STORE_ONLY)


# --- reads ------------------------------------------------------------------------------------


def binding_of(member_id: int, *, lock: bool = False) -> CustomerBinding | None:
    """The member's binding row (locked when asked), or None."""
    stmt = select(CustomerBinding).where(CustomerBinding.member_id == member_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return db.session.execute(stmt).scalar_one_or_none()


def guide_in_force(b: CustomerBinding | None, now: dt.datetime) -> int | None:
    """The exclusive guide while the binding is valid."""
    if b is None or b.guide_id is None:
        return None
    if b.expires_at is not None and b.expires_at <= now:
        return None
    return b.guide_id


def is_protected(b: CustomerBinding | None, now: dt.datetime) -> bool:
    return (
        guide_in_force(b, now) is not None
        and b.protected_until is not None
        and b.protected_until > now
    )


def history(member_id: int, *, limit: int = 100) -> list[BindingEvent]:
    """The member's binding events, newest first."""
    return list(
        db.session.execute(
            select(BindingEvent)
            .where(BindingEvent.member_id == member_id)
            .order_by(BindingEvent.created_at.desc(), BindingEvent.id.desc())
            .limit(limit)
        ).scalars()
    )


def is_staff_phone(phone: str | None) -> bool:
    """Whether the phone is an active staff member's of the brand (a guide, a manager...)."""
    if not phone:
        return False
    return (
        db.session.execute(
            select(Staff.id).where(Staff.phone == phone, Staff.active.is_(True)).limit(1)
        ).first()
        is not None
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Guide:
    id: int
    store_id: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class _StoreRef:
    id: int


# For a member made in the caller's transaction (no binding yet), in one statement: the
# guide, its store only when it is the brand's (as ``_own_store`` checks), whether the
# member's phone is an active staff member's (``is_staff_phone``) and, with :write, the
# binding and its event as ``_first`` writes them when the guide wins (not a staff phone).
_FRESH = text(
    "WITH g AS (SELECT s.id, st.id AS store_id, :phone <> '' AND EXISTS (SELECT 1 FROM staff o"
    " WHERE o.brand_id = :brand_id AND o.phone = :phone AND o.active) AS staff_phone"
    " FROM staff s LEFT JOIN store st ON st.id = s.store_id AND st.brand_id = :brand_id"
    " WHERE s.id = :guide_id AND s.brand_id = :brand_id AND s.role = 'guide' AND s.active),"
    " b AS (INSERT INTO guide_binding (brand_id, member_id, store_id, guide_id, source,"
    " bound_at, protected_until, expires_at, updated_at) SELECT :brand_id, :member_id,"
    " g.store_id, g.id, :source, :now, :protected_until, :expires_at, :now FROM g"
    " WHERE :write AND NOT g.staff_phone RETURNING member_id, store_id, guide_id),"
    " e AS (INSERT INTO guide_binding_event (brand_id, member_id, old_store_id, new_store_id,"
    " old_guide_id, new_guide_id, source, reason, actor_kind, actor_id, created_at)"
    " SELECT :brand_id, member_id, NULL, store_id, NULL, guide_id, :source, :reason,"
    " :actor_kind, :actor_id, :now FROM b)"
    " SELECT g.id, g.store_id, g.staff_phone, EXISTS (SELECT 1 FROM b) FROM g"
).bindparams(
    *(bindparam(n, type_=BigInteger) for n in ("brand_id", "member_id", "guide_id")),
    bindparam("actor_id", type_=BigInteger),
    *(bindparam(n, type_=UTCDateTime) for n in ("now", "protected_until", "expires_at")),
    *(bindparam(n, type_=String) for n in ("phone", "source", "reason", "actor_kind")),
)


def _fresh_guide(
    member: Member,
    guide_id: int,
    *,
    write: bool,
    source: str,
    reason: str,
    now: dt.datetime,
    actor: tuple[str | None, int | None],
) -> tuple[_Guide | None, bool, CustomerBinding | None]:
    """``active_guide(guide_id)``, ``is_staff_phone(member.phone)`` and, with ``write``, the
    binding to that guide when it wins (an unsaved copy of the row, as ``_first`` returns)."""
    protected, expires = binding_term(now)
    kind, who = actor_of(*actor)
    db.session.flush()
    row = db.session.execute(
        _FRESH,
        {
            "brand_id": require_brand_id(),
            "member_id": member.id,
            "guide_id": guide_id,
            "phone": member.phone or "",
            "write": write,
            "source": source,
            "now": now,
            "protected_until": protected,
            "expires_at": expires,
            "reason": (reason or "")[:REASON_MAX],
            "actor_kind": kind,
            "actor_id": who,
        },
    ).first()
    if row is None:
        return None, False, None
    guide, staff_phone, bound = _Guide(row[0], row[1]), bool(row[2]), row[3]
    if not bound:
        return guide, staff_phone, None
    return (
        guide,
        staff_phone,
        CustomerBinding(
            member_id=member.id,
            store_id=guide.store_id,
            guide_id=guide.id,
            source=source,
            protected_until=protected,
            expires_at=expires,
            bound_at=now,
            updated_at=now,
        ),
    )


def is_new_customer(member: Member, now: dt.datetime) -> bool:
    """No member record before the visit (made by it, moments ago) and no order."""
    if member.created_at is not None and member.created_at < now - NEW_WINDOW:
        return False
    return (
        db.session.execute(select(Order.id).where(Order.member_id == member.id).limit(1)).first()
        is None
    )


def forced_changes_since(member_id: int, since: dt.datetime) -> int:
    return db.session.execute(
        select(func.count())
        .select_from(BindingEvent)
        .where(
            BindingEvent.member_id == member_id,
            BindingEvent.source == "forced",
            BindingEvent.created_at > since,
        )
    ).scalar_one()


# --- writes -----------------------------------------------------------------------------------


def _lock_member(member_id: int) -> Member:
    member = db.session.execute(
        select(Member)
        .where(Member.id == member_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if member is None or member.status != ACTIVE:
        raise NotFound(_l("no such member"))
    return member


def _own_store(store_id: int | None) -> Store | None:
    if not store_id:
        return None
    store = db.session.get(Store, store_id)
    if store is None or store.brand_id != require_brand_id():
        return None
    return store


def binding_term(now: dt.datetime) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(protected_until, expires_at) of a binding made now, by the brand's rules."""
    s = get_settings()
    protected = now + dt.timedelta(days=s.protection_days) if s.protection_days else None
    expires = now + dt.timedelta(days=s.validity_days) if s.validity_days else None
    return protected, expires


def actor_of(kind: str | None, actor_id: int | None) -> tuple[str, int | None]:
    """Who an event is recorded as: the given actor, else the signed-in staff, else the system."""
    if kind is not None:
        return kind, actor_id
    actor = current_actor()
    if actor is not None and actor.kind == "staff":
        return "staff", actor.id
    return "system", None


def _write(
    member_id: int,
    b: CustomerBinding | None,
    *,
    store_id: int | None,
    guide_id: int | None,
    source: str,
    reason: str,
    now: dt.datetime,
    actor_kind: str | None = None,
    actor_id: int | None = None,
    statement: bool = False,
) -> CustomerBinding:
    """Set the binding (a new term when the guide changes) and record the event.
    ``statement``: a member without a binding gets it and its event in one statement, and an
    unsaved copy of the row back (automatic bindings, whose callers read nothing else)."""
    if b is None and statement:
        return _first(member_id, store_id, guide_id, source, reason, now, actor_kind, actor_id)
    old_store, old_guide = (b.store_id, b.guide_id) if b is not None else (None, None)
    if b is None:
        b = CustomerBinding(member_id=member_id, source=source, bound_at=now)
        db.session.add(b)
    new_guide = guide_id != guide_in_force(b, now) or (guide_id is not None and old_guide is None)
    b.store_id = store_id
    b.guide_id = guide_id
    b.source = source
    if new_guide:
        b.bound_at = now
        b.protected_until, b.expires_at = binding_term(now) if guide_id else (None, None)
    kind, who = actor_of(actor_kind, actor_id)
    db.session.add(
        BindingEvent(
            member_id=member_id,
            old_store_id=old_store,
            new_store_id=store_id,
            old_guide_id=old_guide,
            new_guide_id=guide_id,
            source=source,
            reason=(reason or "")[:REASON_MAX],
            actor_kind=kind,
            actor_id=who,
            created_at=now,
        )
    )
    db.session.flush()
    return b


_FIRST = text(
    "WITH b AS (INSERT INTO guide_binding (brand_id, member_id, store_id, guide_id, source,"
    " bound_at, protected_until, expires_at, updated_at) VALUES (:brand_id, :member_id,"
    " :store_id, :guide_id, :source, :now, :protected_until, :expires_at, :now)"
    " RETURNING member_id)"
    " INSERT INTO guide_binding_event (brand_id, member_id, old_store_id, new_store_id,"
    " old_guide_id, new_guide_id, source, reason, actor_kind, actor_id, created_at)"
    " SELECT :brand_id, member_id, NULL, :store_id, NULL, :guide_id, :source, :reason,"
    " :actor_kind, :actor_id, :now FROM b"
).bindparams(
    *(bindparam(n, type_=BigInteger) for n in ("brand_id", "member_id", "store_id", "guide_id")),
    bindparam("actor_id", type_=BigInteger),
    *(bindparam(n, type_=UTCDateTime) for n in ("now", "protected_until", "expires_at")),
    *(bindparam(n, type_=String) for n in ("source", "reason", "actor_kind")),
)


def _first(member_id, store_id, guide_id, source, reason, now, actor_kind, actor_id):
    protected, expires = binding_term(now) if guide_id else (None, None)
    kind, who = actor_of(actor_kind, actor_id)
    values = dict(
        member_id=member_id,
        store_id=store_id,
        guide_id=guide_id,
        source=source,
        protected_until=protected,
        expires_at=expires,
    )
    db.session.flush()
    db.session.execute(
        _FIRST,
        dict(
            values,
            brand_id=require_brand_id(),
            now=now,
            reason=(reason or "")[:REASON_MAX],
            actor_kind=kind,
            actor_id=who,
        ),
    )
    return CustomerBinding(**values, bound_at=now, updated_at=now)


def bind(
    *,
    member_id: int,
    source: str,
    guide_id: int | None = None,
    store_id: int | None = None,
    new_customer: bool | None = None,
    fresh: bool = False,
    reason: str = "",
    now: dt.datetime | None = None,
) -> Outcome:
    """Apply the brand's rules to a scan, a share link, an activation or a till sale.

    ``guide_id`` that is not an active guide of the brand binds nothing; ``store_id`` alone
    (a store's code) gives the member a service store when they have none. ``fresh``: the
    member's row was made in the caller's transaction (an activation), so no one else can
    see it yet and it has no binding: neither is locked nor looked up. Flushes.
    """
    now = now or utcnow()
    staff_phone = None
    actor = ("member", member_id) if source in ("scan", "share_link") else (None, None)
    if fresh:
        member, b, guide = db.session.get(Member, member_id), None, None
        if member is None or member.status != ACTIVE:
            raise NotFound(_l("no such member"))
        if guide_id:
            # No binding yet, so the guide wins at once unless it is a staff phone or the
            # brand binds new customers only and the caller does not say this is one.
            write = get_settings().bind_mode != BIND_NEW_ONLY or bool(new_customer)
            guide, staff_phone, bound = _fresh_guide(
                member, guide_id, write=write, source=source, reason=reason, now=now, actor=actor
            )
            if bound is not None:
                return Outcome(BOUND, bound)
    else:
        guide = active_guide(guide_id) if guide_id else None
    if guide_id and guide is None:
        return Outcome(NO_GUIDE, None)
    if isinstance(guide, _Guide):  # its store already checked
        store = _StoreRef(guide.store_id) if guide.store_id else None
    else:
        store = _own_store(guide.store_id if guide is not None else store_id)
    if not fresh:
        member = _lock_member(member_id)
        b = binding_of(member_id, lock=True)
    kept_store = b.store_id if b is not None and b.store_id else None

    def store_only(result: str) -> Outcome:
        if store is not None and kept_store is None:
            gid = guide_in_force(b, now)
            b2 = _write(member_id, b, store_id=store.id, guide_id=gid, source=source,
                        reason=reason, now=now, actor_kind=actor[0], actor_id=actor[1],
                        statement=True)  # fmt: skip
            return Outcome(STORE_ONLY, b2)
        return Outcome(result, b)

    if guide is None:
        return store_only(NO_GUIDE)
    if staff_phone if staff_phone is not None else is_staff_phone(member.phone):
        return store_only(STAFF)
    current = guide_in_force(b, now)
    if current == guide.id:
        return Outcome(SAME, b)
    settings = get_settings()
    if settings.bind_mode == BIND_NEW_ONLY:
        new = bool(new_customer) or is_new_customer(member, now)
        if not new:
            return store_only(NOT_NEW)
    if current is not None:
        if is_protected(b, now):
            return store_only(PROTECTED)
        if settings.bind_mode != BIND_EVERY_SCAN:
            return store_only(KEPT)
    b = _write(
        member_id,
        b,
        store_id=store.id if store is not None else kept_store,
        guide_id=guide.id,
        source=source,
        reason=reason,
        now=now,
        actor_kind=actor[0],
        actor_id=actor[1],
        statement=True,
    )
    return Outcome(BOUND, b)


def _clean_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValidationError(_l("Write why the binding is changed."), field="reason")
    if len(text) > REASON_MAX:
        raise ValidationError(_l("At most %(n)d characters.", n=REASON_MAX), field="reason")
    return text


def force_change(
    *,
    member_id: int,
    guide_id: int | None,
    reason: str,
    store_id: int | None = None,
    now: dt.datetime | None = None,
) -> CustomerBinding:
    """An operator moves a customer to another guide (or to none, keeping a store), inside
    protection too; audited, a reason required, at most twice per customer in 90 days."""
    now = now or utcnow()
    reason = _clean_reason(reason)
    guide = None
    if guide_id:
        guide = active_guide(guide_id)
        if guide is None:
            raise NotFound(_l("no such guide"), field="guide")
    store = _own_store(guide.store_id if guide is not None else store_id)
    if store_id and guide is None and store is None:
        raise NotFound(_l("no such store"), field="store")
    member = _lock_member(member_id)
    if guide is not None and is_staff_phone(member.phone):
        raise Conflict(_l("A guide cannot be bound as another guide's customer."), field="guide")
    b = binding_of(member_id, lock=True)
    new_store = store.id if store is not None else (b.store_id if b is not None else None)
    new_guide = guide.id if guide is not None else None
    if b is not None and (b.store_id, guide_in_force(b, now)) == (new_store, new_guide):
        raise ValidationError(_l("The customer is already bound so."), field="guide")
    if forced_changes_since(member_id, now - FORCED_WINDOW) >= FORCED_LIMIT:
        raise Conflict(
            _l(
                "This customer's binding was already forced %(n)d times in the last 90 days.",
                n=FORCED_LIMIT,
            ),
            field="guide",
        )
    old = (b.store_id, b.guide_id) if b is not None else (None, None)
    b = _write(member_id, b, store_id=new_store, guide_id=new_guide, source="forced",
               reason=reason, now=now)  # fmt: skip
    audit.record(
        action="guide_binding.forced",
        object_type="member",
        object_id=member_id,
        before={"store_id": old[0], "guide_id": old[1]},
        after={"store_id": new_store, "guide_id": new_guide, "reason": reason},
    )
    return b


def set_binding(
    *,
    member_id: int,
    guide_id: int | None,
    store_id: int | None,
    source: str,
    reason: str = "",
    now: dt.datetime | None = None,
) -> CustomerBinding | None:
    """Set a binding as an operator decided (an import row): checked by the caller; no
    change when it is already so. Flushes."""
    now = now or utcnow()
    _lock_member(member_id)
    b = binding_of(member_id, lock=True)
    if b is not None and (b.store_id, guide_in_force(b, now)) == (store_id, guide_id):
        return None
    return _write(member_id, b, store_id=store_id, guide_id=guide_id, source=source,
                  reason=reason, now=now)  # fmt: skip


def own_guide(guide_id: int) -> Staff:
    """A guide of the current brand (active or not), else NotFound."""
    staff = db.session.get(Staff, guide_id) if guide_id else None
    if staff is None or staff.brand_id != require_brand_id() or staff.role != "guide":
        raise NotFound(_l("no such guide"))
    return staff


# --- merges -----------------------------------------------------------------------------------


def merge_bindings(kept_id: int, merged_id: int) -> dict:
    """Member merge: one binding stays (the kept member's, or the merged one's when the kept
    member has no guide in force); history and visits move to the kept member."""
    now = utcnow()
    kept = binding_of(kept_id, lock=True)
    merged = binding_of(merged_id, lock=True)
    moved = 0
    if merged is not None:
        if kept is None:
            merged.member_id = kept_id
            moved = 1
        else:
            if guide_in_force(kept, now) is None and guide_in_force(merged, now) is not None:
                for attr in ("guide_id", "source", "bound_at", "protected_until", "expires_at"):
                    setattr(kept, attr, getattr(merged, attr))
                kept.store_id = kept.store_id or merged.store_id
                moved = 1
            elif kept.store_id is None and merged.store_id is not None:
                kept.store_id = merged.store_id
            db.session.delete(merged)
        db.session.flush()
    events = db.session.execute(
        update(BindingEvent)
        .where(BindingEvent.member_id == merged_id)
        .values(member_id=kept_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    # Visits: one row per member and guide; the later visit of the two counts.
    both = select(GuideVisit.guide_id).where(GuideVisit.member_id == kept_id)
    for visit in db.session.execute(
        select(GuideVisit).where(GuideVisit.member_id == merged_id, GuideVisit.guide_id.in_(both))
    ).scalars():
        db.session.execute(
            update(GuideVisit)
            .where(GuideVisit.member_id == kept_id, GuideVisit.guide_id == visit.guide_id)
            .values(last_at=func.greatest(GuideVisit.last_at, visit.last_at))
            .execution_options(synchronize_session=False)
        )
    db.session.execute(
        delete(GuideVisit)
        .where(GuideVisit.member_id == merged_id, GuideVisit.guide_id.in_(both))
        .execution_options(synchronize_session=False)
    )
    visits = db.session.execute(
        update(GuideVisit)
        .where(GuideVisit.member_id == merged_id)
        .values(member_id=kept_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    counts = {"guide_binding": moved, "guide_binding_events": events, "guide_visits": visits}
    return {k: v for k, v in counts.items() if v}  # a member without any adds nothing
