"""Validation of a segment's condition tree: shape, limits, operators, values, and that
every id it names is the current brand's (``validate``, re-exported by
``campaigns.segments``)."""

from __future__ import annotations

import datetime as dt
import json

from flask_babel import gettext as _
from sqlalchemy import select

from campaigns import segment_fields as sf
from core.db import db
from core.errors import ValidationError
from core.tenancy import require_brand_id
from coupons.models import CouponTemplate
from members.models import IDENTITY_KINDS, TierLevel
from members.models.tags import TagDefinition
from org.models import Staff, Store

MAX_DEPTH = 4  # groups inside groups
MAX_CONDITIONS = 30
MAX_LIST = 200
MAX_ALL = 20  # tags a member must all have
MAX_TEXT = 60
MAX_JSON = 20_000  # characters of the serialized tree
GROUP_OPS = ("and", "or", "not")


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
                # "has all of" is one semi-join per tag: keep the plan small.
                if op == "all" and len(set(value)) > MAX_ALL:
                    self.fail(
                        _(
                            "Condition %(n)d (%(field)s): at most %(max)d values.",
                            n=n,
                            field=spec.label,
                            max=MAX_ALL,
                        )
                    )
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
