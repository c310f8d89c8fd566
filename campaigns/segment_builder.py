"""What the segment builder page needs besides the tree: the fields it offers (labels,
operators, value kinds, where to search ids) and the labels of the ids a saved tree names.

Ids are searched through the console's pickers (``/console/pick/<kind>``); the guides of
the brand (or of a store manager's store) through ``segment_guides``, registered here.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from campaigns import segment_fields as sf
from core.auth import has_role
from core.db import db
from core.pickers import PICKERS, register_picker
from org.models import Staff

MANAGERS = ("brand_admin", "store_manager")

# The picker kind that searches each field's ids.
PICKER_OF = {
    "tag": "tags",
    "tier": "tiers",
    "store": "stores",
    "guide": "segment_guides",
    "coupon_template": "coupon_templates",
}


def _guide_label(s: Staff) -> str:
    return s.name


def search_guides(q: str, limit: int) -> list[tuple[int, str]]:
    """The brand's guides whose name or phone holds ``q``, by name."""
    stmt = select(Staff).where(Staff.role == "guide").order_by(Staff.name, Staff.id).limit(limit)
    if not current_user.is_platform_admin and current_user.role == "store_manager":
        stmt = stmt.where(Staff.store_id == current_user.store_id)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(Staff.name.ilike(like) | Staff.phone.ilike(like))
    return [(s.id, _guide_label(s)) for s in db.session.execute(stmt).scalars()]


def guide_labels(ids: Iterable[int]) -> list[tuple[int, str]]:
    ids = list(ids)
    if not ids:
        return []
    rows = db.session.execute(select(Staff).where(Staff.id.in_(ids)).order_by(Staff.name))
    return [(s.id, _guide_label(s)) for s in rows.scalars()]


register_picker("segment_guides", search=search_guides, labels=guide_labels, roles=MANAGERS)


def _usable(spec: sf.Field) -> bool:
    if spec.value != sf.IDS:
        return True
    return has_role(*PICKERS[PICKER_OF[spec.ref]].roles)


def catalogue() -> dict:
    """The fields, operators, channels and identity kinds, as the builder's script reads them."""
    fields = []
    for spec in sf.FIELDS.values():
        if not _usable(spec):
            continue
        entry = {
            "name": spec.name,
            "label": str(spec.label),
            "group": str(spec.group),
            "ops": [
                {"op": op, "label": str(sf.OPS[op]), "kind": sf.value_kind(spec, op)}
                for op in spec.ops
            ],
            "ref": spec.ref,
            "window": spec.window,
            "channel": spec.channel,
        }
        if spec.value == sf.IDS:
            kind = PICKER_OF[spec.ref]
            entry["picker"] = url_for("pickers.search", kind=kind)
            if PICKERS[kind].small:
                entry["options"] = [
                    {"id": i, "label": label} for i, label in PICKERS[kind].search("", 200)
                ]
        if spec.value == sf.CHOICES:
            entry["options"] = [{"id": k, "label": str(v)} for k, v in sf.IDENTITY_LABELS.items()]
        fields.append(entry)
    return {
        "fields": fields,
        "channels": [{"id": k, "label": str(v)} for k, v in sf.CHANNELS.items()],
        "text": {
            "all": _("All of"),
            "any": _("Any of"),
            "not": _("Exclude members who match"),
            "add": _("Add condition"),
            "add_group": _("Add group"),
            "remove": _("Remove"),
            "remove_group": _("Remove group"),
            "days": _("in the last days"),
            "days_optional": _("in the last days (empty: ever)"),
            "day_unit": _("days"),
            "yuan": _("yuan"),
            "search": _("Type to search"),
            "nothing": _("Nothing found"),
            "to": _("to"),
            "type_values": _("Type, then press Enter"),
            "counting": _("Counting…"),
            "members": _("members"),
            "count_error": _("Could not count"),
            "timeout": _("The count took too long; narrow the conditions."),
            "empty": _("Add a condition to see how many members it reaches."),
            "choose_field": _("Choose a condition"),
        },
    }


def labels_of(tree: dict | None) -> dict[str, str]:
    """``"field:id" -> label`` for every id the tree names (for chips of a saved segment)."""
    wanted: dict[str, set[int]] = {}

    def walk(node) -> None:
        if not isinstance(node, dict):
            return
        if "field" in node:
            spec = sf.FIELDS.get(node["field"])
            if spec and spec.value == sf.IDS and isinstance(node.get("value"), list):
                wanted.setdefault(spec.ref, set()).update(
                    v for v in node["value"] if isinstance(v, int)
                )
            return
        for item in node.get("items") or []:
            walk(item)

    walk(tree)
    out: dict[str, str] = {}
    for ref, ids in wanted.items():
        for i, label in PICKERS[PICKER_OF[ref]].labels(sorted(ids)):
            out[f"{ref}:{i}"] = label
    return out
