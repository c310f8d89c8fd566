"""Batch credit: many members' points in a handful of statements, whatever the batch's size.

``credit_many`` gives each item its points as a new, released lot (system credits: game
wins and the like, never pending), with the guarantees of the single credit
(``points.services._credit`` through ``points.ledger``), in this order, inside one savepoint:

1. the accounts of the batch's active members are created if missing (one ``INSERT ...
   SELECT ... ORDER BY member_id ON CONFLICT DO NOTHING``);
2. they are locked ``FOR UPDATE`` in account id order, the order in which every other
   ledger operation holding several accounts takes them (``points.expiry``, the merge), so
   two batches, or a batch and a release or expiry run, cannot deadlock. The batch never
   locks an existing lot, so the ledger's account-then-lots order holds. The same statement
   reads the members' debts (stable from here on) and whether the card sync is queued.
   A transaction that already holds other accounts' locks should take them in that order
   too (a batch first, or one batch per transaction, as the games job does);
3. the keys already used are read (after the locks, so an earlier use for the same member
   is committed and visible): a key used for the same member and kind answers its entry
   and changes nothing; used for another member or kind, that item is refused with
   ``IdempotencyConflict`` and the others go on;
4. the card sync is asked for once for the whole batch (``ledger.mark_dirty``: no
   statement when this time slot's is queued already), after the account locks as every
   single operation does, so that no batch waits for an outbox row while another
   transaction waits for its accounts;
5. one statement inserts the entries (multi-row, ``ON CONFLICT DO NOTHING``), their lots,
   and adds each account's totals with one ``UPDATE ... FROM`` the entries written.

Debt is repaid first, as ``_credit`` does: an item's ``delta_debt`` is minus the part of
its points that repays the debt, its lot keeps the rest, and several items of one member in
one batch repay in the batch's order. A key that another transaction wrote meanwhile for
another member (only such a key can race: a use for the same member waits for its account
lock) makes step 5 skip that entry; the savepoint is then rolled back and the batch done
again, where step 3 refuses it.

Per batch: the savepoint and its release, steps 1, 2, 3 and 5, and the outbox row of step 4
in the first batch of a time slot: six or seven statements, whatever the batch's size. An
item's own errors (a bad key, amount or reason, an unknown or inactive member, a key used
for something else) refuse that item only and are answered in its ``Credited``; a key
named twice in one batch, or a kind other than those below, is the caller's bug
(``ValueError``, nothing written). Flushes, never commits.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import text

from core.db import db, utcnow
from core.errors import AppError, ValidationError
from core.tenancy import require_brand_id
from members.models import ACTIVE
from points import ledger, rules
from points.errors import IdempotencyConflict, UnknownMember
from points.membership import check_member_id
from points.models import ADJUST, GAME, WELCOME, PointsAccount

CREDIT_KINDS = (ADJUST, WELCOME, GAME)
MAX_REASON = 500
_ATTEMPTS = 3


@dataclasses.dataclass(frozen=True)
class Credit:
    """One credit of a batch: ``points`` (> 0) for a member, with the idempotency key of
    its source event and the reason the member reads in their history."""

    member_id: int
    points: int
    key: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Credited:
    """What became of one credit: its entry (written now, or earlier under the same key),
    or the error that refused it (nothing written for it)."""

    entry_id: int | None = None
    written: bool = False
    error: AppError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


_CREATE_ACCOUNTS = text(
    "INSERT INTO points_account (brand_id, member_id, balance, pending, debt,"
    " lifetime_earned, lifetime_spent, lifetime_expired, last_entry_id, synced_entry_id,"
    " created_at, updated_at)"
    " SELECT m.brand_id, m.id, 0, 0, 0, 0, 0, 0, 0, 0, CAST(:now AS timestamptz),"
    " CAST(:now AS timestamptz) FROM member m"
    " WHERE m.brand_id = :b AND m.id = ANY(CAST(:ids AS bigint[])) AND m.status = :active"
    " AND NOT EXISTS (SELECT 1 FROM points_account a"
    "  WHERE a.brand_id = m.brand_id AND a.member_id = m.id)"
    " ORDER BY m.id"
    " ON CONFLICT (brand_id, member_id) DO NOTHING"
)

# The accounts of active members only: an inactive member's account stays untouched.
_LOCK_ACCOUNTS = text(
    "SELECT a.id, a.member_id, a.debt,"
    " EXISTS (SELECT 1 FROM outbox_job j WHERE j.dedupe_key = :sync) AS queued"
    " FROM points_account a JOIN member m ON m.id = a.member_id AND m.brand_id = a.brand_id"
    " WHERE a.brand_id = :b AND a.member_id = ANY(CAST(:ids AS bigint[]))"
    " AND m.status = :active"
    " ORDER BY a.id FOR UPDATE OF a"
)

_USED_KEYS = text(
    "SELECT idempotency_key, id, member_id, kind FROM points_entry"
    " WHERE brand_id = :b AND idempotency_key = ANY(CAST(:keys AS varchar[]))"
)

# Entries in the batch's order (so each member's entry ids follow it), their lots (the
# points left after repaying debt: the entry's delta_balance), then each account's totals
# from the entries actually written.
_WRITE = text(
    "WITH r AS ("
    " SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(ord integer, a bigint,"
    " m bigint, key varchar, p bigint, db bigint, dd bigint, reason text)"
    "), entry AS ("
    " INSERT INTO points_entry (brand_id, account_id, member_id, kind, idempotency_key,"
    " points, delta_balance, delta_pending, delta_debt, reason, occurred_at, local_day,"
    " created_at)"
    " SELECT :b, r.a, r.m, CAST(:kind AS varchar), r.key, r.p, r.db, 0, r.dd, r.reason,"
    " CAST(:now AS timestamptz), CAST(:day AS date), CAST(:created AS timestamptz)"
    " FROM r ORDER BY r.ord"
    " ON CONFLICT (brand_id, idempotency_key) DO NOTHING"
    " RETURNING id, account_id, idempotency_key, points, delta_balance, delta_debt"
    "), lot AS ("
    " INSERT INTO points_lot (brand_id, account_id, entry_id, amount, remaining, released,"
    " earned_at, available_at, expires_at)"
    " SELECT :b, e.account_id, e.id, e.points, e.delta_balance, true,"
    " CAST(:now AS timestamptz), CAST(:now AS timestamptz), CAST(:expires AS timestamptz)"
    " FROM entry e ORDER BY e.id"
    " RETURNING id"
    "), total AS ("
    " SELECT account_id, sum(points) AS p, sum(delta_balance) AS db, sum(delta_debt) AS dd,"
    " max(id) AS last FROM entry GROUP BY account_id"
    "), account AS ("
    " UPDATE points_account a SET balance = a.balance + t.db, debt = a.debt + t.dd,"
    " lifetime_earned = a.lifetime_earned + t.p, last_entry_id = t.last,"
    " updated_at = CAST(:created AS timestamptz)"
    " FROM total t WHERE a.id = t.account_id AND a.brand_id = :b"
    " RETURNING a.id"
    ")"
    " SELECT (SELECT json_agg(json_build_array(idempotency_key, id)) FROM entry) AS written,"
    " (SELECT count(*) FROM lot) AS lots, (SELECT count(*) FROM account) AS accounts,"
    " (SELECT count(*) FROM total) AS expected"
)


class _Raced(Exception):
    """A key was written by another transaction between the check and the insert."""


def _check(item: Credit) -> Credit:
    """The item with its reason trimmed, or the first of its errors (``AppError``)."""
    ledger.check_key(item.key)
    check_member_id(item.member_id)
    ledger.check_points(item.points)
    reason = (item.reason or "").strip() if isinstance(item.reason, str) else ""
    if not reason:
        raise ValidationError(_l("A reason is required."), field="reason")
    if len(reason) > MAX_REASON:
        raise ValidationError(_l("At most 500 characters."), field="reason")
    return dataclasses.replace(item, reason=reason)


def credit_many(
    items: Sequence[Credit], *, kind: str = ADJUST, now: dt.datetime | None = None
) -> dict[str, Credited]:
    """Credit many members at once (see the module); answers each item's outcome by key."""
    if kind not in CREDIT_KINDS:
        raise ValueError(f"credit_many cannot write {kind!r} entries")
    if now is None:
        now = utcnow()
    elif not isinstance(now, dt.datetime) or now.tzinfo is None:
        raise ValidationError(_l("A timezone-aware time is required."), field="now")
    now = now.astimezone(dt.UTC)
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        # One source event named twice in one call is the caller's bug, not data.
        raise ValueError("credit_many: an idempotency key appears twice in the batch")
    results: dict[str, Credited] = {}
    todo: list[Credit] = []
    for item in items:
        try:
            todo.append(_check(item))
        except AppError as exc:
            results[item.key] = Credited(error=exc)
    if not todo:
        return results
    db.session.flush()  # these statements bypass the ORM: its pending rows go first
    settings = rules.get_settings()
    tz = rules.brand_tz()
    when = {
        "now": now,
        "day": rules.local_day(now, tz),
        "expires": rules.expiry_for(earned_at=now, settings=settings, tz=tz),
    }
    for _attempt in range(_ATTEMPTS):
        try:
            with db.session.begin_nested():
                results.update(_credit_batch(todo, kind=kind, when=when))
            return results
        except _Raced:
            continue  # rolled back; the next round finds the raced keys and refuses them
    raise RuntimeError("credit_many: keys kept racing with other transactions")


def _credit_batch(items: list[Credit], *, kind: str, when: dict) -> dict[str, Credited]:
    bid = require_brand_id()
    ids = sorted({item.member_id for item in items})
    db.session.execute(_CREATE_ACCOUNTS, {"b": bid, "ids": ids, "active": ACTIVE, "now": utcnow()})
    sync = ledger.sync_key(bid)
    locked = db.session.execute(
        _LOCK_ACCOUNTS, {"b": bid, "ids": ids, "active": ACTIVE, "sync": sync}
    ).all()
    accounts = {row.member_id: row.id for row in locked}
    debt = {row.id: int(row.debt) for row in locked}
    used = {
        row.idempotency_key: row
        for row in db.session.execute(_USED_KEYS, {"b": bid, "keys": [item.key for item in items]})
    }
    results: dict[str, Credited] = {}
    rows: list[dict] = []
    for item in items:
        earlier = used.get(item.key)
        if earlier is not None:
            if earlier.kind == kind and earlier.member_id == item.member_id:
                results[item.key] = Credited(entry_id=int(earlier.id))
            else:
                results[item.key] = Credited(
                    error=IdempotencyConflict(
                        _l("This idempotency key was already used for another operation."),
                        field="key",
                    )
                )
            continue
        account_id = accounts.get(item.member_id)
        if account_id is None:
            results[item.key] = Credited(
                error=UnknownMember(_l("Unknown member."), field="member_id")
            )
            continue
        repay = min(debt[account_id], item.points)
        debt[account_id] -= repay
        rows.append(
            {
                "ord": len(rows),
                "a": account_id,
                "m": item.member_id,
                "key": item.key,
                "p": item.points,
                "db": item.points - repay,
                "dd": -repay,
                "reason": item.reason,
            }
        )
    if not rows:
        return results
    # Once for the batch, with its accounts locked (the order every single operation keeps).
    ledger.mark_dirty(bid, key=sync, queued=locked[0].queued)
    out = db.session.execute(
        _WRITE,
        {
            "rows": json.dumps(rows, ensure_ascii=False),
            "b": bid,
            "kind": kind,
            "now": when["now"],
            "day": when["day"],
            "expires": when["expires"],
            "created": utcnow(),
        },
    ).one()
    written = {key: int(entry_id) for key, entry_id in (out.written or [])}
    if len(written) != len(rows):
        raise _Raced()
    if out.lots != len(rows) or out.accounts != out.expected:  # cannot happen
        raise RuntimeError("credit_many wrote entries without their lots or totals")
    for key, entry_id in written.items():
        results[key] = Credited(entry_id=entry_id, written=True)
    _forget_accounts({row["a"] for row in rows})
    return results


def _forget_accounts(account_ids: set[int]) -> None:
    """Expire loaded account rows the statements changed behind the ORM's back."""
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, PointsAccount) and obj.id in account_ids:
            db.session.expire(obj)
