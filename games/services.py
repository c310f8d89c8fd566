"""Games' writes: plays, check-ins, grants, extra plays and gift addresses; the campaign
settings (create, update, start, pause, stop) are in ``games.setup`` and re-exported here.

All functions work in the current brand (``use_brand``), flush and never commit, and take
``now=`` so tests control the clock.

How a play is exact under load:

1. its draw id comes from the draws' sequence and its random number is
   HMAC-SHA256(seed, "campaign_id:draw_id") (``games.draws``), mapped to the weights; the
   drawn prize and its fallbacks make the way the play's script walks;
2. one Redis script (``games.live``) decides it atomically: the replay key, the rate limits,
   the member's limits and counters, each prize's stock, daily cap and the budget (a prize
   that cannot be given, or a member over the win limits or not activated, passes its
   chance to its fallback, and each such decision is recorded on the draw), and appends the
   draw's record to the brand's stream;
3. a play the free plays do not cover is paid first, in the caller's transaction (an earned
   extra play, or points through ``points.services`` with the play's key), then decided;
4. the draw is written to PostgreSQL by ``games.ledger`` (idempotent on its id and key) with
   the counters it moves: in the caller's transaction (``play``), or by the job
   ``games.jobs.record_plays`` (the mini-program's plays, ``play_decided``; and any play whose
   request died before its commit).

The prize itself (coupons and points through their services with the key
``game-draw:<id>``) is granted either in the play's own transaction (``grant=True``, what the
pages do: one commit, the draw is ``granted`` when it is visible at all) or in a second
step, ``grant_draw``, after the play's commit: the draw goes ``pending_grant`` ->
``granted`` by a conditional change under the draw's row lock, and the periodic
``games.jobs.recover_grants`` grants any draw a dead worker left pending (check-ins, and
callers that grant in two steps)::

    draw = services.play(campaign_id=..., member_id=..., request_key=..., ip=..., grant=True)
    db.session.commit()

    draw = services.play(campaign_id=..., member_id=..., request_key=..., ip=...)
    db.session.commit()
    services.grant_draw(draw_id=draw.id)
    db.session.commit()

Check-ins are counted in PostgreSQL alone: the member's player row locked, its counters moved
by guarded UPDATEs, the reward's stock taken by conditional UPDATEs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from core import ratelimit
from core.db import db, utcnow
from core.errors import AppError, Conflict, NotFound, ValidationError
from core.redis import key as redis_key
from core.tenancy import require_brand_id
from games import draws, ledger, live
from games.errors import (
    AlreadyCheckedIn,
    CampaignNotFound,
    Ended,
    GameRateLimited,
    LimitReached,
    NoPoints,
    NotEligible,
    NotStarted,
    Paused,
)
from games.models import (
    AWAITING_ADDRESS,
    CHANCE_KINDS,
    CHECKIN,
    DRAFT,
    ENDED,
    GIFT,
    GRANT_FAILED,
    GRANTED,
    LIVE,
    LOST,
    NONE,
    PAID_CHECKIN,
    PAID_EXTRA,
    PAID_FREE,
    PAID_POINTS,
    PAUSED,
    PENDING_GRANT,
    POINTS,
    PREVIEW,
    GameCampaign,
    GameCheckIn,
    GameDraw,
    GameExtraPlay,
    GameFlag,
    GamePrize,
)
from games.setup import (  # noqa: F401 - re-exported: the settings' writes
    create_campaign,
    end_campaign,
    pause_campaign,
    start_campaign,
    update_campaign,
)
from members.models import ACTIVE, Member
from members.models.tags import MemberTag
from org.models import Brand, Staff, Store

KEY_MAX = 100
NEW_MEMBER_WINDOW = dt.timedelta(hours=1)


def _config(name: str, default: int) -> int:
    return int(current_app.config.get(name, default))


def _check_request_key(request_key) -> str:
    if not isinstance(request_key, str) or not request_key.strip():
        raise ValidationError(_l("A request key is required."), field="request_key")
    request_key = request_key.strip()
    if len(request_key) > KEY_MAX:
        raise ValidationError(_l("The request key is too long."), field="request_key")
    return request_key


def _campaign(campaign_id) -> GameCampaign:
    if not isinstance(campaign_id, int) or isinstance(campaign_id, bool) or campaign_id <= 0:
        raise CampaignNotFound(_l("This game does not exist."), field="campaign_id")
    campaign = db.session.get(GameCampaign, campaign_id)
    if campaign is None or campaign.brand_id != require_brand_id():
        raise CampaignNotFound(_l("This game does not exist."), field="campaign_id")
    return campaign


_TZ: dict[int, tuple[float, object]] = {}
TZ_SECONDS = 60.0


def brand_day(now: dt.datetime) -> dt.date:
    """The brand-local day of ``now`` (limits and daily caps count by it); the brand's time
    zone is kept a minute per process (the hot path reads it on every play)."""
    brand_id = require_brand_id()
    found = _TZ.get(brand_id)
    if found is None or time.monotonic() - found[0] > TZ_SECONDS:
        found = (time.monotonic(), db.session.get(Brand, brand_id).tz)
        _TZ[brand_id] = found
    return now.astimezone(found[1]).date()


def _check_open(campaign: GameCampaign, now: dt.datetime) -> None:
    if campaign.status == ENDED or now >= campaign.ends_at:
        raise Ended(_l("This game has ended."))
    if campaign.status == DRAFT or now < campaign.starts_at:
        raise NotStarted(_l("This game has not started yet."))
    if campaign.status == PAUSED:
        raise Paused(_l("This game is paused. Please come back later."))


def _member(member_id) -> Member:
    if not isinstance(member_id, int) or isinstance(member_id, bool) or member_id <= 0:
        raise NotFound(_l("Unknown member."), field="member_id")
    member = db.session.get(Member, member_id)
    if member is None or member.brand_id != require_brand_id() or member.status != ACTIVE:
        raise NotFound(_l("Unknown member."), field="member_id")
    return member


def is_staff(member: Member) -> bool:
    """Whether the member's phone is a staff member's (staff are excluded from games)."""
    if not member.phone:
        return False
    return bool(db.session.scalar(select(exists().where(Staff.phone == member.phone))))


def ineligible_reason(
    campaign: GameCampaign, member: Member, *, staff: bool | None = None, tagged=None
) -> str | None:
    """Why the member may not play this campaign (None: they may). ``staff`` and ``tagged``
    (whether the member has one of the campaign's tags): when the caller read them."""
    if is_staff(member) if staff is None else staff:
        return str(_l("Staff of the brand may not take part."))
    if campaign.tier_ids and member.tier_id not in campaign.tier_ids:
        return str(_l("This game is for members of certain tiers only."))
    if campaign.store_ids and member.store_id not in campaign.store_ids:
        return str(_l("This game is for members of certain stores only."))
    if campaign.tag_ids:
        if tagged is None:
            tagged = db.session.scalar(
                select(
                    exists().where(
                        MemberTag.member_id == member.id, MemberTag.tag_id.in_(campaign.tag_ids)
                    )
                )
            )
        if not tagged:
            return str(_l("This game is for selected members only."))
    return None


def _check_eligible(campaign: GameCampaign, member: Member) -> None:
    reason = ineligible_reason(campaign, member)
    if reason:
        raise NotEligible(reason)


def is_activated(member: Member) -> bool:
    """Only activated members (phone verified) can win anything of value."""
    return member.activated_at is not None and bool(member.phone)


def _rate_limit(campaign: GameCampaign, member_id: int, ip: str | None, now) -> None:
    brand_id = campaign.brand_id
    if not ratelimit.hit(
        brand_id,
        "game-member",
        str(member_id),
        limit=_config("GAMES_MEMBER_RATE", 10),
        window=10,
    ):
        raise GameRateLimited(_l("You are playing too fast. Wait a moment and try again."))
    if not ip:
        return
    ip = ip[:64]
    ip_limit = _config("GAMES_IP_RATE", 600)
    allowed = ratelimit.hit(brand_id, "game-ip", ip, limit=ip_limit, window=60)
    seen = ratelimit.count(brand_id, "game-ip", ip)
    flag_at = _config("GAMES_FLAG_PER_MINUTE", 120)
    if seen >= flag_at and (seen == flag_at or seen % flag_at == 0 or not allowed):
        _flag(campaign.id, ip, seen, now)
    if not allowed:
        raise GameRateLimited(_l("Too many plays from your network. Try again in a minute."))


def _rate(campaign, member_id: int, ip: str | None, *, count: bool) -> live.Rate:
    """The play's rate limits as the play's script counts them (the keys and limits of
    ``_rate_limit``)."""
    brand_id = campaign.brand_id
    ip = ip[:64] if ip else None
    return live.Rate(
        member_key=redis_key(brand_id, "rl", "game-member", str(member_id)),
        member_limit=_config("GAMES_MEMBER_RATE", 10),
        member_window=10,
        ip_key=redis_key(brand_id, "rl", "game-ip", ip) if ip else None,
        ip_limit=_config("GAMES_IP_RATE", 600),
        ip_window=60,
        count=count,
    )


def _rated(decision: dict, campaign, ip: str | None, now) -> bool:
    """After the play's script: flag a burst from the network address (True: flagged now),
    refuse a play over a rate limit (as ``_rate_limit``)."""
    if decision["r"] == "rate_member":
        raise GameRateLimited(_l("You are playing too fast. Wait a moment and try again."))
    seen, flagged = int(decision.get("ipn") or 0), False
    if ip and seen:
        allowed = decision["r"] != "rate_ip"
        flag_at = _config("GAMES_FLAG_PER_MINUTE", 120)
        if seen >= flag_at and (seen == flag_at or seen % flag_at == 0 or not allowed):
            _flag(campaign.id, ip[:64], seen, now)
            flagged = True
    if decision["r"] == "rate_ip":
        raise GameRateLimited(_l("Too many plays from your network. Try again in a minute."))
    return flagged


def _flag(campaign_id: int, ip: str, plays: int, now: dt.datetime) -> None:
    """Record (or raise the count of) a burst from one address in this minute."""
    minute = now.replace(second=0, microsecond=0)
    db.session.execute(
        text(
            "INSERT INTO game_flag (brand_id, campaign_id, ip, minute, plays, created_at)"
            " VALUES (:b, :c, :ip, :m, :n, :now)"
            " ON CONFLICT (campaign_id, ip, minute)"
            " DO UPDATE SET plays = GREATEST(game_flag.plays, EXCLUDED.plays)"
        ),
        {"b": require_brand_id(), "c": campaign_id, "ip": ip, "m": minute, "n": plays, "now": now},
    )


def _prizes(campaign_id: int) -> list[GamePrize]:
    return list(
        db.session.scalars(
            select(GamePrize)
            .where(GamePrize.campaign_id == campaign_id)
            .order_by(GamePrize.position)
        )
    )


def _existing(stored_key: str) -> GameDraw | None:
    return db.session.scalars(
        select(GameDraw).where(GameDraw.idempotency_key == stored_key)
    ).one_or_none()


def _replay(existing: GameDraw, campaign_id: int, member_id: int) -> GameDraw:
    if existing.campaign_id != campaign_id or existing.member_id != member_id:
        raise Conflict(_l("This request key was already used."), field="request_key")
    return existing


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


# --- the play ------------------------------------------------------------------------------


def play(
    *,
    campaign_id: int,
    member_id: int,
    request_key: str,
    ip: str | None,
    preview: bool = False,
    grant: bool = False,
    now: dt.datetime | None = None,
) -> GameDraw:
    """One draw of a wheel, scratch card or nine-grid for the member; idempotent on
    ``request_key`` (a replay answers the same draw). ``grant``: give a won coupon or points
    in this same transaction (the draw is then ``granted`` or ``grant_failed`` when it
    commits; without it the draw is left ``pending_grant`` for ``grant_draw``).

    Raises ``games.errors.GameError`` subclasses (``not_started``, ``ended``, ``paused``,
    ``limit_reached``, ``no_points``, ``not_eligible``, ``rate_limited``) and 404 for another
    brand's campaign. The draw: ``id``, ``prize_id`` (None: thanks), ``prize_name``,
    ``kind`` (the prize kind), ``status`` (``granted`` / ``pending_grant`` /
    ``awaiting_address`` / ``lost`` / ``preview``), ``slot_prize_id`` (where the wheel
    stops), ``created_at``. ``preview``: an operator's test play (any status but ended; no
    stock, limits or points taken; recorded as a preview, never granted).
    """
    request_key = _check_request_key(request_key)
    now = now or utcnow()
    stored_key = f"{'preview' if preview else 'play'}:{member_id}:{request_key}"
    existing = _existing(stored_key)
    if existing is not None:
        return _replay(existing, campaign_id, member_id)
    campaign = _campaign(campaign_id)
    if campaign.kind not in CHANCE_KINDS:
        raise NotEligible(_l("This game is played by checking in."))
    member = _member(member_id)
    if preview:
        if campaign.status == ENDED:
            raise Ended(_l("This game has ended."))
        return _preview(campaign, member, stored_key, ip, now)
    _check_open(campaign, now)
    _check_eligible(campaign, member)
    prizes = _prizes(campaign.id)
    decided, sid = _play_live(
        campaign, member, prizes, request_key, stored_key, ip, now, draw_id=_next_draw_id()
    )
    if decided.get("replay"):  # decided earlier, written now
        return _replay(db.session.get(GameDraw, decided["id"]), campaign_id, member_id)
    ledger.record([decided], paid=True)
    live.drop_after_commit(campaign.brand_id, sid)
    draw = db.session.get(GameDraw, decided["id"])
    if grant and draw.status == PENDING_GRANT:
        by_id = {p.id: p for p in prizes}
        _grant(draw, by_id[draw.prize_id], campaign.name, now)
    return draw


def play_decided(
    *,
    campaign,
    member,
    prizes: list,
    request_key: str,
    ip: str | None,
    eligible_reason: str | None,
    draw_id: int,
    now: dt.datetime,
    player_init: dict | None = None,
    guard: live.Guard | None = None,
) -> tuple[dict, bool]:
    """A play of the mini-program's hot path (``games.front``): the campaign, its prizes and
    the member are snapshots the caller keeps (``games.front``), the draw id one it reserved.
    The play is decided in Redis and left in the stream for ``games.jobs.record_plays``
    (its prize granted there, within seconds); a play the member's free plays do not cover is
    paid and written in this transaction, and a replay answers the written draw. Answers the
    draw's fields and whether the caller must commit (True: written in this transaction).

    Raises what ``play`` raises, with the same checks in the same order, and
    ``live.Stale`` (nothing changed) when ``guard`` fails."""
    request_key = _check_request_key(request_key)
    stored_key = f"play:{member.id}:{request_key}"
    _check_open(campaign, now)
    if eligible_reason:
        raise NotEligible(eligible_reason)
    decided, sid = _play_live(
        campaign,
        member,
        prizes,
        request_key,
        stored_key,
        ip,
        now,
        draw_id=draw_id,
        sync=False,
        player_init=player_init,
        guard=guard,
    )
    if sid is not None:
        return decided, bool(decided.get("flagged"))
    draw = db.session.get(GameDraw, decided["id"])
    if decided.get("replay"):
        draw = _replay(draw, campaign.id, member.id)
    if draw.status == PENDING_GRANT:  # written here: granted at once
        draw = grant_draw(draw_id=draw.id, now=now)
    return draw_fields(draw), True


def draw_fields(draw: GameDraw) -> dict:
    """The fields of a written draw, as ``play_decided`` answers them."""
    return {
        "id": draw.id,
        "campaign_id": draw.campaign_id,
        "member_id": draw.member_id,
        "prize_id": draw.prize_id,
        "slot_prize_id": draw.slot_prize_id,
        "prize_name": draw.prize_name,
        "prize_kind": draw.prize_kind,
        "status": draw.status,
        "paid_with": draw.paid_with,
        "points_spent": draw.points_spent,
        "created_at": draw.created_at.isoformat(timespec="microseconds"),
    }


def _play_live(
    campaign,
    member,
    prizes,
    request_key,
    stored_key,
    ip,
    now,
    *,
    draw_id,
    sync=True,
    player_init=None,
    guard=None,
) -> tuple[dict, str | None]:
    """Draw, decide in Redis, and answer (the decided record, its stream id); the stream id
    is None when the play was written to PostgreSQL here: paid with an extra play or points
    (then written in this transaction), or a replay of a play decided earlier (the record
    then has ``replay``)."""
    day = brand_day(now)
    random_hex = draws.draw_random(campaign.seed, campaign.id, draw_id)
    picked = draws.pick(random_hex, [draws.Slot(p.id, p.weight) for p in prizes])
    new = member.created_at is not None and now - member.created_at <= NEW_MEMBER_WINDOW
    record = {
        "id": draw_id,
        "brand_id": campaign.brand_id,
        "campaign_id": campaign.id,
        "member_id": member.id,
        "key": stored_key,
        "random_hex": random_hex,
        "picked": picked,
        "points_spent": 0,
        "day": day.isoformat(),
        "ip": (ip or None) and ip[:64],
        "created_at": now.isoformat(timespec="microseconds"),
        "new_member": bool(new),
        "campaign_name": campaign.name,
        "sync": 1 if sync else 0,
    }
    chain = _chain(picked, prizes)
    rate = _rate(campaign, member.id, ip, count=True)
    decision = _decide(
        campaign,
        member,
        request_key,
        day,
        now,
        record,
        chain,
        rate,
        pay="auto",
        player_init=player_init,
        guard=guard,
    )
    flagged = decision["r"] != "replay" and _rated(decision, campaign, ip, now)
    paid = False
    if decision["r"] == "pay":
        paid_with = _pay(campaign, member.id, stored_key, now)
        if paid_with == PAID_POINTS:
            record["points_spent"] = campaign.cost_points
        record["sync"] = 1  # its payment is in this transaction: written with it
        rate = dataclasses.replace(rate, count=False)
        decision = _decide(
            campaign, member, request_key, day, now, record, chain, rate, pay=paid_with
        )
        paid = True
    if decision["r"] == "replay":
        # decided earlier, not yet written (its request is still running or died): write it
        earlier = decision["draw"]
        if earlier["campaign_id"] != campaign.id:
            raise Conflict(_l("This request key was already used."), field="request_key")
        ledger.record([earlier], paid=False)
        return {**earlier, "replay": True}, None
    if decision["r"] == "limit_total":
        raise LimitReached(_l("You have used all your plays in this game."))
    if decision["r"] in ("limit_day", "pay"):
        raise LimitReached(_l("You have used all your plays for today. Come back tomorrow."))
    decided = decision["draw"]
    if paid and not sync:
        ledger.record([decided], paid=True)
        live.drop_after_commit(campaign.brand_id, decision["sid"])
        return decided, None
    if flagged:  # a burst's flag was written in this transaction
        decided["flagged"] = True
    return decided, decision["sid"]


def _chain(picked: int | None, prizes: list[GamePrize]) -> list[live.ChainPrize]:
    """The drawn prize and its fallbacks in order, to the first "thanks" (a cycle ends the
    way: thanks)."""
    by_id = {p.id: p for p in prizes}
    chain: list[live.ChainPrize] = []
    seen: set[int] = set()
    current = picked
    while current is not None and current not in seen and current in by_id:
        seen.add(current)
        p = by_id[current]
        chain.append(
            live.ChainPrize(
                id=p.id,
                name=p.name,
                kind=p.kind,
                value=p.value_fen,
                stock=-1 if p.stock is None else p.stock,
                cap=-1 if p.daily_cap is None else p.daily_cap,
                none=p.kind == NONE,
            )
        )
        if p.kind == NONE:
            break
        current = p.fallback_prize_id
    return chain


def _limit(value: int | None) -> int:
    return -1 if value is None else value


def _decide(
    campaign,
    member,
    request_key,
    day,
    now,
    record,
    chain,
    rate,
    *,
    pay: str,
    player_init=None,
    guard=None,
) -> dict:
    """The play's script, filling the campaign's or the member's counters from PostgreSQL
    first when Redis has none; ``guard`` checked by the script first (``live.Stale``)."""
    limits = live.Limits(
        plays_per_day=_limit(campaign.plays_per_day),
        plays_total=_limit(campaign.plays_total),
        free_per_day=campaign.free_per_day,
        wins_per_day=_limit(campaign.wins_per_day),
        wins_total=_limit(campaign.wins_total),
        budget=_limit(campaign.budget_fen),
        free_game=campaign.cost_points == 0 and campaign.free_per_day == 0,
    )
    where = {"brand_id": campaign.brand_id, "campaign_id": campaign.id}
    for _attempt in range(3):
        decision = live.decide(
            **where,
            member_id=member.id,
            request_key=request_key,
            day=day,
            pay=pay,
            limits=limits,
            activated=is_activated(member),
            chain=chain,
            record=record,
            rate=rate,
            ends_at=campaign.ends_at,
            now=now,
            player_init=player_init,
            guard=guard,
        )
        if decision["r"] == "load_state":
            live.load_state(**where, day=day, ends_at=campaign.ends_at, now=now)
        elif decision["r"] == "load_player":
            live.load_player(**where, member_id=member.id, ends_at=campaign.ends_at, now=now)
        else:
            return decision
    raise RuntimeError("games: the live counters could not be loaded")


def _pay(campaign: GameCampaign, member_id: int, stored_key: str, now) -> str:
    """A play beyond the day's free ones: an earned extra play, else points."""
    params = {"c": campaign.id, "m": member_id, "b": campaign.brand_id}
    if db.session.execute(ledger.TAKE_EXTRA, params).first() is not None:
        return PAID_EXTRA
    if campaign.cost_points > 0:
        _spend_points(campaign, member_id, stored_key, now)
        return PAID_POINTS
    raise LimitReached(_l("You have no plays left today. Come back tomorrow."))


def _preview(campaign: GameCampaign, member: Member, stored_key: str, ip, now) -> GameDraw:
    """An operator's test play: drawn like a play, no stock, limits or points taken."""
    day = brand_day(now)
    draw_id = _next_draw_id()
    random_hex = draws.preview_random()
    prizes = _prizes(campaign.id)
    picked = draws.pick(random_hex, [draws.Slot(p.id, p.weight) for p in prizes])
    by_id = {p.id: p for p in prizes}
    final, fallbacks = _resolve(
        picked,
        by_id,
        campaign=campaign,
        day=day,
        activated=is_activated(member),
        win_ok=True,
        preview=True,
    )
    prize = by_id.get(final) if final is not None else None
    won = prize is not None and prize.kind != NONE
    draw = GameDraw(
        id=draw_id,
        campaign_id=campaign.id,
        member_id=member.id,
        idempotency_key=stored_key,
        preview=True,
        paid_with=PAID_FREE,
        points_spent=0,
        random_hex=random_hex,
        picked_prize_id=picked,
        fallbacks=fallbacks,
        slot_prize_id=final,
        prize_id=prize.id if won else None,
        prize_name=prize.name if prize is not None else "",
        prize_kind=prize.kind if won else NONE,
        value_fen=prize.value_fen if won else 0,
        status=PREVIEW,
        day=day,
        ip=(ip or None) and ip[:64],
        created_at=now,
    )
    db.session.add(draw)
    db.session.flush()
    return draw


def _first_status(prize: GamePrize | None, preview: bool) -> str:
    if preview:
        return PREVIEW
    if prize is None:
        return LOST
    if prize.kind == GIFT:
        return AWAITING_ADDRESS
    return PENDING_GRANT


def _spend_points(campaign: GameCampaign, member_id: int, stored_key: str, now) -> None:
    from points import services as points

    try:
        points.spend_id(
            member_id=member_id,
            points=campaign.cost_points,
            reason=campaign.name,
            idempotency_key=f"game-{stored_key}",
            now=now,
        )
    except points.InsufficientPoints as exc:
        raise NoPoints(
            _l("You need %(n)d points to play.", n=campaign.cost_points), field="points"
        ) from exc


# --- the grant -----------------------------------------------------------------------------


def grant_draw(*, draw_id: int, now: dt.datetime | None = None) -> GameDraw:
    """Give a pending draw's prize (a coupon or points) exactly once: under the draw's row
    lock, through the coupons / points services with the key ``game-draw:<id>``, then
    ``pending_grant`` -> ``granted``. Any other status: nothing to do. A prize the coupons
    service refuses (its template sold out or ended) marks the draw ``grant_failed``."""
    now = now or utcnow()
    draw = db.session.scalars(
        select(GameDraw)
        .where(GameDraw.id == draw_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if draw is None:
        raise NotFound(_l("Unknown draw."), field="draw_id")
    if draw.status != PENDING_GRANT:
        return draw
    prize = db.session.get(GamePrize, draw.prize_id)
    return _grant(draw, prize, _campaign_name(draw.campaign_id), now)


def grant_draws(*, draw_ids: list[int], now: dt.datetime | None = None) -> int:
    """``grant_draw`` of several draws in the current transaction; a draw another
    transaction is granting is skipped (it grants it). Points prizes are granted together
    (one batch credit, then one ``UPDATE`` of their draws); the others each in its own
    savepoint. Answers how many were granted or failed now."""
    now = now or utcnow()
    pending = list(
        db.session.scalars(
            select(GameDraw)
            .where(GameDraw.id.in_(draw_ids), GameDraw.status == PENDING_GRANT)
            .order_by(GameDraw.id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    )
    if not pending:
        return 0
    prizes = {
        p.id: p
        for p in db.session.scalars(
            select(GamePrize).where(GamePrize.id.in_({d.prize_id for d in pending}))
        )
    }
    names = dict(
        db.session.execute(
            select(GameCampaign.id, GameCampaign.name).where(
                GameCampaign.id.in_({d.campaign_id for d in pending})
            )
        ).all()
    )
    wins = [d for d in pending if prizes[d.prize_id].kind == POINTS]
    if wins:
        _grant_points(wins, prizes, names, now)
    for draw in pending:
        if prizes[draw.prize_id].kind != POINTS:
            _grant(draw, prizes[draw.prize_id], names[draw.campaign_id], now)
    return len(pending)


# Each draw granted (its entry) or failed (its error), still pending and held by this
# transaction.
_MARK_GRANTS = text(
    "UPDATE game_draw d SET status = r.status, points_entry_id = r.entry,"
    " grant_error = r.error,"
    " granted_at = CASE WHEN r.status = :granted THEN CAST(:now AS timestamptz)"
    "  ELSE d.granted_at END"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb))"
    "  AS r(id bigint, status varchar, entry bigint, error varchar)"
    " WHERE d.id = r.id AND d.brand_id = :b AND d.status = :pending"
)


def _grant_points(
    draws: list[GameDraw], prizes: dict[int, GamePrize], names: dict[int, str], now
) -> None:
    """Give the points of pending draws held by this transaction in one batch credit (the
    key ``game-draw:<id>``, the campaign's name as the reason, as ``_grant``), then mark
    them with one statement; a credit the points service refuses fails its draw."""
    from points import services as points

    outcome = points.credit_many(
        [
            points.Credit(
                member_id=d.member_id,
                points=prizes[d.prize_id].points,
                key=f"game-draw:{d.id}",
                reason=names[d.campaign_id],
            )
            for d in draws
        ],
        now=now,
    )
    rows = []
    for d in draws:
        result = outcome[f"game-draw:{d.id}"]
        if result.ok:
            status, entry_id, error = GRANTED, result.entry_id, None
        else:
            status, entry_id, error = GRANT_FAILED, None, result.error.message[:200]
        rows.append({"id": d.id, "status": status, "entry": entry_id, "error": error})
    n = db.session.execute(
        _MARK_GRANTS,
        {
            "rows": _json(rows),
            "b": require_brand_id(),
            "granted": GRANTED,
            "pending": PENDING_GRANT,
            "now": now,
        },
    ).rowcount
    if n != len(rows):  # the draws are locked by this transaction: cannot happen
        raise RuntimeError("game draws changed while their points were granted")
    # Keep the loaded rows in step without making the ORM write them again.
    for d, row in zip(draws, rows, strict=True):
        set_committed_value(d, "status", row["status"])
        set_committed_value(d, "points_entry_id", row["entry"])
        set_committed_value(d, "grant_error", row["error"])
        if row["status"] == GRANTED:
            set_committed_value(d, "granted_at", now)


def _grant(draw: GameDraw, prize: GamePrize, reason: str, now: dt.datetime) -> GameDraw:
    """Give the prize of a pending draw held by this transaction (its row just written, or
    locked): a coupon or points through their services with the key ``game-draw:<id>``, in
    a savepoint; a refusal of those services marks the draw ``grant_failed``."""
    key = f"game-draw:{draw.id}"
    try:
        with db.session.begin_nested():
            if prize.kind == POINTS:
                from points import services as points

                entry = points.adjust(
                    member_id=draw.member_id,
                    points=prize.points,
                    reason=reason,
                    idempotency_key=key,
                    operator=None,
                    now=now,
                )
                draw.points_entry_id = entry.id
            else:
                from coupons import services as coupons

                coupon = coupons.issue(
                    template_id=prize.coupon_template_id,
                    member_id=draw.member_id,
                    source="game",
                    idempotency_key=key,
                    now=now,
                )
                draw.coupon_id = coupon.id
            draw.status = GRANTED
            draw.granted_at = now
            db.session.flush()
    except AppError as exc:
        draw.status = GRANT_FAILED
        draw.grant_error = exc.message[:200]
        db.session.flush()
    return draw


def _campaign_name(campaign_id: int) -> str:
    return db.session.get(GameCampaign, campaign_id).name


def pending_grants(*, older_than: dt.timedelta, limit: int = 500) -> list[int]:
    """Draws of the current brand left ``pending_grant`` for longer than ``older_than``."""
    cutoff = utcnow() - older_than
    return list(
        db.session.scalars(
            select(GameDraw.id)
            .where(GameDraw.status == PENDING_GRANT, GameDraw.created_at < cutoff)
            .order_by(GameDraw.id)
            .limit(limit)
        )
    )


# --- gifts ---------------------------------------------------------------------------------

ADDRESS_FIELDS = {
    "name": 40,
    "phone": 20,
    "province": 20,
    "city": 30,
    "district": 30,
    "detail": 120,
}


def submit_gift_address(
    *, draw_id: int, member_id: int, address: dict, now: dt.datetime | None = None
) -> GameDraw:
    """The winner of a physical gift gives a delivery address (name, phone, province, city,
    district, detail) or picks a store (``{"store_id": id}``); the draw becomes granted."""
    now = now or utcnow()
    draw = db.session.get(GameDraw, draw_id) if isinstance(draw_id, int) else None
    if draw is None or draw.brand_id != require_brand_id() or draw.member_id != member_id:
        raise NotFound(_l("Unknown prize."), field="draw_id")
    if draw.status != AWAITING_ADDRESS:
        raise Conflict(_l("This prize has already been claimed."))
    if not isinstance(address, dict):
        raise ValidationError(_l("Give a delivery address or a store."), field="address")
    campaign = db.session.get(GameCampaign, draw.campaign_id)
    if address.get("store_id") is not None:
        store_id = address.get("store_id")
        store = db.session.get(Store, store_id) if isinstance(store_id, int) else None
        if store is None or store.brand_id != draw.brand_id or not store.active:
            raise ValidationError(_l("Choose a store."), field="store_id")
        if campaign.pickup_store_ids and store.id not in campaign.pickup_store_ids:
            raise ValidationError(_l("This store does not hand out the prize."), field="store_id")
        clean = {"store_id": store.id, "store_name": store.name}
    else:
        clean = {}
        for name, max_len in ADDRESS_FIELDS.items():
            value = address.get(name) or ""
            if not isinstance(value, str):
                raise ValidationError(_l("Invalid value."), field=name)
            value = value.strip()
            if len(value) > max_len:
                raise ValidationError(_l("Too long."), field=name)
            if not value and name != "district":
                raise ValidationError(_l("Required."), field=name)
            clean[name] = value
    changed = db.session.execute(
        text(
            "UPDATE game_draw SET status = :granted, granted_at = :now,"
            " address = CAST(:addr AS json)"
            " WHERE id = :id AND brand_id = :b AND status = :waiting RETURNING id"
        ),
        {
            "granted": GRANTED,
            "now": now,
            "addr": _json(clean),
            "id": draw.id,
            "b": draw.brand_id,
            "waiting": AWAITING_ADDRESS,
        },
    ).scalar()
    if changed is None:
        raise Conflict(_l("This prize has already been claimed."))
    db.session.refresh(draw)
    return draw


def _json(value: dict | list) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


# --- extra plays and check-ins --------------------------------------------------------------


def grant_extra_plays(
    *,
    campaign_id: int,
    member_id: int,
    plays: int,
    source: str,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> bool:
    """Add extra plays earned by a purchase, a check-in or a task (never by sharing or
    following); once per ``idempotency_key``. True when added now."""
    if source not in ("purchase", "checkin", "task"):
        raise ValidationError(_l("Unknown source."), field="source")
    if not isinstance(plays, int) or plays <= 0 or plays > 100:
        raise ValidationError(_l("Between 1 and 100 plays."), field="plays")
    now = now or utcnow()
    campaign = _campaign(campaign_id)
    member = _member(member_id)
    try:
        with db.session.begin_nested():
            db.session.add(
                GameExtraPlay(
                    campaign_id=campaign.id,
                    member_id=member.id,
                    source=source,
                    plays=plays,
                    idempotency_key=str(idempotency_key)[:200],
                    created_at=now,
                )
            )
            db.session.flush()
    except IntegrityError:
        return False
    params = {"b": campaign.brand_id, "c": campaign.id, "m": member.id}
    new = member.created_at is not None and now - member.created_at <= NEW_MEMBER_WINDOW
    db.session.execute(_ENSURE_PLAYER, {**params, "new": bool(new), "now": now})
    db.session.execute(
        text(
            "UPDATE game_player SET extra_plays = extra_plays + :n"
            " WHERE campaign_id = :c AND member_id = :m AND brand_id = :b"
        ),
        {**params, "n": plays},
    )
    return True


def live_campaigns_rewarding(field: str, now: dt.datetime) -> list[GameCampaign]:
    """Live chance campaigns open now whose ``field`` (extra plays per ...) is set."""
    column = getattr(GameCampaign, field)
    return list(
        db.session.scalars(
            select(GameCampaign).where(
                GameCampaign.status == LIVE,
                GameCampaign.kind.in_(CHANCE_KINDS),
                GameCampaign.starts_at <= now,
                GameCampaign.ends_at > now,
                column > 0,
            )
        )
    )


@dataclasses.dataclass
class CheckInResult:
    """A check-in: its day, the streak it makes and the reward's draw (None: no reward)."""

    day: dt.date
    streak: int
    draw: GameDraw | None
    checkin_id: int


def check_in(
    *, campaign_id: int, member_id: int, request_key: str, now: dt.datetime | None = None
) -> CheckInResult:
    """Check the member in for today in a check-in campaign: the streak grows when they
    checked in yesterday (else starts at 1); the streak day's prize (if any) is recorded as a
    draw and granted like any other (``grant_draw``). Once a day (``already_checked_in``);
    a replay of the same request key answers the same check-in."""
    request_key = _check_request_key(request_key)
    now = now or utcnow()
    stored_key = f"checkin:{member_id}:{request_key}"
    existing = _existing(stored_key)
    campaign = _campaign(campaign_id)
    if existing is not None:
        _replay(existing, campaign_id, member_id)
        found = db.session.scalars(
            select(GameCheckIn).where(GameCheckIn.draw_id == existing.id)
        ).one()
        return CheckInResult(found.day, found.streak, existing, found.id)
    if campaign.kind != CHECKIN:
        raise NotEligible(_l("This game is not a check-in."))
    member = _member(member_id)
    _check_open(campaign, now)
    _rate_limit(campaign, member.id, None, now)
    _check_eligible(campaign, member)
    day = brand_day(now)
    yesterday = db.session.scalar(
        select(GameCheckIn.streak).where(
            GameCheckIn.campaign_id == campaign.id,
            GameCheckIn.member_id == member.id,
            GameCheckIn.day == day - dt.timedelta(days=1),
        )
    )
    streak = (yesterday or 0) + 1
    try:
        with db.session.begin_nested():
            checkin = GameCheckIn(
                campaign_id=campaign.id, member_id=member.id, day=day, streak=streak, created_at=now
            )
            db.session.add(checkin)
            db.session.flush()
    except IntegrityError:
        replay = _existing(stored_key)
        if replay is not None:
            return check_in(
                campaign_id=campaign_id, member_id=member_id, request_key=request_key, now=now
            )
        raise AlreadyCheckedIn(_l("You have already checked in today.")) from None
    _, player = _count_checkin(campaign, member, day, now)
    prizes = _prizes(campaign.id)
    by_day = {p.streak_day: p.id for p in prizes if p.streak_day}
    picked = draws.streak_prize(streak, campaign.checkin_cycle, by_day)
    by_id = {p.id: p for p in prizes}
    draw_id = _next_draw_id()
    final, fallbacks = _resolve(
        picked,
        by_id,
        campaign=campaign,
        day=day,
        activated=is_activated(member),
        win_ok=_win_allowed(campaign, player),
        preview=False,
    )
    prize = by_id.get(final) if final is not None else None
    won = prize is not None and prize.kind != NONE
    if won:
        db.session.execute(
            _COUNT_WIN, {"id": player.id, "wpd": campaign.wins_per_day, "wt": campaign.wins_total}
        )
    draw = GameDraw(
        id=draw_id,
        campaign_id=campaign.id,
        member_id=member.id,
        idempotency_key=stored_key,
        preview=False,
        paid_with=PAID_CHECKIN,
        points_spent=0,
        random_hex=draws.draw_random(campaign.seed, campaign.id, draw_id),
        picked_prize_id=picked,
        fallbacks=fallbacks,
        slot_prize_id=final,
        prize_id=prize.id if won else None,
        prize_name=prize.name if prize is not None else "",
        prize_kind=prize.kind if won else NONE,
        value_fen=prize.value_fen if won else 0,
        status=_first_status(prize if won else None, False),
        day=day,
        streak=streak,
        created_at=now,
    )
    db.session.add(draw)
    db.session.flush()
    checkin.draw_id = draw.id
    for other in live_campaigns_rewarding("extra_per_checkin", now):
        grant_extra_plays(
            campaign_id=other.id,
            member_id=member.id,
            plays=other.extra_per_checkin,
            source="checkin",
            idempotency_key=f"checkin:{checkin.id}:{other.id}",
            now=now,
        )
    db.session.flush()
    return CheckInResult(day, streak, draw, checkin.id)


def _count_checkin(campaign: GameCampaign, member: Member, day: dt.date, now):
    row = _lock_player(campaign, member, now)
    db.session.execute(
        _COUNT_PLAY,
        {
            "id": row.id,
            "day": day,
            "free": 0,
            "extra": 0,
            "now": now,
            "ppd": None,
            "pt": None,
            "fpd": 0,
        },
    )
    same_day = row.day == day
    return PAID_CHECKIN, _Player(row.id, row.wins_day if same_day else 0, row.wins_total)


def reward_purchase(*, order_id: int, member_id: int | None, now: dt.datetime | None = None) -> int:
    """Extra plays for a paid order in every live campaign that gives them; answers how many
    campaigns gave plays (once per order and campaign)."""
    if member_id is None:
        return 0
    now = now or utcnow()
    given = 0
    for campaign in live_campaigns_rewarding("extra_per_purchase", now):
        given += grant_extra_plays(
            campaign_id=campaign.id,
            member_id=member_id,
            plays=campaign.extra_per_purchase,
            source="purchase",
            idempotency_key=f"order:{order_id}:{campaign.id}",
            now=now,
        )
    return given


__all__ = [
    "CheckInResult",
    "GameFlag",
    "check_in",
    "create_campaign",
    "end_campaign",
    "grant_draw",
    "grant_extra_plays",
    "pause_campaign",
    "play",
    "reward_purchase",
    "start_campaign",
    "submit_gift_address",
    "update_campaign",
]
