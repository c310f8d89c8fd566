"""The fan-out of a push: chunked jobs through the outbox (``core.jobs``).

1. ``prepare_campaign`` materialises the recipients once: one ``INSERT ... SELECT`` from the
   segment's member ids with the holdout flag (the brand-wide 5% group no campaign touches,
   and the campaign's own random share, both by a hash of brand or campaign and member id),
   then cuts the targets into keyset chunks (member id ranges) and enqueues one job each.
2. ``send_chunk`` holds its chunk by a lease, and works through it in batches: claim
   (pending -> sending), the frequency cap, the coupon (one idempotency key per campaign and
   member), commit; then the messages, throttled by the brand's token bucket in Redis, and
   the outcomes (sent / skipped / failed) written by conditional updates with the rollup
   counters, commit. -1 and 45009 put the chunk back with a backoff; quiet hours defer it.
   A recipient left ``sending`` by a dead worker is sent again with the same client_msg_id
   and coupon key, so the member still gets one coupon and one message.
3. ``tick`` (periodic): starts due scheduled and monthly campaigns, sends again the chunks
   whose lease ran out (a killed worker) or whose job was lost, and completes campaigns.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from types import SimpleNamespace

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, String, case, cast, false, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import BIT
from sqlalchemy.dialects.postgresql import insert as pg_insert

from campaigns import channels, tracking
from campaigns.models.push import (
    BRAND_HOLDOUT,
    CAMPAIGN_HOLDOUT,
    CANCELLED,
    CHUNK_DONE,
    CHUNK_PENDING,
    CHUNK_RUNNING,
    COMPLETED,
    CUSTOMER_SERVICE,
    HELD,
    MASS,
    NO_MESSAGE,
    PENDING,
    PREPARING,
    RUNNING,
    SMS,
    SUBSCRIBE,
    TARGET,
    TEMPLATE,
    Campaign,
    CampaignChunk,
    CampaignRecipient,
    CampaignSettings,
)
from core.db import db, utcnow
from core.jobs import enqueue, job
from core.labels import register_labels
from core.redis import get_redis, key
from core.tenancy import require_brand_id, use_brand
from coupons import services as coupon_services
from coupons.errors import SoldOut
from members.models import Member
from members.tiers_tags import tags as member_tags
from org.models import Brand, Store
from wechat import gateway

# Per-batch statements name the campaign as ``(SELECT CAST(:cid AS bigint))``: a new
# campaign's id has no statistics yet, and with the literal the planner takes its recipients
# for one row and scans all of them per batch; with the parameter it probes the primary key
# (campaign_id, member_id) once per member of the batch.
log = logging.getLogger(__name__)

CHUNK_SIZE = 1000
# sends of one batch in flight at once (each waits on WeChat's answer)
SEND_THREADS = 8
BATCH = 500
LEASE = dt.timedelta(seconds=120)
# backoff of a chunk after WeChat said -1 (busy) or 45009 (daily quota reached)
BUSY_BACKOFF = (5, 30, 120, 600)
QUOTA_BACKOFF = (600, 1800, 3600)
BRAND_HOLDOUT_PCT = 5
# a pending chunk whose job has not taken it this long after it was due was lost
LOST_AFTER = dt.timedelta(minutes=5)


def settings() -> CampaignSettings:
    """The current brand's push rules (defaults when never saved)."""
    row = db.session.execute(select(CampaignSettings)).scalar_one_or_none()
    return row or CampaignSettings(
        per_day=1, per_week=3, quiet_start=21, quiet_end=8, rate_per_second=200
    )


def chunk_size() -> int:
    return int(current_app.config.get("CAMPAIGN_CHUNK_SIZE") or CHUNK_SIZE)


def _bucket(salt: str, member_id):
    """A member's stable bucket 0-99 for ``salt``: the first 32 bits of md5(salt || id)."""
    digest = func.substr(func.md5(literal(salt) + cast(member_id, String)), 1, 8)
    return cast(cast(literal("x") + digest, BIT(32)), BigInteger) % 100


def bucket(salt: str, member_id: int) -> int:
    """The same bucket computed here (tests, support questions)."""
    return int(hashlib.md5(f"{salt}{member_id}".encode()).hexdigest()[:8], 16) % 100  # noqa: S324


# --- preparing ----------------------------------------------------------------------------


def _segment_select(campaign: Campaign):
    from campaigns import segments
    from campaigns.models import Segment

    seg = db.session.get(Segment, campaign.segment_id) if campaign.segment_id else None
    if seg is None or seg.brand_id != campaign.brand_id:
        return None
    # a store manager's segment, or a campaign of a store, reaches that store only
    store_id = campaign.store_id or seg.store_id
    return segments.member_ids(seg.definition, store_id=store_id)


@job("default", timeout=3600, retries=3, backoff=(30, 120, 600))
def prepare_campaign(campaign_id: int) -> str:
    """Materialise a campaign's recipients and chunks, then enqueue the chunks."""
    campaign = db.session.execute(
        select(Campaign).where(Campaign.id == campaign_id).with_for_update()
    ).scalar_one_or_none()
    if campaign is None or campaign.status != PREPARING:
        return "not-preparing"
    members = _segment_select(campaign)
    bid = require_brand_id()
    if members is None:
        campaign.status = CANCELLED
        campaign.finished_at = utcnow()
        return "no-segment"
    root = campaign.parent_id or campaign.id
    member, store = Member.__table__, Store.__table__
    in_brand = _bucket(f"brand-holdout:{bid}:", member.c.id) < BRAND_HOLDOUT_PCT
    in_campaign = _bucket(f"campaign-holdout:{root}:", member.c.id) < int(campaign.holdout_pct)
    rows = (
        select(
            literal(campaign.id, BigInteger),
            member.c.id,
            member.c.brand_id,
            case((in_brand, BRAND_HOLDOUT), (in_campaign, CAMPAIGN_HOLDOUT), else_=TARGET),
            case((in_brand | in_campaign, HELD), else_=PENDING),
            member.c.store_id,
            member.c.tier_id,
            store.c.city,
            false(),
            literal(0),
            literal(0),
            literal(0),
            false(),
            literal(0),
        )
        .select_from(member.outerjoin(store, store.c.id == member.c.store_id))
        .where(member.c.brand_id == bid, member.c.id.in_(members))
    )
    recipients = CampaignRecipient.__table__
    db.session.execute(
        pg_insert(recipients)
        .from_select(
            [
                "campaign_id",
                "member_id",
                "brand_id",
                "holdout",
                "state",
                "store_id",
                "tier_id",
                "city",
                "contact_taken",
                "attempts",
                "revenue_fen",
                "discount_fen",
                "purchased",
                "purchase_fen",
            ],
            rows,
        )
        .on_conflict_do_nothing()
    )
    size = chunk_size()
    db.session.execute(
        text(
            "INSERT INTO campaign_chunk (brand_id, campaign_id, no, first_member_id,"
            " last_member_id, size, state, attempts)"
            " SELECT :b, :cid, g, min(member_id), max(member_id), count(*), 'pending', 0 FROM ("
            "  SELECT member_id, (row_number() OVER (ORDER BY member_id) - 1) / :size AS g"
            "  FROM campaign_recipient WHERE campaign_id = :cid AND holdout = 0) s GROUP BY g"
            " ON CONFLICT DO NOTHING"
        ),
        {"b": bid, "cid": campaign.id, "size": size},
    )
    db.session.execute(
        text(
            "INSERT INTO campaign_counter (campaign_id, dim, dim_key, metric, grp, brand_id, n)"
            " SELECT r.campaign_id, d.dim, d.k, 'targeted', r.holdout, r.brand_id, count(*)"
            " FROM campaign_recipient r, LATERAL (VALUES ('', ''),"
            "  ('store', coalesce(r.store_id::text, '')), ('city', coalesce(r.city, '')),"
            "  ('tier', coalesce(r.tier_id::text, ''))) d(dim, k)"
            " WHERE r.campaign_id = :cid GROUP BY r.campaign_id, r.brand_id, d.dim, d.k, r.holdout"
            " ON CONFLICT (campaign_id, dim, dim_key, metric, grp)"
            " DO UPDATE SET n = excluded.n"
        ),
        {"cid": campaign.id},
    )
    stats = db.session.execute(
        text(
            "SELECT count(*) FILTER (WHERE holdout = 0), count(*) FROM campaign_recipient"
            " WHERE campaign_id = :cid"
        ),
        {"cid": campaign.id},
    ).one()
    chunks = db.session.execute(
        select(CampaignChunk.no).where(CampaignChunk.campaign_id == campaign.id)
    ).scalars()
    campaign.targeted = int(stats[1])
    campaign.chunks_total = 0
    campaign.status = RUNNING
    campaign.started_at = campaign.started_at or utcnow()
    for no in chunks:
        campaign.chunks_total += 1
        enqueue(send_chunk, campaign.id, no, dedupe_key=f"campaign-chunk:{campaign.id}:{no}:0")
    if not campaign.chunks_total:
        campaign.status = COMPLETED
        campaign.finished_at = utcnow()
    db.session.flush()
    return "prepared"


# --- the token bucket ---------------------------------------------------------------------

_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local t = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(t[1]) or burst
local ts = tonumber(t[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local wait = 0
if tokens >= want then
  tokens = tokens - want
else
  wait = math.ceil((want - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], 60000)
return wait
"""


def take_tokens(brand_id: int, n: int, *, rate: int) -> float:
    """Wait until the brand's bucket (``rate`` sends a second, shared by every worker) gives
    ``n`` sends; returns the seconds waited."""
    r = get_redis()
    script = r.register_script(_BUCKET)
    burst = max(rate, n)
    waited = 0.0
    while True:
        wait_ms = int(
            script(
                keys=[key(brand_id, "campaign", "bucket")],
                args=[rate, burst, int(time.time() * 1000), n],
            )
        )
        if wait_ms <= 0:
            return waited
        time.sleep(wait_ms / 1000)
        waited += wait_ms / 1000


# --- the frequency cap --------------------------------------------------------------------

_TAKE_CONTACT = text(
    "INSERT INTO campaign_member_contact AS c (brand_id, member_id, day, day_n, week, week_n,"
    " mass_month, mass_n)"
    " SELECT :b, m, :day, 1, :week, 1, :month, :mass FROM unnest(CAST(:ids AS bigint[])) AS m"
    " ON CONFLICT (brand_id, member_id) DO UPDATE SET"
    "  day_n = CASE WHEN c.day = :day THEN c.day_n + 1 ELSE 1 END,"
    "  week_n = CASE WHEN c.week = :week THEN c.week_n + 1 ELSE 1 END,"
    "  mass_n = CASE WHEN c.mass_month = :month THEN c.mass_n + :mass ELSE :mass END,"
    "  day = :day, week = :week,"
    "  mass_month = CASE WHEN :mass = 1 THEN :month ELSE c.mass_month END"
    " WHERE (c.day <> :day OR c.day_n < :per_day) AND (c.week <> :week OR c.week_n < :per_week)"
    "  AND (:mass = 0 OR c.mass_month <> :month OR c.mass_n < :mass_cap)"
    " RETURNING c.member_id"
)


def take_contacts(
    member_ids: list[int], *, local_day: dt.date, per_day: int, per_week: int, mass: bool
) -> set[int]:
    """Count one contact for each member still under the cap (one upsert, exact across
    campaigns and workers: the member's row is locked by the upsert); returns those."""
    if not member_ids:
        return set()
    week = local_day - dt.timedelta(days=local_day.weekday())
    rows = db.session.execute(
        _TAKE_CONTACT,
        {
            "b": require_brand_id(),
            "ids": sorted(member_ids),
            "day": local_day,
            "week": week,
            "month": local_day.strftime("%Y-%m"),
            "mass": 1 if mass else 0,
            "per_day": per_day,
            "per_week": per_week,
            "mass_cap": channels.MASS_PER_MONTH,
        },
    ).scalars()
    return set(rows)


def give_back_contacts(member_ids: list[int], *, local_day: dt.date, mass: bool) -> None:
    """A contact counted for a member the message never reached (unfollowed, no opt-in)."""
    if not member_ids:
        return
    week = local_day - dt.timedelta(days=local_day.weekday())
    db.session.execute(
        text(
            "UPDATE campaign_member_contact SET"
            " day_n = CASE WHEN day = :day AND day_n > 0 THEN day_n - 1 ELSE day_n END,"
            " week_n = CASE WHEN week = :week AND week_n > 0 THEN week_n - 1 ELSE week_n END,"
            " mass_n = CASE WHEN :mass = 1 AND mass_month = :month AND mass_n > 0"
            "  THEN mass_n - 1 ELSE mass_n END"
            " WHERE brand_id = :b AND member_id = ANY(CAST(:ids AS bigint[]))"
        ),
        {
            "b": require_brand_id(),
            "ids": sorted(member_ids),
            "day": local_day,
            "week": week,
            "mass": 1 if mass else 0,
            "month": local_day.strftime("%Y-%m"),
        },
    )


# --- quiet hours --------------------------------------------------------------------------


def quiet_until(local: dt.datetime, *, start: int, end: int, sms: bool) -> dt.datetime | None:
    """The brand-local time sends may start again, or None when they may go now. Quiet
    hours (default 21:00-08:00) wrap midnight; SMS may only go 08:00-21:00 whatever they are."""
    hour = local.hour
    windows = [(start, end)]
    if sms:
        windows.append((channels.SMS_HOURS[1], channels.SMS_HOURS[0]))
    latest = None
    for s, e in windows:
        inside = (s <= hour < e) if s < e else (hour >= s or hour < e)
        if s == e or not inside:
            continue
        resume = local.replace(hour=e, minute=0, second=0, microsecond=0)
        if resume <= local:
            resume += dt.timedelta(days=1)
        latest = resume if latest is None or resume > latest else latest
    return latest


# --- sending a chunk ----------------------------------------------------------------------


@job("default", timeout=1800, retries=5, backoff=(5, 30, 120, 600))
def send_chunk(campaign_id: int, no: int) -> str:
    """Send one chunk of a campaign (see the module's docstring)."""
    return process_chunk(campaign_id, no)


def _release(campaign_id: int, no: int, *, available_at: dt.datetime | None) -> None:
    db.session.execute(
        update(CampaignChunk)
        .where(
            CampaignChunk.brand_id == require_brand_id(),
            CampaignChunk.campaign_id == campaign_id,
            CampaignChunk.no == no,
            CampaignChunk.state == CHUNK_RUNNING,
        )
        .values(state=CHUNK_PENDING, lease_until=None, available_at=available_at)
        .execution_options(synchronize_session=False)
    )


def _claim_chunk(campaign_id: int, no: int, now: dt.datetime) -> CampaignChunk | None:
    claimed = db.session.execute(
        text(
            "UPDATE campaign_chunk SET state = 'running', lease_until = :lease,"
            " attempts = attempts + 1 WHERE brand_id = :b AND campaign_id = :cid AND no = :no"
            " AND ((state = 'pending' AND (available_at IS NULL OR available_at <= :now))"
            "  OR (state = 'running' AND lease_until < :now))"
            " RETURNING no"
        ),
        {"b": require_brand_id(), "cid": campaign_id, "no": no, "now": now, "lease": now + LEASE},
    ).scalar()
    if claimed is None:
        return None
    return db.session.execute(
        select(CampaignChunk).where(
            CampaignChunk.campaign_id == campaign_id, CampaignChunk.no == no
        )
    ).scalar_one()


def _requeue(campaign_id: int, no: int, *, delay: float, why: str) -> None:
    tag = f"{why}:{int(time.time() * 1000)}"
    enqueue(
        send_chunk,
        campaign_id,
        no,
        delay=delay,
        dedupe_key=f"campaign-chunk:{campaign_id}:{no}:{tag}",
    )


def process_chunk(campaign_id: int, no: int, *, now: dt.datetime | None = None) -> str:
    """Send one chunk; commits as it goes (each batch's claim, then each batch's outcomes)."""
    clock = (lambda: now) if now is not None else utcnow
    bid = require_brand_id()
    chunk = _claim_chunk(campaign_id, no, clock())
    if chunk is None:
        db.session.rollback()
        return "not-claimed"
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or campaign.status not in (RUNNING,):
        if campaign is not None and campaign.status == CANCELLED:
            _skip_left_sending(campaign, chunk, clock())
        _release(campaign_id, no, available_at=None)
        db.session.commit()
        return campaign.status if campaign else "gone"
    brand = db.session.get(Brand, bid)
    rules = settings()
    local = clock().astimezone(brand.tz)
    resume = quiet_until(
        local, start=rules.quiet_start, end=rules.quiet_end, sms=campaign.channel == SMS
    )
    if resume is not None:
        at = resume.astimezone(dt.UTC)
        _release(campaign_id, no, available_at=at)
        campaign.deferred_until = at
        _requeue(campaign_id, no, delay=(at - clock()).total_seconds(), why="quiet")
        db.session.commit()
        return "deferred"
    db.session.commit()
    sender = _Sender(campaign, brand, rules, clock)
    while True:
        db.session.refresh(campaign)
        if campaign.status != RUNNING:
            if campaign.status == CANCELLED:
                _skip_left_sending(campaign, chunk, clock())
            _release(campaign_id, no, available_at=None)
            db.session.commit()
            return campaign.status
        rows = db.session.execute(
            text(
                "SELECT member_id, state, contact_taken, coupon_id FROM campaign_recipient"
                " WHERE campaign_id = (SELECT CAST(:cid AS bigint))"
                " AND member_id BETWEEN :lo AND :hi AND holdout = 0"
                " AND state IN ('pending', 'sending') ORDER BY member_id LIMIT :n"
            ),
            {
                "cid": campaign_id,
                "lo": chunk.first_member_id,
                "hi": chunk.last_member_id,
                "n": sender.batch_limit,
            },
        ).all()
        if not rows:
            break
        try:
            sender.batch(rows)
        except Stopped:
            continue  # the campaign was paused or cancelled: released at the loop's top
        except gateway.RetryableError as exc:
            db.session.rollback()
            sender.apply_early_reports()
            backoff = QUOTA_BACKOFF if exc.errcode == 45009 else BUSY_BACKOFF
            attempt = max(1, chunk.attempts)
            delay = backoff[min(attempt, len(backoff)) - 1]
            _release(campaign_id, no, available_at=clock() + dt.timedelta(seconds=delay))
            _requeue(campaign_id, no, delay=delay, why=f"e{exc.errcode}")
            db.session.commit()
            log.info(
                "campaign %s chunk %s: WeChat %s, again in %ss", campaign_id, no, exc.errcode, delay
            )
            return "backoff"
        db.session.execute(
            update(CampaignChunk)
            .where(CampaignChunk.campaign_id == campaign_id, CampaignChunk.no == no)
            .values(lease_until=clock() + LEASE)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        sender.apply_early_reports()
    db.session.execute(
        update(CampaignChunk)
        .where(CampaignChunk.campaign_id == campaign_id, CampaignChunk.no == no)
        .values(state=CHUNK_DONE, finished_at=clock(), lease_until=None)
        .execution_options(synchronize_session=False)
    )
    _maybe_complete(campaign_id, clock())
    db.session.commit()
    return "done"


def _skip_left_sending(campaign: Campaign, chunk: CampaignChunk, now: dt.datetime) -> None:
    """A cancelled campaign's chunk, held by this job: the members WeChat's busy answer left
    ``sending`` (no message reached them; cancel itself only skips ``pending`` members, as a
    ``sending`` one may be in another worker's hands) are skipped as cancelled, and the
    frequency-cap contact counted for them is given back."""
    rows = db.session.execute(
        text(
            "UPDATE campaign_recipient SET state = 'skipped', skip_reason = 'cancelled'"
            " WHERE campaign_id = (SELECT CAST(:cid AS bigint))"
            " AND member_id BETWEEN :lo AND :hi AND holdout = 0 AND state = 'sending'"
            " RETURNING member_id, contact_taken"
        ),
        {"cid": campaign.id, "lo": chunk.first_member_id, "hi": chunk.last_member_id},
    ).all()
    tracking.bump(campaign.id, "skipped", [r.member_id for r in rows])
    if campaign.channel == SUBSCRIBE:
        # acceptances taken for sends never tried go back (an uncertain one stays taken)
        channels.settle_opt_ins(campaign.id, {}, untried=[r.member_id for r in rows])
    brand = db.session.get(Brand, campaign.brand_id)
    give_back_contacts(
        [r.member_id for r in rows if r.contact_taken],
        local_day=now.astimezone(brand.tz).date(),
        mass=campaign.channel == MASS,
    )


def _maybe_complete(campaign_id: int, now: dt.datetime) -> bool:
    left = db.session.execute(
        text("SELECT count(*) FROM campaign_chunk WHERE campaign_id = :cid AND state <> 'done'"),
        {"cid": campaign_id},
    ).scalar_one()
    if left:
        return False
    done = db.session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == RUNNING)
        .values(status=COMPLETED, finished_at=now, deferred_until=None)
        .returning(Campaign.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    return done is not None


class _Sender:
    """One chunk's batches: claim, cap, coupon, commit; messages; outcomes."""

    def __init__(self, campaign: Campaign, brand: Brand, rules: CampaignSettings, clock):
        self.campaign, self.brand, self.rules, self.clock = campaign, brand, rules, clock
        self.cid = campaign.id
        self.mass = campaign.channel == MASS
        self.subscribe = campaign.channel == SUBSCRIBE
        # a mass message goes to a whole chunk in one call (WeChat takes 2 to 10,000 openids),
        # so that a batch of one, which WeChat refuses, is left only to a chunk of one
        self.batch_limit = (
            min(channels.MASS_MAX_OPENIDS, max(batch_size(), chunk_size()))
            if self.mass
            else batch_size()
        )
        self.msgids: list[int] = []
        self.claimed: set[int] = set()
        self.tpl = None
        if campaign.coupon_template_id:
            self.tpl = coupon_services.get_template(campaign.coupon_template_id)

    def apply_early_reports(self) -> None:
        """Delivery reports WeChat sent before this batch's outcomes were committed."""
        msgids, self.msgids = self.msgids, []
        if msgids and tracking.apply_noted_deliveries(msgids):
            db.session.commit()

    def _set(self, sql: str, ids, **params) -> list[int]:
        if not ids:
            return []
        return (
            db.session.execute(
                text(
                    f"UPDATE campaign_recipient SET {sql}"  # noqa: S608
                    " WHERE campaign_id = (SELECT CAST(:cid AS bigint))"
                    " AND member_id = ANY(CAST(:ids AS bigint[])) RETURNING member_id"
                ),
                {"cid": self.cid, "ids": sorted(ids), **params},
            )
            .scalars()
            .all()
        )

    def batch(self, rows) -> None:
        now = self.clock()
        day = now.astimezone(self.brand.tz).date()
        pending = [r.member_id for r in rows if r.state == "pending"]
        claimed = set(
            db.session.execute(
                text(
                    "UPDATE campaign_recipient SET state = 'sending', attempts = attempts + 1"
                    " WHERE campaign_id = (SELECT CAST(:cid AS bigint))"
                    " AND member_id = ANY(CAST(:ids AS bigint[]))"
                    " AND state = 'pending'"
                    " RETURNING member_id"
                ),
                {"cid": self.cid, "ids": pending},
            ).scalars()
        )
        self.claimed = claimed
        sending = claimed | {r.member_id for r in rows if r.state == "sending"}
        taken = {r.member_id for r in rows if r.contact_taken}
        need = sorted(sending - taken)
        ok = take_contacts(
            need,
            local_day=day,
            per_day=self.rules.per_day,
            per_week=self.rules.per_week,
            mass=self.mass,
        )
        self._set("contact_taken = true", ok)
        capped = set(need) - ok
        capped = set(self._set("state = 'skipped', skip_reason = 'capped'", capped))
        tracking.bump(self.cid, "skipped", list(capped))
        tracking.bump(self.cid, "capped", list(capped))
        go = sorted(sending - capped)
        if not go:
            db.session.commit()
            return
        have_coupon = {r.member_id for r in rows if r.coupon_id}
        if self.tpl is not None:
            wanted = {m: f"campaign:{self.cid}:{m}" for m in go if m not in have_coupon}
            try:
                coupons = coupon_services.issue_many(
                    template_id=self.tpl.id, member_keys=wanted, source="campaign", now=now
                )
            except SoldOut:
                failed = self._set(
                    "state = 'failed', skip_reason = 'sold_out'",
                    [m for m in go if m not in have_coupon],
                )
                tracking.bump(self.cid, "failed", failed)
                go = [m for m in go if m in have_coupon]
                coupons = {}
            tracking.record_claims(self.cid, coupons, now=now)
        db.session.commit()
        if not go:
            return
        outcomes = self._send(go)
        self._record(outcomes, day)

    def _targets(self, ids: list[int]) -> list[channels.Target]:
        rows = db.session.execute(
            text(
                "SELECT r.member_id, i.value AS openid, m.phone, c.valid_until"
                " FROM campaign_recipient r JOIN member m ON m.id = r.member_id"
                " LEFT JOIN LATERAL (SELECT value FROM member_identity WHERE member_id ="
                "  r.member_id AND kind = 'oa_openid' ORDER BY id LIMIT 1) i ON true"
                " LEFT JOIN coupon c ON c.id = r.coupon_id"
                " WHERE r.campaign_id = (SELECT CAST(:cid AS bigint))"
                " AND r.member_id = ANY(CAST(:ids AS bigint[]))"
                " ORDER BY r.member_id"
            ),
            {"cid": self.cid, "ids": ids},
        ).all()
        tz = self.brand.tz
        return [
            channels.Target(
                member_id=r.member_id,
                openid=r.openid,
                phone=r.phone,
                coupon_name=self.tpl.name if self.tpl else None,
                valid_until=(
                    r.valid_until.astimezone(tz).strftime("%Y-%m-%d") if r.valid_until else None
                ),
            )
            for r in rows
        ]

    def _send(self, ids: list[int]) -> dict[int, channels.Outcome]:
        # the sending threads read a plain copy, never the session's (expired) object
        c = SimpleNamespace(
            **{
                k: getattr(self.campaign, k)
                for k in (
                    "id",
                    "brand_id",
                    "channel",
                    "wx_template_id",
                    "title",
                    "body",
                    "link_url",
                )
            }
        )
        if c.channel == NO_MESSAGE:
            # the coupon is in the member's account: sent, but no message to be delivered
            return {m: channels.Outcome("sent") for m in ids}
        targets = self._targets(ids)
        rate = self.rules.rate_per_second
        if c.channel == MASS:
            take_tokens(self.brand.id, 1, rate=rate)
            return channels.send_mass(c, targets, brand_id=self.brand.id, url=link_for(c, None))
        allowed: set[str] = set()
        held: dict[int, str] = {}
        openids = [t.openid for t in targets if t.openid]
        if c.channel == SUBSCRIBE:
            # taken and committed before WeChat is called: another push running at the same
            # time finds the acceptance gone and skips the member without calling WeChat
            held = channels.reserve_opt_ins(c, targets)
            db.session.commit()
        elif c.channel == CUSTOMER_SERVICE:
            allowed = channels.in_window(openids, now=self.clock())
        brand_id, brand_name = self.brand.id, self.brand.name

        def one(t: channels.Target) -> channels.Outcome:
            url = link_for(c, t.member_id)
            if c.channel == TEMPLATE:
                return channels.send_template(
                    c, t, brand_id=brand_id, brand_name=brand_name, url=url
                )
            if c.channel == SUBSCRIBE:
                return channels.send_subscribe(c, t, brand_id=brand_id, url=url, held=held)
            if c.channel == CUSTOMER_SERVICE:
                return channels.send_customer_service(
                    c, t, brand_id=brand_id, url=url, window=allowed
                )
            return channels.send_sms(c, t, brand_id=brand_id, brand_name=brand_name, url=url)

        tokens = _Allowance(brand_id, rate=rate, total=len(targets))
        out, busy, errors = _in_parallel(
            one, targets, brand_id=brand_id, tokens=tokens, stopped=self._stopped
        )
        if busy is not None:
            # what went out before WeChat said stop is recorded; the rest stays ``sending``
            self._record(out, self.clock().astimezone(self.brand.tz).date())
            if c.channel == SUBSCRIBE:
                # no answer (a timeout, a dropped connection, -1): WeChat may have used the
                # acceptance, so it stays taken; the retry sends with the same one
                unsure = [m for m, e in errors.items() if e.errcode in (None, -1)]
                channels.settle_opt_ins(self.cid, {}, uncertain=unsure)
            db.session.commit()
            raise busy
        if len(out) < len(targets):
            # paused or cancelled while the batch went out: the members no send was tried for
            # go back to ``pending`` (kept with their coupon), so cancel skips them and resume
            # sends them
            self._record(out, self.clock().astimezone(self.brand.tz).date())
            back = [t.member_id for t in targets if t.member_id not in out]
            back = self._set("state = 'pending'", [m for m in back if m in self.claimed])
            if c.channel == SUBSCRIBE:
                channels.settle_opt_ins(self.cid, {}, untried=back)
            db.session.commit()
            raise Stopped
        return out

    def _stopped(self) -> bool:
        """Whether the campaign was paused or cancelled (asked on the job's connection)."""
        status = db.session.execute(
            text("SELECT status FROM campaign WHERE id = :cid"), {"cid": self.cid}
        ).scalar()
        db.session.commit()
        return status != RUNNING

    def _record(self, outcomes: dict[int, channels.Outcome], day: dt.date) -> None:
        if not outcomes:
            return
        now = self.clock()
        sent = [m for m, o in outcomes.items() if o.state == "sent"]
        msgids = [outcomes[m].msgid for m in sent]
        done = (
            db.session.execute(
                text(
                    "UPDATE campaign_recipient r SET state = 'sent', sent_at = :now,"
                    " msgid = s.msgid, delivered_at = CASE WHEN s.delivered THEN :now END"
                    " FROM unnest(CAST(:ids AS bigint[]), CAST(:msgids AS bigint[]),"
                    " CAST(:delivered AS boolean[])) AS s(member_id, msgid, delivered)"
                    " WHERE r.campaign_id = (SELECT CAST(:cid AS bigint))"
                    " AND r.member_id = s.member_id"
                    " AND r.state = 'sending' RETURNING r.member_id"
                ),
                {
                    "now": now,
                    "cid": self.cid,
                    "ids": sent,
                    "msgids": msgids,
                    "delivered": [outcomes[m].delivered for m in sent],
                },
            )
            .scalars()
            .all()
        )
        if self.subscribe:
            channels.settle_opt_ins(self.cid, outcomes)
        tracking.bump(self.cid, "sent", done)
        self.msgids.extend(outcomes[m].msgid for m in done if outcomes[m].msgid)
        tracking.bump(self.cid, "delivered", [m for m in done if outcomes[m].delivered])
        member_tags.apply_system_tag_many(
            member_ids=done, code="campaign_received", reason="campaign_received"
        )
        by_reason: dict[tuple[str, str], list[int]] = {}
        for m, o in outcomes.items():
            if o.state != "sent":
                by_reason.setdefault((o.state, o.reason or ""), []).append(m)
        for (state, reason), ids in by_reason.items():
            changed = self._set(
                "state = :state, skip_reason = :reason", ids, state=state, reason=reason[:16]
            )
            tracking.bump(self.cid, state, changed)
            if reason == "unfollowed":
                tracking.bump(self.cid, "unfollowed", changed)
            if state == "skipped":
                give_back_contacts(changed, local_day=day, mass=self.mass)


def batch_size() -> int:
    return int(current_app.config.get("CAMPAIGN_BATCH_SIZE") or BATCH)


def send_threads() -> int:
    return int(current_app.config.get("CAMPAIGN_SEND_THREADS") or SEND_THREADS)


class Stopped(Exception):  # noqa: N818 - a signal, not an error
    """The campaign was paused or cancelled while a batch went out."""


# how often the job's thread asks whether the campaign was paused or cancelled mid-batch
STOP_POLL = 0.5


class _Allowance:
    """The brand's token bucket shared by a batch's sending threads: each send takes one
    token just before it goes; tokens come from Redis a few at a time (at most a tenth of
    a second's worth), so the sends never outrun the bucket (``rate`` a second, bursts of
    at most ``rate``), whatever the number of threads and workers."""

    def __init__(self, brand_id: int, *, rate: int, total: int):
        self.brand_id, self.rate, self.left = brand_id, max(1, int(rate)), total
        self.step = max(1, min(50, self.rate // 10))
        self.have = 0
        self.lock = threading.Lock()

    def take(self) -> None:
        with self.lock:
            if self.have == 0:
                n = max(1, min(self.step, self.left))
                take_tokens(self.brand_id, n, rate=self.rate)
                self.have, self.left = n, self.left - n
            self.have -= 1


def _in_parallel(
    send,
    targets: list[channels.Target],
    *,
    brand_id: int,
    tokens: _Allowance | None = None,
    stopped=None,
):
    """Send to a batch over the process's sending threads (each send waits on WeChat's
    answer); the job's own thread meanwhile asks every ``STOP_POLL`` seconds whether the
    campaign was paused or cancelled, and the threads then stop before their next send.
    Returns the outcomes, the first retryable error (-1, 45009, a timeout), if WeChat
    gave one, and the retryable error of each target that got one; targets without an
    outcome were not sent to (or, with an error, may have been)."""
    app = current_app._get_current_object()  # noqa: SLF001
    stop = threading.Event()

    def run(part: list[channels.Target]) -> list:
        # one application context (and database session) per thread and batch, not per send
        done = []
        with app.app_context(), use_brand(brand_id):
            # held for the thread's sends: the gateway's brand lookup is then answered from
            # the session's (weak) identity map, not by a query and a secret decrypted per send
            brand = db.session.get(Brand, brand_id)  # noqa: F841
            for t in part:
                if stop.is_set():
                    break
                if tokens is not None:
                    tokens.take()
                    if stop.is_set():
                        break
                try:
                    done.append((t.member_id, send(t), None))
                except gateway.RetryableError as exc:
                    done.append((t.member_id, None, exc))
                    stop.set()  # WeChat said stop: the rest of the batch stays ``sending``
                    break
                except BaseException:
                    stop.set()
                    raise
        return done

    threads = max(1, min(send_threads(), len(targets)))
    parts = [targets[i::threads] for i in range(threads)]
    if threads == 1 and stopped is None:
        results = run(parts[0])
    else:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="campaign-send") as ex:
            futures = [ex.submit(run, part) for part in parts]
            try:
                while True:
                    _done, waiting = wait(futures, timeout=STOP_POLL)
                    if not waiting:
                        break
                    if stopped is not None and not stop.is_set() and stopped():
                        stop.set()
            except BaseException:
                stop.set()
                raise
        results = [r for f in futures for r in f.result()]
    out = {m: o for m, o, _e in results if o is not None}
    errors = {m: e for m, _o, e in results if e is not None}
    busy = next(iter(errors.values()), None)
    return out, busy, errors


def link_for(campaign, member_id: int | None) -> str:
    """The link in a message: the recipient's signed, tracked link (or the campaign's)."""
    base = current_app.config.get("PUBLIC_URL", "").rstrip("/")
    if member_id is None:
        return campaign.link_url or base
    token = tracking.link_token(
        brand_id=campaign.brand_id, campaign_id=campaign.id, member_id=member_id
    )
    return f"{base}/c/t/{token}"


# --- the periodic tick --------------------------------------------------------------------


def tick(*, now: dt.datetime | None = None) -> dict:
    """Every brand: start due campaigns, send lost or abandoned chunks again, complete."""
    from campaigns import push

    now = now or utcnow()
    out = {"started": 0, "resent": 0, "completed": 0}
    due = db.session.execute(
        text(
            "SELECT id, brand_id FROM campaign WHERE status = 'scheduled'"
            " AND next_run_at <= :now ORDER BY next_run_at LIMIT 100"
        ),
        {"now": now},
    ).all()
    for cid, bid in due:
        with use_brand(bid):
            if push.run_due(campaign_id=cid, now=now):
                out["started"] += 1
    stale = db.session.execute(
        text(
            "SELECT k.campaign_id, k.no, k.brand_id, k.attempts FROM campaign_chunk k"
            " JOIN campaign c ON c.id = k.campaign_id WHERE c.status = 'running' AND ("
            " (k.state = 'running' AND k.lease_until < :now)"
            " OR (k.state = 'pending' AND coalesce(k.available_at, c.started_at) < :lost))"
            " LIMIT 1000"
        ),
        {"now": now, "lost": now - LOST_AFTER},
    ).all()
    for cid, no, bid, attempts in stale:
        enqueue(
            send_chunk,
            cid,
            no,
            brand_id=bid,
            dedupe_key=f"campaign-chunk:{cid}:{no}:sweep:{attempts}:{int(now.timestamp()) // 300}",
        )
        out["resent"] += 1
    running = db.session.execute(
        text(
            "SELECT c.id, c.brand_id FROM campaign c WHERE c.status = 'running' AND NOT EXISTS"
            " (SELECT 1 FROM campaign_chunk k WHERE k.campaign_id = c.id AND k.state <> 'done')"
        )
    ).all()
    for cid, bid in running:
        with use_brand(bid):
            if _maybe_complete(cid, now):
                out["completed"] += 1
    db.session.flush()
    return out


@job("low", timeout=300, retries=0)
def tick_job() -> dict:
    """The periodic campaigns tick (listed in ``app.periodic_jobs``)."""
    return tick()


register_labels(
    "job",
    {
        "campaigns.fanout.prepare_campaign": _l("Prepare a push campaign's recipients"),
        "campaigns.fanout.send_chunk": _l("Send a batch of a push campaign"),
        "campaigns.fanout.tick_job": _l("Start due pushes and resume stalled batches"),
    },
)
