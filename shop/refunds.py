"""Refunds: money back for lines of a paid order, through WeChat Pay or at a store's till.

Amounts are exact to the fen. A line's refundable money is what it was paid after coupons
and points (``OrderLine.pay_fen``); ``q`` more units of a line return
``pay_fen * (done + q) // quantity - pay_fen * done // quantity``, and the last unit
returns whatever is left, so refunding every unit returns exactly ``pay_fen``. Shipping is
returned only by a refund that takes the last of the lines before the order was shipped.

A refund reserves its amounts when it starts (``refunded_fen``/``refunded_qty`` of the
lines and the order grow in conditional UPDATEs, which the CHECK constraints bound by what
was paid), so two refunds in flight can never return more than was paid; a refund that
fails gives its reservation back. Everything a successful refund changes besides money
happens once, in the transaction of the call that flips it from processing to success:
the earned points reversed in proportion (``shop:{out_refund_no}:reverse``), the spent
points returned (``shop:{out_refund_no}:return``), returned goods restocked, the coupons
given back when the whole order is refunded, the member's refund activity, the purchase
facts and sales rollup, and ``order_refunded``.

Starts are serialised per order by a row lock on the order (``SELECT ... FOR UPDATE``), so
the numbering (``order_no`` + "R" + n) and the reservations of one order never race.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from core.db import db, utcnow
from core.errors import Conflict, NotFound, ValidationError
from core.tenancy import require_brand_id
from shop import facts, numbers, signals, stock
from shop.models import (
    AS_APPROVED,
    AS_REFUNDED,
    AS_REFUNDING,
    CLOSED,
    CREATED,
    PAID,
    PAY_PAID,
    REFUND_FULL,
    REFUND_PARTIAL,
    RF_FAILED,
    RF_PROCESSING,
    RF_SUCCESS,
    TILL,
    AfterSale,
    Order,
    OrderLine,
    Payment,
    PayNotifyLog,
    Refund,
    RefundLine,
)

log = logging.getLogger(__name__)

MAX_REASON = 200
MAX_REFUNDS_PER_ORDER = 99
# What WeChat Pay shows the payer with the return of a surplus payment (an order paid twice).
SURPLUS_REASON = "重复支付，原路退回"
# How long the return of a surplus payment is sent again while the merchant's balance cannot
# pay it (NOT_ENOUGH), before it fails and the operators are told (a reconciliation issue).
SURPLUS_PATIENCE = dt.timedelta(days=1)
# WeChat Pay's refund states (APIv3): SUCCESS, CLOSED, PROCESSING, ABNORMAL.
WX_SUCCESS, WX_PROCESSING = "SUCCESS", "PROCESSING"
WX_FAILED = ("CLOSED", "ABNORMAL")


class NothingToRefund(Conflict):
    """The line (or the order) has nothing left to refund."""

    def __init__(self, message=None, *, field: str | None = "lines"):
        super().__init__(
            message or _l("Nothing is left to refund."), field=field, code="nothing_to_refund"
        )


class NotRefundable(Conflict):
    """The order cannot be refunded in its state."""

    def __init__(self, message=None, *, field: str | None = None):
        super().__init__(
            message or _l("This order cannot be refunded."), field=field, code="not_refundable"
        )


@dataclasses.dataclass(frozen=True)
class Item:
    """What to refund of one order line: ``quantity`` units (0: money only) and
    ``amount_fen`` (None: the units' share of what the line was paid)."""

    order_line_id: int
    quantity: int = 0
    amount_fen: int | None = None


# -- amounts --------------------------------------------------------------------------------


def share_fen(line: OrderLine, quantity: int) -> int:
    """What ``quantity`` more units of the line return (the last unit takes the remainder)."""
    done = line.refunded_qty
    if done + quantity >= line.quantity:
        return line.pay_fen - line.refunded_fen
    share = line.pay_fen * (done + quantity) // line.quantity - line.pay_fen * done // line.quantity
    return max(0, min(share, line.pay_fen - line.refunded_fen))


def left(line: OrderLine) -> tuple[int, int]:
    """(units, fen) of the line not yet refunded or being refunded."""
    return line.quantity - line.refunded_qty, line.pay_fen - line.refunded_fen


def _whole(value, field: str, *, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValidationError(_l("Enter a whole number of at least %(n)d.", n=low), field=field)
    return value


def check_items(order: Order, lines: dict[int, OrderLine], items: list[Item], *, restock: bool):
    """Validate what to refund against what is left; answer [(line, quantity, fen)]."""
    if not items:
        raise ValidationError(_l("Choose what to refund."), field="lines")
    seen: set[int] = set()
    out = []
    for i, item in enumerate(items):
        field = f"lines.{i}"
        line = lines.get(item.order_line_id)
        if line is None or line.order_id != order.id:
            raise NotFound(_l("No such line on this order."), field=field)
        if line.id in seen:
            raise ValidationError(_l("A line is listed twice."), field=field)
        seen.add(line.id)
        qty = _whole(item.quantity, f"{field}.quantity", low=1 if restock else 0)
        units_left, fen_left = left(line)
        if qty > units_left:
            raise ValidationError(
                _l("At most %(n)d more units of this line can be refunded.", n=units_left),
                field=f"{field}.quantity",
            )
        fen = share_fen(line, qty) if item.amount_fen is None else item.amount_fen
        _whole(fen, f"{field}.amount_fen", low=0)
        if fen > fen_left:
            raise ValidationError(
                _l("At most ¥%(y)s more of this line can be refunded.", y=f"{fen_left / 100:.2f}"),
                field=f"{field}.amount_fen",
            )
        if fen == 0 and qty == 0:
            raise NothingToRefund(field=field)
        out.append((line, qty, fen))
    if sum(fen for _l_, _q, fen in out) == 0:
        raise NothingToRefund()
    return out


# -- starting a refund ----------------------------------------------------------------------


def lock_order(order_id: int) -> Order:
    """The order, locked until the transaction ends (refunds and requests of one order queue)."""
    order = db.session.execute(
        select(Order)
        .where(Order.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if order is None:
        raise NotFound(_l("No such order."))
    return order


def next_refund_no(order: Order) -> tuple[int, str]:
    """The order's next refund: its number among the order's refunds and its out_refund_no
    (the order is locked, so two refunds of one order never take the same number)."""
    n = (
        db.session.execute(
            select(func.count()).select_from(Refund).where(Refund.order_id == order.id)
        ).scalar_one()
        + 1
    )
    return n, numbers.out_refund_no(order.order_no, n)


def order_lines(order_id: int) -> dict[int, OrderLine]:
    rows = db.session.execute(
        select(OrderLine)
        .where(OrderLine.order_id == order_id)
        .order_by(OrderLine.id)
        .execution_options(populate_existing=True)
    ).scalars()
    return {line.id: line for line in rows}


def payment_of(refund: Refund, order: Order) -> Payment | None:
    """The payment a refund returns money of: the surplus payment it returns whole, or the
    order's payment."""
    if refund.payment_id is not None:
        return db.session.get(Payment, refund.payment_id)
    return paid_payment(order)


def paid_payment(order: Order) -> Payment | None:
    return db.session.execute(
        select(Payment)
        .where(Payment.order_id == order.id, Payment.status == PAY_PAID)
        .order_by(Payment.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _points_after(line: OrderLine, refunded_fen: int) -> int:
    """The spent points of the line returned once ``refunded_fen`` of it is refunded."""
    if line.points_used <= 0:
        return 0
    if refunded_fen >= line.pay_fen:
        return line.points_used
    return line.points_used * refunded_fen // line.pay_fen


def _reserve_line(line: OrderLine, qty: int, fen: int, points: int) -> None:
    won = db.session.execute(
        update(OrderLine)
        .where(
            OrderLine.id == line.id,
            OrderLine.refunded_fen == line.refunded_fen,
            OrderLine.refunded_qty == line.refunded_qty,
            OrderLine.refunded_points == line.refunded_points,
            OrderLine.refunded_fen + fen <= OrderLine.pay_fen,
            OrderLine.refunded_qty + qty <= OrderLine.quantity,
            OrderLine.refunded_points + points <= OrderLine.points_used,
        )
        .values(
            refunded_fen=OrderLine.refunded_fen + fen,
            refunded_qty=OrderLine.refunded_qty + qty,
            refunded_points=OrderLine.refunded_points + points,
        )
        .returning(OrderLine.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    if won is None:
        raise NothingToRefund()


def start(
    *,
    order_id: int,
    items: list[Item],
    reason: str = "",
    after_sale_id: int | None = None,
    restock: bool = False,
    operator: str | None = None,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
) -> Refund:
    """Reserve and record a refund of lines of a paid order (flushed, not yet sent).

    A till order's refund succeeds at once (the till returns the money); an online order's
    is sent to WeChat Pay by ``submit`` (a job enqueued here, after the commit).
    """
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        raise ValidationError(_l("At most %(n)d characters.", n=MAX_REASON), field="reason")
    now = now or utcnow()
    order = lock_order(order_id)
    if idempotency_key is not None:
        existing = db.session.execute(
            select(Refund).where(Refund.idempotency_key == idempotency_key)
        ).scalar_one_or_none()
        if existing is not None:
            if existing.order_id != order.id:
                raise Conflict(
                    _l("This idempotency key was already used for another order."),
                    field="idempotency_key",
                    code="idempotency_conflict",
                )
            return existing
    if order.status in (CREATED, CLOSED) or order.paid_fen <= 0:
        raise NotRefundable(_l("Only a paid order can be refunded."))
    lines = order_lines(order.id)
    picked = check_items(order, lines, items, restock=restock)

    # Shipping goes back only with the last of the goods, before the order left.
    lines_left_after = sum(ln.pay_fen - ln.refunded_fen for ln in lines.values()) - sum(
        fen for _ln, _q, fen in picked
    )
    lines_refunded = sum(ln.refunded_fen for ln in lines.values())
    shipping_back = 0
    if lines_left_after == 0 and order.status == PAID and order.shipping_fen > 0:
        shipping_done = order.refunded_fen - lines_refunded
        shipping_back = max(0, order.shipping_fen - shipping_done)
    # The last refund of the goods returns every spent point still out, including those of
    # lines the coupon and points paid in full (nothing to refund in money there).
    if lines_left_after == 0:
        picked_ids = {ln.id for ln, _q, _f in picked}
        for ln in lines.values():
            if ln.id not in picked_ids and ln.points_used > ln.refunded_points:
                picked.append((ln, 0, 0))

    n, out_refund_no = next_refund_no(order)
    if n > MAX_REFUNDS_PER_ORDER:
        raise NotRefundable(_l("This order has too many refunds."))
    amount = sum(fen for _ln, _q, fen in picked) + shipping_back
    refund = Refund(
        order_id=order.id,
        after_sale_id=after_sale_id,
        out_refund_no=out_refund_no,
        amount_fen=amount,
        status=RF_PROCESSING,
        reason=reason,
        restock=restock,
        operator=operator,
        idempotency_key=idempotency_key,
        created_at=now,
    )
    db.session.add(refund)
    db.session.flush()
    points_total = 0
    for ln, qty, fen in picked:
        points = _points_after(ln, ln.refunded_fen + fen) - ln.refunded_points
        if fen == 0 and qty == 0 and points == 0:
            continue
        _reserve_line(ln, qty, fen, points)
        points_total += points
        db.session.add(
            RefundLine(
                refund_id=refund.id,
                order_line_id=ln.id,
                quantity=qty,
                amount_fen=fen,
                points=points,
            )
        )
    moved = db.session.execute(
        update(Order)
        .where(Order.id == order.id, Order.refunded_fen + amount <= Order.paid_fen)
        .values(refunded_fen=Order.refunded_fen + amount, updated_at=now)
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    if moved is None:
        raise NothingToRefund()
    refund.points_returned = points_total
    if after_sale_id is not None:
        db.session.execute(
            update(AfterSale)
            .where(AfterSale.id == after_sale_id, AfterSale.status == AS_APPROVED)
            .values(status=AS_REFUNDING, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    db.session.flush()
    if order.channel == TILL:
        succeed(refund_id=refund.id, refund_no=None, via="till", now=now)
    else:
        from core.jobs import enqueue

        enqueue(submit_job_name(), refund.id, brand_id=require_brand_id())
    return refund


def submit_job_name() -> str:
    return "shop.jobs_aftersale.submit_refund"


# -- sending to WeChat Pay and learning the outcome ------------------------------------------


def notify_url() -> str:
    from org.models import Brand

    brand = db.session.get(Brand, require_brand_id())
    return f"{current_app.config['PUBLIC_URL']}/pay/notify/{brand.slug}"


def submit(*, refund_id: int, now: dt.datetime | None = None) -> str:
    """Ask WeChat Pay to refund (idempotent per out_refund_no there); apply its answer.

    Answers the refund's status afterwards. A refund already decided changes nothing.
    """
    from wechat import gateway

    refund = db.session.get(Refund, refund_id)
    if refund is None:
        raise NotFound(_l("No such refund."))
    if refund.status != RF_PROCESSING:
        return refund.status
    order = db.session.get(Order, refund.order_id)
    payment = payment_of(refund, order)
    if payment is None:
        fail(refund_id=refund.id, why="no paid payment", now=now)
        return RF_FAILED
    try:
        state = gateway.pay_refund(
            order.brand_id,
            out_trade_no=payment.out_trade_no,
            out_refund_no=refund.out_refund_no,
            refund_fen=refund.amount_fen,
            total_fen=payment.amount_fen,
            reason=refund.reason or (SURPLUS_REASON if refund.payment_id else "退款"),
            notify_url=notify_url(),
        )
    except gateway.PayError as exc:
        if _waits_for_funds(refund, exc, now=now):
            log.warning("surplus return %s waits for the balance: %s", refund.out_refund_no, exc)
            return RF_PROCESSING
        log.warning("refund %s refused by WeChat Pay: %s", refund.out_refund_no, exc)
        fail(refund_id=refund.id, why=f"refused:{exc.code}", now=now)
        return RF_FAILED
    return apply_state(refund=refund, status=state.status, refund_no=state.refund_id, now=now)


def _waits_for_funds(refund: Refund, exc, *, now=None) -> bool:
    """Whether a refund WeChat Pay refused for the merchant's balance stays processing, to be
    sent again by the refund query (``query_processing``): the return of a surplus payment
    does, for a day (nobody is waiting to decide it); an operator's refund fails at once and
    says why."""
    if refund.payment_id is None or getattr(exc, "code", None) != "NOT_ENOUGH":
        return False
    return (now or utcnow()) - refund.created_at < SURPLUS_PATIENCE


def apply_state(*, refund: Refund, status: str, refund_no: str | None, now=None) -> str:
    """Apply WeChat Pay's refund state (from the answer, a query or a notify)."""
    _apply(refund=refund, status=status, refund_no=refund_no, now=now)
    db.session.refresh(refund)
    return refund.status


def _apply(*, refund: Refund, status: str, refund_no: str | None, now=None) -> bool:
    """Apply WeChat Pay's refund state; True if this call decided the refund."""
    changed = False
    if status == WX_SUCCESS:
        changed = succeed(refund_id=refund.id, refund_no=refund_no, via="wechat", now=now)
    elif status in WX_FAILED:
        changed = fail(refund_id=refund.id, why=status.lower(), now=now)
    elif refund_no and not refund.refund_id:
        db.session.execute(
            update(Refund)
            .where(Refund.id == refund.id, Refund.refund_id.is_(None))
            .values(refund_id=refund_no)
            .execution_options(synchronize_session=False)
        )
    db.session.flush()
    return changed


def query_processing(*, older_than: dt.timedelta = dt.timedelta(minutes=5), now=None) -> int:
    """Ask WeChat Pay about this brand's refunds still processing after ``older_than``."""
    from wechat import gateway

    now = now or utcnow()
    ids = (
        db.session.execute(
            select(Refund.id)
            .where(Refund.status == RF_PROCESSING, Refund.created_at <= now - older_than)
            .order_by(Refund.created_at)
            .limit(200)
        )
        .scalars()
        .all()
    )
    decided = 0
    for rid in ids:
        refund = db.session.get(Refund, rid)
        try:
            state = gateway.pay_refund_query(refund.brand_id, refund.out_refund_no)
        except gateway.PayError as exc:
            if exc.code in ("RESOURCE_NOT_EXISTS", "NOT_FOUND"):
                # WeChat never got it (the submit job died first, or the balance could not
                # pay a surplus return): send it again.
                if submit(refund_id=rid, now=now) in (RF_SUCCESS, RF_FAILED):
                    decided += 1
                continue
            raise
        if apply_state(refund=refund, status=state.status, refund_no=state.refund_id, now=now) in (
            RF_SUCCESS,
            RF_FAILED,
        ):
            decided += 1
    return decided


def _log_notify(notice, outcome: str) -> None:
    db.session.add(
        PayNotifyLog(
            kind="refund",
            out_trade_no=(getattr(notice, "out_trade_no", None) or "")[:32] or None,
            reference=(getattr(notice, "refund_id", None) or "")[:64] or None,
            outcome=outcome[:24],
        )
    )


def on_refund_notify(notice) -> str:
    """A verified refund notify from WeChat Pay (``gateway.pay_parse_notify``): apply it once.

    Answers the outcome logged in ``PayNotifyLog``: ``applied``, ``duplicate`` (decided
    before: nothing changes) or ``refused:<why>`` (unknown refund, another order, another
    amount: nothing changes).
    """
    refund = db.session.execute(
        select(Refund).where(Refund.out_refund_no == (notice.out_refund_no or ""))
    ).scalar_one_or_none()
    if refund is None:
        outcome = "refused:unknown"
    else:
        order = db.session.get(Order, refund.order_id)
        payment = payment_of(refund, order)
        if payment is None or notice.out_trade_no != payment.out_trade_no:
            outcome = "refused:order"
        elif notice.refund_fen != refund.amount_fen:
            outcome = "refused:amount"
        else:
            changed = _apply(refund=refund, status=notice.refund_status, refund_no=notice.refund_id)
            outcome = "applied" if changed else "duplicate"
    _log_notify(notice, outcome)
    db.session.flush()
    return outcome


# -- the outcome ----------------------------------------------------------------------------


def _brand_day(when: dt.datetime) -> dt.date:
    from org.models import Brand

    return when.astimezone(db.session.get(Brand, require_brand_id()).tz).date()


def succeed(*, refund_id: int, refund_no: str | None, via: str, now=None) -> bool:
    """The money went back: apply everything that follows, once. True if this call did."""
    from coupons import services as coupons
    from members.tiers_tags import tiers
    from points import services as points

    now = now or utcnow()
    won = db.session.execute(
        update(Refund)
        .where(Refund.id == refund_id, Refund.status == RF_PROCESSING)
        .values(
            status=RF_SUCCESS,
            succeeded_at=now,
            refund_id=func.coalesce(refund_no, Refund.refund_id),
        )
        .returning(Refund.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    if won is None:
        return False
    refund = db.session.execute(
        select(Refund).where(Refund.id == refund_id).execution_options(populate_existing=True)
    ).scalar_one()
    if refund.payment_id is not None:  # a surplus payment went back: the order is as it was
        log.info("surplus payment returned as %s via %s", refund.out_refund_no, via)
        return True
    order = lock_order(refund.order_id)
    rlines = (
        db.session.execute(select(RefundLine).where(RefundLine.refund_id == refund.id))
        .scalars()
        .all()
    )
    lines = order_lines(order.id)
    goods_fen = sum(rl.amount_fen for rl in rlines)
    # Whole order refunded: every line's money back through successful refunds.
    refunded_ok = db.session.execute(
        select(func.coalesce(func.sum(RefundLine.amount_fen), 0))
        .join(Refund, Refund.id == RefundLine.refund_id)
        .where(Refund.order_id == order.id, Refund.status == RF_SUCCESS)
    ).scalar_one()
    whole = int(refunded_ok) >= sum(ln.pay_fen for ln in lines.values())
    db.session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(refund_state=REFUND_FULL if whole else REFUND_PARTIAL, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    member_id = order.member_id
    if member_id is not None:
        if order.points_earned > 0 and goods_fen > 0:
            entry = points.refund(
                original_key=f"shop:{order.order_no}:earn",
                refunded_fen=goods_fen,
                order_total_fen=order.pay_fen - order.shipping_fen,
                idempotency_key=f"shop:{refund.out_refund_no}:reverse",
                now=now,
            )
            refund.points_reversed = -entry.points
        if refund.points_returned > 0:
            points.return_spent(
                original_key=f"shop:{order.order_no}:spend",
                points=refund.points_returned,
                idempotency_key=f"shop:{refund.out_refund_no}:return",
                now=now,
            )
        tiers.record_refund(
            member_id=member_id,
            amount_fen=refund.amount_fen,
            store_id=order.store_id,
            occurred_at=now,
            idempotency_key=f"shop:{refund.out_refund_no}:refund",
            note=refund.out_refund_no,
        )
    if refund.restock:
        for rl in rlines:
            line = lines.get(rl.order_line_id)
            if rl.quantity > 0 and line is not None and line.sku_id is not None:
                stock.change(
                    sku_id=line.sku_id,
                    delta=rl.quantity,
                    reason="restock",
                    idempotency_key=f"refund:{refund.id}:restock:{rl.order_line_id}",
                    order_id=order.id,
                    operator=refund.operator,
                    note=refund.out_refund_no,
                )
    if whole and order.coupon_ids:
        coupons.reverse(store_id=order.store_id, order_id=order.order_no, reason="refund", now=now)
    facts.record_refunded(order, refund.amount_fen, day=_brand_day(now))
    if refund.after_sale_id is not None:
        db.session.execute(
            update(AfterSale)
            .where(AfterSale.id == refund.after_sale_id, AfterSale.status == AS_REFUNDING)
            .values(status=AS_REFUNDED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    db.session.flush()
    signals.order_refunded.send(
        require_brand_id(),
        order_id=order.id,
        refund_id=refund.id,
        member_id=member_id,
        amount_fen=refund.amount_fen,
    )
    log.info("refund %s succeeded via %s", refund.out_refund_no, via)
    return True


def fail(*, refund_id: int, why: str, now=None) -> bool:
    """The refund did not happen: give its reservation back. True if this call did."""
    now = now or utcnow()
    won = db.session.execute(
        update(Refund)
        .where(Refund.id == refund_id, Refund.status == RF_PROCESSING)
        .values(status=RF_FAILED, reason=func.left(Refund.reason + " [" + why + "]", MAX_REASON))
        .returning(
            Refund.id,
            Refund.order_id,
            Refund.amount_fen,
            Refund.after_sale_id,
            Refund.payment_id,
            Refund.out_refund_no,
        )
        .execution_options(synchronize_session=False)
    ).first()
    if won is None:
        return False
    rid, order_id, amount, after_sale_id, payment_id, out_refund_no = won
    if payment_id is not None:  # a surplus payment WeChat Pay would not return
        _surplus_stuck(out_refund_no, payment_id, amount, why, now)
        return True
    lock_order(order_id)
    for rl in db.session.execute(select(RefundLine).where(RefundLine.refund_id == rid)).scalars():
        db.session.execute(
            update(OrderLine)
            .where(OrderLine.id == rl.order_line_id)
            .values(
                refunded_fen=OrderLine.refunded_fen - rl.amount_fen,
                refunded_qty=OrderLine.refunded_qty - rl.quantity,
                refunded_points=OrderLine.refunded_points - rl.points,
            )
            .execution_options(synchronize_session=False)
        )
    db.session.execute(
        update(Order)
        .where(Order.id == order_id)
        .values(refunded_fen=Order.refunded_fen - amount, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if after_sale_id is not None:
        db.session.execute(
            update(AfterSale)
            .where(AfterSale.id == after_sale_id, AfterSale.status == AS_REFUNDING)
            .values(status=AS_APPROVED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    db.session.flush()
    log.warning("refund %s failed: %s", rid, why)
    return True


def _surplus_stuck(out_refund_no: str, payment_id: int, amount: int, why: str, now) -> None:
    """A surplus payment WeChat Pay refused to return: a reconciliation issue the brand's
    operators see and settle by hand (in WeChat Pay's merchant platform)."""
    from shop import reconcile

    payment = db.session.get(Payment, payment_id)
    reconcile.add_issue(
        bill_date=_brand_day(now),
        out_trade_no=payment.out_trade_no,
        kind="surplus",
        ours=f"failed {amount} {out_refund_no}",
        theirs=f"SUCCESS {payment.amount_fen}",
    )
    db.session.flush()
    log.error("surplus payment %s not returned: %s", payment.out_trade_no, why)


__all__ = [
    "Item",
    "NotRefundable",
    "NothingToRefund",
    "apply_state",
    "fail",
    "left",
    "on_refund_notify",
    "query_processing",
    "share_fen",
    "start",
    "submit",
    "succeed",
]
