"""The commission ledger and the guides' accounts.

A paid order whose attribution earns gets one commission line per order line (pending);
receipt or pick-up freezes them (a till order: its completion, at creation); completion
sets when they settle (``settle_after_days`` later, see ``settlement``); settled commission
is withdrawable. A refund takes back each line's commission in proportion to what was
refunded of it, at any stage; what cannot be taken from the withdrawable balance (it was
paid out already) becomes debt (``owed``), recovered first from any later commission that
becomes withdrawable.

Every change of a guide's balances:
- takes the guide's lock, the account row ``FOR UPDATE`` (after the commission lines it
  moves, which are always locked first, so two paths never wait on each other in reverse);
- appends one ``CommissionEntry`` keyed by its event (a repeated notify or job finds the key
  and changes nothing);
- changes the cached balances by one conditional UPDATE (no balance may go below zero).
The balances are always the sums of the entries.
"""

from __future__ import annotations

import dataclasses

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from core.db import db, utcnow
from core.errors import Conflict
from core.tenancy import require_brand_id
from guide_distribution import attribution
from guide_distribution import commission as rules
from guide_distribution.models.commission import (
    FROZEN,
    PENDING,
    SETTLED,
    CommissionEntry,
    CommissionLine,
    GuideAccount,
)
from shop.models import RF_SUCCESS, Order, OrderLine, Refund, RefundLine

COLUMNS = ("pending", "frozen", "settled", "paying", "paid", "owed")


class InsufficientBalance(Conflict):
    def __init__(self, message=None, *, field: str | None = None):
        super().__init__(message or _l("The balance is not enough for this."), field=field)


@dataclasses.dataclass(frozen=True)
class Balances:
    pending: int = 0
    frozen: int = 0
    settled: int = 0
    paying: int = 0
    paid: int = 0
    owed: int = 0


def ensure_account(guide_id: int) -> None:
    db.session.execute(
        insert(GuideAccount)
        .values(brand_id=require_brand_id(), guide_id=guide_id, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["brand_id", "guide_id"])
    )


def lock(guide_id: int) -> Balances:
    """Take the guide's lock (the account row, created if missing) and read the balances."""
    ensure_account(guide_id)
    row = db.session.execute(
        select(*(getattr(GuideAccount, f"{c}_fen") for c in COLUMNS))
        .where(GuideAccount.guide_id == guide_id)
        .with_for_update()
    ).one()
    return Balances(*(int(v) for v in row))


def balances(guide_id: int) -> Balances:
    row = db.session.execute(
        select(*(getattr(GuideAccount, f"{c}_fen") for c in COLUMNS)).where(
            GuideAccount.guide_id == guide_id
        )
    ).first()
    return Balances(*(int(v) for v in row)) if row else Balances()


def has_entry(key: str) -> bool:
    return (
        db.session.execute(select(CommissionEntry.id).where(CommissionEntry.key == key)).scalar()
        is not None
    )


def apply(
    guide_id: int,
    *,
    key: str,
    kind: str,
    order_id: int | None = None,
    payout_id: int | None = None,
    lines: int = 0,
    **deltas: int,
) -> None:
    """Append the entry and change the balances by ``deltas`` (pending=..., settled=...).

    The caller holds the guide's lock (``lock``) and checked the key. A balance that would go
    below zero raises ``InsufficientBalance`` and nothing is written."""
    d = {c: int(deltas.pop(c, 0)) for c in COLUMNS}
    if deltas:
        raise ValueError(f"unknown balances {sorted(deltas)}")
    sets = ", ".join(f"{c}_fen = {c}_fen + :{c}" for c in COLUMNS)
    guard = " AND ".join(f"{c}_fen + :{c} >= 0" for c in COLUMNS if d[c] < 0) or "TRUE"
    done = db.session.execute(
        text(
            f"UPDATE guide_account SET {sets}, updated_at = :now "  # noqa: S608 - fixed names
            f"WHERE brand_id = :brand AND guide_id = :guide AND {guard} RETURNING id"
        ),
        {**d, "now": utcnow(), "brand": require_brand_id(), "guide": guide_id},
    ).scalar()
    if done is None:
        raise InsufficientBalance()
    db.session.execute(
        insert(CommissionEntry).values(
            brand_id=require_brand_id(),
            key=key,
            guide_id=guide_id,
            kind=kind,
            order_id=order_id,
            payout_id=payout_id,
            lines=lines,
            created_at=utcnow(),
            **{f"d_{c}": v for c, v in d.items()},
        )
    )


# --- from the shop's order signals -------------------------------------------------------------


def on_paid(order: Order) -> int:
    """Commission lines for a paid order credited to an earning guide (once); the total."""
    att = attribution.for_order(order.id)
    if att is None or att.guide_id is None or not att.earns:
        return 0
    lines = list(
        db.session.execute(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
        ).scalars()
    )
    if not lines:
        return 0
    computed = rules.compute(order, lines, guide_id=att.guide_id)
    now = utcnow()
    added = db.session.execute(
        insert(CommissionLine)
        .values(
            [
                dict(
                    brand_id=require_brand_id(),
                    guide_id=att.guide_id,
                    store_id=att.guide_store_id,
                    order_id=order.id,
                    order_line_id=c.order_line_id,
                    base_fen=c.base_fen,
                    quantity=c.quantity,
                    rule=c.rule,
                    rule_id=c.rule_id,
                    rate_bp=c.rate_bp,
                    unit_fen=c.unit_fen,
                    amount_fen=c.amount_fen,
                    reversed_fen=0,
                    state=PENDING,
                    created_at=now,
                )
                for c in computed
            ]
        )
        .on_conflict_do_nothing(index_elements=["brand_id", "order_line_id"])
        .returning(CommissionLine.amount_fen)
    ).all()
    if not added:
        return 0
    total = sum(int(a) for (a,) in added)
    key = f"earn:{order.id}"
    lock(att.guide_id)
    if not has_entry(key):
        apply(
            att.guide_id, key=key, kind="earn", order_id=order.id, lines=len(added), pending=total
        )
    return total


def _freeze(order_id: int, now) -> int:
    moved = db.session.execute(
        update(CommissionLine)
        .where(CommissionLine.order_id == order_id, CommissionLine.state == PENDING)
        .values(state=FROZEN, frozen_at=now)
        .returning(
            CommissionLine.id,
            CommissionLine.guide_id,
            CommissionLine.amount_fen - CommissionLine.reversed_fen,
        )
        .execution_options(synchronize_session=False)
    ).all()
    if not moved:
        return 0
    guide_id = moved[0][1]
    net = sum(int(r[2]) for r in moved)
    key = f"freeze:{order_id}:{min(r[0] for r in moved)}"
    lock(guide_id)
    if not has_entry(key):
        apply(
            guide_id,
            key=key,
            kind="freeze",
            order_id=order_id,
            lines=len(moved),
            pending=-net,
            frozen=net,
        )
    return len(moved)


def on_received(order_id: int, *, now=None) -> int:
    """Receipt or pick-up freezes the order's pending commission (once)."""
    return _freeze(order_id, now or utcnow())


def on_completed(order_id: int, *, now=None) -> int:
    """Completion freezes what is still pending (a till order) and sets when the frozen
    commission settles: ``settle_after_days`` later."""
    import datetime as dt

    from guide_distribution.settings import get_settings

    att = attribution.for_order(order_id)  # read already by the order's transaction
    if att is None or att.guide_id is None or not att.earns:
        return 0  # no commission line was made for the order (``on_paid``)
    now = now or utcnow()
    _freeze(order_id, now)
    due = now + dt.timedelta(days=get_settings().settle_after_days)
    return db.session.execute(
        update(CommissionLine)
        .where(
            CommissionLine.order_id == order_id,
            CommissionLine.state == FROZEN,
            CommissionLine.settle_due_at.is_(None),
        )
        .values(settle_due_at=due)
        .execution_options(synchronize_session=False)
    ).rowcount


def remaining(amount: int, base: int, refunded: int) -> int:
    """The commission a line keeps once ``refunded`` of its ``base`` went back (rounded
    down, so a full refund leaves nothing and partial ones never take more than earned)."""
    if base <= 0:
        return amount if refunded <= 0 else 0
    kept = max(base - min(refunded, base), 0)
    return amount * kept // base


def on_refunded(order_id: int, *, refund_id: int) -> int:
    """Take back commission in proportion to what the refund returned of each line (once per
    refund); what was paid out already becomes debt. Returns the amount taken back."""
    key = f"reverse:{refund_id}"
    clines = list(
        db.session.execute(
            select(CommissionLine)
            .where(CommissionLine.order_id == order_id)
            .order_by(CommissionLine.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalars()
    )
    if not clines:
        return 0
    guide_id = clines[0].guide_id
    before = lock(guide_id)
    if has_entry(key):
        return 0
    refunded = dict(
        db.session.execute(
            select(RefundLine.order_line_id, func.sum(RefundLine.amount_fen))
            .join(Refund, Refund.id == RefundLine.refund_id)
            .where(Refund.order_id == order_id, Refund.status == RF_SUCCESS)
            .group_by(RefundLine.order_line_id)
        ).all()
    )
    by_state = {PENDING: 0, FROZEN: 0, SETTLED: 0}
    touched = 0
    for cl in clines:
        keep = remaining(cl.amount_fen, cl.base_fen, int(refunded.get(cl.order_line_id) or 0))
        take = (cl.amount_fen - cl.reversed_fen) - keep
        if take <= 0:
            continue
        db.session.execute(
            update(CommissionLine)
            .where(CommissionLine.id == cl.id)
            .values(reversed_fen=CommissionLine.reversed_fen + take)
            .execution_options(synchronize_session=False)
        )
        by_state[cl.state] += take
        touched += 1
    total = sum(by_state.values())
    if total <= 0:
        return 0
    from_settled = min(by_state[SETTLED], before.settled)
    apply(
        guide_id,
        key=key,
        kind="reverse",
        order_id=order_id,
        lines=touched,
        pending=-by_state[PENDING],
        frozen=-by_state[FROZEN],
        settled=-from_settled,
        owed=by_state[SETTLED] - from_settled,
    )
    return total


# --- reading -----------------------------------------------------------------------------------


def lines_of_guide(guide_id: int):
    return select(CommissionLine).where(CommissionLine.guide_id == guide_id)


def entries_sum(guide_id: int) -> Balances:
    """The balances recomputed from the ledger (what the cached ones must equal)."""
    row = db.session.execute(
        select(
            *(func.coalesce(func.sum(getattr(CommissionEntry, f"d_{c}")), 0) for c in COLUMNS)
        ).where(CommissionEntry.guide_id == guide_id)
    ).one()
    return Balances(*(int(v) for v in row))


# --- wiring ------------------------------------------------------------------------------------


def _on_order_paid(brand_id, *, order_id, **_):
    order = db.session.get(Order, order_id)
    if order is not None:
        on_paid(order)


def _on_order_received(brand_id, *, order_id, **_):
    on_received(order_id)


def _on_order_completed(brand_id, *, order_id, **_):
    done_at = db.session.execute(select(Order.completed_at).where(Order.id == order_id)).scalar()
    on_completed(order_id, now=done_at)


def _on_order_refunded(brand_id, *, order_id, refund_id, **_):
    on_refunded(order_id, refund_id=refund_id)


def connect() -> None:
    from shop import signals as shop_signals

    shop_signals.order_paid.connect(_on_order_paid)
    shop_signals.order_received.connect(_on_order_received)
    shop_signals.order_completed.connect(_on_order_completed)
    shop_signals.order_refunded.connect(_on_order_refunded)
