"""The rules of a campaign, generated from its settings (the law on prize promotions asks
that they be published before the start): organiser and contact, window, who may play, how
to play and what it costs, limits, each prize with its value, quantity and odds, how draws
are made (the published seed hash), how prizes are claimed and delivered, forfeit, and staff
exclusion. Structured data; the pages lay it out."""

from __future__ import annotations

import dataclasses

from flask_babel import gettext as _

from core.db import db
from games.models import CHECKIN, COUPON, GIFT, NONE, POINTS, GameCampaign
from games.queries import prizes, revealed_seed
from org.models import Brand


@dataclasses.dataclass
class PrizeRule:
    position: int
    name: str
    kind: str
    value_fen: int
    quantity: int | None  # None: unlimited
    daily_cap: int | None
    odds_percent: str | None  # "12.50" (None for a check-in)
    streak_day: int | None
    delivery: str


@dataclasses.dataclass
class Rules:
    organiser: str
    contact: str
    starts_at: object
    ends_at: object
    who: list[str]
    how: list[str]
    limits: list[str]
    prizes: list[PrizeRule]
    drawing: list[str]
    claiming: list[str]
    seed_hash: str
    seed: str | None


def _delivery(kind: str, claim_days: int) -> str:
    if kind == COUPON:
        return _("Put into My coupons at once.")
    if kind == POINTS:
        return _("Added to your points at once.")
    if kind == GIFT:
        return _(
            "Give a delivery address or pick it up in a store within %(n)d days.", n=claim_days
        )
    return ""


def rules_for(campaign: GameCampaign) -> Rules:
    """The campaign's rules as structured data (texts in the request's language)."""
    brand = db.session.get(Brand, campaign.brand_id)
    pool = prizes(campaign.id)
    total = sum(p.weight for p in pool)
    who = [_("Members of %(brand)s.", brand=brand.name)]
    if campaign.tier_ids or campaign.tag_ids or campaign.store_ids:
        who.append(_("Only members of the tiers, tags or stores chosen by the organiser."))
    who.append(_("Staff of the brand may not take part."))
    who.append(_("Only members who have verified their phone number can win prizes of value."))
    how: list[str] = []
    if campaign.kind == CHECKIN:
        how.append(
            _(
                "Check in once a day; consecutive days make a streak of up to %(n)d days, then"
                " it starts again.",
                n=campaign.checkin_cycle,
            )
        )
    else:
        if campaign.free_per_day:
            how.append(_("%(n)d free plays a day.", n=campaign.free_per_day))
        if campaign.cost_points:
            how.append(_("Each further play costs %(n)d points.", n=campaign.cost_points))
        if not campaign.free_per_day and not campaign.cost_points:
            how.append(_("Playing is free."))
        if campaign.extra_per_purchase:
            how.append(_("Each paid order earns %(n)d extra plays.", n=campaign.extra_per_purchase))
        if campaign.extra_per_checkin:
            how.append(
                _("Each daily check-in earns %(n)d extra plays.", n=campaign.extra_per_checkin)
            )
        how.append(_("Sharing is welcome but never earns plays."))
    limits: list[str] = []
    if campaign.plays_per_day:
        limits.append(_("At most %(n)d plays a day.", n=campaign.plays_per_day))
    if campaign.plays_total:
        limits.append(_("At most %(n)d plays in all.", n=campaign.plays_total))
    if campaign.wins_per_day:
        limits.append(_("At most %(n)d prizes a day.", n=campaign.wins_per_day))
    if campaign.wins_total:
        limits.append(_("At most %(n)d prizes in all.", n=campaign.wins_total))
    rows = []
    for p in pool:
        odds = None
        if campaign.kind != CHECKIN and total > 0:
            odds = f"{p.weight * 100 / total:.2f}"
        rows.append(
            PrizeRule(
                position=p.position,
                name=p.name,
                kind=p.kind,
                value_fen=p.value_fen,
                quantity=None if p.kind == NONE else p.stock,
                daily_cap=p.daily_cap,
                odds_percent=odds,
                streak_day=p.streak_day,
                delivery=_delivery(p.kind, campaign.claim_days),
            )
        )
    drawing = [
        _("Every result is drawn by the system at the moment of play; no one can choose a winner."),
        _(
            "Each draw's number is HMAC-SHA256 of a secret seed and the draw's number; the"
            " seed's SHA-256 is published below before the start and the seed itself after the"
            " end, so anyone can recompute every draw."
        ),
        _("When a prize runs out, its chance passes to the prize the organiser set for it."),
    ]
    claiming = [
        _("Coupons and points are credited at once and shown in My prizes."),
        _(
            "A physical gift not claimed within %(n)d days of winning is forfeited.",
            n=campaign.claim_days,
        ),
        _("Prizes cannot be exchanged for cash or transferred."),
    ]
    return Rules(
        organiser=brand.name,
        contact=campaign.contact,
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        who=who,
        how=how,
        limits=limits,
        prizes=rows,
        drawing=drawing,
        claiming=claiming,
        seed_hash=campaign.seed_hash,
        seed=revealed_seed(campaign),
    )
