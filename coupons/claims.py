"""Claiming coupons (member center, games, campaigns) and passing one to a friend (裂变).

Sharing earns the sharer nothing (WeChat forbids rewarding shares); the friend, new or not,
is recorded on the share as attributed to the sharer.
"""

from __future__ import annotations

import datetime as dt
import secrets

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from core.db import db, utcnow
from core.errors import Conflict, NotFound, ValidationError
from coupons import codes
from coupons.errors import CouponUnavailable
from coupons.issuance import get_template, issue
from coupons.models import AVAILABLE, TRANSFERRED, Coupon, CouponShare
from members import identities

CLAIM_SOURCES = ("claim", "game", "campaign")


def claim(
    *,
    template_id: int,
    member_id: int,
    idempotency_key: str,
    source: str = "claim",
    now: dt.datetime | None = None,
) -> Coupon:
    """A member claims a coupon (a tap in the member center, a game prize, a campaign)."""
    if source not in CLAIM_SOURCES:
        raise ValidationError(_l("Unknown source."), field="source")
    return issue(
        template_id=template_id,
        member_id=member_id,
        source=source,
        idempotency_key=f"{source}:{idempotency_key}",
        now=now,
    )


def create_share(*, coupon_id: int, member_id: int) -> CouponShare:
    """Offer the member's coupon to a friend; asking again returns the same link."""
    coupon = db.session.execute(select(Coupon).where(Coupon.id == coupon_id)).scalar_one_or_none()
    if coupon is None or coupon.member_id != member_id:
        raise CouponUnavailable()
    existing = db.session.execute(
        select(CouponShare).where(CouponShare.coupon_id == coupon.id)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    tpl = get_template(coupon.template_id)
    if coupon.shared_from_id is not None or not tpl.shareable:
        raise Conflict(_l("This coupon cannot be passed on."), code="not_shareable")
    if coupon.status != AVAILABLE or coupon.valid_until <= utcnow():
        raise Conflict(_l("Only a usable coupon can be passed on."), code="not_shareable")
    share = CouponShare(coupon_id=coupon.id, sharer_id=member_id, token=secrets.token_urlsafe(24))
    db.session.add(share)
    db.session.flush()
    return share


def share_by_token(token: str) -> CouponShare:
    share = db.session.execute(
        select(CouponShare).where(CouponShare.token == (token or "")[:64])
    ).scalar_one_or_none()
    if share is None:
        raise NotFound(_l("This link is not valid."))
    return share


def claim_share(
    *, token: str, openid: str, kind: str = "oa_openid", now: dt.datetime | None = None
) -> Coupon:
    """The friend, identified by their own openid (official account, or ``mp_openid`` in the
    mini-program), takes the coupon.

    A new friend becomes a member (phone-less until they activate their card). The sharer's
    coupon is closed and the friend gets a new coupon with a new code: the sharer saw the old
    one. A share is claimed once; the same friend asking again gets the same coupon.
    """
    now = now or utcnow()
    share = share_by_token(token)
    source = "mp" if kind == "mp_openid" else "oa"
    friend, created = identities.ensure_identity_member(kind=kind, value=openid, source=source)
    if share.status == "claimed":
        if share.friend_id == friend.id and share.new_coupon_id:
            return db.session.get(Coupon, share.new_coupon_id)
        raise Conflict(_l("Someone already took this coupon."), code="share_taken")
    if friend.id == share.sharer_id:
        raise Conflict(_l("You cannot take your own coupon."), code="own_share")
    with db.session.begin_nested():
        taken = db.session.execute(
            update(CouponShare)
            .where(CouponShare.id == share.id, CouponShare.status == "open")
            .values(status="claimed", friend_id=friend.id, friend_is_new=created, claimed_at=now)
            .returning(CouponShare.id)
            .execution_options(synchronize_session=False)
        ).scalar()
        if taken is None:
            raise Conflict(_l("Someone already took this coupon."), code="share_taken")
        old = db.session.execute(
            update(Coupon)
            .where(
                Coupon.id == share.coupon_id,
                Coupon.member_id == share.sharer_id,
                Coupon.status == AVAILABLE,
                Coupon.valid_until > now,
            )
            .values(status=TRANSFERRED)
            .returning(Coupon.template_id, Coupon.valid_from, Coupon.valid_until, Coupon.issued_day)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if old is None:
            raise Conflict(_l("This coupon was already used or has expired."), code="share_gone")
        coupon = Coupon(
            template_id=old.template_id,
            member_id=friend.id,
            code=codes.new_code(),
            status=AVAILABLE,
            source="share",
            idempotency_key=f"share:{share.id}",
            issued_at=now,
            issued_day=old.issued_day,
            valid_from=old.valid_from,
            valid_until=old.valid_until,
            shared_from_id=share.coupon_id,
        )
        db.session.add(coupon)
        db.session.flush()
        db.session.execute(
            update(CouponShare)
            .where(CouponShare.id == share.id)
            .values(new_coupon_id=coupon.id)
            .execution_options(synchronize_session=False)
        )
    db.session.refresh(share)
    return coupon
