"""Reads of orders for the console and the member pages: lists by keyset, an order's whole
story (lines, payments, refunds, notifies, after-sales), the after-sale queue, the
reconciliation issues and the sales rollup for the overview.

Every statement is scoped to the current brand by ``core.tenancy``; a store's staff pass
their ``store_id`` and see that store's orders only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import Select, func, or_, select

from core.db import db
from core.validators import is_mobile, normalize_phone
from members.models import Member
from org.models import Store
from shop.models import (
    AS_APPROVED,
    AS_REFUNDING,
    AS_REQUESTED,
    CHANNELS,
    ORDER_STATES,
    AfterSale,
    AfterSaleLine,
    Order,
    OrderLine,
    Payment,
    PayNotifyLog,
    ReconciliationIssue,
    Refund,
    RefundLine,
    SalesDayRollup,
)

QUEUE_TABS = {
    "open": (AS_REQUESTED, AS_APPROVED, AS_REFUNDING),
    "requested": (AS_REQUESTED,),
    "approved": (AS_APPROVED,),
    "refunding": (AS_REFUNDING,),
    "closed": ("refunded", "refused", "cancelled"),
}


def orders(
    *,
    q: str = "",
    status: str | None = None,
    channel: str | None = None,
    store_id: int | None = None,
) -> Select:
    """(Order, member phone, store name) rows; ``q`` is an order number or a phone number."""
    stmt = (
        select(Order, Member.phone, Store.name)
        .outerjoin(Member, Member.id == Order.member_id)
        .outerjoin(Store, Store.id == Order.store_id)
    )
    q = (q or "").strip()
    if q:
        digits = "".join(ch for ch in q if ch.isdigit())
        phone = normalize_phone(q)
        if is_mobile(phone):
            member_ids = select(Member.id).where(Member.phone == phone).scalar_subquery()
            stmt = stmt.where(Order.member_id.in_(member_ids))
        elif digits and len(digits) == len(q):
            stmt = stmt.where(Order.order_no == q)
        else:
            stmt = stmt.where(or_(Order.order_no == q, Order.pos_order_no == q))
    if status in ORDER_STATES:
        stmt = stmt.where(Order.status == status)
    if channel in CHANNELS:
        stmt = stmt.where(Order.channel == channel)
    if store_id:
        stmt = stmt.where(Order.store_id == store_id)
    return stmt


def member_orders(*, member_id: int) -> Select:
    """A member's orders (newest first by the caller's keyset order)."""
    return select(Order).where(Order.member_id == member_id)


@dataclasses.dataclass
class OrderStory:
    order: Order
    lines: list[OrderLine]
    payments: list[Payment]
    refunds: list[tuple[Refund, list[RefundLine]]]
    after_sales: list[tuple[AfterSale, list[AfterSaleLine]]]
    notifies: list[PayNotifyLog]
    store: Store | None
    member: Member | None


def order_by_no(order_no: str) -> Order | None:
    return db.session.execute(
        select(Order).where(Order.order_no == (order_no or "")[:32])
    ).scalar_one_or_none()


def story(order: Order) -> OrderStory:
    """Everything the order's detail page shows."""
    lines = list(
        db.session.scalars(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
        )
    )
    payments = list(
        db.session.scalars(select(Payment).where(Payment.order_id == order.id).order_by(Payment.id))
    )
    refund_rows = list(
        db.session.scalars(select(Refund).where(Refund.order_id == order.id).order_by(Refund.id))
    )
    rlines: dict[int, list[RefundLine]] = {}
    if refund_rows:
        for rl in db.session.scalars(
            select(RefundLine)
            .where(RefundLine.refund_id.in_([r.id for r in refund_rows]))
            .order_by(RefundLine.id)
        ):
            rlines.setdefault(rl.refund_id, []).append(rl)
    requests = list(
        db.session.scalars(
            select(AfterSale).where(AfterSale.order_id == order.id).order_by(AfterSale.id)
        )
    )
    alines: dict[int, list[AfterSaleLine]] = {}
    if requests:
        for al in db.session.scalars(
            select(AfterSaleLine)
            .where(AfterSaleLine.after_sale_id.in_([a.id for a in requests]))
            .order_by(AfterSaleLine.id)
        ):
            alines.setdefault(al.after_sale_id, []).append(al)
    trade_nos = [p.out_trade_no for p in payments]
    notifies = []
    if trade_nos:
        notifies = list(
            db.session.scalars(
                select(PayNotifyLog)
                .where(PayNotifyLog.out_trade_no.in_(trade_nos))
                .order_by(PayNotifyLog.id)
                .limit(200)
            )
        )
    return OrderStory(
        order=order,
        lines=lines,
        payments=payments,
        refunds=[(r, rlines.get(r.id, [])) for r in refund_rows],
        after_sales=[(a, alines.get(a.id, [])) for a in requests],
        notifies=notifies,
        store=db.session.get(Store, order.store_id) if order.store_id else None,
        member=db.session.get(Member, order.member_id) if order.member_id else None,
    )


def after_sale_queue(*, tab: str = "open", store_id: int | None = None) -> Select:
    """(AfterSale, order number, order's store name, member phone) rows of one tab."""
    stmt = (
        select(AfterSale, Order.order_no, Store.name, Member.phone)
        .join(Order, Order.id == AfterSale.order_id)
        .outerjoin(Store, Store.id == Order.store_id)
        .outerjoin(Member, Member.id == Order.member_id)
        .where(AfterSale.status.in_(QUEUE_TABS.get(tab, QUEUE_TABS["open"])))
    )
    if store_id:
        stmt = stmt.where(Order.store_id == store_id)
    return stmt


def after_sale_lines(after_sale_ids: list[int]) -> dict[int, list[tuple[AfterSaleLine, str]]]:
    """The lines of these requests with the product names, by request."""
    out: dict[int, list[tuple[AfterSaleLine, str]]] = {}
    if not after_sale_ids:
        return out
    rows = db.session.execute(
        select(AfterSaleLine, OrderLine.name, OrderLine.spec_text)
        .join(OrderLine, OrderLine.id == AfterSaleLine.order_line_id)
        .where(AfterSaleLine.after_sale_id.in_(after_sale_ids))
        .order_by(AfterSaleLine.id)
    )
    for al, name, spec in rows:
        out.setdefault(al.after_sale_id, []).append((al, f"{name} {spec}".strip()))
    return out


def reconciliation_days(*, limit: int = 30) -> list[tuple[dt.date, int, int]]:
    """(day, issues, unresolved) for the latest days with issues."""
    rows = db.session.execute(
        select(
            ReconciliationIssue.bill_date,
            func.count(),
            func.count().filter(ReconciliationIssue.resolved.is_(False)),
        )
        .group_by(ReconciliationIssue.bill_date)
        .order_by(ReconciliationIssue.bill_date.desc())
        .limit(limit)
    ).all()
    return [(d, int(n), int(u)) for d, n, u in rows]


def reconciliation_issues(*, day: dt.date) -> list[ReconciliationIssue]:
    return list(
        db.session.scalars(
            select(ReconciliationIssue)
            .where(ReconciliationIssue.bill_date == day)
            .order_by(ReconciliationIssue.resolved, ReconciliationIssue.id)
        )
    )


def sales_daily(*, start: dt.date, end: dt.date, store_id: int | None = None) -> list[tuple]:
    """(day, orders, paid_fen, refunded_fen) per day in [start, end)."""
    stmt = (
        select(
            SalesDayRollup.day,
            func.sum(SalesDayRollup.orders),
            func.sum(SalesDayRollup.paid_fen),
            func.sum(SalesDayRollup.refunded_fen),
        )
        .where(SalesDayRollup.day >= start, SalesDayRollup.day < end)
        .group_by(SalesDayRollup.day)
        .order_by(SalesDayRollup.day)
    )
    if store_id:
        stmt = stmt.where(SalesDayRollup.store_key == store_id)
    return [tuple(r) for r in db.session.execute(stmt).all()]


def sales_by(
    *, column: str, start: dt.date, end: dt.date, store_id: int | None = None
) -> list[tuple]:
    """(store_key or channel, paid_fen - refunded_fen) over [start, end), biggest first."""
    key = SalesDayRollup.store_key if column == "store" else SalesDayRollup.channel
    net = func.sum(SalesDayRollup.paid_fen - SalesDayRollup.refunded_fen)
    stmt = (
        select(key, net)
        .where(SalesDayRollup.day >= start, SalesDayRollup.day < end)
        .group_by(key)
        .order_by(net.desc())
        .limit(10)
    )
    if store_id:
        stmt = stmt.where(SalesDayRollup.store_key == store_id)
    return [tuple(r) for r in db.session.execute(stmt).all()]


def store_names(ids) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(select(Store.id, Store.name).where(Store.id.in_(ids))).all())
