"""Merging two member records that proved to be one person (same phone number).

Everything of the merged member moves to the kept one: identities, tags (a tag both had
is kept once), tag history, activity, attributions, and through ``register_merge_handler``
whatever later packages own (points, coupons...). The merged row stays, marked ``merged``
with ``merged_into_id``, so ids referenced elsewhere still resolve.
"""

from __future__ import annotations

from collections.abc import Callable

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select, text, update

from core.audit import current_actor
from core.db import db
from core.errors import Conflict, NotFound, ValidationError
from core.tenancy import require_brand_id
from members import signals
from members.models import (
    ACTIVE,
    MERGED,
    Member,
    MemberActivity,
    MemberAttribution,
    MemberIdentity,
    MemberMerge,
    MemberTag,
    TagHistory,
    TierLevel,
)
from members.tiers_tags import tags

MergeHandler = Callable[[int, int], dict]
MERGE_HANDLERS: list[MergeHandler] = []


def register_merge_handler(fn: MergeHandler) -> MergeHandler:
    """Register ``fn(kept_id, merged_id) -> {name: count}``: moves a package's rows on merge.

    Handlers run in the merge's transaction, flush only, and return how many rows of each
    kind they moved (the counts are stored with the merge record). Usable as a decorator.
    """
    if fn not in MERGE_HANDLERS:
        MERGE_HANDLERS.append(fn)
    return fn


def move_member_rows(kept_id: int, merged_id: int, tables) -> dict:
    """For merge handlers: give every row of these ``(count name, table)`` pairs (brand-scoped
    tables with a ``member_id``) that belongs to the merged member to the kept one; returns
    the counts of the tables that had any."""
    counts = {}
    for name, table in tables:
        n = db.session.execute(
            text(
                f"UPDATE {table} SET member_id = :kept"  # noqa: S608 - the packages' own names
                " WHERE brand_id = :b AND member_id = :merged"
            ),
            {"b": require_brand_id(), "kept": kept_id, "merged": merged_id},
        ).rowcount
        if n:
            counts[name] = n
    return counts


def _move(model, kept_id: int, merged_id: int) -> int:
    return db.session.execute(
        update(model)
        .where(model.member_id == merged_id)
        .values(member_id=kept_id)
        .execution_options(synchronize_session=False)
    ).rowcount


def merge_members(*, kept_id: int, merged_id: int, reason: str) -> MemberMerge:
    """Merge member ``merged_id`` into ``kept_id``; returns the merge record with counts."""
    if kept_id == merged_id:
        raise ValidationError(_l("cannot merge a member into itself"))
    rows = (
        db.session.execute(
            select(Member)
            .where(Member.id.in_([kept_id, merged_id]))
            .order_by(Member.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        .scalars()
        .all()
    )
    by_id = {m.id: m for m in rows}
    kept, merged = by_id.get(kept_id), by_id.get(merged_id)
    if kept is None or merged is None:
        raise NotFound(_l("no such member"))
    if kept.status != ACTIVE or merged.status != ACTIVE:
        raise Conflict(_l("only active members can be merged"))

    counts: dict[str, int] = {"identities": _move(MemberIdentity, kept_id, merged_id)}
    kept_tags = select(MemberTag.tag_id).where(MemberTag.member_id == kept_id)
    counts["tags_already_on_kept"] = db.session.execute(
        delete(MemberTag)
        .where(MemberTag.member_id == merged_id, MemberTag.tag_id.in_(kept_tags))
        .execution_options(synchronize_session=False)
    ).rowcount
    counts["tags"] = _move(MemberTag, kept_id, merged_id)
    counts["tag_history"] = _move(TagHistory, kept_id, merged_id)
    counts["activity"] = _move(MemberActivity, kept_id, merged_id)
    counts["attributions"] = _move(MemberAttribution, kept_id, merged_id)
    for handler in MERGE_HANDLERS:
        for name, n in (handler(kept_id, merged_id) or {}).items():
            if name in counts:
                raise RuntimeError(f"merge handler {handler!r} reused the count name {name!r}")
            counts[name] = int(n)

    _fill_blanks(kept, merged)
    if merged.last_purchase_at is not None and (
        kept.last_purchase_at is None or merged.last_purchase_at > kept.last_purchase_at
    ):
        kept.last_purchase_at = merged.last_purchase_at
    merged.status = MERGED
    merged.merged_into_id = kept.id
    merged.phone = None
    db.session.flush()
    tags.recheck_lapsed(member_id=kept_id)
    actor = current_actor()
    record = MemberMerge(
        kept_id=kept_id,
        merged_id=merged_id,
        reason=(reason or "")[:200],
        counts=counts,
        actor_kind=actor.kind if actor else "system",
        actor_id=actor.id if actor else None,
        actor_label=actor.label if actor else "system",
    )
    db.session.add(record)
    db.session.flush()
    signals.member_merged.send(
        require_brand_id(), kept_id=kept_id, merged_id=merged_id, counts=counts
    )
    return record


def _fill_blanks(kept: Member, merged: Member) -> None:
    """The kept record keeps its own data and takes from the merged one what it lacks."""
    phone = merged.phone
    if kept.phone is None and phone is not None:
        # The unique (brand, phone) constraint: free the number before the kept row takes it.
        merged.phone = None
        db.session.flush()
        kept.phone = phone
    for attr in ("name", "gender", "birthday", "store_id", "guide_id", "consent_version"):
        if not getattr(kept, attr) and getattr(merged, attr):
            setattr(kept, attr, getattr(merged, attr))
    for attr in ("activated_at", "consented_at"):
        a, b = getattr(kept, attr), getattr(merged, attr)
        if b is not None and (a is None or b < a):
            setattr(kept, attr, b)
    if merged.tier_id is not None:
        ranks = dict(
            db.session.execute(
                select(TierLevel.id, TierLevel.rank).where(
                    TierLevel.id.in_([x for x in (kept.tier_id, merged.tier_id) if x])
                )
            ).all()
        )
        if kept.tier_id is None or ranks.get(merged.tier_id, -1) > ranks.get(kept.tier_id, -1):
            kept.tier_id, kept.tier_since = merged.tier_id, merged.tier_since
