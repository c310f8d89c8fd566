"""Fulfilment: how a paid order reaches the member, and its states after payment.

paid -> shipped (delivery: carrier and tracking number) or ready (pick-up in a store: a
pick-up code the store's staff verify) -> received (the member confirms, the code is
verified, or ``ShopSettings.auto_receive_days`` after shipping; ``order_received`` is sent)
-> completed (``ShopSettings.auto_complete_days`` after receipt with no open after-sale
request).

Every transition is one conditional ``UPDATE ... WHERE status = <from>``: of two staff
verifying one code, or the member confirming while the job sweeps, exactly one wins; the
others get ``IllegalTransition`` (409). ``order_completed`` is sent by the winner only.
"""

from __future__ import annotations

import datetime as dt
import secrets

from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, ratelimit
from core.db import db, utcnow
from core.errors import Conflict, NotFound, RateLimited, ValidationError
from core.tenancy import require_brand_id
from shop import signals
from shop.models import (
    AS_APPROVED,
    AS_REFUNDING,
    AS_REQUESTED,
    COMPLETED,
    DELIVERY,
    PAID,
    PICKUP,
    READY,
    RECEIVED,
    REFUND_FULL,
    SHIPPED,
    AfterSale,
    Order,
)
from shop.settings import get_settings

PICKUP_CODE_DIGITS = 8
GUESS_LIMIT = 10  # wrong pick-up codes per staff member and window
GUESS_WINDOW = 600
OPEN_AFTER_SALE = (AS_REQUESTED, AS_APPROVED, AS_REFUNDING)
SWEEP_BATCH = 500
MAX_CARRIER = 40
MAX_TRACKING = 64


class IllegalTransition(Conflict):
    """The order is not in a state this action applies to."""

    def __init__(self, message=None, *, field: str | None = None):
        super().__init__(
            message or _l("This order cannot do that in its current state."),
            field=field,
            code="illegal_transition",
        )


class PickupCodeUnknown(NotFound):
    """No order waiting for pick-up has this code (or it belongs to another store)."""

    def __init__(self):
        super().__init__(_l("No order is waiting for pick-up with this code."), field="code")


def _move(
    order_id: int, *, frm: tuple[str, ...], to: str, extra: dict | None = None, where=()
) -> bool:
    """Flip the order from one of ``frm`` to ``to`` in one conditional UPDATE; True if won."""
    won = db.session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status.in_(frm), *where)
        .values(status=to, updated_at=utcnow(), **(extra or {}))
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    return won is not None


def _received(order: Order) -> None:
    """Announce that a paid order reached the member (sent by the transition that won)."""
    signals.order_received.send(
        require_brand_id(), order_id=order.id, member_id=order.member_id, store_id=order.store_id
    )


def _reload(order_id: int) -> Order:
    order = db.session.execute(
        select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if order is None:
        raise NotFound(_l("No such order."))
    return order


def _audit(order: Order, action: str, **after) -> None:
    audit.record(
        action=action,
        object_type="shop_order",
        object_id=order.id,
        after={"order_no": order.order_no, **after},
    )


def _not_fully_refunded(order: Order) -> None:
    if order.refund_state == REFUND_FULL:
        raise IllegalTransition(_l("This order was refunded in full."))


def ship(*, order_id: int, carrier: str, tracking_no: str, now: dt.datetime | None = None) -> Order:
    """Hand a paid delivery order to a carrier (audited)."""
    carrier = (carrier or "").strip()
    tracking_no = (tracking_no or "").strip()
    if not carrier:
        raise ValidationError(_l("Enter the carrier."), field="carrier")
    if len(carrier) > MAX_CARRIER:
        raise ValidationError(_l("At most %(n)d characters.", n=MAX_CARRIER), field="carrier")
    if not tracking_no:
        raise ValidationError(_l("Enter the tracking number."), field="tracking_no")
    if len(tracking_no) > MAX_TRACKING or not tracking_no.replace("-", "").isalnum():
        raise ValidationError(
            _l("A tracking number is letters and digits, at most %(n)d.", n=MAX_TRACKING),
            field="tracking_no",
        )
    order = _reload(order_id)
    if order.fulfilment != DELIVERY:
        raise IllegalTransition(_l("This order is picked up in a store, not shipped."))
    _not_fully_refunded(order)
    now = now or utcnow()
    if not _move(
        order.id,
        frm=(PAID,),
        to=SHIPPED,
        extra={"carrier": carrier, "tracking_no": tracking_no, "shipped_at": now},
        where=(Order.refund_state != REFUND_FULL,),
    ):
        raise IllegalTransition(_l("Only a paid order that was not shipped can be shipped."))
    order = _reload(order.id)
    _audit(order, "shop_order_ship", carrier=carrier, tracking_no=tracking_no)
    return order


def _new_pickup_code() -> str:
    return f"{secrets.randbelow(10**PICKUP_CODE_DIGITS):0{PICKUP_CODE_DIGITS}d}"


def mark_ready(*, order_id: int, now: dt.datetime | None = None) -> Order:
    """A pick-up order's goods wait in the store: give it a pick-up code (audited).

    The code is 8 random digits, unique among the brand's orders waiting for pick-up (a
    partial unique index; a collision draws again).
    """
    order = _reload(order_id)
    if order.fulfilment != PICKUP:
        raise IllegalTransition(_l("This order is delivered, not picked up."))
    _not_fully_refunded(order)
    now = now or utcnow()
    for _attempt in range(8):
        code = _new_pickup_code()
        try:
            with db.session.begin_nested():
                won = _move(
                    order.id,
                    frm=(PAID,),
                    to=READY,
                    extra={"pickup_code": code, "ready_at": now},
                    where=(Order.refund_state != REFUND_FULL,),
                )
        except IntegrityError:
            continue  # the code is in use by another open pick-up
        if not won:
            raise IllegalTransition(_l("Only a paid order can be made ready for pick-up."))
        order = _reload(order.id)
        _audit(order, "shop_order_ready")
        return order
    raise RuntimeError("no free pick-up code after 8 draws")


def _guard(ident: str) -> None:
    if ratelimit.count(require_brand_id(), "pickup-guess", ident) >= GUESS_LIMIT:
        raise RateLimited(_l("Too many wrong codes. Try again later."))


def verify_pickup(
    *, code: str, store_id: int | None, guess_ident: str, now: dt.datetime | None = None
) -> Order:
    """Staff of the pick-up store check the member's code: the order is received.

    A code of another store's order answers like an unknown code (staff learn nothing about
    other stores' orders); wrong codes are counted per staff member and limited.
    """
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if not store_id:
        raise ValidationError(_l("Choose a store."), field="store_id")
    _guard(guess_ident)
    if len(code) != PICKUP_CODE_DIGITS:
        ratelimit.hit(
            require_brand_id(), "pickup-guess", guess_ident, limit=GUESS_LIMIT, window=GUESS_WINDOW
        )
        raise PickupCodeUnknown()
    now = now or utcnow()
    won = db.session.execute(
        update(Order)
        .where(
            Order.status == READY,
            Order.pickup_code == code,
            Order.store_id == store_id,
            Order.refund_state != REFUND_FULL,
        )
        .values(status=RECEIVED, received_at=now, updated_at=now)
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    if won is None:
        ratelimit.hit(
            require_brand_id(), "pickup-guess", guess_ident, limit=GUESS_LIMIT, window=GUESS_WINDOW
        )
        raise PickupCodeUnknown()
    order = _reload(won)
    _audit(order, "shop_order_pickup", store_id=store_id)
    _received(order)
    return order


def confirm_receipt(*, order_id: int, member_id: int, now: dt.datetime | None = None) -> Order:
    """The member says the parcel arrived."""
    order = _reload(order_id)
    if order.member_id != member_id:
        raise NotFound(_l("No such order."))
    now = now or utcnow()
    if not _move(order.id, frm=(SHIPPED,), to=RECEIVED, extra={"received_at": now}):
        raise IllegalTransition(_l("Only a shipped order can be confirmed as received."))
    order = _reload(order.id)
    _received(order)
    return order


def _open_after_sale(order_id_col):
    return exists().where(AfterSale.order_id == order_id_col, AfterSale.status.in_(OPEN_AFTER_SALE))


def complete(*, order_id: int, now: dt.datetime | None = None) -> bool:
    """Complete a received order with no open after-sale request; True if this call did.

    ``order_completed`` is sent by the call that wins the transition, once.
    """
    now = now or utcnow()
    won = db.session.execute(
        update(Order)
        .where(
            Order.id == order_id,
            Order.status == RECEIVED,
            ~_open_after_sale(Order.id),
        )
        .values(status=COMPLETED, completed_at=now, updated_at=now)
        .returning(Order.id, Order.member_id, Order.store_id)
        .execution_options(synchronize_session=False)
    ).first()
    if won is None:
        return False
    loaded = db.session.identity_map.get(Session.identity_key(Order, won[0]))
    if loaded is not None:  # what the signal's receivers read of it is the completed order
        db.session.expire(loaded)
    signals.order_completed.send(
        require_brand_id(), order_id=won[0], member_id=won[1], store_id=won[2]
    )
    return True


def auto_receive_due(*, now: dt.datetime | None = None, limit: int = SWEEP_BATCH) -> int:
    """Orders shipped ``auto_receive_days`` ago without an open after-sale become received."""
    now = now or utcnow()
    due = now - dt.timedelta(days=get_settings().auto_receive_days)
    ids = (
        db.session.execute(
            select(Order.id)
            .where(Order.status == SHIPPED, Order.shipped_at <= due, ~_open_after_sale(Order.id))
            .order_by(Order.shipped_at)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    done = 0
    for oid in ids:
        if _move(
            oid,
            frm=(SHIPPED,),
            to=RECEIVED,
            extra={"received_at": now},
            where=(~_open_after_sale(Order.id),),
        ):
            _received(_reload(oid))
            done += 1
    return done


def auto_complete_due(*, now: dt.datetime | None = None, limit: int = SWEEP_BATCH) -> int:
    """Orders received ``auto_complete_days`` ago with no open after-sale complete."""
    now = now or utcnow()
    due = now - dt.timedelta(days=get_settings().auto_complete_days)
    ids = (
        db.session.execute(
            select(Order.id)
            .where(Order.status == RECEIVED, Order.received_at <= due)
            .order_by(Order.received_at)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    return sum(1 for oid in ids if complete(order_id=oid, now=now))


def staff_may_see(order: Order, *, store_id: int | None) -> None:
    """A store's staff see their store's orders only (404 otherwise); None: the whole brand."""
    if store_id is not None and order.store_id != store_id:
        raise NotFound(_l("No such order."))


__all__ = [
    "IllegalTransition",
    "PickupCodeUnknown",
    "auto_complete_due",
    "auto_receive_due",
    "complete",
    "confirm_receipt",
    "mark_ready",
    "ship",
    "staff_may_see",
    "verify_pickup",
]
