"""Saved segments: create, update, delete and recount (writes flush, never commit), and the
reads the console's pages need.

A store manager's segment carries the manager's store: ``scope`` (the store id a manager is
limited to, ``None`` for a brand admin) is given by the view on every call, and a segment
outside the scope is "not found" to it.
"""

from __future__ import annotations

from sqlalchemy import Select, select

from campaigns import segments
from campaigns.models import Segment
from core.db import db, utcnow
from core.errors import NotFound, ValidationError
from core.tenancy import require_brand_id

NAME_MAX = 60


def _name(name: str) -> str:
    from flask_babel import gettext as _

    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise ValidationError(_("Name: 1 to %(n)d characters.", n=NAME_MAX), field="name")
    return name


def visible(*, scope: int | None) -> Select:
    """The segments a person limited to ``scope`` (a store, or ``None``: all) may see."""
    stmt = select(Segment).where(Segment.brand_id == require_brand_id())
    if scope is not None:
        stmt = stmt.where(Segment.store_id == scope)
    return stmt


def get(*, segment_id: int, scope: int | None) -> Segment:
    """One segment of the current brand within ``scope``; ``NotFound`` otherwise."""
    seg = db.session.execute(visible(scope=scope).where(Segment.id == segment_id)).scalar()
    if seg is None:
        raise NotFound("segment")
    return seg


def create_segment(*, name: str, definition, scope: int | None, created_by: int | None) -> Segment:
    """Save a new segment (a manager's is limited to the manager's store) with its count."""
    seg = Segment(
        name=_name(name),
        definition=segments.validate(definition),
        store_id=scope,
        created_by=created_by,
    )
    db.session.add(seg)
    db.session.flush()
    refresh_count(segment=seg)
    return seg


def update_segment(*, segment: Segment, name: str, definition) -> Segment:
    """Change a segment's name and conditions (its store stays) and recount it."""
    segment.name = _name(name)
    segment.definition = segments.validate(definition)
    db.session.flush()
    refresh_count(segment=segment)
    return segment


def delete_segment(*, segment: Segment) -> None:
    """Remove a saved segment."""
    db.session.delete(segment)
    db.session.flush()


def refresh_count(*, segment: Segment) -> int:
    """Evaluate a saved segment now (its conditions against today's members) and keep the
    count shown in the list."""
    n = segments.count(segment.definition, store_id=segment.store_id)
    segment.last_count = n
    segment.counted_at = utcnow()
    db.session.flush()
    return n
