"""Points jobs: the periodic release / expiry / reminder runs and the WeChat sync.

Periodic jobs (listed in ``app.periodic_jobs()``) run without a brand: they find the brands
with work and enqueue one per-brand job each (deduplicated per time slot). A per-brand job
handles one bounded batch and enqueues its own continuation when more is due, so no job
holds a transaction for long. Every job is idempotent (see ``points.expiry``).
"""

from __future__ import annotations

import json
import logging
import secrets
import time

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text

from core.db import db, utcnow
from core.jobs import enqueue, job
from core.redis import get_redis, key
from core.tenancy import use_brand
from org.queries import brands_with
from points import expiry, queries, rules
from points.membership import wechat_targets
from points.models import PointsAccount, PointsEntry, PointsLot
from wechat import notice

log = logging.getLogger(__name__)
BATCH = 500
SYNC_BATCH = 200


def _slot(seconds: int) -> int:
    return int(time.time()) // seconds


# --- periodic fan-out ---------------------------------------------------------------------------


@job("low", timeout=120, retries=2)
def release_all() -> int:
    """Enqueue a release run for every brand with pending points now due."""
    now = utcnow()
    brands = brands_with(PointsLot, PointsLot.released.is_(False), PointsLot.available_at <= now)
    for bid in brands:
        enqueue(release_brand, bid, brand_id=bid, dedupe_key=f"points:release:{bid}:{_slot(300)}")
    return len(brands)


@job("low", timeout=120, retries=2)
def expire_all() -> int:
    """Enqueue an expiry run for every brand with lots past their expiry."""
    now = utcnow()
    brands = brands_with(PointsLot, PointsLot.expires_at <= now, PointsLot.remaining > 0)
    for bid in brands:
        enqueue(expire_brand, bid, brand_id=bid, dedupe_key=f"points:expire:{bid}:{_slot(300)}")
    return len(brands)


@job("low", timeout=120, retries=2)
def remind_all() -> int:
    """Enqueue an expiry-reminder run for every brand with points expiring soon."""
    now = utcnow()
    brands = brands_with(
        PointsLot,
        PointsLot.expires_at > now,
        PointsLot.remaining > 0,
        PointsLot.reminded_at.is_(None),
    )
    for bid in brands:
        enqueue(remind_brand, bid, brand_id=bid, dedupe_key=f"points:remind:{bid}:{_slot(3600)}")
    return len(brands)


@job("low", timeout=120, retries=2)
def sync_all() -> int:
    """Enqueue a WeChat sync for every brand with changes not yet synced (a sweep)."""
    brands = brands_with(PointsAccount, PointsAccount.sync_due)
    for bid in brands:
        enqueue(sync_members, bid, brand_id=bid, dedupe_key=f"points:sync:{bid}:sweep{_slot(60)}")
    return len(brands)


# --- per-brand batches --------------------------------------------------------------------------


@job("default", timeout=300, retries=3)
def release_brand(brand_id: int) -> int:
    """Release one batch of a brand's due pending points."""
    with use_brand(brand_id):
        done = expiry.release_due(limit=BATCH)
        if done >= BATCH:
            enqueue(release_brand, brand_id, dedupe_key=f"points:release:{brand_id}:more{done}")
    return done


@job("default", timeout=300, retries=3)
def expire_brand(brand_id: int) -> int:
    """Expire one batch of a brand's lots past their expiry."""
    with use_brand(brand_id):
        points = expiry.expire_due(limit=BATCH)
        more = db.session.execute(
            select(PointsLot.id)
            .where(PointsLot.remaining > 0, PointsLot.expires_at <= utcnow())
            .limit(1)
        ).first()
        if more is not None:
            enqueue(expire_brand, brand_id, dedupe_key=f"points:expire:{brand_id}:more{more[0]}")
    return points


@job("low", timeout=300, retries=4, backoff=(30, 120, 600, 1800))
def remind_brand(brand_id: int) -> int:
    """Send one batch of "points expiring soon" template messages."""
    from wechat import gateway

    with use_brand(brand_id):
        settings = rules.get_settings()
        reminders = expiry.due_reminders(limit=SYNC_BATCH)
        tz = rules.brand_tz()
        sent = 0
        targets = wechat_targets(r["member_id"] for r in reminders)
        for r in reminders:
            target = targets[r["member_id"]]
            if not settings.expiring_template_id or not target.openid:
                continue
            day = r["expires_at"].astimezone(tz).strftime("%Y-%m-%d")
            # WeChat shows only the keywords: points expiring, the day, the balance left.
            balance = queries.balance(r["member_id"]).balance
            data = notice.keywords(r["points"], day, balance)
            try:
                gateway.send_template(
                    brand_id,
                    target.openid,
                    settings.expiring_template_id,
                    data,
                    client_msg_id=f"pts-exp-{r['member_id']}-{day}",
                )
                sent += 1
            except gateway.RetryableError:
                raise
            except gateway.WeChatError as exc:
                log.warning("expiry reminder to member %s not sent: %s", r["member_id"], exc)
        if len(reminders) >= SYNC_BATCH:
            enqueue(
                remind_brand,
                brand_id,
                dedupe_key=f"points:remind:{brand_id}:{secrets.token_hex(6)}",
            )
    return sent


_LABELS = {
    "earn": _l("Points earned"),
    "release": _l("Pending points available"),
    "spend": _l("Points used"),
    "expire": _l("Points expired"),
    "refund": _l("Points reversed for a refund"),
    "adjust": _l("Points adjusted"),
    "welcome": _l("Welcome points"),
    "merge_in": _l("Points merged"),
    "merge_out": _l("Points merged"),
    "return": _l("Points returned for a refund"),
    "game": _l("Points won in a game"),
}


def _label(entries: list[PointsEntry]) -> str:
    return str(_LABELS.get(entries[-1].kind, _l("Points changed")))


def _record_line(entries: list[PointsEntry]) -> str:
    change = sum(e.points for e in entries if e.kind != "release")
    if not change:
        change = sum(e.points for e in entries)
    label = _label(entries)
    return f"{label} {change:+d}" if change else label


@job("default", timeout=120, retries=5, backoff=(10, 60, 300, 900, 3600))
def sync_members(brand_id: int) -> int:
    """Push changed balances to the WeChat member card and tell the member, in one batch.

    The card gets the absolute balance (so a repeated sync is harmless), with a record line;
    the template message summarises the changes since the last sync. One run per brand at a
    time (a Redis lock); a member changed while the run was busy is picked up by the next.
    """
    from wechat import gateway

    r = get_redis()
    lock = key(brand_id, "points", "sync-lock")
    token = secrets.token_hex(8)
    if not r.set(lock, token, nx=True, ex=300):
        return 0
    try:
        with use_brand(brand_id):
            return _sync_batch(brand_id, gateway)
    finally:
        if r.get(lock) == token.encode():
            r.delete(lock)


# The entries each due account has not been told about: (synced, last] of its own.
_UNSYNCED_ENTRIES = text(
    "SELECT e.* FROM points_entry e"
    " JOIN jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id bigint, lo bigint, hi bigint)"
    " ON e.account_id = r.id AND e.id > r.lo AND e.id <= r.hi"
    " WHERE e.brand_id = :b ORDER BY e.account_id, e.id"
)
# Each account synced up to the entry read; one changed meanwhile keeps its later entries due.
_MARK_SYNCED = text(
    "UPDATE points_account a SET synced_entry_id = r.hi"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id bigint, hi bigint)"
    " WHERE a.id = r.id AND a.brand_id = :b AND a.synced_entry_id < r.hi"
)


def _sync_batch(brand_id: int, gateway) -> int:
    """One batch of the brand's due accounts (``sync_due``, through its partial index), their
    unsynced entries and their WeChat targets in one statement each, the pushes, then one
    statement marking them synced."""
    settings = rules.get_settings()
    accounts = (
        db.session.execute(
            select(PointsAccount)
            .where(PointsAccount.sync_due)
            .order_by(PointsAccount.id)
            .limit(SYNC_BATCH)
        )
        .scalars()
        .all()
    )
    if not accounts:
        return 0
    ranges = [{"id": a.id, "lo": a.synced_entry_id, "hi": a.last_entry_id} for a in accounts]
    unsynced: dict[int, list] = {a.id: [] for a in accounts}
    rows = db.session.execute(
        select(PointsEntry).from_statement(_UNSYNCED_ENTRIES),
        {"rows": json.dumps(ranges), "b": brand_id},
    ).scalars()
    for entry in rows:
        unsynced[entry.account_id].append(entry)
    targets = wechat_targets(a.member_id for a in accounts)
    for account in accounts:
        if unsynced[account.id]:
            _push(
                brand_id,
                gateway,
                settings,
                account,
                unsynced[account.id],
                targets[account.member_id],
            )
    db.session.execute(
        _MARK_SYNCED,
        {"rows": json.dumps([{"id": r["id"], "hi": r["hi"]} for r in ranges]), "b": brand_id},
    )
    if len(accounts) >= SYNC_BATCH:
        enqueue(sync_members, brand_id, dedupe_key=f"points:sync:{brand_id}:{secrets.token_hex(6)}")
    return len(accounts)


def _push(brand_id, gateway, settings, account, entries, target) -> None:
    line = _record_line(entries)
    change = sum(e.points for e in entries if e.kind != "release")
    if not change:  # only pending points became available
        change = sum(e.points for e in entries)
    try:
        if target.card_code and target.card_id:
            gateway.update_member_card_user(
                brand_id,
                code=target.card_code,
                card_id=target.card_id,
                bonus=account.balance,
                record_bonus=line,
            )
        if settings.change_template_id and target.openid:
            gateway.send_template(
                brand_id,
                target.openid,
                settings.change_template_id,
                # WeChat shows only the keywords: change, balance, reason, pending points.
                notice.keywords(f"{change:+d}", account.balance, _label(entries), account.pending),
                client_msg_id=f"pts-{account.id}-{account.last_entry_id}",
            )
    except gateway.RetryableError:
        raise
    except gateway.WeChatError as exc:
        log.warning("points sync of member %s failed: %s", account.member_id, exc)
