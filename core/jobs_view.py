"""Jobs for people: a job's Chinese name and what it concerns, instead of its Python name
and JSON arguments.

Packages name their jobs in core.labels tables: ``job`` (the job's full Python name ->
its name, e.g. "coupons.jobs.send_reminder" -> 优惠券到期提醒) and ``job_arg`` (an argument's
name -> what it is, e.g. "member_id" -> 会员). A job without a name shows its Python name.
"""

from __future__ import annotations

import inspect

from flask_babel import lazy_gettext as _l

from core import jobs
from core.labels import TABLES, has_label, label, register_labels


def title(row) -> str:
    """The job's Chinese name (or its Python name when it has none)."""
    return label(row.func, "job") if has_label(row.func, "job") else row.func


def _bound(row) -> dict:
    payload = row.args or {}
    args, kwargs = list(payload.get("args", [])), dict(payload.get("kwargs", {}))
    spec = jobs.REGISTRY.get(row.func)
    if spec is not None and args:
        try:
            names = list(inspect.signature(spec.func).parameters)
            return {**dict(zip(names, args, strict=False)), **kwargs}
        except (TypeError, ValueError):
            pass
    return {**{f"#{i + 1}": a for i, a in enumerate(args)}, **kwargs}


def _value(value) -> str:
    if isinstance(value, list):
        return str(_l("%(n)d items", n=len(value)))
    if isinstance(value, dict):
        return ""
    text = str(value)
    if len(text) > 12 and not text.isdigit():  # openids, tickets: a prefix is enough
        text = text[:8] + "…"
    return text


def subject(row) -> list[tuple[str, str]]:
    """What the job concerns, as (name, value) pairs of its named arguments."""
    names = TABLES.get("job_arg", {})
    out = []
    for key, value in _bound(row).items():
        if key not in names:
            continue
        shown = _value(value)
        if shown:
            out.append((str(names[key]), shown))
    return out


register_labels(
    "job_arg",
    {
        "brand_id": _l("Brand"),
        "member_id": _l("Member"),
        "openid": _l("WeChat user"),
        "import_id": _l("Member import"),
        "coupon_ids": _l("Coupons"),
        "card_code_id": _l("Member card"),
        "limit": _l("At most"),
    },
)
register_labels(
    "job",
    {
        "core.housekeeping.purge_finished_jobs": _l("Clean up finished jobs"),
        "core.housekeeping.purge_expired_exports": _l("Delete expired exports"),
    },
)
