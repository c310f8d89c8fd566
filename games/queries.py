"""Games' reads for pages and the API: a campaign as a member sees it, plays left, my prizes,
and the console's live figures (from counters and the hourly rollups, never a count of every
draw)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from flask import abort
from sqlalchemy import func, select

from core.db import db, utcnow
from core.tenancy import require_brand_id
from games.models import (
    CHANCE_KINDS,
    DRAFT,
    ENDED,
    NONE,
    GameCampaign,
    GameDraw,
    GameFlag,
    GamePlayer,
    GamePrize,
    GameStatHour,
    GameStatPrizeHour,
)


def campaign_for_member(campaign_id: int) -> GameCampaign:
    """A campaign of the current brand a member may open (not a draft), or 404."""
    campaign = db.session.get(GameCampaign, campaign_id) if isinstance(campaign_id, int) else None
    if campaign is None or campaign.brand_id != require_brand_id() or campaign.status == DRAFT:
        abort(404)
    return campaign


def campaign_or_404(campaign_id: int) -> GameCampaign:
    """Any campaign of the current brand (the console), or 404."""
    campaign = db.session.get(GameCampaign, campaign_id) if isinstance(campaign_id, int) else None
    if campaign is None or campaign.brand_id != require_brand_id():
        abort(404)
    return campaign


def revealed_seed(campaign: GameCampaign) -> str | None:
    """The seed, once the campaign has ended (None before)."""
    return campaign.seed if campaign.status == ENDED else None


def prizes(campaign_id: int) -> list[GamePrize]:
    return list(
        db.session.scalars(
            select(GamePrize)
            .where(GamePrize.campaign_id == campaign_id)
            .order_by(GamePrize.position)
        )
    )


@dataclasses.dataclass
class PlaysLeft:
    """What the member can still do today: free plays, earned extra plays, and the plays the
    limits still allow (None: no limit); ``cost_points`` a play beyond the free ones costs."""

    free_today: int
    extra: int
    allowed_today: int | None
    allowed_total: int | None
    cost_points: int


def plays_left(campaign_id: int, member_id: int, *, now: dt.datetime | None = None) -> PlaysLeft:
    from games.services import brand_day

    campaign = campaign_or_404(campaign_id)
    now = now or utcnow()
    day = brand_day(now)
    row = db.session.scalars(
        select(GamePlayer).where(
            GamePlayer.campaign_id == campaign.id, GamePlayer.member_id == member_id
        )
    ).one_or_none()
    plays_day = row.plays_day if row is not None and row.day == day else 0
    free_used = row.free_used_day if row is not None and row.day == day else 0
    plays_total = row.plays_total if row is not None else 0
    allowed_today = (
        None if campaign.plays_per_day is None else max(0, campaign.plays_per_day - plays_day)
    )
    allowed_total = (
        None if campaign.plays_total is None else max(0, campaign.plays_total - plays_total)
    )
    free_today = max(0, campaign.free_per_day - free_used)
    for cap in (allowed_today, allowed_total):
        if cap is not None:
            free_today = min(free_today, cap)
    return PlaysLeft(
        free_today=free_today,
        extra=row.extra_plays if row is not None else 0,
        allowed_today=allowed_today,
        allowed_total=allowed_total,
        cost_points=campaign.cost_points,
    )


def my_prizes(
    member_id: int, campaign_id: int | None = None, *, limit: int = 100
) -> list[GameDraw]:
    """The member's winning draws (newest first), all campaigns or one; previews excluded."""
    stmt = select(GameDraw).where(
        GameDraw.member_id == member_id,
        GameDraw.prize_id.is_not(None),
        GameDraw.preview.is_(False),
    )
    if campaign_id is not None:
        stmt = stmt.where(GameDraw.campaign_id == campaign_id)
    return list(db.session.scalars(stmt.order_by(GameDraw.id.desc()).limit(limit)))


def list_campaigns() -> list[GameCampaign]:
    return list(db.session.scalars(select(GameCampaign).order_by(GameCampaign.id.desc())))


def live_chance_campaigns() -> list[GameCampaign]:
    return list(
        db.session.scalars(
            select(GameCampaign).where(
                GameCampaign.status.in_(("live", "paused")),
                GameCampaign.kind.in_(CHANCE_KINDS),
            )
        )
    )


@dataclasses.dataclass
class Figures:
    plays: int
    players: int
    new_members: int
    wins: int
    cost_fen: int
    points_spent: int
    prizes: list[GamePrize]
    won: dict[int, int]  # prize id -> units won


def figures(campaign: GameCampaign) -> Figures:
    """The console's live figures: plays, players, new members and points from the hourly
    rollup (refreshed every minute); wins and remaining stock of a prize with stock from its
    counter, wins of an unlimited prize (which keeps no counter) from the hourly rollup per
    prize; cost = sum of prizes won times their value."""
    totals = db.session.execute(
        select(
            func.coalesce(func.sum(GameStatHour.plays), 0),
            func.coalesce(func.sum(GameStatHour.players), 0),
            func.coalesce(func.sum(GameStatHour.new_members), 0),
            func.coalesce(func.sum(GameStatHour.points_spent), 0),
        ).where(GameStatHour.campaign_id == campaign.id)
    ).one()
    pool = prizes(campaign.id)
    rolled = dict(
        db.session.execute(
            select(GameStatPrizeHour.prize_id, func.sum(GameStatPrizeHour.wins))
            .where(GameStatPrizeHour.campaign_id == campaign.id)
            .group_by(GameStatPrizeHour.prize_id)
        ).all()
    )
    won = {
        p.id: p.awarded if p.stock is not None else int(rolled.get(p.id) or 0)
        for p in pool
        if p.kind != NONE
    }
    wins = sum(won.values())
    cost = sum(won[p.id] * p.value_fen for p in pool if p.kind != NONE)
    return Figures(
        plays=int(totals[0]),
        players=int(totals[1]),
        new_members=int(totals[2]),
        wins=wins,
        cost_fen=cost,
        points_spent=int(totals[3]),
        prizes=pool,
        won=won,
    )


def hourly(campaign_id: int, *, hours: int = 72) -> list[GameStatHour]:
    since = utcnow() - dt.timedelta(hours=hours)
    return list(
        db.session.scalars(
            select(GameStatHour)
            .where(GameStatHour.campaign_id == campaign_id, GameStatHour.hour >= since)
            .order_by(GameStatHour.hour)
        )
    )


def flags(campaign_id: int, *, limit: int = 50) -> list[GameFlag]:
    return list(
        db.session.scalars(
            select(GameFlag)
            .where(GameFlag.campaign_id == campaign_id)
            .order_by(GameFlag.minute.desc())
            .limit(limit)
        )
    )


def recent_draws(campaign_id: int, *, limit: int = 30) -> list[GameDraw]:
    return list(
        db.session.scalars(
            select(GameDraw)
            .where(GameDraw.campaign_id == campaign_id)
            .order_by(GameDraw.id.desc())
            .limit(limit)
        )
    )
