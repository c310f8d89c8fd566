"""A campaign's settings: create, update (with its prize table), start, pause, end.

The law on prize promotions is enforced here: a prize worth more than ¥50,000 is refused;
once a campaign has gone live only changes in the players' favour are accepted (more stock,
a higher daily cap, a later end, more plays, a lower cost, a wider audience, a larger
budget); odds, prizes and their values can no longer change; nothing chooses a winner.
Every change is kept by the audit log (the models are ``Audited``); nothing is deleted.
"""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core.db import db, utcnow
from core.errors import Conflict
from core.tenancy import require_brand_id
from games import draws
from games.errors import AgainstPlayers, InvalidCampaign
from games.models import (
    CHANCE_KINDS,
    CHECKIN,
    COUPON,
    DRAFT,
    ENDED,
    KINDS,
    LIVE,
    MAX_PRIZE_FEN,
    NONE,
    PAUSED,
    POINTS,
    PRIZE_KINDS,
    GameCampaign,
    GameDraw,
    GamePrize,
)

LIMIT_FIELDS = ("plays_per_day", "plays_total", "wins_per_day", "wins_total")
SCOPE_FIELDS = ("tier_ids", "tag_ids", "store_ids", "pickup_store_ids")
MAX_WEIGHT = 1_000_000


def _int(
    values: dict, name: str, low: int, high: int, *, optional: bool = False, default: int = 0
) -> int | None:
    value = values.get(name)
    if value is None or value == "":
        if optional:
            return None
        value = default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCampaign(_l("Enter a whole number."), field=name)
    if value < low or value > high:
        raise InvalidCampaign(_l("Between %(low)d and %(high)d.", low=low, high=high), field=name)
    return value


def _text(values: dict, name: str, max_len: int, *, required: bool = False) -> str:
    value = values.get(name) or ""
    if not isinstance(value, str):
        raise InvalidCampaign(_l("Invalid value."), field=name)
    value = value.strip()
    if required and not value:
        raise InvalidCampaign(_l("Required."), field=name)
    if len(value) > max_len:
        raise InvalidCampaign(_l("At most %(n)d characters.", n=max_len), field=name)
    return value


def _when(values: dict, name: str) -> dt.datetime:
    value = values.get(name)
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise InvalidCampaign(_l("Enter a date and time."), field=name)
    return value.astimezone(dt.UTC)


def _ids(values: dict, name: str, model) -> list[int]:
    raw = values.get(name) or []
    if not isinstance(raw, list | tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in raw
    ):
        raise InvalidCampaign(_l("Invalid value."), field=name)
    ids = sorted(set(raw))
    if ids:
        found = db.session.scalar(select(func.count()).select_from(model).where(model.id.in_(ids)))
        if found != len(ids):
            raise InvalidCampaign(_l("Unknown choice."), field=name)
    return ids


def clean_settings(values: dict, *, kind: str) -> dict:
    """The campaign's settings, checked (``InvalidCampaign`` names the field)."""
    from members.models import TierLevel
    from members.models.tags import TagDefinition
    from org.models import Store

    out = {
        "name": _text(values, "name", 80, required=True),
        "description": _text(values, "description", 2000),
        "starts_at": _when(values, "starts_at"),
        "ends_at": _when(values, "ends_at"),
        "cost_points": _int(values, "cost_points", 0, 100_000),
        "free_per_day": _int(values, "free_per_day", 0, 100),
        "extra_per_purchase": _int(values, "extra_per_purchase", 0, 100),
        "extra_per_checkin": _int(values, "extra_per_checkin", 0, 100),
        "budget_fen": _int(values, "budget_fen", 0, 2_000_000_000, optional=True),
        "checkin_cycle": _int(values, "checkin_cycle", 1, 31, default=7),
        "claim_days": _int(values, "claim_days", 1, 365, default=30),
        "contact": _text(values, "contact", 200, required=True),
        "tier_ids": _ids(values, "tier_ids", TierLevel),
        "tag_ids": _ids(values, "tag_ids", TagDefinition),
        "store_ids": _ids(values, "store_ids", Store),
        "pickup_store_ids": _ids(values, "pickup_store_ids", Store),
    }
    for name in LIMIT_FIELDS:
        out[name] = _int(values, name, 1, 100_000, optional=True)
    if out["ends_at"] <= out["starts_at"]:
        raise InvalidCampaign(_l("The end must be after the start."), field="ends_at")
    if kind == CHECKIN:
        out["cost_points"] = 0
        out["free_per_day"] = 0
    return out


def clean_prizes(rows, *, kind: str, cycle: int) -> list[dict]:
    """The prize table, checked: kinds, values (at most ¥50,000 each), weights, stock,
    fallbacks (by position) and, for a check-in, the streak days."""
    from coupons.models import CouponTemplate

    if not isinstance(rows, list | tuple):
        raise InvalidCampaign(_l("Invalid value."), field="prizes")
    adapter = draws.ADAPTERS[kind]
    if not adapter.min_prizes <= len(rows) <= adapter.max_prizes:
        raise InvalidCampaign(
            _l(
                "This game needs between %(low)d and %(high)d prizes.",
                low=adapter.min_prizes,
                high=adapter.max_prizes,
            ),
            field="prizes",
        )
    out: list[dict] = []
    streak_days: set[int] = set()
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidCampaign(_l("Invalid value."), field="prizes")
        prefix = f"prizes-{i}-"

        def field(name: str, prefix: str = prefix) -> str:
            return prefix + name

        try:
            name = _text(row, "name", 60, required=True)
            prize_kind = row.get("kind")
            if prize_kind not in PRIZE_KINDS:
                raise InvalidCampaign(_l("Choose a prize type."), field="kind")
            value = row.get("value_fen") or 0
            if isinstance(value, int) and not isinstance(value, bool) and value > MAX_PRIZE_FEN:
                raise InvalidCampaign(
                    _l("A prize may be worth at most ¥50,000 (the law on prize promotions)."),
                    field="value_fen",
                )
            value_fen = _int(row, "value_fen", 0, MAX_PRIZE_FEN)
            weight = _int(row, "weight", 0, MAX_WEIGHT)
            stock = _int(row, "stock", 0, 10_000_000, optional=True)
            daily_cap = _int(row, "daily_cap", 1, 10_000_000, optional=True)
            points = _int(row, "points", 0, 1_000_000) or 0
            template_id = row.get("coupon_template_id")
            if prize_kind == COUPON:
                tpl = (
                    db.session.get(CouponTemplate, template_id)
                    if isinstance(template_id, int)
                    else None
                )
                if tpl is None or tpl.brand_id != require_brand_id():
                    raise InvalidCampaign(_l("Choose a coupon."), field="coupon_template_id")
            else:
                template_id = None
            if prize_kind == POINTS and points <= 0:
                raise InvalidCampaign(_l("Enter the points given."), field="points")
            if prize_kind != POINTS:
                points = 0
            if prize_kind == NONE:
                value_fen, stock, daily_cap = 0, None, None
            fallback = _int(row, "fallback", 1, len(rows), optional=True)
            if fallback == i + 1:
                raise InvalidCampaign(_l("A prize cannot fall back to itself."), field="fallback")
            streak_day = None
            if kind == CHECKIN:
                streak_day = _int(row, "streak_day", 1, cycle)
                if streak_day in streak_days:
                    raise InvalidCampaign(_l("One prize per streak day."), field="streak_day")
                streak_days.add(streak_day)
                weight = 0
        except InvalidCampaign as exc:
            exc.field = field(exc.field or "")
            raise
        out.append(
            {
                "id": row.get("id") if isinstance(row.get("id"), int) else None,
                "position": i + 1,
                "name": name,
                "kind": prize_kind,
                "value_fen": value_fen,
                "coupon_template_id": template_id,
                "points": points,
                "weight": weight,
                "stock": stock,
                "daily_cap": daily_cap,
                "fallback": fallback,
                "streak_day": streak_day,
            }
        )
    if kind in CHANCE_KINDS and sum(p["weight"] for p in out) <= 0:
        raise InvalidCampaign(_l("Give at least one prize a weight."), field="prizes")
    return out


def create_campaign(
    *, kind: str, values: dict, prizes: list, created_by: str = "", now: dt.datetime | None = None
) -> GameCampaign:
    """A draft campaign with its prizes; its seed is drawn now and its hash published."""
    if kind not in KINDS:
        raise InvalidCampaign(_l("Choose a game type."), field="kind")
    settings = clean_settings(values, kind=kind)
    rows = clean_prizes(prizes, kind=kind, cycle=settings["checkin_cycle"])
    seed = draws.new_seed()
    campaign = GameCampaign(
        kind=kind,
        status=DRAFT,
        seed=seed,
        seed_hash=draws.seed_hash(seed),
        created_by=created_by[:120],
        **settings,
    )
    db.session.add(campaign)
    db.session.flush()
    _write_prizes(campaign, rows, [])
    return campaign


def _write_prizes(campaign: GameCampaign, rows: list[dict], existing: list[GamePrize]) -> None:
    by_position = {p.position: p for p in existing}
    kept: list[GamePrize] = []
    # Positions are unique: move the old ones out of the way before writing new positions.
    for p in existing:
        p.position = -p.position
    db.session.flush()
    for row in rows:
        prize = (
            by_position.get(row["position"])
            if row["id"] is None
            else next((p for p in existing if p.id == row["id"]), None)
        )
        if prize is None:
            prize = GamePrize(campaign_id=campaign.id, awarded=0)
            db.session.add(prize)
        for name in (
            "position",
            "name",
            "kind",
            "value_fen",
            "coupon_template_id",
            "points",
            "weight",
            "stock",
            "daily_cap",
            "streak_day",
        ):
            if name == "stock" and prize.stock is None and row["stock"] is not None and prize.id:
                # an unlimited prize keeps no counter: count its wins when it gets a stock
                prize.awarded = _wins(prize.id)
            setattr(prize, name, row[name])
        kept.append(prize)
    for p in existing:
        if p not in kept:
            if p.awarded or (p.stock is None and _wins(p.id)):
                raise Conflict(_l("A prize already won cannot be removed."), field="prizes")
            db.session.delete(p)
    db.session.flush()
    for prize, row in zip(kept, rows, strict=True):
        prize.fallback_prize_id = kept[row["fallback"] - 1].id if row["fallback"] else None
        if prize.stock is not None and prize.stock < prize.awarded:
            raise InvalidCampaign(
                _l("The stock cannot be less than the prizes already won."),
                field=f"prizes-{row['position'] - 1}-stock",
            )
    db.session.flush()


def _wins(prize_id: int) -> int:
    """The real (not preview) draws that won the prize."""
    return db.session.scalar(
        select(func.count()).where(GameDraw.prize_id == prize_id, GameDraw.preview.is_(False))
    )


def _widened(old: list, new: list) -> bool:
    """Whether an audience list (empty: everyone) only grew."""
    if not old:
        return not new
    return not new or set(old) <= set(new)


def _more(old: int | None, new: int | None) -> bool:
    """Whether a limit (None: none) only grew."""
    if old is None:
        return new is None
    return new is None or new >= old


def _check_favourable(campaign: GameCampaign, settings: dict, rows: list[dict], prizes) -> None:
    def refuse(message, field):
        raise AgainstPlayers(message, field=field)

    if settings["starts_at"] != campaign.starts_at:
        refuse(_l("The start of a live game cannot change."), "starts_at")
    if settings["ends_at"] < campaign.ends_at:
        refuse(_l("A live game can only end later, not earlier."), "ends_at")
    if settings["cost_points"] > campaign.cost_points:
        refuse(_l("A live game cannot cost more points."), "cost_points")
    for name in ("free_per_day", "extra_per_purchase", "extra_per_checkin", "claim_days"):
        if settings[name] < getattr(campaign, name):
            refuse(_l("A live game cannot give less than before."), name)
    for name in LIMIT_FIELDS:
        if not _more(getattr(campaign, name), settings[name]):
            refuse(_l("A live game's limits can only be raised."), name)
    if not _more(campaign.budget_fen, settings["budget_fen"]):
        refuse(_l("A live game's budget can only be raised."), "budget_fen")
    for name in SCOPE_FIELDS:
        if not _widened(getattr(campaign, name) or [], settings[name]):
            refuse(_l("A live game can only open to more members, not fewer."), name)
    if settings["checkin_cycle"] != campaign.checkin_cycle:
        refuse(_l("The streak of a live game cannot change."), "checkin_cycle")
    if len(rows) != len(prizes):
        refuse(_l("Prizes cannot be added to or removed from a live game."), "prizes")
    for i, (row, prize) in enumerate(zip(rows, prizes, strict=True)):
        fallback = prizes[row["fallback"] - 1].id if row["fallback"] else None
        same = (
            (row["id"] in (None, prize.id))
            and row["name"] == prize.name
            and row["kind"] == prize.kind
            and row["value_fen"] == prize.value_fen
            and row["coupon_template_id"] == prize.coupon_template_id
            and row["points"] == prize.points
            and row["weight"] == prize.weight
            and row["streak_day"] == prize.streak_day
            and fallback == prize.fallback_prize_id
        )
        if not same:
            refuse(
                _l("The prizes and odds of a live game cannot change (only more stock)."),
                f"prizes-{i}-weight",
            )
        if not _more(prize.stock, row["stock"]):
            refuse(_l("A live game's stock can only be raised."), f"prizes-{i}-stock")
        if not _more(prize.daily_cap, row["daily_cap"]):
            refuse(_l("A live game's daily caps can only be raised."), f"prizes-{i}-daily_cap")


def campaign_prizes(campaign_id: int) -> list[GamePrize]:
    return list(
        db.session.scalars(
            select(GamePrize)
            .where(GamePrize.campaign_id == campaign_id)
            .order_by(GamePrize.position)
        )
    )


def update_campaign(*, campaign_id: int, values: dict, prizes: list) -> GameCampaign:
    """Change a campaign's settings and prizes; after it has gone live, only in the players'
    favour (``AgainstPlayers`` otherwise). An ended campaign cannot change."""
    from games.services import _campaign

    campaign = _campaign(campaign_id)
    if campaign.status == ENDED:
        raise Conflict(_l("An ended game cannot change."))
    settings = clean_settings(values, kind=campaign.kind)
    for name in ("starts_at", "ends_at"):
        # A form shows times to the minute (or second): the same minute is the same time.
        old, new = getattr(campaign, name), settings[name]
        if new.replace(second=0, microsecond=0) == old.replace(second=0, microsecond=0):
            settings[name] = old
    rows = clean_prizes(prizes, kind=campaign.kind, cycle=settings["checkin_cycle"])
    existing = campaign_prizes(campaign.id)
    if campaign.started_at is not None:
        db.session.execute(
            select(GameCampaign.id).where(GameCampaign.id == campaign.id).with_for_update()
        )
        _check_favourable(campaign, settings, rows, existing)
        for row, prize in zip(rows, existing, strict=True):
            row["id"] = prize.id
    for name, value in settings.items():
        setattr(campaign, name, value)
    db.session.flush()
    _write_prizes(campaign, rows, existing)
    return campaign


def start_campaign(*, campaign_id: int, now: dt.datetime | None = None) -> GameCampaign:
    """Draft or paused -> live (the first start fixes the rules: see ``update_campaign``)."""
    from games.services import _campaign

    now = now or utcnow()
    campaign = _campaign(campaign_id)
    if campaign.status not in (DRAFT, PAUSED):
        raise Conflict(_l("Only a draft or paused game can start."))
    if now >= campaign.ends_at:
        raise Conflict(_l("This game's end has passed; extend it first."))
    campaign.status = LIVE
    if campaign.started_at is None:
        campaign.started_at = now
    db.session.flush()
    return campaign


def pause_campaign(*, campaign_id: int) -> GameCampaign:
    """Live -> paused (members see it paused; nothing else changes)."""
    from games.services import _campaign

    campaign = _campaign(campaign_id)
    if campaign.status != LIVE:
        raise Conflict(_l("Only a live game can be paused."))
    campaign.status = PAUSED
    db.session.flush()
    return campaign


def end_campaign(*, campaign_id: int, now: dt.datetime | None = None) -> GameCampaign:
    """Any status -> ended; its seed is revealed from now on."""
    from games.services import _campaign

    campaign = _campaign(campaign_id)
    if campaign.status == ENDED:
        return campaign
    campaign.status = ENDED
    campaign.ended_at = now or utcnow()
    db.session.flush()
    return campaign
