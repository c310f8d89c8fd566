"""Extra plays (earned by purchases, invitations...), daily check-ins counted in PostgreSQL
alone, and the purchase rewards of live campaigns."""

from __future__ import annotations

import dataclasses
import datetime as dt
import types

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from core.db import db, utcnow
from core.errors import ValidationError
from games import draws
from games.checks import (
    NEW_MEMBER_WINDOW,
    _campaign,
    _check_eligible,
    _check_open,
    _check_request_key,
    _existing,
    _member,
    _prizes,
    _rate_limit,
    _replay,
    brand_day,
    is_activated,
)
from games.counters import (
    _COUNT_PLAY,
    _COUNT_WIN,
    _ENSURE_PLAYER,
    _first_status,
    _lock_player,
    _next_draw_id,
    _Player,
    _resolve,
    _win_allowed,
)
from games.errors import (
    AlreadyCheckedIn,
    NotEligible,
)
from games.models import (
    CHANCE_KINDS,
    CHECKIN,
    LIVE,
    NONE,
    PAID_CHECKIN,
    GameCampaign,
    GameCheckIn,
    GameDraw,
    GameExtraPlay,
)
from members.models import Member
from wechat import brand_settings

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


def live_campaigns_rewarding(field: str, now: dt.datetime) -> list[types.SimpleNamespace]:
    """Live chance campaigns open now whose ``field`` (extra plays per ...) is set: their
    ``id``, ``brand_id``, ``field``, ``starts_at`` and ``ends_at``. Every paid order and
    check-in asks; member requests and the till find the list cached in the process
    (``wechat.brand_settings``: an operator's change is seen at the next request)."""
    rows = brand_settings.get(f"games-rewarding:{field}", lambda: _rewarding(field))
    return [
        types.SimpleNamespace(**row) for row in rows if row["starts_at"] <= now < row["ends_at"]
    ]


def _rewarding(field: str) -> tuple[dict, ...]:
    column = getattr(GameCampaign, field)
    found = db.session.execute(
        select(
            GameCampaign.id,
            GameCampaign.brand_id,
            column,
            GameCampaign.starts_at,
            GameCampaign.ends_at,
        ).where(
            GameCampaign.status == LIVE,
            GameCampaign.kind.in_(CHANCE_KINDS),
            GameCampaign.ends_at > utcnow(),
            column > 0,
        )
    )
    keys = ("id", "brand_id", field, "starts_at", "ends_at")
    return tuple(dict(zip(keys, row, strict=True)) for row in found)


brand_settings.watch(GameCampaign)


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
