"""The checks of a play and a check-in: the request key, the campaign open, the member
eligible, the rate limits, the brand-local day; and the reads they share."""

from __future__ import annotations

import datetime as dt
import time

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, select, text

from core import ratelimit
from core.db import db
from core.errors import Conflict, NotFound, ValidationError
from core.redis import key as redis_key
from core.tenancy import require_brand_id
from games import live
from games.errors import (
    CampaignNotFound,
    Ended,
    GameRateLimited,
    NotEligible,
    NotStarted,
    Paused,
)
from games.models import (
    DRAFT,
    ENDED,
    PAUSED,
    GameCampaign,
    GameDraw,
    GamePrize,
)
from members.models import ACTIVE, Member
from members.models.tags import MemberTag
from org.models import Brand, Staff

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
