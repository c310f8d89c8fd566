"""Chinese names of codes: one table per package, one filter for the templates.

A package keeps its tables in ``<package>/labels.py`` (code -> lazy_gettext label) and
registers them here with ``register_labels(kind, table)``; a template writes
``{{ member.source|label('member_source') }}`` instead of an ``if`` per code. A code with
no label shows as itself, so a missing entry is visible (and a test catches it) rather than
a blank.
"""

from __future__ import annotations

from collections.abc import Mapping

TABLES: dict[str, dict[str, object]] = {}


def register_labels(kind: str, table: Mapping[str, object]) -> None:
    """Add (or extend) the table ``kind``: code -> label."""
    TABLES.setdefault(kind, {}).update(table)


def label(code, kind: str) -> str:
    """The label of ``code`` in table ``kind`` (the code itself when it has none)."""
    if code is None or code == "":
        return ""
    found = TABLES.get(kind, {}).get(str(code))
    return str(found) if found is not None else str(code)


def has_label(code, kind: str) -> bool:
    return str(code) in TABLES.get(kind, {})
