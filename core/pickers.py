"""Pickers: choose members, stores, tiers, tags or coupons by name instead of typing ids.

A package registers a kind with ``register_picker(kind, search=..., labels=..., roles=...)``:
``search(q, limit)`` gives ``[(id, label)]`` of the current brand matching ``q``, and
``labels(ids)`` the labels of those ids that belong to the current brand. A form declares a
``PickerField(kind, label)``; ``/console/pick/<kind>?q=`` answers the search as JSON, and
static/console/picker.js turns the field's multi-select into a search box with chips.
Without JavaScript a small kind (``small=True``: stores, tiers, tags) is a plain
multi-select of all its options; a large one lists what is already picked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from flask import Blueprint, abort, jsonify, request, url_for
from flask_babel import lazy_gettext as _l
from wtforms import SelectMultipleField, ValidationError

from core.auth import has_role, roles_required

bp = Blueprint("pickers", __name__, url_prefix="/console/pick")

SearchFn = Callable[[str, int], list[tuple[int, str]]]
LabelsFn = Callable[[Iterable[int]], list[tuple[int, str]]]


@dataclasses.dataclass(frozen=True)
class Picker:
    kind: str
    search: SearchFn
    labels: LabelsFn
    roles: tuple[str, ...]
    small: bool


PICKERS: dict[str, Picker] = {}
SMALL_LIMIT = 500  # a "small" kind is listed whole when JavaScript is off


def register_picker(
    kind: str,
    *,
    search: SearchFn,
    labels: LabelsFn,
    roles: tuple[str, ...],
    small: bool = False,
) -> None:
    """Make ``kind`` searchable at /console/pick/<kind> for these roles."""
    PICKERS[kind] = Picker(kind, search, labels, roles, small)


@bp.get("/<kind>")
@roles_required("brand_admin", "store_manager", "guide")
def search(kind: str):
    picker = PICKERS.get(kind)
    if picker is None:
        abort(404)
    if not has_role(*picker.roles):
        abort(403)
    q = (request.args.get("q") or "").strip()[:60]
    limit = min(max(request.args.get("limit", 20, type=int), 1), 50)
    return jsonify(results=[{"id": i, "label": label} for i, label in picker.search(q, limit)])


class PickerField(SelectMultipleField):
    """Ids picked from a kind's search; refuses ids of another brand (or none at all)."""

    def __init__(
        self, label=None, validators=None, *, kind: str, unknown=None, placeholder=None, **kw
    ):
        super().__init__(label, validators, coerce=int, choices=[], **kw)
        self.kind = kind
        self.placeholder = placeholder
        self.unknown = unknown  # message for ids not of this brand, given %(ids)s

    def _picker(self) -> Picker:
        return PICKERS[self.kind]

    def process_formdata(self, valuelist):
        picked = []
        for value in valuelist:
            for part in str(value).replace("，", ",").split(","):
                part = part.strip()
                if not part:
                    continue
                if not part.isdigit():
                    raise ValueError(_l("Pick from the list."))
                picked.append(int(part))
        self.data = list(dict.fromkeys(picked))

    def pre_validate(self, form):
        known = {i for i, _label in self._picker().labels(self.data or [])}
        missing = [str(i) for i in self.data or [] if i not in known]
        if missing:
            message = self.unknown or _l("Pick from the list: %(ids)s is not among them.")
            raise ValidationError(message % {"ids": ", ".join(missing)})

    def iter_choices(self):
        picker = self._picker()
        picked = list(self.data or [])
        shown = picker.search("", SMALL_LIMIT) if picker.small else []
        have = {i for i, _label in shown}
        extra = [row for row in picker.labels(picked) if row[0] not in have] if picked else []
        for value, label in [*extra, *shown]:
            yield (value, label, value in picked, {})

    def __call__(self, **kwargs):
        kwargs.setdefault("data-picker", url_for("pickers.search", kind=self.kind))
        kwargs.setdefault("data-placeholder", str(self.placeholder or _l("Type to search")))
        kwargs.setdefault("data-remove", str(_l("Remove")))
        kwargs.setdefault("data-empty", str(_l("Nothing found")))
        return super().__call__(**kwargs)
