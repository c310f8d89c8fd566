"""Segments: a JSON condition tree, validated, and compiled to ONE SQL query of member ids.

A tree is a group ``{"op": "and" | "or" | "not", "items": [node, ...]}`` ("not" holds one
node) whose nodes are groups or conditions ``{"field", "op", "value"}`` plus, for some
fields, ``"days"`` (a window) and ``"channel"`` (``any`` / ``online`` / ``till``); the
fields and their operators are in ``campaigns.segment_fields``.

Every condition becomes a predicate on ``member`` — a column test, or an ``EXISTS`` over
the table that holds the fact, correlated on ``member_id`` and the brand, so PostgreSQL
runs it as a semi- or anti-join (or, under OR, as an index probe per member on the
``member_id`` indexes those tables have). Members are never loaded into Python.

Facts that have a default for members without a row (points balance 0, no purchases)
compile to ``NOT EXISTS (a row that breaks the condition)`` when the default satisfies it,
so a member with no points account still has "at most 100 points".

Interface used by push campaigns: ``member_ids(definition, store_id=...)`` (a ``Select`` of
one column, usable in ``INSERT ... SELECT``), ``count(...)`` and ``validate(...)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    func,
    not_,
    or_,
    select,
    text,
)
from sqlalchemy.exc import OperationalError

from campaigns.segment_checks import validate
from core.db import db, utcnow
from core.tenancy import require_brand_id
from coupons.models import REDEEMED, Coupon
from members.models import ACTIVE, Member, MemberIdentity, MemberTag
from org.models import Brand, Store
from points.models import PointsAccount
from shop.models import TILL, MemberPurchaseFacts, Order

__all__ = ["CountTimedOut", "count", "count_within", "member_ids", "validate"]

m = Member.__table__


# --- compilation ----------------------------------------------------------------------


class _Compiler:
    def __init__(self, brand_id: int, now: dt.datetime) -> None:
        self.brand_id = brand_id
        self.now = now
        self._tz = None

    @property
    def tz(self):
        if self._tz is None:
            self._tz = db.session.get(Brand, self.brand_id).tz
        return self._tz

    def node(self, node: dict) -> ColumnElement[bool]:
        if "field" in node:
            return getattr(self, "c_" + node["field"])(node)
        parts = [self.node(item) for item in node["items"]]
        if node["op"] == "not":
            return not_(parts[0])
        return and_(*parts) if node["op"] == "and" else or_(*parts)

    # helpers
    def since(self, days: int) -> dt.datetime:
        return self.now - dt.timedelta(days=days)

    def local_start(self, iso: str) -> dt.datetime:
        day = dt.date.fromisoformat(iso)
        return dt.datetime.combine(day, dt.time(), self.tz).astimezone(dt.UTC)

    def related(self, table, *where) -> ColumnElement[bool]:
        """A row of ``table`` for this member (and brand) meeting ``where``."""
        return exists().where(
            table.c.member_id == m.c.id, table.c.brand_id == self.brand_id, *where
        )

    def one_to_one(self, table, column, default: int, node: dict) -> ColumnElement[bool]:
        """A range test on a member's 1:1 fact whose missing row counts as ``default``."""
        test = _range(column, node["op"], node["value"])
        if _range_holds(default, node["op"], node["value"]):
            return ~self.related(table, ~test)
        return self.related(table, test)

    @staticmethod
    def nullable_in(column, op: str, ids) -> ColumnElement[bool]:
        if op == "in":
            return column.in_(ids)
        return or_(column.is_(None), column.not_in(ids))

    # member columns
    def c_tier(self, node):
        return self.nullable_in(m.c.tier_id, node["op"], node["value"])

    def c_store(self, node):
        return self.nullable_in(m.c.store_id, node["op"], node["value"])

    def _store_attr(self, column, node):
        stores = Store.__table__
        ids = select(stores.c.id).where(
            stores.c.brand_id == self.brand_id, column.in_(node["value"])
        )
        if node["op"] == "in":
            return m.c.store_id.in_(ids)
        return or_(m.c.store_id.is_(None), m.c.store_id.not_in(ids))

    def c_city(self, node):
        return self._store_attr(Store.__table__.c.city, node)

    def c_region(self, node):
        return self._store_attr(Store.__table__.c.region, node)

    def c_guide(self, node):
        if node["op"] == "set":
            return m.c.guide_id.is_not(None)
        if node["op"] == "unset":
            return m.c.guide_id.is_(None)
        return self.nullable_in(m.c.guide_id, node["op"], node["value"])

    def c_activated(self, node):
        op, value, col = node["op"], node["value"], m.c.activated_at
        if op == "ever":
            return col.is_not(None)
        if op == "never":
            return col.is_(None)
        if op == "within_days":
            return col >= self.since(value)
        if op == "before_days":
            return col < self.since(value)
        start = self.local_start(value[0])
        end = self.local_start((dt.date.fromisoformat(value[1]) + dt.timedelta(days=1)).isoformat())
        return and_(col >= start, col < end)

    # related tables
    def c_tag(self, node):
        t = MemberTag.__table__
        if node["op"] == "all":
            return and_(*(self.related(t, t.c.tag_id == tag) for tag in node["value"]))
        has = self.related(t, t.c.tag_id.in_(node["value"]))
        return has if node["op"] == "any" else ~has

    def c_identity(self, node):
        t = MemberIdentity.__table__
        has = self.related(t, t.c.kind.in_(node["value"]))
        return has if node["op"] == "any" else ~has

    def c_points_balance(self, node):
        t = PointsAccount.__table__
        return self.one_to_one(t, t.c.balance, 0, node)

    def c_order_count(self, node):
        t = MemberPurchaseFacts.__table__
        return self.one_to_one(t, t.c.order_count, 0, node)

    def c_spend(self, node):
        t = MemberPurchaseFacts.__table__
        return self.one_to_one(t, t.c.spend_fen, 0, node)

    def c_last_purchase(self, node):
        t = MemberPurchaseFacts.__table__
        col = t.c.last_purchase_at
        if node["op"] == "never":
            return ~self.related(t, col.is_not(None))
        since = self.since(node["value"])
        return self.related(t, col >= since if node["op"] == "within_days" else col < since)

    def _orders(self, node, measure: Callable) -> ColumnElement[bool]:
        """Paid orders of the window (refunded money taken off the spend), per member."""
        o = Order.__table__
        where = [
            o.c.brand_id == self.brand_id,
            o.c.member_id.is_not(None),
            o.c.paid_at >= self.since(node["days"]),
        ]
        if node["channel"] == "till":
            where.append(o.c.channel == TILL)
        elif node["channel"] == "online":
            where.append(o.c.channel != TILL)
        agg = measure(o)
        test = _range(agg, node["op"], node["value"])
        holds_for_none = _range_holds(0, node["op"], node["value"])
        per_member = (
            select(o.c.member_id)
            .where(*where)
            .group_by(o.c.member_id)
            .having(~test if holds_for_none else test)
            .subquery()
        )
        found = exists().where(per_member.c.member_id == m.c.id)
        return ~found if holds_for_none else found

    def c_orders_window(self, node):
        return self._orders(node, lambda o: func.count())

    def c_spend_window(self, node):
        return self._orders(node, lambda o: func.sum(o.c.paid_fen - o.c.refunded_fen))

    def c_coupon(self, node):
        c = Coupon.__table__
        where = [c.c.template_id.in_(node["value"])]
        op, days = node["op"], node.get("days")
        if op in ("redeemed", "not_redeemed"):
            where.append(c.c.status == REDEEMED)
            if days:
                where.append(c.c.redeemed_at >= self.since(days))
        elif days:
            where.append(c.c.issued_at >= self.since(days))
        has = self.related(c, *where)
        return has if op in ("received", "redeemed") else ~has


def _range(column, op: str, value) -> ColumnElement[bool]:
    if op == "gte":
        return column >= value
    if op == "lte":
        return column <= value
    return column.between(value[0], value[1])


def _range_holds(x: int, op: str, value) -> bool:
    if op == "gte":
        return x >= value
    if op == "lte":
        return x <= value
    return value[0] <= x <= value[1]


def member_ids(
    definition, *, store_id: int | None = None, now: dt.datetime | None = None
) -> Select:
    """A ``SELECT member.id`` of the current brand's active members the tree selects (only
    the members of ``store_id`` when given); validated first, so a bad tree raises
    ``ValidationError``. Usable as a subquery (``INSERT ... SELECT``)."""
    tree = validate(definition)
    brand_id = require_brand_id()
    where = [
        m.c.brand_id == brand_id,
        m.c.status == ACTIVE,
        m.c.deleted_at.is_(None),
        _Compiler(brand_id, now or utcnow()).node(tree),
    ]
    if store_id is not None:
        where.append(m.c.store_id == store_id)
    return select(m.c.id).where(*where)


def count(
    definition,
    *,
    store_id: int | None = None,
    cap: int | None = None,
    now: dt.datetime | None = None,
) -> int:
    """How many members the tree selects; with ``cap``, counting stops at ``cap + 1`` (so a
    result above ``cap`` means "more than cap")."""
    stmt = member_ids(definition, store_id=store_id, now=now)
    if cap is not None:
        stmt = stmt.limit(cap + 1)
    return db.session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()


class CountTimedOut(Exception):
    """The count ran past its statement timeout."""


def count_within(definition, *, store_id: int | None = None, timeout_ms: int = 5000) -> int:
    """The exact count, run under a statement timeout in a savepoint (the builder's live
    count); raises ``CountTimedOut`` when PostgreSQL cancels it."""
    stmt = member_ids(definition, store_id=store_id)
    query = select(func.count()).select_from(stmt.subquery())
    try:
        with db.session.begin_nested():
            before = db.session.execute(text("SHOW statement_timeout")).scalar_one()
            db.session.execute(
                text("SELECT set_config('statement_timeout', :v, true)"), {"v": str(timeout_ms)}
            )
            n = db.session.execute(query).scalar_one()
            db.session.execute(
                text("SELECT set_config('statement_timeout', :v, true)"), {"v": before}
            )
            return n
    except OperationalError as exc:
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if code == "57014":  # query_canceled
            raise CountTimedOut from None
        raise
