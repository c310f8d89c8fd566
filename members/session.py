"""The member's session in the member center, bound to ONE brand.

It lives in Flask's signed session cookie under a key per brand (``member:<brand id>``), and
the data carries the brand id again, so what was signed in for brand A is never read on
brand B's pages, and a tampered cookie fails its signature and reads as empty.

API for member pages of any package (the current brand is set by their blueprint)::

    from members.session import current_member_id
    member_id = current_member_id()   # None when nobody (or a deleted member) is signed in

Also ``current_member()`` (the signed-in member as one light row: what member pages show,
read in one statement without the ORM), ``current_openid()`` (the official-account openid from
the WeChat OAuth login, known before the member exists), ``login(...)`` and ``logout()``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from flask import g, has_request_context, session
from sqlalchemy import bindparam, select

from core.db import db
from core.tenancy import current_brand_id
from members.models import ACTIVE, MERGED, Member, MemberIdentity

_PREFIX = "member:"


def _key(brand_id: int) -> str:
    return f"{_PREFIX}{brand_id}"


def _data(brand_id: int | None) -> dict:
    if brand_id is None or not has_request_context():
        return {}
    data = session.get(_key(brand_id))
    if not isinstance(data, dict) or data.get("b") != brand_id:
        return {}
    return data


def login(
    *,
    brand_id: int,
    openid: str | None,
    unionid: str | None = None,
    member_id: int | None = None,
) -> None:
    """Sign a WeChat user (and, once known, their member) in to this brand's member center."""
    session[_key(brand_id)] = {"b": brand_id, "o": openid, "u": unionid, "m": member_id}
    session.permanent = True
    g.pop("_member_ids", None)


def logout(*, brand_id: int) -> None:
    session.pop(_key(brand_id), None)
    g.pop("_member_ids", None)


def current_openid(brand_id: int | None = None) -> str | None:
    """The official-account openid of the signed-in WeChat user of this brand."""
    return _data(brand_id or current_brand_id()).get("o")


def current_unionid(brand_id: int | None = None) -> str | None:
    return _data(brand_id or current_brand_id()).get("u")


@dataclasses.dataclass(frozen=True, slots=True)
class SignedInMember:
    """The signed-in member as member pages need it (not an ORM object: a page that changes
    the member loads it)."""

    id: int
    brand_id: int
    card_no: str
    phone: str | None
    name: str
    gender: str
    birthday: dt.date | None
    store_id: int | None
    guide_id: int | None
    tier_id: int | None
    activated_at: dt.datetime | None

    @property
    def holds_card(self) -> bool:
        return self.activated_at is not None


_m = Member.__table__.c
# Core, not the ORM: one statement and a tuple per page view; the brand is in the WHERE.
_LIGHT = select(
    _m.status,
    _m.merged_into_id,
    _m.id,
    _m.brand_id,
    _m.card_no,
    _m.phone,
    _m.name,
    _m.gender,
    _m.birthday,
    _m.store_id,
    _m.guide_id,
    _m.tier_id,
    _m.activated_at,
).where(_m.id == bindparam("id"), _m.brand_id == bindparam("brand_id"))


_i = MemberIdentity.__table__.c
_BY_IDENTITY = (
    select(*_LIGHT.selected_columns)
    .select_from(MemberIdentity.__table__.join(Member.__table__, _m.id == _i.member_id))
    .where(
        _i.brand_id == bindparam("brand_id"),
        _i.kind == bindparam("kind"),
        _i.value == bindparam("value"),
        _m.brand_id == bindparam("brand_id"),
    )
)


def member_by_identity(*, brand_id: int, kind: str, value: str) -> SignedInMember | None:
    """The active member of the brand holding this identity (the mini-program's openid), as
    one light row: one statement, no ORM."""
    row = (
        db.session.connection()
        .execute(_BY_IDENTITY, {"brand_id": brand_id, "kind": kind, "value": value})
        .first()
    )
    if row is None or row.status != ACTIVE:
        return None
    return SignedInMember(*row[2:])


def current_member(brand_id: int | None = None) -> SignedInMember | None:
    """The active member signed in to this brand's pages, or None.

    A member merged into another one is followed to the kept record; a deleted one is
    signed out.
    """
    brand_id = brand_id or current_brand_id()
    mid = _data(brand_id).get("m")
    if not isinstance(mid, int):
        return None
    cache = g.setdefault("_member_ids", {})
    if (brand_id, mid) in cache:
        return cache[(brand_id, mid)]
    conn = db.session.connection()
    found, resolved, seen = None, mid, set()
    while resolved is not None and resolved not in seen:
        seen.add(resolved)
        row = conn.execute(_LIGHT, {"id": resolved, "brand_id": brand_id}).first()
        if row is None:
            resolved = None
        elif row.status == ACTIVE:
            found = SignedInMember(*row[2:])
            break
        elif row.status == MERGED:
            resolved = row.merged_into_id
        else:
            resolved = None
    if found is None:
        logout(brand_id=brand_id)
    cache[(brand_id, mid)] = found
    return found


def current_member_id(brand_id: int | None = None) -> int | None:
    """The id of ``current_member()``, or None."""
    member = current_member(brand_id)
    return member.id if member is not None else None
