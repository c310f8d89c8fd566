"""The member's session in the member center, bound to ONE brand.

It lives in Flask's signed session cookie under a key per brand (``member:<brand id>``), and
the data carries the brand id again, so what was signed in for brand A is never read on
brand B's pages, and a tampered cookie fails its signature and reads as empty.

API for member pages of any package (the current brand is set by their blueprint)::

    from members.session import current_member_id
    member_id = current_member_id()   # None when nobody (or a deleted member) is signed in

Also ``current_openid()`` (the official-account openid from the WeChat OAuth login, known
before the member exists), ``login(...)`` and ``logout()``.
"""

from __future__ import annotations

from flask import g, has_request_context, session

from core.db import db
from core.tenancy import current_brand_id
from members.models import ACTIVE, MERGED, Member

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


def current_member_id(brand_id: int | None = None) -> int | None:
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
    resolved, seen = mid, set()
    while resolved is not None and resolved not in seen:
        seen.add(resolved)
        member = db.session.get(Member, resolved)
        if member is None or member.brand_id != brand_id:
            resolved = None
        elif member.status == ACTIVE:
            break
        elif member.status == MERGED:
            resolved = member.merged_into_id
        else:
            resolved = None
    if resolved is None:
        logout(brand_id=brand_id)
    cache[(brand_id, mid)] = resolved
    return resolved
