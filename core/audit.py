"""Audit log: who changed what, before and after, when.

Models that inherit ``Audited`` are recorded automatically: a ``before_flush`` hook writes
one ``audit_log`` row per inserted, updated or deleted instance while an actor is set (a
console user, or the command line). Secret columns are never written to the log.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
from collections.abc import Iterator

from sqlalchemy import JSON, String, event, insert, inspect
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import BigId, IdMixin, UTCDateTime, db, utcnow
from core.tenancy import current_brand_id


@dataclasses.dataclass(frozen=True)
class Actor:
    kind: str  # "staff", "platform", "cli", "system"
    id: int | None
    label: str
    ip: str | None = None


_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("actor", default=None)


def current_actor() -> Actor | None:
    return _actor.get()


def set_actor(actor: Actor | None) -> contextvars.Token:
    return _actor.set(actor)


@contextlib.contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


class AuditLog(IdMixin, db.Model):
    """One change made by an operator. Append-only; its brand is the changed row's brand."""

    __tablename__ = "audit_log"

    brand_id: Mapped[int | None] = mapped_column(BigId, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(BigId)
    actor_label: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str] = mapped_column(String(60), index=True)
    object_id: Mapped[str | None] = mapped_column(String(60))
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Audited:
    """Mixin: changes to these rows are written to the audit log."""

    __audit_exclude__: frozenset[str] = frozenset({"updated_at", "created_at"})
    __audit_secret__: frozenset[str] = frozenset()


def _jsonable(value):
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def _snapshot(obj, keys) -> dict:
    secret = obj.__audit_secret__
    return {
        k: ("***" if k in secret and getattr(obj, k) else _jsonable(getattr(obj, k))) for k in keys
    }


def record(
    *,
    action: str,
    object_type: str,
    object_id: str | int | None,
    before: dict | None = None,
    after: dict | None = None,
    brand_id: int | None = None,
) -> AuditLog | None:
    """Write an audit entry for something that is not a plain row change (login, export)."""
    actor = _actor.get()
    if actor is None:
        return None
    entry = AuditLog(
        brand_id=brand_id if brand_id is not None else current_brand_id(),
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_label=actor.label,
        ip=actor.ip,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        before=before,
        after=after,
    )
    db.session.add(entry)
    return entry


@event.listens_for(Session, "after_flush")
def _audit_changes(session: Session, flush_context) -> None:
    # after_flush: new rows have their ids and attribute history is still readable.
    actor = _actor.get()
    if actor is None:
        return
    entries = []
    for obj in list(session.new):
        if isinstance(obj, Audited):
            entries.append(("create", obj, None, _columns(obj)))
    for obj in list(session.dirty):
        if isinstance(obj, Audited) and session.is_modified(obj, include_collections=False):
            before, after = _diff(obj)
            if after:
                entries.append(("update", obj, before, after))
    for obj in list(session.deleted):
        if isinstance(obj, Audited):
            entries.append(("delete", obj, _columns(obj), None))
    if not entries:
        return
    now = utcnow()
    session.connection().execute(
        insert(AuditLog.__table__),
        [
            {
                "brand_id": getattr(obj, "brand_id", None)
                if obj.__tablename__ != "brand"
                else obj.id,
                "actor_kind": actor.kind,
                "actor_id": actor.id,
                "actor_label": actor.label,
                "ip": actor.ip,
                "action": action,
                "object_type": obj.__tablename__,
                "object_id": _ident(obj),
                "before": before,
                "after": after,
                "created_at": now,
            }
            for action, obj, before, after in entries
        ],
    )


def _columns(obj) -> dict:
    keys = [c.key for c in inspect(obj).mapper.column_attrs if c.key not in obj.__audit_exclude__]
    return _snapshot(obj, keys)


def _diff(obj) -> tuple[dict, dict]:
    state = inspect(obj)
    before, after = {}, {}
    secret = obj.__audit_secret__
    for attr in state.mapper.column_attrs:
        if attr.key in obj.__audit_exclude__:
            continue
        hist = state.attrs[attr.key].history
        if not hist.has_changes():
            continue
        old = hist.deleted[0] if hist.deleted else None
        new = hist.added[0] if hist.added else None
        if old == new:
            continue
        if attr.key in secret:
            old, new = ("***" if old else old), ("***(changed)" if new else new)
        before[attr.key] = _jsonable(old)
        after[attr.key] = _jsonable(new)
    return before, after


def _ident(obj) -> str | None:
    ident = inspect(obj).identity
    if ident is None:
        return getattr(obj, "id", None) and str(obj.id)
    return ",".join(str(i) for i in ident)
