"""A guide leaving: their customers handed over, evenly (round robin) to the store's other
active guides or all to a named guide. The service store stays; ``OrderAttribution`` rows are
never touched, so past orders keep the old guide and the commission they earned. The binding
rows are locked as they are moved (a scan at the same moment waits, then sees the new guide);
every move writes a ``BindingEvent``; the whole hand-over is audited."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core import audit
from core.db import db, utcnow
from core.errors import NotFound, ValidationError
from guide_distribution.attribution import active_guide
from guide_distribution.binding import REASON_MAX, actor_of, binding_term, own_guide
from guide_distribution.models import BindingEvent, CustomerBinding
from org.models import Staff

HANDOVER_BATCH = 500


def customers_count(guide_id: int) -> int:
    """How many customers are bound to the guide now (expired bindings included)."""
    return db.session.execute(
        select(func.count())
        .select_from(CustomerBinding)
        .where(CustomerBinding.guide_id == guide_id)
    ).scalar_one()


def hand_over_targets(*, guide_id: int, to_guide_id: int | None) -> list[Staff]:
    """Who takes the leaving guide's customers: the named guide, or the store's other
    active guides; refused when there is nobody."""
    guide = own_guide(guide_id)
    if to_guide_id:
        target = active_guide(to_guide_id)
        if target is None:
            raise NotFound(_l("no such guide"), field="to_guide")
        if target.id == guide.id:
            raise ValidationError(_l("Choose another guide."), field="to_guide")
        return [target]
    targets = list(
        db.session.execute(
            select(Staff)
            .where(
                Staff.role == "guide",
                Staff.active.is_(True),
                Staff.store_id == guide.store_id,
                Staff.id != guide.id,
            )
            .order_by(Staff.id)
        ).scalars()
    )
    if guide.store_id is None or not targets:
        raise ValidationError(
            _l("No other active guide works in this store: name the guide who takes over."),
            field="to_guide",
        )
    return targets


def hand_over(
    *,
    guide_id: int,
    to_guide_id: int | None = None,
    reason: str = "",
    now: dt.datetime | None = None,
    on_progress=None,
) -> dict[int, int]:
    """Move every customer of a leaving guide: evenly over the store's other active guides
    (round robin, in binding order) or all to the named guide. The service store stays;
    orders keep the guide frozen on them. Returns how many each guide took. Flushes."""
    now = now or utcnow()
    guide = own_guide(guide_id)
    targets = hand_over_targets(guide_id=guide_id, to_guide_id=to_guide_id)
    reason = (reason or "").strip()[:REASON_MAX] or str(_l("The guide left."))
    taken = {t.id: 0 for t in targets}
    moved = 0
    protected, expires = binding_term(now)
    kind, who = actor_of(None, None)
    while True:
        rows = list(
            db.session.execute(
                select(CustomerBinding)
                .where(CustomerBinding.guide_id == guide.id)
                .order_by(CustomerBinding.id)
                .limit(HANDOVER_BATCH)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).scalars()
        )
        if not rows:
            break
        events = []
        for b in rows:
            target = targets[moved % len(targets)]
            events.append(
                {
                    "brand_id": b.brand_id,
                    "member_id": b.member_id,
                    "old_store_id": b.store_id,
                    "new_store_id": b.store_id,
                    "old_guide_id": guide.id,
                    "new_guide_id": target.id,
                    "source": "guide_left",
                    "reason": reason,
                    "actor_kind": kind,
                    "actor_id": who,
                    "created_at": now,
                }
            )
            b.guide_id = target.id
            b.source = "guide_left"
            b.bound_at = now
            b.protected_until, b.expires_at = protected, expires
            taken[target.id] += 1
            moved += 1
        db.session.flush()
        db.session.execute(BindingEvent.__table__.insert(), events)
        for b in rows:
            db.session.expunge(b)
        if on_progress:
            on_progress(moved)
    audit.record(
        action="guide_binding.hand_over",
        object_type="staff",
        object_id=guide.id,
        after={"moved": moved, "taken": {str(k): v for k, v in taken.items()}, "reason": reason},
    )
    return taken
