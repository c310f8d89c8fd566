"""Chinese names of the points package's codes (core.labels): ledger entry kinds, expiry
policies and what a merge moved."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.labels import register_labels

ENTRY_KIND = {
    "earn": _l("Purchase"),
    "release": _l("Pending points available"),
    "spend": _l("Used"),
    "expire": _l("Expired"),
    "refund": _l("Refund"),
    "adjust": _l("Manual adjustment"),
    "welcome": _l("Welcome gift"),
    "merge_in": _l("Merged member"),
    "merge_out": _l("Merged member"),
    "return": _l("Points returned for a refund"),
    "game": _l("Game reward"),
}
MERGE_MOVED = {
    "ledger_accounts": _l("Points accounts"),
    "ledger_lots": _l("Points lots"),
    "ledger_entries": _l("Points entries"),
    "ledger_points": _l("Points"),
}

register_labels("points_kind", ENTRY_KIND)
register_labels("merge_moved", MERGE_MOVED)
register_labels(
    "job",
    {
        "points.jobs.release_all": _l("Make pending points available"),
        "points.jobs.expire_all": _l("Expire points"),
        "points.jobs.remind_all": _l("Remind members of expiring points"),
        "points.jobs.sync_all": _l("Sync points to WeChat member cards"),
        "points.jobs.release_brand": _l("Make a brand's pending points available"),
        "points.jobs.expire_brand": _l("Expire a brand's points"),
        "points.jobs.remind_brand": _l("Remind a brand's members of expiring points"),
        "points.jobs.sync_members": _l("Sync a brand's points to WeChat member cards"),
    },
)
register_labels(
    "audit_object",
    {"points_settings": _l("Points rules"), "points_campaign": _l("Bonus campaign")},
)
register_labels(
    "audit_field",
    {
        "points_settings.earn_permille": _l("Points per yuan (per mille)"),
        "points_settings.pending_days": _l("Pending days"),
        "points_settings.expiry_policy": _l("Points expiry"),
        "points_settings.welcome_points": _l("Welcome points"),
        "points_settings.daily_cap": _l("Daily cap"),
        "points_campaign.multiplier_permille": _l("Multiplier (per mille)"),
        "points_campaign.start_date": _l("Start date"),
        "points_campaign.end_date": _l("End date"),
        "points_campaign.category": _l("Category"),
    },
)
