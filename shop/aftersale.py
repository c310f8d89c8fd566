"""After-sale (售后): a member asks to refund lines of an order, or to return them for a
refund; the brand approves or refuses in the console.

Rules: a request names lines with a quantity and an amount each, up to what is left
refundable (``shop.refunds.left``; the amount defaults to the units' share); one open
request per line at a time; accepted while the order is paid and not completed, and for
``ShopSettings.return_window_days`` after completion; not for till orders (the till refunds
them). Requests of one order are serialised by the order's row lock, so two taps never
open two requests for one line.

Approving a refund-only request starts its refund at once; approving a return waits for
the goods (``receive_return``), whose refund then restocks them. Decisions are audited and
a refusal's reason is shown to the member. ``request_no`` = order_no + "A" + n.
"""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from core import audit
from core.db import db, utcnow
from core.errors import Conflict, NotFound, ValidationError
from shop import refunds
from shop.fulfilment import OPEN_AFTER_SALE
from shop.models import (
    AFTER_SALE_KINDS,
    AS_APPROVED,
    AS_CANCELLED,
    AS_REFUSED,
    AS_REQUESTED,
    CLOSED,
    COMPLETED,
    CREATED,
    REFUND_ONLY,
    RETURN_REFUND,
    RF_SUCCESS,
    TILL,
    AfterSale,
    AfterSaleLine,
    Order,
)
from shop.settings import get_settings

MAX_REASON = 200
MAX_REQUESTS_PER_ORDER = 99


class AfterSaleClosed(Conflict):
    """The request is not in a state this action applies to."""

    def __init__(self, message=None):
        super().__init__(
            message or _l("This request was already decided or cancelled."),
            code="after_sale_state",
        )


def _text(value: str | None, field: str, *, required: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise ValidationError(_l("This field is required."), field=field)
    if len(value) > MAX_REASON:
        raise ValidationError(_l("At most %(n)d characters.", n=MAX_REASON), field=field)
    return value


def open_line_ids(order_id: int) -> set[int]:
    """The order's lines in an open request."""
    return set(
        db.session.execute(
            select(AfterSaleLine.order_line_id)
            .join(AfterSale, AfterSale.id == AfterSaleLine.after_sale_id)
            .where(AfterSale.order_id == order_id, AfterSale.status.in_(OPEN_AFTER_SALE))
        ).scalars()
    )


def window_open(order: Order, *, now: dt.datetime) -> bool:
    """Whether the member may still ask for an after-sale on this order."""
    if order.channel == TILL or order.status in (CREATED, CLOSED) or order.paid_fen <= 0:
        return False
    if order.status == COMPLETED:
        days = get_settings().return_window_days
        return order.completed_at is not None and now <= order.completed_at + dt.timedelta(
            days=days
        )
    return True


def request(
    *,
    order_id: int,
    member_id: int,
    kind: str,
    items: list[refunds.Item],
    reason: str = "",
    now: dt.datetime | None = None,
) -> AfterSale:
    """Open a request for lines of the member's own order."""
    if kind not in AFTER_SALE_KINDS:
        raise ValidationError(_l("Choose refund only or return and refund."), field="kind")
    reason = _text(reason, "reason", required=True)
    now = now or utcnow()
    order = refunds.lock_order(order_id)
    if order.member_id != member_id:
        raise NotFound(_l("No such order."))
    if not window_open(order, now=now):
        raise Conflict(
            _l("After-sale requests are closed for this order."),
            field="lines",
            code="after_sale_closed",
        )
    busy = open_line_ids(order.id)
    for i, item in enumerate(items):
        if item.order_line_id in busy:
            raise Conflict(
                _l("This line already has an open request."),
                field=f"lines.{i}",
                code="after_sale_open",
            )
    lines = refunds.order_lines(order.id)
    picked = refunds.check_items(order, lines, items, restock=kind == RETURN_REFUND)
    n = (
        db.session.execute(
            select(func.count()).select_from(AfterSale).where(AfterSale.order_id == order.id)
        ).scalar_one()
        + 1
    )
    if n > MAX_REQUESTS_PER_ORDER:
        raise Conflict(_l("This order has too many requests."), code="after_sale_limit")
    req = AfterSale(
        request_no=f"{order.order_no}A{n}",
        order_id=order.id,
        member_id=member_id,
        kind=kind,
        status=AS_REQUESTED,
        reason=reason,
        amount_fen=sum(fen for _ln, _q, fen in picked),
    )
    db.session.add(req)
    db.session.flush()
    for line, qty, fen in picked:
        db.session.add(
            AfterSaleLine(after_sale_id=req.id, order_line_id=line.id, quantity=qty, amount_fen=fen)
        )
    db.session.flush()
    return req


def _get(after_sale_id: int) -> AfterSale:
    req = db.session.execute(
        select(AfterSale)
        .where(AfterSale.id == after_sale_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if req is None:
        raise NotFound(_l("No such request."))
    return req


def _flip(req: AfterSale, *, frm: tuple[str, ...], to: str, **values) -> None:
    won = db.session.execute(
        update(AfterSale)
        .where(AfterSale.id == req.id, AfterSale.status.in_(frm))
        .values(status=to, updated_at=utcnow(), **values)
        .returning(AfterSale.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    if won is None:
        raise AfterSaleClosed()


def _items(req: AfterSale) -> list[refunds.Item]:
    return [
        refunds.Item(order_line_id=ln.order_line_id, quantity=ln.quantity, amount_fen=ln.amount_fen)
        for ln in db.session.execute(
            select(AfterSaleLine)
            .where(AfterSaleLine.after_sale_id == req.id)
            .order_by(AfterSaleLine.id)
        ).scalars()
    ]


def _audit(req: AfterSale, action: str, **after) -> None:
    audit.record(
        action=action,
        object_type="shop_after_sale",
        object_id=req.id,
        after={"request_no": req.request_no, **after},
    )


def approve(*, after_sale_id: int, operator: str | None = None, now=None) -> AfterSale:
    """Approve: a refund-only request's refund starts; a return waits for the goods."""
    now = now or utcnow()
    req = _get(after_sale_id)
    refunds.lock_order(req.order_id)
    _flip(req, frm=(AS_REQUESTED,), to=AS_APPROVED, decided_by=operator, decided_at=now)
    _audit(req, "shop_after_sale_approve", by=operator)
    if req.kind == REFUND_ONLY:
        refunds.start(
            order_id=req.order_id,
            items=_items(req),
            reason=req.reason,
            after_sale_id=req.id,
            restock=False,
            operator=operator,
            now=now,
        )
    return _get(req.id)


def receive_return(*, after_sale_id: int, operator: str | None = None, now=None) -> AfterSale:
    """The returned goods arrived: refund them (they are restocked when it succeeds).

    Also retries the refund of an approved request whose refund failed."""
    now = now or utcnow()
    req = _get(after_sale_id)
    refunds.lock_order(req.order_id)
    req = _get(after_sale_id)
    if req.status != AS_APPROVED:
        raise AfterSaleClosed()
    _audit(req, "shop_after_sale_refund", by=operator)
    refunds.start(
        order_id=req.order_id,
        items=_items(req),
        reason=req.reason,
        after_sale_id=req.id,
        restock=req.kind == RETURN_REFUND,
        operator=operator,
        now=now,
    )
    return _get(req.id)


def refuse(*, after_sale_id: int, reason: str, operator: str | None = None, now=None) -> AfterSale:
    """Refuse, with the reason the member reads."""
    reason = _text(reason, "refuse_reason", required=True)
    now = now or utcnow()
    req = _get(after_sale_id)
    _flip(
        req,
        frm=(AS_REQUESTED, AS_APPROVED),
        to=AS_REFUSED,
        decided_by=operator,
        decided_at=now,
        refuse_reason=reason,
    )
    _audit(req, "shop_after_sale_refuse", by=operator, reason=reason)
    return _get(req.id)


def cancel(*, after_sale_id: int, member_id: int) -> AfterSale:
    """The member withdraws a request not yet being refunded."""
    req = _get(after_sale_id)
    if req.member_id != member_id:
        raise NotFound(_l("No such request."))
    _flip(req, frm=(AS_REQUESTED, AS_APPROVED), to=AS_CANCELLED)
    return _get(req.id)


def set_return_tracking(*, after_sale_id: int, member_id: int, tracking_no: str) -> AfterSale:
    """The member tells the shop how the goods come back."""
    req = _get(after_sale_id)
    if req.member_id != member_id:
        raise NotFound(_l("No such request."))
    tracking_no = (tracking_no or "").strip()
    if not tracking_no or len(tracking_no) > 64:
        raise ValidationError(_l("Enter the tracking number."), field="return_tracking_no")
    if req.kind != RETURN_REFUND:
        raise AfterSaleClosed(_l("Only a return needs a tracking number."))
    _flip(req, frm=(AS_REQUESTED, AS_APPROVED), to=req.status, return_tracking_no=tracking_no)
    return _get(req.id)


def member_view(order: Order) -> dict:
    """What the member's order page (and the mini-program) shows of an order."""
    from shop import queries

    s = queries.story(order)
    busy = open_line_ids(order.id)
    may_request = window_open(order, now=utcnow())
    # Money back per line (refunds that succeeded) and what is still on its way; the points
    # the member got back and those taken back with them.
    done: dict[int, int] = {}
    points_back = points_taken = 0
    # A second payment of the order (paid in two places): returned whole, not a refund.
    paid_twice = [
        {"amount_fen": refund.amount_fen, "returned": refund.status == RF_SUCCESS}
        for refund, _lines in s.refunds
        if refund.payment_id is not None
    ]
    for refund, refund_lines in s.refunds:
        if refund.status != RF_SUCCESS or refund.payment_id is not None:
            continue
        points_back += refund.points_returned
        points_taken += refund.points_reversed
        for rl in refund_lines:
            done[rl.order_line_id] = done.get(rl.order_line_id, 0) + rl.amount_fen
    lines = []
    for ln in s.lines:
        units_left, fen_left = refunds.left(ln)
        refunded = done.get(ln.id, 0)
        lines.append(
            {
                "line": ln,
                "units_left": units_left,
                "fen_left": fen_left,
                "refunded_fen": refunded,
                "refunding_fen": max(ln.refunded_fen - refunded, 0),
                "requestable": may_request and ln.id not in busy and fen_left > 0,
                "open_request": ln.id in busy,
            }
        )
    return {
        "s": s,
        "lines": lines,
        "points_back": points_back,
        "points_taken": points_taken,
        "paid_twice": paid_twice,
    }
