"""Games jobs: writing plays left in Redis's stream, grant recovery, the hourly figures, and
ending campaigns past their end.

All are idempotent: a play is written once (``games.ledger``), a grant is a conditional
change of the draw's status, the rollup recomputes whole hours, and ending only moves
campaigns still live or paused.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text

from core.db import db, utcnow
from core.jobs import job
from core.labels import register_labels
from core.tenancy import all_brands, use_brand
from games.models import (
    CHANCE_KINDS,
    ENDED,
    LIVE,
    PAUSED,
    PENDING_GRANT,
    GameCampaign,
    GameDraw,
)

log = logging.getLogger(__name__)
PLAY_GRACE = dt.timedelta(seconds=60)  # a play's own request writes its draw first
STREAM_BATCH = 500
STREAM_BATCHES = 40
GRANT_BATCH = 100  # grants per transaction (points in one batch credit)
GRANT_GRACE = dt.timedelta(seconds=30)  # the play's own request grants first
STATS_HOURS = 3  # hours recomputed on each run (a transaction never spans them)


def _stream_brands(now: dt.datetime) -> list[int]:
    """Brands whose chance campaigns may have plays in Redis (open, or ended this month)."""
    rows = db.session.execute(
        all_brands(
            select(GameCampaign.brand_id)
            .where(
                GameCampaign.kind.in_(CHANCE_KINDS),
                GameCampaign.status != "draft",
                GameCampaign.ends_at > now - dt.timedelta(days=30),
            )
            .distinct()
        )
    ).scalars()
    brands = sorted(rows)
    db.session.commit()
    return brands


@job("default", timeout=600, retries=3)
def record_plays(grace_seconds: int | None = None) -> int:
    """Write the plays Redis decided and left in its stream, take their payment and grant
    their prizes: the mini-program's plays (``games.front``) at once, and plays whose request
    did not write them (it died between the decision and its commit) once they are
    ``PLAY_GRACE`` old. Answers how many draws were written now."""
    grace = PLAY_GRACE if grace_seconds is None else dt.timedelta(seconds=grace_seconds)
    now = utcnow()
    cutoff_ms = int((now - grace).timestamp() * 1000)
    written = 0
    for brand_id in _stream_brands(now):
        written += _record_brand(brand_id, cutoff_ms)
    if written:
        log.info("games: wrote %d plays left in the stream", written)
    return written


def _record_brand(brand_id: int, cutoff_ms: int) -> int:
    """Write one brand's due plays, a batch at a time, until none is due (or
    ``STREAM_BATCHES`` batches: the next run goes on)."""
    from games import ledger, live, services

    written, after = 0, None
    for _batch in range(STREAM_BATCHES):
        entries = live.stream_entries(brand_id, STREAM_BATCH, after=after)
        if not entries:
            break
        after = entries[-1][0]
        due = [
            (sid, d) for sid, d in entries if d.get("sync") == 0 or live.stream_ms(sid) < cutoff_ms
        ]
        if not due:
            continue
        with use_brand(brand_id):
            try:
                new = ledger.record([d for _sid, d in due], paid=False)
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception("games: writing %d plays of brand %s failed", len(due), brand_id)
                break
            live.drop_stream_entries(brand_id, [sid for sid, _d in due])
            written += len(new)
            pending = [d["id"] for d in new if d["status"] == PENDING_GRANT]
            for at in range(0, len(pending), GRANT_BATCH):
                batch = pending[at : at + GRANT_BATCH]
                try:
                    services.grant_draws(draw_ids=batch)
                    db.session.commit()
                except Exception:  # left pending: recover_grants grants them
                    db.session.rollback()
                    log.exception("games: granting draws %s.. failed", batch[0])
        if len(entries) < STREAM_BATCH:
            break
    return written


@job("default", timeout=600, retries=3)
def recover_grants(older_than_seconds: int | None = None) -> int:
    """Grant every draw a worker left ``pending_grant`` (it died between the play's commit
    and the grant's), ``GRANT_BATCH`` draws a transaction (points wins in one batch credit);
    a batch that fails is granted draw by draw, so one bad draw holds back only itself.
    Answers how many were granted (or refused for good) now."""
    from games import services

    grace = GRANT_GRACE if older_than_seconds is None else dt.timedelta(seconds=older_than_seconds)
    cutoff = utcnow() - grace
    rows = db.session.execute(
        all_brands(
            select(GameDraw.id, GameDraw.brand_id)
            .where(GameDraw.status == PENDING_GRANT, GameDraw.created_at < cutoff)
            .order_by(GameDraw.id)
            .limit(5000)
        )
    ).all()
    db.session.commit()
    by_brand: dict[int, list[int]] = {}
    for draw_id, brand_id in rows:
        by_brand.setdefault(brand_id, []).append(draw_id)
    granted = 0
    for brand_id, ids in by_brand.items():
        with use_brand(brand_id):
            for at in range(0, len(ids), GRANT_BATCH):
                granted += _recover_batch(services, ids[at : at + GRANT_BATCH])
    if granted:
        log.info("games: granted %d pending draws", granted)
    return granted


def _recover_batch(services, batch: list[int]) -> int:
    try:
        done = services.grant_draws(draw_ids=batch)
        db.session.commit()
        return done
    except Exception:
        db.session.rollback()
        log.exception("games: granting draws %s.. failed; granting them one by one", batch[0])
    done = 0
    for draw_id in batch:
        try:
            draw = services.grant_draw(draw_id=draw_id)
            db.session.commit()
            done += draw.status != PENDING_GRANT
        except Exception:
            db.session.rollback()
            log.exception("games: grant of draw %s failed", draw_id)
    return done


_DRAW_STATS = text(
    "INSERT INTO game_stat_hour (brand_id, campaign_id, hour, plays, players, new_members,"
    " wins, value_fen, points_spent)"
    " SELECT brand_id, campaign_id,"
    " date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',"
    " count(*), 0, 0, count(*) FILTER (WHERE prize_id IS NOT NULL),"
    " coalesce(sum(value_fen), 0), coalesce(sum(points_spent), 0)"
    " FROM game_draw WHERE campaign_id = :c AND NOT preview AND created_at >= :lo"
    " GROUP BY 1, 2, 3"
    " ON CONFLICT (campaign_id, hour) DO UPDATE SET plays = EXCLUDED.plays,"
    " wins = EXCLUDED.wins, value_fen = EXCLUDED.value_fen,"
    " points_spent = EXCLUDED.points_spent"
)
_PLAYER_STATS = text(
    "INSERT INTO game_stat_hour (brand_id, campaign_id, hour, plays, players, new_members,"
    " wins, value_fen, points_spent)"
    " SELECT brand_id, campaign_id,"
    " date_trunc('hour', first_play_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',"
    " 0, count(*), count(*) FILTER (WHERE new_member), 0, 0, 0"
    " FROM game_player WHERE campaign_id = :c AND first_play_at >= :lo"
    " GROUP BY 1, 2, 3"
    " ON CONFLICT (campaign_id, hour) DO UPDATE SET players = EXCLUDED.players,"
    " new_members = EXCLUDED.new_members"
)

# Wins per prize and hour: the only count of an unlimited prize's wins (it keeps no counter).
_PRIZE_STATS = text(
    "INSERT INTO game_stat_prize_hour (brand_id, prize_id, hour, campaign_id, wins, value_fen)"
    " SELECT brand_id, prize_id,"
    " date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', campaign_id,"
    " count(*), coalesce(sum(value_fen), 0)"
    " FROM game_draw WHERE campaign_id = :c AND NOT preview AND created_at >= :lo"
    " AND prize_id IS NOT NULL"
    " GROUP BY 1, 2, 3, 4"
    " ON CONFLICT (prize_id, hour) DO UPDATE SET wins = EXCLUDED.wins,"
    " value_fen = EXCLUDED.value_fen"
)


def refresh_stats(campaign_id: int, *, since: dt.datetime | None = None) -> None:
    """Recompute the campaign's hourly figures from ``since`` (whole hours; default: the
    last few hours) from its draws."""
    lo = since or (utcnow() - dt.timedelta(hours=STATS_HOURS))
    lo = lo.replace(minute=0, second=0, microsecond=0)
    db.session.execute(_DRAW_STATS, {"c": campaign_id, "lo": lo})
    db.session.execute(_PLAYER_STATS, {"c": campaign_id, "lo": lo})
    db.session.execute(_PRIZE_STATS, {"c": campaign_id, "lo": lo})


@job("low", timeout=600, retries=3)
def stats_all() -> int:
    """Refresh the hourly figures of every live, paused or recently ended campaign."""
    recent = utcnow() - dt.timedelta(hours=STATS_HOURS)
    campaigns = db.session.execute(
        all_brands(
            select(GameCampaign.id, GameCampaign.brand_id).where(
                (GameCampaign.status.in_((LIVE, PAUSED))) | (GameCampaign.ended_at >= recent)
            )
        )
    ).all()
    for campaign_id, brand_id in campaigns:
        with use_brand(brand_id):
            refresh_stats(campaign_id)
            db.session.commit()
    return len(campaigns)


@job("low", timeout=300, retries=3)
def end_due() -> int:
    """End the campaigns whose end has passed (their seed is revealed from then on)."""
    now = utcnow()
    n = db.session.execute(
        text(
            "UPDATE game_campaign SET status = :ended, ended_at = ends_at, updated_at = :now"
            " WHERE status IN (:live, :paused) AND ends_at <= :now"
        ),
        {"ended": ENDED, "live": LIVE, "paused": PAUSED, "now": now},
    ).rowcount
    db.session.commit()
    return n


register_labels(
    "job",
    {
        "games.jobs.record_plays": _l("Write game plays and grant their prizes"),
        "games.jobs.recover_grants": _l("Grant game prizes left pending"),
        "games.jobs.stats_all": _l("Game figures per hour"),
        "games.jobs.end_due": _l("End game campaigns past their end"),
    },
)
