"""The points mall: coupons and gifts at a price in points.

An exchange spends the points (points' own ledger, with an idempotency key) and issues the
coupon in the caller's transaction: both happen, or neither, and a refused exchange writes
nothing. Locks are always taken in one order (the member's points account, then the
template, then the item) so that concurrent exchanges queue instead of deadlocking; the hot
rows (the template's and the item's stock) are taken last, held as briefly as possible.

The hot path (no limits, no partner codes, an account that pays without expiring anything)
is three statements of Core SQL, no ORM objects: one read of the item with its template, the
member and whether the key was used; the lock of the member's points account
(``points.spending.lock``); and one statement (``coupons.mall_sql.EXCHANGE``) that spends the
points, takes both stocks, issues the coupon and records the stock line and the order, or
writes nothing at all. The caller's commit follows, so the hot rows stay locked for that
statement and the commit only. Every other case takes the general path: the same steps one
by one in a savepoint (``_exchange_general``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import psycopg
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from core.db import db, utcnow
from core.errors import Conflict, NotFound
from core.tenancy import require_brand_id
from coupons import codes
from coupons import mall_sql as sql
from coupons.errors import NotEligible, SoldOut
from coupons.issuance import _bump_counter, brand_tz, check_key, issue, local_day, validity
from coupons.models import AVAILABLE, THIRD_PARTY, MallItem, MallOrder
from members.models import ACTIVE
from points import services as points
from points import spending
from points.spending import fetch_one

# Mall limits live in the coupon counters under a period no template uses.
MALL_PERIOD = "mall"


def order_by_key(key: str) -> MallOrder | None:
    return db.session.execute(
        select(MallOrder).where(MallOrder.idempotency_key == key)
    ).scalar_one_or_none()


@dataclasses.dataclass(frozen=True)
class Exchanged:
    """A done exchange: its order, the points entry and the coupon."""

    order_id: int
    item_id: int
    member_id: int
    points: int
    points_entry_id: int
    coupon_id: int
    title: str


def _replayed(order: MallOrder, item_id: int, member_id: int, title: str) -> Exchanged:
    if order.item_id != item_id or order.member_id != member_id:
        raise Conflict(_l("This idempotency key was already used for another exchange."))
    return Exchanged(
        order_id=order.id,
        item_id=order.item_id,
        member_id=order.member_id,
        points=order.points,
        points_entry_id=order.points_entry_id,
        coupon_id=order.coupon_id,
        title=title,
    )


def _sold_out(row) -> SoldOut:
    if not row.tpl_ok:
        return SoldOut(_l("Sorry, this coupon is all gone."))
    return SoldOut(_l("Sorry, this item is all gone."))


def exchange(
    *, item_id: int, member_id: int, idempotency_key: str, now: dt.datetime | None = None
) -> Exchanged:
    """Spend the item's price in points and issue its coupon, atomically and once per key."""
    key = check_key(idempotency_key)
    now = now or utcnow()
    if not isinstance(member_id, int) or isinstance(member_id, bool):
        raise NotFound(_l("Unknown member."), field="member_id")
    bid = require_brand_id()
    db.session.flush()  # the statements below bypass the ORM
    conn = db.session.connection()
    item = fetch_one(conn, sql.ITEM, {"b": bid, "i": item_id, "m": member_id, "order_key": key})
    if item is not None and item.done is not None:
        return _replayed(db.session.get(MallOrder, item.done), item_id, member_id, item.title)
    if item is None or not item.item_active:
        existing = order_by_key(key)  # a repeated call answers even if the item went since
        if existing is not None:
            return _replayed(existing, item_id, member_id, item.title if item else "")
        raise NotFound(_l("This item is not offered."), field="item_id")
    if item.member_status != ACTIVE:
        raise NotFound(_l("Unknown member."), field="member_id")
    if item.tier_ids and item.tier_id not in [int(t) for t in item.tier_ids]:
        raise NotEligible(_l("Your membership level cannot exchange this item."))
    # Refuse what is already gone before taking any lock (the last statement checks again).
    if not item.tpl_active or (
        not item.valid_days and (item.valid_until is None or item.valid_until <= now)
    ):
        raise SoldOut(_l("This coupon is no longer offered."))
    limits = item.item_limit or item.per_member_limit or item.per_day_limit
    if not limits:  # (with limits, the member's own limit is the answer to give first)
        if item.item_stock is not None and item.sold >= item.item_stock:
            raise SoldOut(_l("Sorry, this item is all gone."))
        if item.tpl_stock is not None and item.issued >= item.tpl_stock:
            raise SoldOut(_l("Sorry, this coupon is all gone."))
    tz = brand_tz()
    day = local_day(now, tz)
    valid_from, valid_until = validity(item, issued_at=now, tz=tz)
    params = {
        "b": bid,
        "t": item.template_id,
        "i": item_id,
        "m": member_id,
        "p": item.price_points,
        "code": codes.bulk_codes(1)[0],  # (one CSPRNG read, where new_code makes 16)
        "status": AVAILABLE,
        "coupon_key": f"mall:{key}",
        "stock_key": f"issue:mall:{key}",
        "order_key": key,
        "now": now,
        "created": utcnow(),
        "day": day,
        "vf": valid_from,
        "vu": valid_until,
    }
    if not limits and item.kind != THIRD_PARTY:
        locked = spending.lock(member_id=member_id, points=item.price_points, now=now, conn=conn)
        if locked is not None:
            done = _exchange_fast(conn, locked, item, params, key)
            if done is not None:
                return done
    return _exchange_general(item, params, key, now, day)


def _exchange_fast(conn, locked, item, params: dict, key: str) -> Exchanged | None:
    """The whole exchange in one statement; None if the general path must answer."""
    params = {
        **params,
        **spending.spend_params(
            locked,
            member_id=params["m"],
            points=item.price_points,
            reason="mall",
            key=f"mall:{key}",
            now=params["now"],
        ),
    }
    try:
        row = fetch_one(conn, sql.EXCHANGE, params)
    except psycopg.IntegrityError as exc:
        # Only a key (or code) taken by another member's transaction since the account lock
        # gets here; the statement wrote nothing but the transaction cannot go on.
        raise Conflict(_l("This idempotency key was already used for another exchange.")) from exc
    if row.go:
        if row.order_id is None or row.entry_id is None or row.balance is None:
            raise RuntimeError("mall exchange wrote part of its rows")  # cannot happen
        return Exchanged(
            order_id=row.order_id,
            item_id=params["i"],
            member_id=params["m"],
            points=item.price_points,
            points_entry_id=row.entry_id,
            coupon_id=row.coupon_id,
            title=item.title,
        )
    # Nothing was written.
    if row.done:
        return _replayed(order_by_key(key), params["i"], params["m"], item.title)
    if not row.covered or row.used:
        return None  # lots that disagree, or a key used elsewhere: the general path answers
    raise _sold_out(row)


def _exchange_general(item, params: dict, key: str, now: dt.datetime, day) -> Exchanged:
    """Any exchange, in a savepoint: the points, the limits, then the coupon and stock."""
    item_id, member_id = params["i"], params["m"]
    try:
        with db.session.begin_nested():
            entry_id = points.spend_id(
                member_id=member_id,
                points=item.price_points,
                reason="mall",
                idempotency_key=f"mall:{key}",
                now=now,
            )
            if item.item_limit:
                _bump_counter(item_id, member_id, MALL_PERIOD, item.item_limit)
            if item.kind == THIRD_PARTY:  # a partner code to hand out: the general issuance
                return _exchange_third_party(item_id, item, member_id, entry_id, key, now)
            if item.per_member_limit:
                _bump_counter(item.template_id, member_id, "all", item.per_member_limit)
            if item.per_day_limit:
                _bump_counter(item.template_id, member_id, day.isoformat(), item.per_day_limit)
            row = fetch_one(db.session.connection(), sql.ISSUE, {**params, "entry": entry_id})
            if not row.go:  # nothing written by it; the savepoint undoes the spend
                raise _sold_out(row)
    except (IntegrityError, psycopg.IntegrityError):  # (the ORM's, or the driver's own)
        existing = order_by_key(key)
        if existing is None:
            raise
        return _replayed(existing, item_id, member_id, item.title)
    return Exchanged(
        order_id=row.order_id,
        item_id=item_id,
        member_id=member_id,
        points=item.price_points,
        points_entry_id=entry_id,
        coupon_id=row.coupon_id,
        title=item.title,
    )


def _exchange_third_party(item_id: int, item, member_id: int, entry_id: int, key: str, now):
    """The rest of an exchange through ``issuance.issue`` (third-party codes)."""
    coupon = issue(
        template_id=item.template_id,
        member_id=member_id,
        source="mall",
        idempotency_key=f"mall:{key}",
        now=now,
    )
    sold = db.session.execute(
        update(MallItem)
        .where(
            MallItem.id == item_id,
            MallItem.active.is_(True),
            (MallItem.stock.is_(None)) | (MallItem.sold < MallItem.stock),
        )
        .values(sold=MallItem.sold + 1)
        .returning(MallItem.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    if sold is None:
        raise SoldOut(_l("Sorry, this item is all gone."))
    order = MallOrder(
        item_id=item_id,
        member_id=member_id,
        points=item.price_points,
        points_entry_id=entry_id,
        coupon_id=coupon.id,
        idempotency_key=key,
        created_at=now,
    )
    db.session.add(order)
    db.session.flush()
    return _replayed(order, item_id, member_id, item.title)
