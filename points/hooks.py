"""Points' answers to members' hooks: merging two members, and the welcome gift."""

from __future__ import annotations

from sqlalchemy import select, update

from core.db import db, utcnow
from points import ledger, rules
from points.models import MERGE_IN, PointsAccount, PointsEntry, PointsLot


def merge_accounts(kept_id: int, merged_id: int) -> dict:
    """Move the merged member's account totals, lots and entries to the kept member.

    Entries move with their deltas, so each account's entries still sum to its totals; one
    ``merge_in`` entry records the merge and settles the kept member's debt (if any) from the
    combined balance, earliest expiry first. Returns the exact counts moved (none when the
    merged member never had a points account).
    """
    accounts = {
        a.member_id: a
        for a in db.session.execute(
            select(PointsAccount)
            .where(PointsAccount.member_id.in_([kept_id, merged_id]))
            .order_by(PointsAccount.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalars()
    }
    source = accounts.get(merged_id)
    if source is None:
        return {}  # the merged member never had points: nothing moved, nothing to count
    target = accounts.get(kept_id) or ledger.lock_account(kept_id)
    moved = {k: getattr(source, k) for k in ("balance", "pending", "debt")}
    lifetime = {
        k: getattr(source, k) for k in ("lifetime_earned", "lifetime_spent", "lifetime_expired")
    }
    lots = db.session.execute(
        update(PointsLot)
        .where(PointsLot.account_id == source.id)
        .values(account_id=target.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    entries = db.session.execute(
        update(PointsEntry)
        .where(PointsEntry.account_id == source.id)
        .values(account_id=target.id, member_id=kept_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    # The source account now has no entries and no lots: zero it to match.
    db.session.execute(
        update(PointsAccount)
        .where(PointsAccount.id == source.id)
        .values(
            balance=0,
            pending=0,
            debt=0,
            lifetime_earned=0,
            lifetime_spent=0,
            lifetime_expired=0,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(PointsAccount)
        .where(PointsAccount.id == target.id)
        .values(
            balance=PointsAccount.balance + moved["balance"],
            pending=PointsAccount.pending + moved["pending"],
            debt=PointsAccount.debt + moved["debt"],
            lifetime_earned=PointsAccount.lifetime_earned + lifetime["lifetime_earned"],
            lifetime_spent=PointsAccount.lifetime_spent + lifetime["lifetime_spent"],
            lifetime_expired=PointsAccount.lifetime_expired + lifetime["lifetime_expired"],
        )
        .execution_options(synchronize_session=False)
    )
    target = ledger.lock_account(kept_id)
    settle = min(target.balance, target.debt)
    entry = ledger.add_entry(
        target,
        kind=MERGE_IN,
        key=f"merge:{merged_id}:into:{kept_id}",
        points=moved["balance"],
        delta_balance=-settle,
        delta_debt=-settle,
        occurred_at=utcnow(),
        tz=rules.brand_tz(),
        reason="merge",
        detail={"merged_member_id": merged_id, **moved},
    )
    if settle:
        ledger.consume(target, settle)
    ledger.apply(target, entry)
    return {
        "ledger_accounts": 1,
        "ledger_lots": lots,
        "ledger_entries": entries,
        "ledger_points": moved["balance"],
    }


def welcome_gift(member_id: int) -> None:
    """Grant the brand's welcome points to a newly activated member (idempotent)."""
    from points.services import grant_welcome

    grant_welcome(member_id=member_id)
