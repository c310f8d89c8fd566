"""Games' writes: plays, check-ins, grants, extra plays and gift addresses. The play is here;
the rest is re-exported from the modules that hold it: the campaign settings (create, update,
start, pause, stop) from ``games.setup``, the grants and gift addresses from
``games.grants``, check-ins, extra plays and purchase rewards from ``games.checkins``; the
checks they share are in ``games.checks`` and what they count in PostgreSQL in
``games.counters``.

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

from flask_babel import lazy_gettext as _l

from core.db import db, utcnow
from core.errors import Conflict
from games import draws, ledger, live
from games.checkins import (  # noqa: F401 - re-exported: check-ins and extra plays
    CheckInResult,
    check_in,
    grant_extra_plays,
    live_campaigns_rewarding,
    reward_purchase,
)
from games.checks import (  # noqa: F401 - re-exported
    NEW_MEMBER_WINDOW,
    _campaign,
    _check_eligible,
    _check_open,
    _check_request_key,
    _existing,
    _member,
    _prizes,
    _rate,
    _rated,
    _replay,
    brand_day,
    ineligible_reason,
    is_activated,
    is_staff,
)
from games.counters import (
    _next_draw_id,
    _resolve,
)
from games.errors import (
    Ended,
    LimitReached,
    NoPoints,
    NotEligible,
)
from games.grants import (  # noqa: F401 - re-exported: grants and gifts
    _grant,
    grant_draw,
    grant_draws,
    pending_grants,
    submit_gift_address,
)
from games.models import (
    CHANCE_KINDS,
    ENDED,
    NONE,
    PAID_EXTRA,
    PAID_FREE,
    PAID_POINTS,
    PENDING_GRANT,
    PREVIEW,
    GameCampaign,
    GameDraw,
    GameFlag,  # noqa: F401 - re-exported
    GamePrize,
)
from games.setup import (  # noqa: F401 - re-exported: the settings' writes
    create_campaign,
    end_campaign,
    pause_campaign,
    start_campaign,
    update_campaign,
)
from members.models import Member

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
