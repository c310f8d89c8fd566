"""Chinese names of the games package's codes (core.labels): game kinds, campaign and draw
statuses, prize kinds, how a play was paid, why a prize fell back."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

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
