"""What a play or a check-in counts in PostgreSQL: the player's counters (locked and moved
by guarded UPDATEs), a prize's stock, daily cap and the campaign's budget taken by
conditional UPDATEs, the fallbacks resolved, and the draw ids."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import text

from core.db import db
from games.checks import (
    NEW_MEMBER_WINDOW,
)
from games.models import (
    AWAITING_ADDRESS,
    GIFT,
    LOST,
    NONE,
    PENDING_GRANT,
    PREVIEW,
    GameCampaign,
    GamePrize,
)
from members.models import Member

# --- the player's counters -----------------------------------------------------------------

_ENSURE_PLAYER = text(
    "INSERT INTO game_player (brand_id, campaign_id, member_id, plays_day, wins_day,"
    " free_used_day, plays_total, wins_total, extra_plays, new_member, created_at)"
    " VALUES (:b, :c, :m, 0, 0, 0, 0, 0, 0, :new, :now)"
    " ON CONFLICT (campaign_id, member_id) DO NOTHING"
)
# The upsert answers the row and holds its lock to the end of the transaction (one round trip
# for a new or a returning player).
_LOCK_PLAYER = text(
    "INSERT INTO game_player (brand_id, campaign_id, member_id, plays_day, wins_day,"
    " free_used_day, plays_total, wins_total, extra_plays, new_member, created_at)"
    " VALUES (:b, :c, :m, 0, 0, 0, 0, 0, 0, :new, :now)"
    " ON CONFLICT (campaign_id, member_id) DO UPDATE SET brand_id = game_player.brand_id"
    " RETURNING id, day, plays_day, wins_day, free_used_day, plays_total, wins_total,"
    " extra_plays"
)
# Today's counters restart at 0 on a new day: "CASE WHEN day IS NOT DISTINCT FROM :day ...".
_COUNT_PLAY = text(
    "UPDATE game_player SET day = :day,"
    " plays_day = (CASE WHEN day IS NOT DISTINCT FROM :day THEN plays_day ELSE 0 END) + 1,"
    " wins_day = CASE WHEN day IS NOT DISTINCT FROM :day THEN wins_day ELSE 0 END,"
    " free_used_day = (CASE WHEN day IS NOT DISTINCT FROM :day THEN free_used_day ELSE 0 END)"
    " + :free,"
    " extra_plays = extra_plays - :extra, plays_total = plays_total + 1,"
    " first_play_at = COALESCE(first_play_at, :now)"
    " WHERE id = :id AND extra_plays >= :extra"
    " AND (CAST(:ppd AS integer) IS NULL"
    " OR (CASE WHEN day IS NOT DISTINCT FROM :day THEN plays_day ELSE 0 END) < :ppd)"
    " AND (CAST(:pt AS integer) IS NULL OR plays_total < :pt)"
    " AND (:free = 0"
    " OR (CASE WHEN day IS NOT DISTINCT FROM :day THEN free_used_day ELSE 0 END) < :fpd)"
    " RETURNING plays_total"
)
_COUNT_WIN = text(
    "UPDATE game_player SET wins_day = wins_day + 1, wins_total = wins_total + 1"
    " WHERE id = :id AND (CAST(:wpd AS integer) IS NULL OR wins_day < :wpd)"
    " AND (CAST(:wt AS integer) IS NULL OR wins_total < :wt) RETURNING id"
)


@dataclasses.dataclass
class _Player:
    id: int
    wins_day: int
    wins_total: int


def _lock_player(campaign: GameCampaign, member: Member, now: dt.datetime):
    params = {"b": campaign.brand_id, "c": campaign.id, "m": member.id}
    new = member.created_at is not None and now - member.created_at <= NEW_MEMBER_WINDOW
    return db.session.execute(_LOCK_PLAYER, {**params, "new": bool(new), "now": now}).one()


def _win_allowed(campaign: GameCampaign, player: _Player | None) -> bool:
    if player is None:
        return True
    if campaign.wins_per_day is not None and player.wins_day >= campaign.wins_per_day:
        return False
    return campaign.wins_total is None or player.wins_total < campaign.wins_total


# --- taking a prize ------------------------------------------------------------------------

_TAKE_STOCK = text(
    "UPDATE game_prize SET awarded = awarded + 1"
    " WHERE id = :id AND brand_id = :b AND awarded < stock RETURNING id"
)
_GIVE_STOCK = text("UPDATE game_prize SET awarded = awarded - 1 WHERE id = :id AND brand_id = :b")
_TAKE_DAY = text(
    "INSERT INTO game_prize_day (brand_id, prize_id, day, awarded) VALUES (:b, :id, :day, 1)"
    " ON CONFLICT (prize_id, day) DO UPDATE SET awarded = game_prize_day.awarded + 1"
    " WHERE game_prize_day.awarded < :cap RETURNING awarded"
)
_GIVE_DAY = text(
    "UPDATE game_prize_day SET awarded = awarded - 1 WHERE prize_id = :id AND day = :day"
)
_TAKE_BUDGET = text(
    "UPDATE game_campaign SET spent_fen = spent_fen + :v"
    " WHERE id = :c AND brand_id = :b AND spent_fen + :v <= budget_fen RETURNING id"
)


def _take(prize: GamePrize, campaign: GameCampaign, day: dt.date) -> str | None:
    """Take one unit of the prize (stock, its day, the budget); the reason when refused."""
    b = campaign.brand_id
    if prize.stock is not None and prize.awarded >= prize.stock:
        return "stock"  # known sold out in this snapshot: no write, no lock wait
    if prize.daily_cap is not None:
        took = db.session.execute(
            _TAKE_DAY, {"b": b, "id": prize.id, "day": day, "cap": prize.daily_cap}
        ).scalar()
        if took is None:
            return "daily_cap"
    # An unlimited prize has no counter row to take: its wins are its draws (no row lock
    # shared by every winner of it).
    if (
        prize.stock is not None
        and db.session.execute(_TAKE_STOCK, {"id": prize.id, "b": b}).scalar() is None
    ):
        if prize.daily_cap is not None:
            db.session.execute(_GIVE_DAY, {"id": prize.id, "day": day})
        return "stock"
    if campaign.budget_fen is not None and prize.value_fen > 0:
        took = db.session.execute(
            _TAKE_BUDGET, {"v": prize.value_fen, "c": campaign.id, "b": b}
        ).scalar()
        if took is None:
            if prize.stock is not None:
                db.session.execute(_GIVE_STOCK, {"id": prize.id, "b": b})
            if prize.daily_cap is not None:
                db.session.execute(_GIVE_DAY, {"id": prize.id, "day": day})
            return "budget"
    return None


def _available_in_preview(prize: GamePrize) -> str | None:
    if prize.stock is not None and prize.awarded >= prize.stock:
        return "stock"
    return None


def _resolve(
    picked: int | None,
    prizes: dict[int, GamePrize],
    *,
    campaign: GameCampaign,
    day: dt.date,
    activated: bool,
    win_ok: bool,
    preview: bool,
) -> tuple[int | None, list]:
    """Follow the fallbacks from the drawn prize to the one given; record each refusal."""
    fallbacks: list = []
    current = picked
    seen: set[int] = set()
    while current is not None and current not in seen:
        prize = prizes.get(current)
        if prize is None or prize.kind == NONE:
            break
        seen.add(current)
        if not activated:
            reason = "not_activated"
        elif not win_ok:
            reason = "win_limit"
        elif preview:
            reason = _available_in_preview(prize)
        else:
            reason = _take(prize, campaign, day)
        if reason is None:
            break
        fallbacks.append([current, reason])
        current = prize.fallback_prize_id
    else:
        if current is not None:  # a cycle of refused prizes: thanks
            current = None
    return current, fallbacks


def _next_draw_id() -> int:
    return db.session.execute(
        text("SELECT nextval(pg_get_serial_sequence('game_draw', 'id'))")
    ).scalar_one()


def _first_status(prize: GamePrize | None, preview: bool) -> str:
    if preview:
        return PREVIEW
    if prize is None:
        return LOST
    if prize.kind == GIFT:
        return AWAITING_ADDRESS
    return PENDING_GRANT
