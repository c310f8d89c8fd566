"""The audit log for people: actions, objects and fields by their Chinese names, and each
change as "field: before -> after".

Names come from core.labels tables that packages fill: ``audit_action`` (create, update,
view_phone...), ``audit_object`` (table name -> 会员, 门店...) and ``audit_field`` (keyed
``"table.column"`` or, for a name every table shares, ``"column"``). A field without a name
shows under its column name; phone numbers are masked and secrets stay starred.
"""

from __future__ import annotations

import dataclasses
import json
import re

from flask_babel import lazy_gettext as _l

from core.labels import TABLES, label, register_labels
from core.validators import mask_phone

HIDDEN = frozenset({"id", "brand_id", "created_at", "updated_at"})
_PHONE = re.compile(r"(?<!\d)1\d{10}(?!\d)")
MAX_VALUE = 120


@dataclasses.dataclass(frozen=True)
class Change:
    field: str
    before: str
    after: str
    changed: bool  # an update's change; False for the values of a created or deleted row


def mask_phones(text: str) -> str:
    """Every mainland mobile number in ``text`` masked (operators' labels carry theirs)."""
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text or "")


def field_label(object_type: str, field: str) -> str:
    fields = TABLES.get("audit_field", {})
    found = fields.get(f"{object_type}.{field}", fields.get(field))
    return str(found) if found is not None else field


# "object_type.field" -> the core.labels table naming that field's codes (a package's kinds,
# statuses): the audit log shows the label, not the code.
VALUE_LABELS: dict[str, str] = {}


def register_value_labels(object_type: str, field: str, kind: str) -> None:
    """Show the codes of ``object_type.field`` in the audit log by the labels of ``kind``."""
    VALUE_LABELS[f"{object_type}.{field}"] = kind


def show_value(value, *, field: str = "", kind: str | None = None) -> str:
    """A value as an operator reads it: 是/否, 空, masked phones, short JSON."""
    if kind is not None and isinstance(value, str) and value:
        return label(value, kind)
    if value is None or value == "":
        return str(_l("(empty)"))
    if value == "***":
        return str(_l("(hidden)"))
    if value == "***(changed)":
        return str(_l("(changed)"))
    if isinstance(value, bool):
        return str(_l("Yes") if value else _l("No"))
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    if "phone" in field:
        text = mask_phones(text)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def changes(entry) -> list[Change]:
    """The entry's before/after as a list of readable changes (unchanged values left out)."""
    before, after = entry.before or {}, entry.after or {}
    out = []
    for key in list(dict.fromkeys([*before, *after])):
        if key in HIDDEN:
            continue
        old, new = before.get(key), after.get(key)
        both = key in before and key in after
        if both and old == new:
            continue
        kind = VALUE_LABELS.get(f"{entry.object_type}.{key}")
        out.append(
            Change(
                field=field_label(entry.object_type, key),
                before=show_value(old, field=key, kind=kind) if key in before else "",
                after=show_value(new, field=key, kind=kind) if key in after else "",
                changed=both,
            )
        )
    return out


def action_label(entry) -> str:
    return label(entry.action, "audit_action")


def object_label(entry) -> str:
    return label(entry.object_type, "audit_object")


register_labels(
    "audit_action",
    {
        "create": _l("Created a record"),
        "update": _l("Changed a record"),
        "delete": _l("Deleted a record"),
        "retry": _l("Sent a job again"),
        "view_phone": _l("Viewed a full phone number"),
        "export": _l("Requested an export"),
        "download": _l("Downloaded an export"),
        "delete_member": _l("Deleted a member's data"),
        "points_adjust": _l("Adjusted points"),
        "login": _l("Logged in"),
    },
)
register_labels("audit_object", {"outbox_job": _l("Background job"), "audit_log": _l("Audit log")})
register_labels(
    "audit_field",
    {
        "name": _l("Name"),
        "code": _l("Code"),
        "active": _l("Active"),
        "phone": _l("Phone"),
        "status": _l("Status"),
        "reason": _l("Reason"),
        "note": _l("Internal note"),
        "points": _l("Points"),
        "entry_id": _l("Points entry"),
        "card_no": _l("Card number"),
        "store_id": _l("Store"),
        "role": _l("Role"),
        "city": _l("City"),
        "address": _l("Address"),
        "region": _l("Region"),
        "description": _l("Description"),
        "rows": _l("Rows"),
        "segment": _l("Segment"),
        "full_phones": _l("Full phone numbers"),
        "password_hash": _l("Password"),
    },
)
