"""Redemption (核销) at a till, its reversal on refund, and the guard against guessing codes.

The coupon changes hands with one conditional ``UPDATE ... WHERE status = 'available'``: of
two tills redeeming one coupon at the same moment exactly one gets the row. Unknown codes,
another brand's codes and another member's coupons all get the same ``CouponUnavailable``.
"""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError

from core import ratelimit
from core.db import db, utcnow
from core.errors import Conflict, RateLimited, ValidationError
from core.tenancy import require_brand_id
from coupons import codes, signals
from coupons.errors import (
    BelowThreshold,
    CouponAlreadyRedeemed,
    CouponExpired,
    CouponNotUsable,
    CouponUnavailable,
    NotStackable,
)
from coupons.issuance import check_key
from coupons.models import (
    AVAILABLE,
    CASH,
    EXPIRED,
    PERCENT,
    REDEEMED,
    Coupon,
    CouponTemplate,
    Redemption,
)
from org.services import list_stores

GUESS_LIMIT = 10  # failed lookups per window and source
GUESS_WINDOW = 600
MAX_AMOUNT_FEN = 10**10


def guard(ident: str) -> None:
    """Refuse a lookup while ``ident`` (a till, a staff member, an IP) is over its failures."""
    if ratelimit.count(require_brand_id(), "coupon-guess", ident) >= GUESS_LIMIT:
        raise RateLimited(_l("Too many wrong codes. Try again later."))


def _failed(ident: str | None) -> None:
    if ident:
        ratelimit.hit(require_brand_id(), "coupon-guess", ident, limit=GUESS_LIMIT, window=600)


def check_amount(value, field: str = "order_amount_fen") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValidationError(
            _l("The amount must be a whole number of fen above zero."), field=field
        )
    if value > MAX_AMOUNT_FEN:
        raise ValidationError(_l("The amount is too large."), field=field)
    return value


def find(*, code: str, member_id: int | None = None, guess_ident: str | None = None) -> Coupon:
    """The current brand's coupon of this code (and member, if given), or CouponUnavailable."""
    if guess_ident:
        guard(guess_ident)
    code = codes.normalize(code)
    coupon = None
    if codes.well_formed(code):
        coupon = db.session.execute(select(Coupon).where(Coupon.code == code)).scalar_one_or_none()
    if coupon is None or (member_id is not None and coupon.member_id != member_id):
        _failed(guess_ident)
        raise CouponUnavailable()
    return coupon


def discount_for(tpl: CouponTemplate, amount_fen: int) -> int:
    """What the coupon takes off an order of this amount (fen)."""
    if tpl.kind == CASH:
        return min(tpl.value_fen, amount_fen)
    if tpl.kind == PERCENT:
        off = amount_fen * tpl.percent_off // 100
        return min(off, tpl.cap_fen) if tpl.cap_fen else off
    return min(tpl.value_fen, amount_fen)


def check_usable(
    coupon: Coupon,
    tpl: CouponTemplate,
    *,
    store_id: int,
    amount_fen: int,
    categories: list[str] | None,
    product_ids: list[str] | None,
    now: dt.datetime,
) -> int:
    """Raise why this coupon cannot pay for this order here; return the discount."""
    if coupon.status == REDEEMED:
        raise CouponAlreadyRedeemed(_l("This coupon was already used."), field="code")
    if coupon.status == EXPIRED or (coupon.status == AVAILABLE and coupon.valid_until <= now):
        raise CouponExpired(_l("This coupon has expired."), field="code")
    if coupon.status != AVAILABLE:
        raise CouponUnavailable()
    if coupon.valid_from > now:
        raise CouponNotUsable(_l("This coupon is not valid yet."), field="code")
    if tpl.store_ids and store_id not in [int(s) for s in tpl.store_ids]:
        raise CouponNotUsable(_l("This coupon cannot be used in this store."), field="store")
    if tpl.categories and not set(tpl.categories) & set(categories or []):
        raise CouponNotUsable(_l("The order has no product this coupon applies to."))
    if tpl.product_ids and not {str(p) for p in tpl.product_ids} & {
        str(p) for p in product_ids or []
    }:
        raise CouponNotUsable(_l("The order has no product this coupon applies to."))
    if amount_fen < tpl.threshold_fen:
        raise BelowThreshold(
            _l("The order must reach %(yuan)s yuan.", yuan=f"{tpl.threshold_fen / 100:.2f}"),
            field="order_amount_fen",
        )
    return discount_for(tpl, amount_fen)


def redemption_by_key(key: str) -> Redemption | None:
    return db.session.execute(
        select(Redemption).where(Redemption.idempotency_key == key)
    ).scalar_one_or_none()


def _replay(existing: Redemption, coupon_id: int) -> Redemption:
    if existing.coupon_id != coupon_id:
        raise Conflict(_l("This idempotency key was already used for another coupon."), field="key")
    return existing


CHANNELS = ("pos", "staff", "online")


def redeem(
    *,
    code: str,
    store_id: int | None,
    order_id: str,
    order_amount_fen: int,
    idempotency_key: str,
    channel: str,
    staff_id: int | None = None,
    member_id: int | None = None,
    categories: list[str] | None = None,
    product_ids: list[str] | None = None,
    guess_ident: str | None = None,
    now: dt.datetime | None = None,
) -> Redemption:
    """Redeem a coupon for an order at a store; a repeated call returns the first redemption.

    ``channel`` "online" is the brand's own shop: its order may belong to no store
    (``store_id`` None, a delivery to a member without a home store)."""
    key = check_key(idempotency_key)
    check_amount(order_amount_fen)
    order_id = (order_id or "").strip()
    if not order_id or len(order_id) > 64:
        raise ValidationError(
            _l("An order number of 1-64 characters is required."), field="order_id"
        )
    if channel not in CHANNELS:
        raise ValidationError(_l("Unknown channel."), field="channel")
    now = now or utcnow()
    if (store_id is not None or channel != "online") and not list_stores(store_id=store_id):
        raise ValidationError(_l("Unknown store."), field="store")
    coupon = find(code=code, member_id=member_id, guess_ident=guess_ident)
    existing = redemption_by_key(key)
    if existing is not None:
        return _replay(existing, coupon.id)
    tpl = db.session.get(CouponTemplate, coupon.template_id)
    discount = check_usable(
        coupon,
        tpl,
        store_id=store_id,
        amount_fen=order_amount_fen,
        categories=categories,
        product_ids=product_ids,
        now=now,
    )
    try:
        with db.session.begin_nested():
            _check_stacking(store_id=store_id, order_id=order_id, template=tpl)
            won = db.session.execute(
                update(Coupon)
                .where(
                    Coupon.id == coupon.id,
                    Coupon.status == AVAILABLE,
                    Coupon.valid_until > now,
                )
                .values(status=REDEEMED, redeemed_at=now)
                .returning(Coupon.id)
                .execution_options(synchronize_session=False)
            ).scalar()
            if won is None:
                raise CouponAlreadyRedeemed(_l("This coupon was already used."), field="code")
            red = Redemption(
                coupon_id=coupon.id,
                template_id=coupon.template_id,
                member_id=coupon.member_id,
                store_id=store_id,
                staff_id=staff_id,
                channel=channel,
                order_id=order_id,
                order_amount_fen=order_amount_fen,
                discount_fen=discount,
                idempotency_key=key,
                created_at=now,
            )
            db.session.add(red)
            db.session.flush()
            db.session.execute(
                update(Coupon)
                .where(Coupon.id == coupon.id)
                .values(redemption_id=red.id)
                .execution_options(synchronize_session=False)
            )
    except IntegrityError:
        existing = redemption_by_key(key)
        if existing is None:
            raise
        return _replay(existing, coupon.id)
    except CouponAlreadyRedeemed:
        # The same request replayed while the first was in flight finds its redemption.
        db.session.expire(coupon)
        existing = redemption_by_key(key)
        if existing is not None:
            return _replay(existing, coupon.id)
        raise
    db.session.refresh(coupon)
    signals.coupon_redeemed.send(
        red.brand_id,
        coupon_id=red.coupon_id,
        redemption_id=red.id,
        member_id=red.member_id,
        order_amount_fen=red.order_amount_fen,
        discount_fen=red.discount_fen,
    )
    return red


def _check_stacking(*, store_id: int | None, order_id: str, template: CouponTemplate) -> None:
    """Refuse a second coupon on one order unless every coupon on it is stackable.

    Two tills redeeming for the same order at once are serialised by a transaction-scoped
    advisory lock on the order, so both cannot see "no coupon yet".
    """
    db.session.execute(
        select(
            func.pg_advisory_xact_lock(
                func.hashtextextended(f"coupon-order:{require_brand_id()}:{store_id}:{order_id}", 0)
            )
        )
    )
    used = (
        db.session.execute(
            select(CouponTemplate.stackable)
            .join(Redemption, Redemption.template_id == CouponTemplate.id)
            .where(
                Redemption.store_id.is_not_distinct_from(store_id),
                Redemption.order_id == order_id,
                Redemption.status == "done",
            )
        )
        .scalars()
        .all()
    )
    if used and not (template.stackable and all(used)):
        raise NotStackable(
            _l("This order already used a coupon that cannot be combined with this one."),
            field="code",
        )


def reverse(
    *, store_id: int | None, order_id: str, reason: str = "refund", now: dt.datetime | None = None
) -> list[Redemption]:
    """Undo the redemptions of a cancelled or refunded order; repeating it changes nothing.

    The coupon becomes usable again, or expired if its validity ended meanwhile.
    """
    now = now or utcnow()
    reds = (
        db.session.execute(
            select(Redemption).where(
                Redemption.store_id.is_not_distinct_from(store_id),
                Redemption.order_id == (order_id or "").strip(),
                Redemption.status == "done",
            )
        )
        .scalars()
        .all()
    )
    done = []
    for red in reds:
        flipped = db.session.execute(
            update(Redemption)
            .where(Redemption.id == red.id, Redemption.status == "done")
            .values(status="reversed", reversed_at=now, reverse_reason=(reason or "")[:40])
            .returning(Redemption.id)
            .execution_options(synchronize_session=False)
        ).scalar()
        if flipped is None:
            continue  # reversed by a concurrent call
        db.session.execute(
            update(Coupon)
            .where(
                Coupon.id == red.coupon_id,
                Coupon.status == REDEEMED,
                Coupon.redemption_id == red.id,
            )
            .values(
                status=case((Coupon.valid_until > now, AVAILABLE), else_=EXPIRED),
                redeemed_at=None,
                redemption_id=None,
            )
            .execution_options(synchronize_session=False)
        )
        db.session.refresh(red)
        signals.redemption_reversed.send(
            red.brand_id,
            coupon_id=red.coupon_id,
            redemption_id=red.id,
            member_id=red.member_id,
            order_amount_fen=red.order_amount_fen,
            discount_fen=red.discount_fen,
        )
        done.append(red)
    db.session.flush()
    return done
