"""Chinese names of the games package's codes (core.labels): game kinds, campaign and draw
statuses, prize kinds, how a play was paid, why a prize fell back."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.audit_view import register_value_labels
from core.labels import register_labels

GAME_KIND = {
    "wheel": _l("Lucky wheel"),
    "scratch": _l("Scratch card"),
    "grid": _l("Nine-grid"),
    "checkin": _l("Daily check-in"),
}
CAMPAIGN_STATUS = {
    "draft": _l("Draft"),
    "live": _l("In progress"),
    "paused": _l("Paused"),
    "ended": _l("Ended"),
}
PRIZE_KIND = {
    "coupon": _l("Coupon"),
    "points": _l("Points"),
    "gift": _l("Physical gift"),
    "none": _l("Thanks for playing"),
}
DRAW_STATUS = {
    "granted": _l("Granted"),
    "pending_grant": _l("Being granted"),
    "awaiting_address": _l("Awaiting address"),
    "preview": _l("Preview"),
    "lost": _l("No prize"),
    "grant_failed": _l("Grant failed"),
}
PAID_WITH = {
    "free": _l("Free play"),
    "extra": _l("Extra play"),
    "points": _l("Points"),
    "checkin": _l("Check-in"),
}
FALLBACK_REASON = {
    "stock": _l("Out of stock"),
    "daily_cap": _l("Daily cap reached"),
    "budget": _l("Budget used up"),
    "win_limit": _l("Win limit reached"),
    "not_activated": _l("Card not activated"),
}

register_labels("game_kind", GAME_KIND)
register_labels("game_status", CAMPAIGN_STATUS)
register_labels("game_prize_kind", PRIZE_KIND)
register_labels("game_draw_status", DRAW_STATUS)
register_labels("game_paid_with", PAID_WITH)
register_labels("game_fallback", FALLBACK_REASON)

# The audit log: what the changed rows and their fields are called, and their codes' labels.
register_labels(
    "audit_object",
    {"game_campaign": _l("Game campaign"), "game_prize": _l("Game prize")},
)
register_labels(
    "audit_field",
    {
        "game_campaign.kind": _l("Game"),
        "game_campaign.starts_at": _l("Starts"),
        "game_campaign.ends_at": _l("Ends"),
        "game_campaign.started_at": _l("First started"),
        "game_campaign.ended_at": _l("Ended at"),
        "game_campaign.tier_ids": _l("Only tiers (empty = all)"),
        "game_campaign.tag_ids": _l("Only members with tags (empty = all)"),
        "game_campaign.store_ids": _l("Only members of stores (empty = all)"),
        "game_campaign.pickup_store_ids": _l("Gift pick-up stores (empty = any)"),
        "game_campaign.cost_points": _l("Points per play"),
        "game_campaign.free_per_day": _l("Free plays per day"),
        "game_campaign.extra_per_purchase": _l("Extra plays per paid order"),
        "game_campaign.extra_per_checkin": _l("Extra plays per daily check-in"),
        "game_campaign.plays_per_day": _l("Plays per member per day (empty = no limit)"),
        "game_campaign.plays_total": _l("Plays per member in all (empty = no limit)"),
        "game_campaign.wins_per_day": _l("Prizes per member per day (empty = no limit)"),
        "game_campaign.wins_total": _l("Prizes per member in all (empty = no limit)"),
        "game_campaign.budget_fen": _l("Budget for prizes (fen)"),
        "game_campaign.spent_fen": _l("Budget used (fen)"),
        "game_campaign.checkin_cycle": _l("Check-in streak cycle (days)"),
        "game_campaign.claim_days": _l("Days to claim a gift"),
        "game_campaign.contact": _l("Organiser's contact"),
        "game_campaign.seed": _l("Seed (revealed)"),
        "game_campaign.seed_hash": _l("Seed hash (published)"),
        "game_campaign.created_by": _l("Created by"),
        "game_campaign.description": _l("Description"),
        "game_prize.campaign_id": _l("Game campaign"),
        "game_prize.position": _l("Line"),
        "game_prize.kind": _l("Type"),
        "game_prize.value_fen": _l("Prize value (fen)"),
        "game_prize.coupon_template_id": _l("Coupon"),
        "game_prize.weight": _l("Weight"),
        "game_prize.stock": _l("Stock"),
        "game_prize.daily_cap": _l("Per day"),
        "game_prize.awarded": _l("Won"),
        "game_prize.fallback_prize_id": _l("When out, goes to"),
        "game_prize.streak_day": _l("Streak day"),
    },
)
register_value_labels("game_campaign", "kind", "game_kind")
register_value_labels("game_campaign", "status", "game_status")
register_value_labels("game_prize", "kind", "game_prize_kind")
