"""Orders credited to a guide, paid, received, completed and refunded through the shop's own
services (so that its signals reach the commission ledger)."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import select

from core.db import db, utcnow
from guide_distribution import ledger
from guide_distribution.models import CustomerBinding
from guide_distribution.models.commission import CommissionLine
from shop import checkout, fulfilment, payments, refunds
from shop.models import OrderLine
from shop.pricing import Item
from tests import factories
from tests.shop.conftest import ADDRESS, member

_keys = itertools.count(1)


def guide(shop, **kw):
    return factories.staff(shop.brand, role="guide", store=shop.store, **kw)


def bound_member(g, **kw):
    m = member(**kw)
    now = utcnow()
    db.session.add(
        CustomerBinding(
            member_id=m.id,
            store_id=g.store_id,
            guide_id=g.id,
            source="scan",
            bound_at=now,
            protected_until=now + dt.timedelta(days=15),
        )
    )
    db.session.commit()
    return m


def pay_in_full(order, m) -> None:
    """Pay ``order`` through the mini-program as WeChat Pay's notify would confirm it."""
    payment, _ = payments.start_payment(
        order_no=order.order_no, member_id=m.id, mini_program=True, notify_url="https://x/n"
    )
    db.session.commit()
    payments.mark_paid(
        out_trade_no=payment.out_trade_no,
        transaction_id=f"T{order.id}",
        amount_fen=order.pay_fen,
        via="notify",
    )
    db.session.commit()


def paid_order(m, items: list[tuple[object, int]]):
    placed = checkout.checkout(
        member_id=m.id,
        items=[Item(sku.id, qty) for sku, qty in items],
        channel="mini_program",
        idempotency_key=f"gc{next(_keys)}",
        address=ADDRESS,
    )
    db.session.commit()
    order = placed.order
    pay_in_full(order, m)
    return order


def receive_and_complete(order, m, *, now=None):
    fulfilment.ship(order_id=order.id, carrier="SF", tracking_no=f"SF{order.id}")
    db.session.commit()
    fulfilment.confirm_receipt(order_id=order.id, member_id=m.id)
    db.session.commit()
    fulfilment.complete(order_id=order.id, now=now)
    db.session.commit()


def refund(order, *, amount_fen: int | None = None, line_index: int = 0):
    """Refund money of one line (None: all of it) and let it succeed."""
    lines = list(
        db.session.execute(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
        ).scalars()
    )
    line = lines[line_index]
    r = refunds.start(
        order_id=order.id,
        items=[refunds.Item(line.id, 0, amount_fen if amount_fen is not None else line.pay_fen)],
        idempotency_key=f"rf{next(_keys)}",
    )
    db.session.commit()
    refunds.succeed(refund_id=r.id, refund_no=f"R{r.id}", via="notify")
    db.session.commit()
    return r


def lines(order) -> list[CommissionLine]:
    return list(
        db.session.execute(
            select(CommissionLine)
            .where(CommissionLine.order_id == order.id)
            .order_by(CommissionLine.id)
            .execution_options(populate_existing=True)
        ).scalars()
    )


def assert_consistent(guide_id: int) -> ledger.Balances:
    """The cached balances equal the ledger's sums, and every fen of net commission is in
    exactly one place (pending, frozen, withdrawable, being paid, paid) less the debt."""
    bal = ledger.balances(guide_id)
    assert bal == ledger.entries_sum(guide_id)
    net = sum(
        a - r
        for a, r in db.session.execute(
            select(CommissionLine.amount_fen, CommissionLine.reversed_fen).where(
                CommissionLine.guide_id == guide_id
            )
        ).all()
    )
    assert bal.pending + bal.frozen + bal.settled + bal.paying + bal.paid - bal.owed == net
    return bal
