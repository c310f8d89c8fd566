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
import json
from collections.abc import Callable

from flask_babel import gettext as _
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

from campaigns import segment_fields as sf
from core.db import db, utcnow
from core.errors import ValidationError
from core.tenancy import require_brand_id
from coupons.models import REDEEMED, Coupon, CouponTemplate
from members.models import ACTIVE, IDENTITY_KINDS, Member, MemberIdentity, MemberTag, TierLevel
from members.models.tags import TagDefinition
from org.models import Brand, Staff, Store
from points.models import PointsAccount
from shop.models import TILL, MemberPurchaseFacts, Order

MAX_DEPTH = 4  # groups inside groups
MAX_CONDITIONS = 30
MAX_LIST = 200
MAX_TEXT = 60
MAX_JSON = 20_000  # characters of the serialized tree
GROUP_OPS = ("and", "or", "not")

m = Member.__table__


# --- validation -----------------------------------------------------------------------


class _Checker:
    """Walks a tree once: shape, limits, values; collects the ids to check in the database."""

    def __init__(self) -> None:
        self.conditions = 0
        self.refs: dict[str, set[int]] = {}

    def fail(self, message: str) -> None:
        raise ValidationError(message, field="definition")

    def node(self, node, depth: int) -> dict:
        if not isinstance(node, dict):
            self.fail(_("The segment's conditions are malformed."))
        if "field" in node:
            return self.condition(node)
        return self.group(node, depth)

    def group(self, node: dict, depth: int) -> dict:
        if depth > MAX_DEPTH:
            self.fail(_("Groups are nested too deeply (at most %(n)d levels).", n=MAX_DEPTH))
        op, items = node.get("op"), node.get("items")
        if op not in GROUP_OPS or not isinstance(items, list) or set(node) - {"op", "items"}:
            self.fail(_("The segment's conditions are malformed."))
        if not items:
            self.fail(_("A group needs at least one condition."))
        if op == "not" and len(items) != 1:
            self.fail(_("A NOT group holds exactly one condition or group."))
        if len(items) > MAX_CONDITIONS:
            self.fail(_("A segment has at most %(n)d conditions.", n=MAX_CONDITIONS))
        return {"op": op, "items": [self.node(item, depth + 1) for item in items]}

    def condition(self, node: dict) -> dict:
        self.conditions += 1
        n = self.conditions
        if n > MAX_CONDITIONS:
            self.fail(_("A segment has at most %(n)d conditions.", n=MAX_CONDITIONS))
        spec = sf.FIELDS.get(node.get("field")) if isinstance(node.get("field"), str) else None
        if spec is None:
            self.fail(_("Condition %(n)d: unknown field.", n=n))
        allowed = {"field", "op", "value"}
        if spec.window:
            allowed.add("days")
        if spec.channel:
            allowed.add("channel")
        if set(node) - allowed:
            self.fail(_("Condition %(n)d: unexpected settings.", n=n))
        op = node.get("op")
        if not isinstance(op, str) or op not in spec.ops:
            self.fail(_("Condition %(n)d (%(field)s): choose an operator.", n=n, field=spec.label))
        out = {"field": spec.name, "op": op}
        out["value"] = self.value(spec, op, node.get("value"), n)
        if spec.window:
            days = node.get("days")
            if days is None and spec.window == "optional":
                out["days"] = None
            else:
                out["days"] = self.days(days, n, spec)
        if spec.channel:
            channel = node.get("channel", "any")
            if channel not in sf.CHANNELS:
                self.fail(_("Condition %(n)d (%(field)s): unknown channel.", n=n, field=spec.label))
            out["channel"] = channel
        return out

    def days(self, value, n: int, spec: sf.Field) -> int:
        if not _is_int(value) or not 1 <= value <= sf.MAX_DAYS:
            self.fail(
                _(
                    "Condition %(n)d (%(field)s): days must be a whole number from 1 to %(max)d.",
                    n=n,
                    field=spec.label,
                    max=sf.MAX_DAYS,
                )
            )
        return value

    def value(self, spec: sf.Field, op: str, value, n: int):
        kind = sf.value_kind(spec, op)
        bad = _("Condition %(n)d (%(field)s): the value is not valid.", n=n, field=spec.label)
        if kind == sf.NONE:
            if value not in (None, "", []):
                self.fail(bad)
            return None
        if kind in (sf.IDS, sf.TEXTS, sf.CHOICES):
            if not isinstance(value, list) or not value:
                self.fail(
                    _("Condition %(n)d (%(field)s): choose at least one.", n=n, field=spec.label)
                )
            if len(value) > MAX_LIST:
                self.fail(
                    _(
                        "Condition %(n)d (%(field)s): at most %(max)d values.",
                        n=n,
                        field=spec.label,
                        max=MAX_LIST,
                    )
                )
            if kind == sf.IDS:
                if not all(_is_int(v) and 0 < v < 2**63 for v in value):
                    self.fail(bad)
                self.refs.setdefault(spec.ref, set()).update(value)
                return sorted(set(value))
            if kind == sf.CHOICES:
                if not all(isinstance(v, str) and v in IDENTITY_KINDS for v in value):
                    self.fail(bad)
                return sorted(set(value))
            cleaned = []
            for v in value:
                if (
                    not isinstance(v, str)
                    or not v.strip()
                    or len(v) > MAX_TEXT
                    or any(ord(ch) < 32 for ch in v)
                ):
                    self.fail(bad)
                cleaned.append(v.strip())
            return sorted(set(cleaned))
        if kind == sf.DAYS:
            return self.days(value, n, spec)
        if kind == sf.DATES:
            if not isinstance(value, list) or len(value) != 2:
                self.fail(bad)
            try:
                start, end = (dt.date.fromisoformat(v) for v in value)
            except (TypeError, ValueError):
                self.fail(bad)
            if start > end:
                self.fail(
                    _(
                        "Condition %(n)d (%(field)s): the start is after the end.",
                        n=n,
                        field=spec.label,
                    )
                )
            return [start.isoformat(), end.isoformat()]
        # NUMBER / MONEY: one number, or [low, high] for "between".
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                self.fail(bad)
            low, high = value
            if not (_number_ok(low) and _number_ok(high)):
                self.fail(bad)
            if low > high:
                self.fail(
                    _(
                        "Condition %(n)d (%(field)s): the minimum is above the maximum.",
                        n=n,
                        field=spec.label,
                    )
                )
            return [low, high]
        if not _number_ok(value):
            self.fail(bad)
        return value


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number_ok(v) -> bool:
    return _is_int(v) and 0 <= v <= sf.MAX_NUMBER


_REF_MODELS = {
    "tag": TagDefinition,
    "tier": TierLevel,
    "store": Store,
    "guide": Staff,
    "coupon_template": CouponTemplate,
}


def validate(definition) -> dict:
    """Check a condition tree (shape, limits, operators, values, that named rows are the
    current brand's); return it normalized. Raises ``ValidationError`` with a message for
    the operator."""
    if isinstance(definition, str):
        if len(definition) > MAX_JSON:
            raise ValidationError(_("The segment is too large."), field="definition")
        try:
            definition = json.loads(definition)
        except ValueError:
            raise ValidationError(
                _("The segment's conditions are malformed."), field="definition"
            ) from None
    elif len(json.dumps(definition, default=str)) > MAX_JSON:
        raise ValidationError(_("The segment is too large."), field="definition")
    checker = _Checker()
    if not isinstance(definition, dict) or "field" in definition:
        checker.fail(_("The segment's conditions are malformed."))
    tree = checker.group(definition, 1)
    brand_id = require_brand_id()
    for ref, ids in checker.refs.items():
        model = _REF_MODELS[ref]
        found = set(
            db.session.execute(
                select(model.id).where(model.brand_id == brand_id, model.id.in_(sorted(ids)))
            ).scalars()
        )
        if found != ids:
            raise ValidationError(
                _("A condition names a tag, tier, store, guide or coupon that does not exist."),
                field="definition",
            )
    return tree


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
