"""Payment of online orders through WeChat Pay (JSAPI for the official account's pages and
the mini-program), and what a paid order changes.

``start_payment`` makes the attempt (``Payment``, ``out_trade_no`` = order_no + "P" + n)
and asks the gateway for the page's pay parameters. ``mark_paid`` is where a payment lands,
whichever way it is learned (the notify, the page's own query, the job that queries unpaid
orders): it checks the order and the amount itself, then flips the payment and the order in
conditional UPDATEs that one caller wins, and that caller alone confirms the reservations,
earns the points, records the purchase and the facts, and sends ``order_paid``. A payment
learned twice (the notify delivered five times, the query meanwhile) is a duplicate that
changes nothing.

A member can pay an order twice: the pay page in the official account and the mini-program
are two attempts, and WeChat Pay takes either. The attempt that pays second lands on an order
no longer waiting for it: its money is recorded as a surplus payment and returned in full
(``take_surplus``: a refund of that payment, sent by a job; nothing of the order changes).
Once an order is paid, its other attempts are closed at WeChat Pay (``close_attempts``, a
job), so a second payment is rare; the periodic query closes any attempt left open.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, text

from core.db import db, utcnow
from core.errors import AppError, Conflict, NotFound, ValidationError
from core.tenancy import require_brand_id
from members.models import MemberIdentity
from members.tiers_tags.tiers import record_purchase
from points import services as points_services
from shop import facts, numbers, signals
from shop.models import (
    CREATED,
    PAID,
    PAY_CLOSED,
    PAY_PAID,
    PAY_PENDING,
    PAY_SURPLUS,
    RES_CONFIRMED,
    RES_HELD,
    RF_PROCESSING,
    TILL,
    Order,
    OrderLine,
    Payment,
    Refund,
)

log = logging.getLogger(__name__)
VIAS = ("notify", "query", "free", "till")
SUCCESS = "SUCCESS"


class PaymentRefused(Conflict):
    """A payment that does not match its attempt (unknown, another amount, another
    transaction id): nothing is changed."""

    code = "payment_refused"

    def __init__(self, reason: str, message=None):
        super().__init__(message or _l("This payment does not match its order."), field=None)
        self.reason = reason


class PaymentUnavailable(AppError):
    """WeChat Pay could not place the order now (busy, unreachable, not configured): nothing
    is kept; the member tries again."""

    status = 503
    code = "pay_unavailable"

    def __init__(self, message=None):
        super().__init__(message or _l("Payment could not start. Try again."), field=None)


def earn_key(order_no: str) -> str:
    return f"shop:{order_no}:earn"


def purchase_key(order_no: str) -> str:
    return f"shop:{order_no}:purchase"


def _gateway():
    from wechat import gateway

    return gateway


def _description(order: Order) -> str:
    names = (
        db.session.execute(
            select(OrderLine.name).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
        )
        .scalars()
        .all()
    )
    text_ = names[0] if names else order.order_no
    if len(names) > 1:
        text_ = f"{text_} 等{len(names)}件"
    return text_[:120]


def _openid(member_id: int, mini_program: bool) -> str:
    kind = "mp_openid" if mini_program else "oa_openid"
    value = db.session.execute(
        select(MemberIdentity.value)
        .where(MemberIdentity.member_id == member_id, MemberIdentity.kind == kind)
        .order_by(MemberIdentity.id.desc())
        .limit(1)
    ).scalar()
    if value is None:
        raise Conflict(
            _l("Open this page in WeChat to pay."), field="channel", code="no_wechat_identity"
        )
    return value


def start_payment(
    *, order_no: str, member_id: int, mini_program: bool, notify_url: str
) -> tuple[Payment, dict]:
    """A WeChat Pay attempt for the member's unpaid order and the page's pay parameters.

    The pending attempt of the same kind is asked for again (WeChat answers the same prepay)
    rather than a new one made."""
    from shop.checkout import order_of_member

    order = order_of_member(order_no=order_no, member_id=member_id, lock=True)
    now = utcnow()
    if order.status != CREATED:
        raise Conflict(_l("This order is not waiting for payment."), field="order_no")
    if order.pay_deadline is not None and order.pay_deadline <= now:
        raise Conflict(_l("The time to pay this order has passed."), field="order_no")
    openid = _openid(member_id, mini_program)
    payment = db.session.execute(
        select(Payment).where(
            Payment.order_id == order.id,
            Payment.status == PAY_PENDING,
            Payment.mini_program == mini_program,
            Payment.amount_fen == order.pay_fen,
        )
    ).scalar_one_or_none()
    if payment is None:
        attempts = db.session.execute(
            select(func.count()).where(Payment.order_id == order.id)
        ).scalar_one()
        payment = Payment(
            order_id=order.id,
            out_trade_no=numbers.out_trade_no(order.order_no, attempts + 1),
            mini_program=mini_program,
            amount_fen=order.pay_fen,
            status=PAY_PENDING,
            created_at=now,
        )
        db.session.add(payment)
        db.session.flush()
    gateway = _gateway()
    try:
        params = gateway.pay_jsapi_prepay(
            require_brand_id(),
            mini_program=mini_program,
            openid=openid,
            out_trade_no=payment.out_trade_no,
            description=_description(order),
            amount_fen=payment.amount_fen,
            notify_url=notify_url,
            time_expire=order.pay_deadline,
        )
    except gateway.WeChatError as exc:
        log.warning("prepay of %s failed: %s", payment.out_trade_no, exc)
        raise PaymentUnavailable() from exc
    return payment, params


_PAY = text(
    "UPDATE shop_payment SET status = :paid, transaction_id = :txn, confirmed_by = :via,"
    " paid_at = :at WHERE id = :id AND brand_id = :b AND status = :pending RETURNING id"
)
_ORDER_PAID = text(
    "UPDATE shop_order SET status = :paid, paid_fen = :amount, paid_at = :at, updated_at = :now"
    " WHERE id = :id AND brand_id = :b AND status = :created AND pay_fen = :amount RETURNING id"
)
_CONFIRM = text(
    "UPDATE shop_reservation SET status = :confirmed, settled_at = :now"
    " WHERE order_id = :id AND brand_id = :b AND status = :held"
)
_SOLD = text(
    "UPDATE shop_sku SET sold = sold + t.n FROM (SELECT sku_id, sum(quantity) AS n"
    " FROM shop_order_line WHERE order_id = :id AND sku_id IS NOT NULL GROUP BY sku_id) t"
    " WHERE shop_sku.id = t.sku_id AND shop_sku.brand_id = :b"
)


def mark_paid(
    *,
    out_trade_no: str,
    transaction_id: str,
    amount_fen: int,
    via: str,
    paid_at: dt.datetime | None = None,
) -> str:
    """Record that WeChat Pay took ``amount_fen`` for ``out_trade_no``.

    Answers "applied" (this call paid the order), "duplicate" (already recorded with this
    transaction id) or "surplus" (the order no longer waited for this attempt: the money is
    kept as a surplus payment and returned, see ``take_surplus``); raises PaymentRefused
    (nothing changed) for an unknown trade number, an amount other than the attempt's, or
    another transaction id.
    """
    if via not in VIAS:
        raise ValueError(f"unknown way {via!r}")
    out_trade_no = (out_trade_no or "").strip() if isinstance(out_trade_no, str) else ""
    transaction_id = (transaction_id or "").strip() if isinstance(transaction_id, str) else ""
    if not out_trade_no or not transaction_id or len(transaction_id) > 64:
        raise PaymentRefused("incomplete")
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool):
        raise PaymentRefused("amount")
    payment = db.session.execute(
        select(Payment).where(Payment.out_trade_no == out_trade_no)
    ).scalar_one_or_none()
    if payment is None:
        raise PaymentRefused("unknown_order", _l("No such order."))
    order = db.session.get(Order, payment.order_id)
    if amount_fen != payment.amount_fen:
        log.warning(
            "payment %s refused: amount %s, expected %s",
            out_trade_no,
            amount_fen,
            payment.amount_fen,
        )
        raise PaymentRefused("amount", _l("The amount paid differs from the order's."))
    now = utcnow()
    paid_at = paid_at or now
    brand_id = require_brand_id()
    won = db.session.execute(
        _PAY,
        {
            "paid": PAY_PAID,
            "pending": PAY_PENDING,
            "txn": transaction_id,
            "via": via,
            "at": paid_at,
            "id": payment.id,
            "b": brand_id,
        },
    ).scalar()
    if won is None:
        db.session.refresh(payment)
        if payment.status in (PAY_PAID, PAY_SURPLUS) and payment.transaction_id == transaction_id:
            return "duplicate"
        raise PaymentRefused(
            "closed" if payment.status == PAY_CLOSED else "transaction",
            _l("This payment was already settled otherwise."),
        )
    paid = db.session.execute(
        _ORDER_PAID,
        {
            "paid": PAID,
            "created": CREATED,
            "amount": amount_fen,
            "at": paid_at,
            "now": now,
            "id": order.id,
            "b": brand_id,
        },
    ).scalar()
    if paid is None:
        take_surplus(payment)
        return "surplus"
    db.session.refresh(order)
    after_paid(order)
    if db.session.execute(
        select(Payment.id)
        .where(Payment.order_id == order.id, Payment.status == PAY_PENDING)
        .limit(1)
    ).first():
        from core.jobs import enqueue

        enqueue(
            "shop.jobs.close_attempts",
            order.id,
            brand_id=brand_id,
            dedupe_key=f"shop:close:{order.id}",
        )
    return "applied"


def take_surplus(payment: Payment) -> Refund:
    """WeChat Pay took the money of ``payment`` (just marked paid in this transaction) for an
    order that no longer waits for it: mark it surplus and return all of it (a refund of that
    payment, sent to WeChat Pay by a job after the commit). The order is left as it is."""
    from core.jobs import enqueue
    from shop import refunds

    order = refunds.lock_order(payment.order_id)
    db.session.execute(
        text("UPDATE shop_payment SET status = :surplus WHERE id = :id AND status = :paid"),
        {"surplus": PAY_SURPLUS, "paid": PAY_PAID, "id": payment.id},
    )
    _n, out_refund_no = refunds.next_refund_no(order)
    refund = Refund(
        order_id=order.id,
        payment_id=payment.id,
        out_refund_no=out_refund_no,
        amount_fen=payment.amount_fen,
        status=RF_PROCESSING,
        created_at=utcnow(),
    )
    db.session.add(refund)
    db.session.flush()
    db.session.refresh(payment)
    log.warning(
        "payment %s came after order %s was %s: returning %s fen as %s",
        payment.out_trade_no,
        order.order_no,
        order.status,
        payment.amount_fen,
        refund.out_refund_no,
    )
    enqueue(refunds.submit_job_name(), refund.id, brand_id=require_brand_id())
    return refund


def settle(order: Order, *, paid_at: dt.datetime, via: str) -> None:
    """An order with nothing left to pay (coupons and points covered it) is paid at once."""
    if order.pay_fen != 0:
        raise ValueError("only an order with nothing to pay is settled without payment")
    paid = db.session.execute(
        _ORDER_PAID,
        {
            "paid": PAID,
            "created": CREATED,
            "amount": 0,
            "at": paid_at,
            "now": utcnow(),
            "id": order.id,
            "b": require_brand_id(),
        },
    ).scalar()
    if paid is None:
        raise Conflict(_l("This order is no longer waiting for payment."), field="order_no")
    db.session.refresh(order)
    after_paid(order)


def after_paid(order: Order) -> None:
    """What a newly paid order changes (call once, from the transition that won): points
    earned on the goods paid for (not shipping), the member's purchase recorded,
    ``order_paid`` sent, then the rows many orders share: the day's sales, the reservations
    confirmed and the units counted sold. Those come last so that their row locks are held
    only until the commit that follows."""
    brand_id = require_brand_id()
    earn_purchase(order)
    signals.order_paid.send(
        brand_id,
        order_id=order.id,
        member_id=order.member_id,
        store_id=order.store_id,
        channel=order.channel,
    )
    facts.record_paid(order, day=numbers.local_day(order.paid_at))
    if order.channel != TILL:  # a till order takes its stock at once, reserving none
        db.session.execute(
            _CONFIRM,
            {
                "confirmed": RES_CONFIRMED,
                "held": RES_HELD,
                "now": utcnow(),
                "id": order.id,
                "b": brand_id,
            },
        )
    db.session.execute(_SOLD, {"id": order.id, "b": brand_id})


def earn_purchase(order: Order) -> None:
    """The member's points and purchase activity for a paid order (keys of the order)."""
    if order.member_id is None:
        return
    earn_on = order.paid_fen - order.shipping_fen
    if earn_on > 0:
        entry = points_services.earn_for_purchase(
            member_id=order.member_id,
            amount_fen=int(earn_on),
            store_id=order.store_id,
            occurred_at=order.paid_at,
            idempotency_key=earn_key(order.order_no),
        )
        order.points_earned = entry.points
    if order.paid_fen > 0:
        record_purchase(
            member_id=order.member_id,
            amount_fen=int(order.paid_fen),
            store_id=order.store_id,
            occurred_at=order.paid_at,
            idempotency_key=purchase_key(order.order_no),
            note=order.order_no,
        )
    db.session.flush()


def _success(state) -> bool:
    return getattr(state, "trade_state", None) == SUCCESS


def sync_payment(payment: Payment) -> str | None:
    """Ask WeChat Pay about a pending attempt; mark it paid if it was. Answers mark_paid's
    outcome, or None when WeChat says it is not paid."""
    gateway = _gateway()
    try:
        state = gateway.pay_query(require_brand_id(), payment.out_trade_no)
    except gateway.PayError as exc:
        if getattr(exc, "code", None) == "ORDER_NOT_EXIST":  # never placed there: not paid
            return None
        raise
    if not _success(state):
        return None
    return mark_paid(
        out_trade_no=payment.out_trade_no,
        transaction_id=state.transaction_id,
        amount_fen=int(state.amount_total),
        via="query",
        paid_at=getattr(state, "success_time", None),
    )


def refresh(*, order_no: str, member_id: int) -> Order:
    """The pay page's own check after the member paid: query the pending attempts."""
    from shop.checkout import order_of_member

    order = order_of_member(order_no=order_no, member_id=member_id)
    if order.status == CREATED:
        for payment in pending_payments(order.id):
            if sync_payment(payment) is not None:
                break
        db.session.refresh(order)
    return order


def pending_payments(order_id: int) -> list[Payment]:
    return list(
        db.session.execute(
            select(Payment)
            .where(Payment.order_id == order_id, Payment.status == PAY_PENDING)
            .order_by(Payment.id)
        ).scalars()
    )


def close_attempt(payment: Payment) -> str:
    """Close a pending attempt at WeChat Pay, then here; answers "closed", or mark_paid's
    outcome when WeChat Pay says it was paid (asked first, and again when it refuses to close:
    paid at that moment). An attempt WeChat Pay never heard of is closed here alone."""
    gateway = _gateway()
    outcome = sync_payment(payment)
    if outcome is not None:
        return outcome
    try:
        gateway.pay_close(require_brand_id(), payment.out_trade_no)
    except Exception as exc:
        if getattr(exc, "code", None) != "ORDER_NOT_EXIST":
            outcome = sync_payment(payment)
            if outcome is not None:
                return outcome
            raise
    db.session.execute(
        text(
            "UPDATE shop_payment SET status = :closed, closed_at = :now"
            " WHERE id = :id AND status = :pending"
        ),
        {"closed": PAY_CLOSED, "pending": PAY_PENDING, "now": utcnow(), "id": payment.id},
    )
    return "closed"


def settle_before_close(order: Order) -> bool:
    """Before an unpaid order closes: each pending attempt is closed (``close_attempt``); if
    WeChat Pay says one was paid, the order is marked paid instead and True answered."""
    for payment in pending_payments(order.id):
        if close_attempt(payment) == "applied":
            return True
    return False


def close_attempts(order_id: int) -> int:
    """Close the pending attempts of an order that no longer waits for payment (paid by
    another attempt, or closed); an attempt paid meanwhile becomes a surplus payment and is
    returned. Answers how many attempts were closed or returned."""
    order = db.session.get(Order, order_id)
    if order is None or order.status == CREATED:
        return 0
    done = 0
    for payment in pending_payments(order.id):
        close_attempt(payment)
        done += 1
    return done


def check_via(via: str) -> str:
    if via not in VIAS:
        raise ValidationError(_l("Unknown channel."), field="via")
    return via


def order_by_no(order_no: str) -> Order:
    order = db.session.execute(select(Order).where(Order.order_no == order_no)).scalar_one_or_none()
    if order is None:
        raise NotFound(_l("No such order."), field="order_no")
    return order
