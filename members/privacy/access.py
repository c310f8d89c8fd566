"""Who may see which members, and how much of them (store scoping and phone privacy).

* brand admins see every member with full phone numbers;
* store managers see the members of their store (home store), full phone numbers;
* guides see only their own customers (members whose guide they are), phones masked.

Viewing a full phone number through ``reveal_phone`` is written to the audit log.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, select

from core import audit
from core.db import db
from core.errors import Forbidden, NotFound
from core.tenancy import require_brand_id
from core.validators import mask_phone
from members.models import ACTIVE, Member
from org.models import Staff


def _role(staff: Staff) -> str:
    """A platform admin working on a brand sees it as that brand's admin does."""
    return "brand_admin" if getattr(staff, "is_platform_admin", False) else staff.role


def scope_members(stmt: Select, *, staff: Staff) -> Select:
    """Restrict a SELECT over Member to what ``staff`` may see."""
    role = _role(staff)
    if role == "brand_admin":
        return stmt
    if role == "store_manager":
        return stmt.where(Member.store_id == staff.store_id)
    if role == "guide":
        return stmt.where(Member.guide_id == staff.id)
    return stmt.where(False)  # noqa: FBT003 - unknown role sees nothing


def visible_members(*, staff: Staff) -> Select:
    """The active members ``staff`` may see, as a SELECT to filter and page further."""
    return scope_members(
        select(Member).where(Member.status == ACTIVE).order_by(Member.id.desc()), staff=staff
    )


def can_view(*, staff: Staff, member: Member) -> bool:
    """Whether ``staff`` may see this member at all."""
    if member.brand_id != staff.brand_id or member.status != ACTIVE:
        return False
    role = _role(staff)
    if role == "brand_admin":
        return True
    if role == "store_manager":
        return member.store_id is not None and member.store_id == staff.store_id
    if role == "guide":
        return member.guide_id == staff.id
    return False


def may_see_full_phones(*, staff: Staff) -> bool:
    """Guides only ever see masked numbers."""
    return _role(staff) in ("brand_admin", "store_manager")


def get_member_for(*, staff: Staff, member_id: int) -> Member:
    """A member ``staff`` may see; NotFound otherwise (no hint that it exists)."""
    member = db.session.get(Member, member_id)
    if (
        member is None
        or member.brand_id != require_brand_id()
        or not can_view(staff=staff, member=member)
    ):
        raise NotFound(_l("no such member"))
    return member


def display_phone(*, staff: Staff, member: Member) -> str:
    """The phone as shown in lists: always masked (the full number is one audited click)."""
    return mask_phone(member.phone) if member.phone else ""


def reveal_phone(*, staff: Staff, member_id: int) -> str:
    """The full phone number for an allowed viewer; the view is recorded in the audit log."""
    member = get_member_for(staff=staff, member_id=member_id)
    if not may_see_full_phones(staff=staff):
        raise Forbidden(_l("guides see masked phone numbers only"))
    record_as(
        staff,
        action="view_phone",
        object_type="member",
        object_id=member.id,
        after={"card_no": member.card_no},
    )
    return member.phone or ""


def record_as(staff: Staff | None, **entry) -> audit.AuditLog | None:
    """Write an audit entry as the current actor, or as ``staff`` when none is set."""
    if audit.current_actor() is None and staff is not None:
        with audit.acting_as(audit.Actor("staff", staff.id, staff.display_name)):
            row = audit.record(**entry)
    else:
        row = audit.record(**entry)
    db.session.flush()
    return row
