"""Which guide and stores an order is credited to, decided once when the order is created,
and the guides' performance (业绩) ledger.

The decision (``resolve``): a guide chosen at the till wins for that till order; otherwise
the customer's exclusive guide while the binding is protected; otherwise the guide whose
share link the customer opened in the last ``link_days`` days; otherwise the exclusive guide
while the binding is valid; otherwise no guide. The guide must be an active guide of the
brand. A guide buying for themselves is recorded as such and earns nothing unless the brand
allows it (``earns``). The snapshot never changes afterwards: performance and commission are
computed from it, not from the binding as it is later.

Performance: + what the customer paid for the goods (without shipping) when the order is
paid, - what is refunded later (never past the sale); one line per event, keyed by it, and
the day's rollup in the same transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

from core.db import db, transaction_memo, utcnow
from core.tenancy import require_brand_id
from guide_distribution.models import (
    SOURCE_BINDING,
    SOURCE_NONE,
    SOURCE_SHARE_LINK,
    SOURCE_TILL,
    CustomerBinding,
    GuideVisit,
    OrderAttribution,
    PerformanceLine,
)
from guide_distribution.settings import get_settings
from members.models import Member
from org.models import Staff
from shop import numbers
from shop import signals as shop_signals
from shop.models import TILL, Order


@dataclasses.dataclass(frozen=True)
class Decision:
    guide_id: int | None
    guide_store_id: int | None
    source: str
    self_purchase: bool
    earns: bool


def active_guide(guide_id: int | None) -> Staff | None:
    """The brand's active guide of that id, or None (another brand's id counts as none)."""
    if not guide_id:
        return None
    staff = db.session.execute(
        select(Staff).where(Staff.id == guide_id, Staff.role == "guide", Staff.active.is_(True))
    ).scalar_one_or_none()
    return staff


def _binding_guide(member_id: int, now: dt.datetime) -> tuple[int | None, bool]:
    """The member's exclusive guide while the binding is valid, and whether it is protected."""
    row = db.session.execute(
        select(
            CustomerBinding.guide_id, CustomerBinding.protected_until, CustomerBinding.expires_at
        ).where(CustomerBinding.member_id == member_id)
    ).first()
    if row is None or row.guide_id is None:
        return None, False
    if row.expires_at is not None and row.expires_at <= now:
        return None, False
    return row.guide_id, row.protected_until is not None and row.protected_until > now


def _link_guide(member_id: int, now: dt.datetime, days: int) -> int | None:
    return db.session.execute(
        select(GuideVisit.guide_id)
        .where(
            GuideVisit.member_id == member_id,
            GuideVisit.last_at > now - dt.timedelta(days=days),
        )
        .order_by(GuideVisit.last_at.desc(), GuideVisit.id.desc())
        .limit(1)
    ).scalar()


def resolve(
    *, member_id: int | None, channel: str, till_guide_id: int | None, now: dt.datetime
) -> Decision:
    settings = get_settings()
    guide, source = None, SOURCE_NONE
    if channel == TILL and till_guide_id:
        guide, source = active_guide(till_guide_id), SOURCE_TILL
    if guide is None and member_id is not None:
        bound_id, protected = _binding_guide(member_id, now)
        candidates: list[tuple[int | None, str]] = []
        if protected:
            candidates.append((bound_id, SOURCE_BINDING))
        candidates.append((_link_guide(member_id, now, settings.link_days), SOURCE_SHARE_LINK))
        candidates.append((bound_id, SOURCE_BINDING))
        for cand_id, cand_source in candidates:
            guide = active_guide(cand_id)
            if guide is not None:
                source = cand_source
                break
    if guide is None:
        return Decision(None, None, SOURCE_NONE, False, False)
    self_purchase = False
    if member_id is not None:
        member = db.session.get(Member, member_id)  # the ordering request has it loaded
        phone = member.phone if member is not None else None
        self_purchase = bool(phone) and phone == guide.phone
    earns = not self_purchase or settings.self_purchase_earns
    return Decision(guide.id, guide.store_id, source, self_purchase, earns)


def record(
    *,
    order_id: int,
    member_id: int | None,
    fulfil_store_id: int | None,
    channel: str,
    till_guide_id: int | None = None,
    now: dt.datetime | None = None,
) -> OrderAttribution:
    """Freeze the order's attribution (once; a second call returns the first snapshot)."""
    now = now or utcnow()
    existing = for_order(order_id)
    if existing is not None:
        return existing
    d = resolve(member_id=member_id, channel=channel, till_guide_id=till_guide_id, now=now)
    made = db.session.scalars(
        insert(OrderAttribution)
        .values(
            brand_id=require_brand_id(),
            order_id=order_id,
            member_id=member_id,
            channel=channel,
            guide_id=d.guide_id,
            guide_store_id=d.guide_store_id,
            fulfil_store_id=fulfil_store_id,
            source=d.source,
            self_purchase=d.self_purchase,
            earns=d.earns,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["brand_id", "order_id"])
        .returning(OrderAttribution)
    ).first()
    if made is None:  # recorded meanwhile by another transaction
        return for_order(order_id)
    transaction_memo(_KEPT)[order_id] = made
    return made


# An order's paying steps (the guide's performance, the commission) each ask for its
# snapshot, which never changes: kept for the transaction once read or written.
_KEPT = "guide_order_attributions"


def for_order(order_id: int) -> OrderAttribution | None:
    """The order's attribution snapshot, or None when none was recorded."""
    kept = transaction_memo(_KEPT)
    found = kept.get(order_id)
    if found is None:
        found = db.session.execute(
            select(OrderAttribution).where(OrderAttribution.order_id == order_id)
        ).scalar_one_or_none()
        if found is not None:
            kept[order_id] = found
    return found


_ROLLUP = text(
    "INSERT INTO guide_sales_day AS r "
    "(brand_id, day, guide_id, store_key, orders, sales_fen, refunded_fen) "
    "VALUES (:brand_id, :day, :guide_id, :store_key, :orders, :sales, :refunded) "
    "ON CONFLICT (brand_id, day, guide_id, store_key) DO UPDATE SET "
    "orders = r.orders + EXCLUDED.orders, sales_fen = r.sales_fen + EXCLUDED.sales_fen, "
    "refunded_fen = r.refunded_fen + EXCLUDED.refunded_fen"
)


def _add_line(att: OrderAttribution, *, key: str, amount_fen: int, orders: int, day) -> bool:
    """Append a performance line (once per key) and roll it up; True if this call added it."""
    brand_id = require_brand_id()
    added = db.session.execute(
        insert(PerformanceLine)
        .values(
            brand_id=brand_id,
            key=key,
            guide_id=att.guide_id,
            store_id=att.guide_store_id,
            order_id=att.order_id,
            amount_fen=amount_fen,
            orders=orders,
            day=day,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["brand_id", "key"])
        .returning(PerformanceLine.id)
    ).scalar()
    if added is None:
        return False
    db.session.execute(
        _ROLLUP,
        {
            "brand_id": brand_id,
            "day": day,
            "guide_id": att.guide_id,
            "store_key": att.guide_store_id or 0,
            "orders": orders,
            "sales": max(amount_fen, 0),
            "refunded": max(-amount_fen, 0),
        },
    )
    return True


def on_paid(order: Order) -> bool:
    """Credit the paid order's goods to its guide (once)."""
    att = for_order(order.id)
    if att is None or att.guide_id is None or not att.earns:
        return False
    amount = max(order.paid_fen - order.shipping_fen, 0)
    return _add_line(
        att,
        key=f"paid:{order.id}",
        amount_fen=amount,
        orders=1,
        day=numbers.local_day(order.paid_at),
    )


def on_refunded(order: Order, *, refund_id: int, amount_fen: int) -> bool:
    """Take a refund off the guide's performance (once per refund, never past the sale)."""
    att = for_order(order.id)
    if att is None or att.guide_id is None or not att.earns:
        return False
    left = db.session.execute(
        select(func.coalesce(func.sum(PerformanceLine.amount_fen), 0)).where(
            PerformanceLine.order_id == order.id
        )
    ).scalar()
    take = min(amount_fen, left)
    if take <= 0:
        return False
    return _add_line(
        att, key=f"refund:{refund_id}", amount_fen=-take, orders=0, day=numbers.local_day()
    )


def _on_order_created(brand_id, *, order_id, member_id, store_id, guide_id, channel, **_):
    record(
        order_id=order_id,
        member_id=member_id,
        fulfil_store_id=store_id,
        channel=channel,
        till_guide_id=guide_id,
    )


def _on_order_paid(brand_id, *, order_id, **_):
    order = db.session.get(Order, order_id)
    if order is not None:
        on_paid(order)


def _on_order_refunded(brand_id, *, order_id, refund_id, amount_fen, **_):
    order = db.session.get(Order, order_id)
    if order is not None:
        on_refunded(order, refund_id=refund_id, amount_fen=amount_fen)


def connect() -> None:
    shop_signals.order_created.connect(_on_order_created)
    shop_signals.order_paid.connect(_on_order_paid)
    shop_signals.order_refunded.connect(_on_order_refunded)
