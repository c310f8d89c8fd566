"""The points ledger's public operations; the only way other packages change points.

The brand's rules and bonus campaigns are written by ``points.rules`` and re-exported here
(``get_settings``, ``update_settings``, ``save_campaign``); the batch credit of many members
in a handful of statements (game wins) by ``points.crediting`` (``credit_many``).

All functions work in the current brand (``use_brand``), flush and never commit, and take
``now=`` so that tests and replays control the clock. Each mutation has an idempotency key
(its source event): repeating a call returns the first call's entry and changes nothing.
"""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core import audit
from core.db import db, utcnow
from core.errors import NotFound, ValidationError
from points import ledger, rules, spending
from points.crediting import Credit, Credited, credit_many
from points.errors import IdempotencyConflict, InsufficientPoints, InvalidPoints, UnknownMember
from points.membership import check_member_id, require_member, tier_permille
from points.models import (
    ADJUST,
    EARN,
    GAME,
    REFUND,
    RETURN,
    SPEND,
    WELCOME,
    PointsEntry,
    PointsLot,
)
from points.queries import balance, expiring_soon, history
from points.rules import get_settings, save_campaign, update_settings


def credit_game_wins(items, *, now: dt.datetime | None = None) -> dict[str, Credited]:
    """Points won in game campaigns (entries of the kind ``game``), as ``credit_many``."""
    return credit_many(items, kind=GAME, now=now)


__all__ = [
    "Credit",
    "Credited",
    "IdempotencyConflict",
    "InsufficientPoints",
    "InvalidPoints",
    "UnknownMember",
    "adjust",
    "balance",
    "credit_game_wins",
    "credit_many",
    "earn_for_purchase",
    "expiring_soon",
    "get_settings",
    "grant_welcome",
    "history",
    "refund",
    "return_spent",
    "save_campaign",
    "spend",
    "spend_id",
    "update_settings",
]


def _aware(when: dt.datetime | None, field: str) -> dt.datetime:
    if when is None:
        return utcnow()
    if not isinstance(when, dt.datetime) or when.tzinfo is None:
        raise ValidationError(_l("A timezone-aware time is required."), field=field)
    return when.astimezone(dt.UTC)


def _credit(
    account,
    *,
    kind: str,
    key: str,
    points: int,
    earned_at: dt.datetime,
    now: dt.datetime,
    pending_until: dt.datetime | None,
    settings,
    tz,
    **fields,
) -> PointsEntry:
    """Add points as a new lot: pending until ``pending_until``, else repaying debt first."""
    pending = pending_until is not None and pending_until > now
    repay = 0 if pending else min(account.debt, points)
    entry = ledger.add_entry(
        account,
        kind=kind,
        key=key,
        points=points,
        delta_balance=0 if pending else points - repay,
        delta_pending=points if pending else 0,
        delta_debt=-repay,
        occurred_at=earned_at,
        tz=tz,
        **fields,
    )
    if points > 0:
        ledger.new_lot(
            account,
            entry,
            amount=points,
            remaining=points - repay,
            released=not pending,
            earned_at=earned_at,
            available_at=pending_until if pending else earned_at,
            expires_at=rules.expiry_for(earned_at=earned_at, settings=settings, tz=tz),
        )
    ledger.apply(account, entry, earned=points)
    return entry


def earn_for_purchase(
    *,
    member_id: int,
    amount_fen: int,
    store_id: int | None = None,
    category: str | None = None,
    occurred_at: dt.datetime | None = None,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> PointsEntry:
    """Award the points a purchase earns (rate x tier x best campaign, capped per day)."""
    key = ledger.check_key(idempotency_key)
    ledger.check_points(amount_fen, "amount_fen")
    now = _aware(now, "now")
    occurred_at = _aware(occurred_at or now, "occurred_at")
    member = require_member(member_id)

    def work() -> PointsEntry:
        account = ledger.lock_account(member.id)
        existing = ledger.entry_by_key(key)
        if existing is not None:
            return ledger.replay(existing, member_id=member.id, kind=EARN)
        settings = rules.get_settings()
        tz = rules.brand_tz()
        day = rules.local_day(occurred_at, tz)
        tier = tier_permille(member)
        campaign = rules.best_campaign(local_day=day, store_id=store_id, category=category)
        bonus = campaign.multiplier_permille if campaign else rules.PERMILLE
        raw = rules.purchase_points(
            amount_fen=amount_fen,
            earn_permille=settings.earn_permille,
            tier_permille=tier,
            bonus_permille=bonus,
        )
        points = raw
        if settings.daily_cap:
            # The account lock serialises this member's earnings, so the sum cannot race.
            earned_today = db.session.execute(
                select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
                    PointsEntry.account_id == account.id,
                    PointsEntry.kind == EARN,
                    PointsEntry.local_day == day,
                )
            ).scalar_one()
            points = max(0, min(raw, settings.daily_cap - int(earned_today)))
        pending_until = (
            occurred_at + dt.timedelta(days=settings.pending_days)
            if settings.pending_days
            else None
        )
        return _credit(
            account,
            kind=EARN,
            key=key,
            points=points,
            earned_at=occurred_at,
            now=now,
            pending_until=pending_until,
            settings=settings,
            tz=tz,
            amount_fen=amount_fen,
            store_id=store_id,
            category=category,
            reason="purchase",
            detail={
                "earn_permille": settings.earn_permille,
                "tier_permille": tier,
                "bonus_permille": bonus,
                "campaign_id": campaign.id if campaign else None,
                "uncapped": raw,
                "daily_cap": settings.daily_cap,
            },
        )

    return ledger.atomic(key, member.id, EARN, work)


def spend(
    *,
    member_id: int,
    points: int,
    reason: str,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> PointsEntry:
    """Take points from the available balance, earliest-expiring lots first."""
    entry_id = spend_id(
        member_id=member_id,
        points=points,
        reason=reason,
        idempotency_key=idempotency_key,
        now=now,
    )
    entry = db.session.get(PointsEntry, entry_id)
    if entry is None:  # written or replayed just now, in this transaction
        raise RuntimeError(f"points entry {entry_id} vanished")
    return entry


def spend_id(
    *,
    member_id: int,
    points: int,
    reason: str,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> int:
    """``spend``, answering the entry's id (the hot path: no ORM objects are loaded)."""
    key = ledger.check_key(idempotency_key)
    ledger.check_points(points)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_l("A reason is required."), field="reason")
    now = _aware(now, "now")
    check_member_id(member_id)
    entry_id = spending.spend_fast(
        member_id=member_id, points=points, reason=reason, key=key, now=now
    )
    if entry_id is not None:
        return entry_id
    # Every other case (too few points, lots past their expiry, a repeated key, no account,
    # an unknown or inactive member) the general way.
    member = require_member(member_id)

    def work() -> PointsEntry:
        account = ledger.lock_account(member.id)
        existing = ledger.entry_by_key(key)
        if existing is not None:
            return ledger.replay(existing, member_id=member.id, kind=SPEND)
        return _debit(account, kind=SPEND, key=key, points=points, reason=reason, now=now)

    return ledger.atomic(key, member.id, SPEND, work).id


def _debit(account, *, kind: str, key: str, points: int, reason: str, now, **fields) -> PointsEntry:
    from points.expiry import expire_account

    # Lots past their expiry must not pay for anything, even before the expiry job ran.
    expire_account(account, now=now)
    tz = rules.brand_tz()
    entry = ledger.add_entry(
        account,
        kind=kind,
        key=key,
        points=-points,
        delta_balance=-points,
        occurred_at=now,
        tz=tz,
        reason=reason,
        **fields,
    )
    ledger.apply(account, entry, spent=points if kind == SPEND else 0)
    taken = ledger.consume(account, points)
    if taken != points:  # the lots disagree with the cached balance: refuse, never guess
        raise InsufficientPoints(_l("Not enough points."), field="points")
    return entry


def refund(
    *,
    original_key: str,
    refunded_fen: int,
    order_total_fen: int,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> PointsEntry:
    """Reverse an earning in proportion to the refunded amount.

    Rounding: after all refunds of an order, floor(earned * refunded_so_far / total) points
    are reversed; each refund reverses the difference to the previous ones, so a full refund
    reverses exactly what was earned. Points come back from the earning's own lot, then from
    the available balance (earliest expiry first); what is left was spent and becomes debt.
    """
    key = ledger.check_key(idempotency_key)
    ledger.check_key(original_key)
    ledger.check_points(refunded_fen, "refunded_fen")
    ledger.check_points(order_total_fen, "order_total_fen")
    if refunded_fen > order_total_fen:
        raise ValidationError(_l("The refund exceeds the order total."), field="refunded_fen")
    now = _aware(now, "now")
    original = ledger.entry_by_key(original_key)
    if original is None or original.kind != EARN:
        raise NotFound(_l("No points were earned for this order."), field="original_key")

    def work() -> PointsEntry:
        account = ledger.lock_account(original.member_id)
        existing = ledger.entry_by_key(key)
        if existing is not None:
            return ledger.replay(existing, member_id=original.member_id, kind=REFUND)
        done_fen, done_points = db.session.execute(
            select(
                func.coalesce(func.sum(PointsEntry.amount_fen), 0),
                func.coalesce(func.sum(-PointsEntry.points), 0),
            ).where(PointsEntry.ref_entry_id == original.id, PointsEntry.kind == REFUND)
        ).one()
        total_fen = int(done_fen) + refunded_fen
        if total_fen > order_total_fen:
            raise ValidationError(_l("The refunds exceed the order total."), field="refunded_fen")
        reverse = original.points * total_fen // order_total_fen - int(done_points)
        lot = db.session.execute(
            select(PointsLot)
            .where(PointsLot.entry_id == original.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        from_lot = min(reverse, lot.remaining) if lot is not None else 0
        lot_released = lot is None or lot.released
        available_after = account.balance - (from_lot if lot_released else 0)
        from_balance = min(reverse - from_lot, available_after)
        debt = reverse - from_lot - from_balance
        entry = ledger.add_entry(
            account,
            kind=REFUND,
            key=key,
            points=-reverse,
            delta_balance=-(from_lot if lot_released else 0) - from_balance,
            delta_pending=0 if lot_released else -from_lot,
            delta_debt=debt,
            occurred_at=now,
            tz=rules.brand_tz(),
            amount_fen=refunded_fen,
            ref_entry_id=original.id,
            lot_id=lot.id if lot is not None else None,
            reason="refund",
            detail={"order_total_fen": order_total_fen, "from_lot": from_lot, "debt": debt},
        )
        if from_lot:
            ledger.take_from_lot(lot, from_lot)
        if from_balance and ledger.consume(account, from_balance) != from_balance:
            raise InsufficientPoints(_l("Not enough points."), field="points")
        ledger.apply(account, entry)
        return entry

    return ledger.atomic(key, original.member_id, REFUND, work)


def return_spent(
    *,
    original_key: str,
    points: int,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> PointsEntry:
    """Give back part of a spend (a refunded order paid partly with points) as a new lot.

    The spend is named by its own idempotency key; all returns of one spend never pass what
    it took (``InvalidPoints`` on the ``points`` field otherwise).
    """
    key = ledger.check_key(idempotency_key)
    ledger.check_key(original_key)
    ledger.check_points(points)
    now = _aware(now, "now")
    original = ledger.entry_by_key(original_key)
    if original is None or original.kind != SPEND:
        raise NotFound(_l("No points were spent for this order."), field="original_key")

    def work() -> PointsEntry:
        account = ledger.lock_account(original.member_id)
        existing = ledger.entry_by_key(key)
        if existing is not None:
            return ledger.replay(existing, member_id=original.member_id, kind=RETURN)
        # The account lock serialises this member's returns, so the sum cannot race.
        returned = db.session.execute(
            select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
                PointsEntry.ref_entry_id == original.id, PointsEntry.kind == RETURN
            )
        ).scalar_one()
        if int(returned) + points > -original.points:
            raise InvalidPoints(
                _l("More points than were spent cannot be returned."), field="points"
            )
        return _credit(
            account,
            kind=RETURN,
            key=key,
            points=points,
            earned_at=now,
            now=now,
            pending_until=None,
            settings=rules.get_settings(),
            tz=rules.brand_tz(),
            ref_entry_id=original.id,
            reason="refund",
        )

    return ledger.atomic(key, original.member_id, RETURN, work)


def adjust(
    *,
    member_id: int,
    points: int,
    reason: str,
    idempotency_key: str,
    operator: str | None = None,
    note: str | None = None,
    now: dt.datetime | None = None,
) -> PointsEntry:
    """An operator's manual change (positive: a new lot; negative: from the balance).

    ``reason`` is what the member reads in their history; ``note`` stays in the console."""
    key = ledger.check_key(idempotency_key)
    ledger.check_points(points, allow_negative=True)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_l("A reason is required."), field="reason")
    if len(reason) > 500:
        raise ValidationError(_l("At most 500 characters."), field="reason")
    note = (note or "").strip() or None
    if note and len(note) > 500:
        raise ValidationError(_l("At most 500 characters."), field="note")
    now = _aware(now, "now")
    member = require_member(member_id)

    def work() -> PointsEntry:
        account = ledger.lock_account(member.id)
        existing = ledger.entry_by_key(key)
        if existing is not None:
            return ledger.replay(existing, member_id=member.id, kind=ADJUST)
        if points > 0:
            entry = _credit(
                account,
                kind=ADJUST,
                key=key,
                points=points,
                earned_at=now,
                now=now,
                pending_until=None,
                settings=rules.get_settings(),
                tz=rules.brand_tz(),
                reason=reason,
                note=note,
                operator=operator,
            )
        else:
            entry = _debit(
                account,
                kind=ADJUST,
                key=key,
                points=-points,
                reason=reason,
                now=now,
                note=note,
                operator=operator,
            )
        audit.record(
            action="points_adjust",
            object_type="member",
            object_id=member.id,
            after={"points": points, "reason": reason, "note": note, "entry_id": entry.id},
        )
        return entry

    return ledger.atomic(key, member.id, ADJUST, work)


def grant_welcome(*, member_id: int, now: dt.datetime | None = None) -> PointsEntry | None:
    """Give a new member the brand's welcome points (once per member; None if none set)."""
    settings = rules.get_settings()
    if settings.welcome_points <= 0:
        return None
    now = _aware(now, "now")
    member = require_member(member_id)
    key = f"welcome:{member.id}"

    def work() -> PointsEntry:
        account = ledger.lock_account(member.id)
        existing = ledger.entry_by_key(key)
        if existing is not None:
            return ledger.replay(existing, member_id=member.id, kind=WELCOME)
        return _credit(
            account,
            kind=WELCOME,
            key=key,
            points=settings.welcome_points,
            earned_at=now,
            now=now,
            pending_until=None,
            settings=settings,
            tz=rules.brand_tz(),
            reason="welcome",
        )

    return ledger.atomic(key, member.id, WELCOME, work)
